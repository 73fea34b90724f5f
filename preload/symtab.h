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

/* Path of the object holding `addr`, or NULL. */
const char *pfs_symtab_object(uint64_t addr);

/* Changes whenever an object was unloaded: answers cached by address are stale then. */
uint32_t pfs_symtab_epoch(void);

#endif
