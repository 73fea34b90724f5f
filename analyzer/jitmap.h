/*
 * Names of code a JIT compiled, from the perf map the runtime wrote
 * (/tmp/perf-PID.map: `node --perf-basic-prof`, Java's
 * -XX:+DumpPerfMapAtExit, `python3 -X perf`): a line "START SIZE NAME" per
 * piece of code, hexadecimal, as perf reads it.  A return address in no
 * loaded object is looked up there.
 */
#ifndef PFSHIM_JITMAP_H
#define PFSHIM_JITMAP_H

#include <stdint.h>

#include "model.h"

/*
 * The name of the JIT code holding `addr` in process `p`, or NULL.  The
 * map is the one kept with the run (perf-PID.map in the log's directory:
 * `pfshim record` copies it there), else /tmp's when it was written during
 * the process's life (not an earlier process's of the same pid).  Read
 * once per process, at its first lookup.  NULL also when out of memory.
 */
const char *pfs_jitmap_name(const struct pfs_proc *p, uint64_t addr);

/*
 * Copies into the run's directory the map /tmp holds for each of its
 * processes (written during its life), beside its log, where no copy is
 * yet: the run keeps its names when /tmp is cleaned or a pid is reused.
 * Returns the maps copied, or -errno of the first that could not be.
 */
int pfs_jitmap_keep(const struct pfs_run *run);

/* Forgets every map read. */
void pfs_jitmap_reset(void);

#endif
