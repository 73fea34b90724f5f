/*
 * CPython's frames beside the C stack: when the traced process runs
 * CPython (3.11 to 3.13), a stack captured on a slow path (an allocation
 * with a record of its own) carries the Python frames of the allocating
 * thread, each of the interpreter's eval frames replaced by the Python
 * frames it runs.  Read from the thread's own frame chain, only while that
 * thread holds the GIL, with plain loads: no reference taken, no lock, no
 * call into the interpreter but two that only load a pointer.
 */
#ifndef PFS_PYTHON_H
#define PFS_PYTHON_H

#include <stddef.h>
#include <stdint.h>

struct pfs_thread;

/* Python frames can be read in this process (set once at start). */
extern int pfs_python_on;

/*
 * At start, after the log is open: finds CPython in the process (the main
 * program or libpython, by dlsym) and checks its version; an interpreter
 * whose frames cannot be read is said in one line, and stacks stay C.
 */
void pfs_python_init(void);

/*
 * The calling thread's stack (return addresses, innermost first, the
 * shim's own frames dropped) with the interpreter's eval frames replaced
 * by the Python frames they run (pfs_pyframe values, log_format.h), at
 * most `max` entries.  Returns how many, or -1 when the thread runs no
 * Python code now (it does not hold the GIL, or has no frame): the caller
 * unwinds as usual.  *flags: PFS_STACK_PYTHON, and PFS_STACK_TRUNCATED
 * when frames were cut.  Writes PYCODE records for functions seen first.
 */
int pfs_python_capture(struct pfs_thread *t, uint64_t *frames, unsigned max, uint16_t *flags);

/*
 * The names site= matches for a Python frame (a pfs_pyframe value): the
 * function's qualified name, its own name when different, and FILE:LINE
 * with the file's base name and with its path.  Names point into the
 * function's table entry or into text[*used..room), formatted there.
 * Returns how many were stored (at most max).
 */
unsigned pfs_python_names(uint64_t frame, const char **names, unsigned max, char *text, size_t room,
			  size_t *used);

/* fork: the table's lock (taken after no thread unwinds); reset in the child. */
void pfs_python_lock(void);
void pfs_python_unlock(void);
void pfs_python_child(void);
/* A fork child's log stands alone: every function is written again (before the stacks). */
void pfs_python_rewrite(struct pfs_thread *t);

#endif
