/*
 * This process's address space as /proc/self/maps tells it, and what the
 * shim calls each kind of memory that is no allocation: the main thread's
 * stack, a thread's stack, the writable segments of a loaded object
 * (.data, and the anonymous .bss after it), memory mapped before the shim
 * started, anonymous memory no hook saw being mapped, the shim's own.
 * Read without stdio or malloc (a hook or the scanner may ask).
 */
#ifndef PFS_ADDRSPACE_H
#define PFS_ADDRSPACE_H

#include <stdint.h>

struct pfs_mapping {
	uint64_t start, end;
	int prot;		/* PROT_* */
	int shared;		/* MAP_SHARED (or shared anonymous memory) */
	uint64_t inode;		/* 0: anonymous */
	char name[256];		/* the path, [heap], [stack], ...; "" for anonymous memory */
};

/*
 * Calls fn for each mapping in address order, with the one before it
 * (prev->end == 0 for the first); stops when fn returns non-zero.  0, or
 * -errno when the maps cannot be read.
 */
int pfs_addrspace_each(int (*fn)(const struct pfs_mapping *m, const struct pfs_mapping *prev, void *arg), void *arg);

/* The mapping holding addr, and the one before it: 0, or -ENOENT (-errno) when none. */
int pfs_addrspace_find(uint64_t addr, struct pfs_mapping *m, struct pfs_mapping *prev);

/*
 * What the shim accounts a mapping's faults as (enum pfs_kind), or 0 for
 * memory it leaves to something else (read-only or shared memory, the
 * kernel's [vdso], the brk heap that malloc carves).  `at_start`: the
 * mapping existed when the shim started (anonymous memory is pre-start then,
 * unhooked later).  The shim's own memory is told by its own table
 * (arena.h), range by range: the kernel merges neighbouring anonymous
 * mappings, the shim's with the program's.  `*end`: where that kind ends in
 * m, m->end but for an object's .bss at the start (`at_start`), which ends
 * with the object's memory image: what the kernel merged after it is
 * anonymous memory of its own (the kind of m from *end on, asked with m
 * starting there).
 */
int pfs_addrspace_kind(const struct pfs_mapping *m, const struct pfs_mapping *prev, int at_start, uint64_t *end);

#endif
