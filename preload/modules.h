/*
 * The module map: every loaded object, written as MODULE records (and
 * MODULE_UNLOAD when it goes), found through dl_iterate_phdr's counters.
 */
#ifndef PFS_MODULES_H
#define PFS_MODULES_H

#include <stddef.h>
#include <stdint.h>

/* Logs modules loaded or unloaded since the last call (all of them with `force`). */
void pfs_modules_sync(int force);
/* In a fork child: every module is written again into the child's log. */
void pfs_modules_rewrite(void);
void pfs_modules_child_reset(void);
/* The address lies in the shim itself / in libunwind (whose own mmaps are not the program's). */
int pfs_addr_in_self(uintptr_t addr);
int pfs_addr_in_unwinder(uintptr_t addr);
/* [start, end) of the shim's code and read-only data. */
void pfs_self_code(uintptr_t *start, uintptr_t *end);
/* The loader's counts of objects loaded and unloaded, as the last pfs_modules_sync saw them. */
void pfs_modules_seen(uint64_t *adds, uint64_t *subs);
struct dl_phdr_info;
/* [start, end) of an object's PT_LOAD segments at run time. */
void pfs_module_range(const struct dl_phdr_info *info, uint64_t *start, uint64_t *end);
/* An object's path: the loader's name, or for the main program /proc/self/exe read into buf. */
const char *pfs_module_name(const struct dl_phdr_info *info, char *buf, size_t len);

#endif
