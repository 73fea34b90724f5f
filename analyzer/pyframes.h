/*
 * Python frames in a site's stack (PFS_STACK_PYTHON, log_format.h): each
 * names a function of a PYCODE record and the line it was running.  The
 * shim put them where the interpreter's eval frames stood, innermost
 * first, so a report shows them in place among the C frames.
 */
#ifndef PFSHIM_PYFRAMES_H
#define PFSHIM_PYFRAMES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"
#include "report.h"

/* Entry `v` of stack `st` is a Python frame, not a return address. */
static inline bool pfs_pyframe_in(const struct pfs_stack *st, uint64_t v)
{
	return st->python && pfs_is_pyframe(v);
}

/*
 * The report's frame for Python frame `v` of process `p` (function, file,
 * line; no module), and its part of the site's key, the same in every
 * process: the function's file, name and first line, and the line.  A
 * function never recorded has no name, and a key of this process only.
 */
void pfs_pyframe_resolve(const struct pfs_proc *p, uint64_t v, struct pfs_rframe *f, FILE *key);

#endif
