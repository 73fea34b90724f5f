/*
 * Exact mode: the program's tracked memory registered with a userfaultfd
 * (missing pages, and write-protect after fork), one handler thread that
 * resolves each fault the way the kernel would and logs it as an event of a
 * FAULTS record.  Attribution (which allocation owns the page) is the
 * analyzer's, from the ALLOC / FREE / CARVE records; the shim only keeps
 * what it must register again after a fork.
 */
#ifndef PFS_EXACT_H
#define PFS_EXACT_H

#include <stdint.h>

struct pfs_thread;

/*
 * Opens a full userfaultfd (the system call, else /dev/userfaultfd): 0, or
 * -errno with *why naming what is missing.  Then, once the process's state
 * exists, pfs_exact_start starts the handler thread (same return).
 */
int pfs_exact_init(const char **why);
int pfs_exact_start(const char **why);
int pfs_exact_enabled(void);

/* A new allocation of the program [addr, addr + len): registered (or logged as unobservable). */
void pfs_exact_add(struct pfs_thread *t, uint64_t addr, uint64_t len, uint64_t alloc_seq, uint32_t stack, int kind,
		   int cowable);
/* The allocation at `addr` is freed / [addr, addr + len) is unmapped: forget what it covered. */
void pfs_exact_free_at(uint64_t addr);
void pfs_exact_unmap(uint64_t addr, uint64_t len);
/* mremap moved or resized a range: the kernel dropped its registration; register the new place. */
void pfs_exact_remap(struct pfs_thread *t, uint64_t old, uint64_t old_len, uint64_t new_addr, uint64_t new_len);
/* A heap block [p, end) reaching past its heap's mark (the same rule as fast mode's carving). */
void pfs_exact_carve(struct pfs_thread *t, uint64_t p, uint64_t end, uint32_t stack, int kind);

/*
 * madvise(MADV_HUGEPAGE) succeeded on [addr, addr + len) (the program's, or
 * a policy's): where THP is "madvise", that memory could have had huge
 * pages, which registration stops; the report is told.
 */
void pfs_exact_note_hugepage(uint64_t addr, uint64_t len);

/* Writes the events the handler holds (exit, exec, fork). */
void pfs_exact_flush(struct pfs_thread *t);

/* fork */
void pfs_exact_lock(void);
void pfs_exact_unlock(void);
void pfs_exact_after_fork_parent(void);
void pfs_exact_child(struct pfs_thread *t);

uint64_t pfs_exact_first_touches(void);
uint64_t pfs_exact_cow_faults(void);

#endif
