/* Whether a loaded object exports a name, without dlsym's error path (dynsym.c). */
#ifndef PFS_DYNSYM_H
#define PFS_DYNSYM_H

/*
 * 0: no loaded object defines `name` (dlsym would fail); 1: one does, or an
 * object without a GNU hash table might: ask dlsym.
 */
int pfs_dynsym_maybe(const char *name);

#endif
