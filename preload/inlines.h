/*
 * Inlined functions for policies' site=: a function inlined into its
 * callers (static inline helpers, C++ templates at -O2) has no symbol of
 * its own, only DWARF.  At start, outside every hook, the DWARF of the
 * objects loaded then is read with libdw in a child process forked for it
 * (libdw allocates: never inside a hook, never on the program's heap; a
 * program without site= rules never starts it), and the address ranges of
 * the inlined instances whose names a policy wants are kept; lookups are
 * then a binary search, safe inside hooks.  Objects loaded later (dlopen)
 * and the distribution's libraries are matched by their symbol tables only
 * (symtab.h).  Names are as DWARF spells them: the C++ linkage name
 * (demangled by the caller, like every name), else the plain name, as the
 * analyzer names inlined frames.
 */
#ifndef PFS_INLINES_H
#define PFS_INLINES_H

#include <stdint.h>

/*
 * Reads the DWARF of the loaded objects and keeps the inlined instances
 * whose name `want` accepts (it is given the name and its demangled form).
 * Once, at start; not inside a hook.  Objects without DWARF (and without a
 * /usr/lib/debug/.build-id file) are skipped.  Returns how many ranges were
 * kept.
 */
unsigned pfs_inlines_load(int (*want)(const char *name, void *arg), void *arg);

/* The names of the inlined instances around `addr` (at most `max`), innermost first or not; how many. */
unsigned pfs_inlines_names(uint64_t addr, const char **names, unsigned max);

#endif
