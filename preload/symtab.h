/*
 * Function names and objects for addresses of the running program, for
 * policies' site= and module= conditions: the symbol tables (.symtab, else
 * .dynsym) of the loaded objects, read once per object into sorted address
 * ranges, so that a lookup is two binary searches.  Static functions of an
 * executable built without -rdynamic are in .symtab.  Names are as the symbol
 * table spells them (C++ names mangled).
 */
#ifndef PFS_SYMTAB_H
#define PFS_SYMTAB_H

#include <stddef.h>
#include <stdint.h>

/*
 * Brings the table up to date with the loaded objects (cheap when nothing
 * was loaded or unloaded since the last call).  `symbols`: read symbol
 * tables too, not only the objects' ranges and paths.  Safe inside hooks:
 * no libc malloc, no lock of the shim held while the loader's is taken.
 */
void pfs_symtab_sync(int symbols);

/*
 * The names of the function holding `addr` (aliases included, at most
 * `max`), pointing into the objects' mapped string tables; returns how many.
 */
unsigned pfs_symtab_names(uint64_t addr, const char **names, unsigned max);

/*
 * Whether the object at `path` may hold DWARF where inlines.c looks for it:
 * a .debug_info section of its own (compressed or not), or a separate debug
 * file named by its build-id that exists.  Not inside hooks (it maps files).
 */
int pfs_symtab_has_dwarf(const char *path);

/* Path of the object holding `addr`, or NULL. */
const char *pfs_symtab_object(uint64_t addr);

/* Changes whenever an object was unloaded: answers cached by address are stale then. */
uint32_t pfs_symtab_epoch(void);

/*
 * The demangled form of a C++ symbol (pfshim/demangle.h, the analyzer's
 * form) into buf: 1, or 0 when it is not one, too long, or cannot be done
 * now.  The demangler's stack use grows with the name: it runs on a stack
 * of the shim's own (mapped once), one thread at a time, so that a thread
 * with a small stack is never overrun.  Safe inside hooks (the caller holds
 * the busy flag: no signal handler's allocation comes back in here).
 */
int pfs_symtab_demangle(const char *sym, char *buf, size_t len);

#endif
