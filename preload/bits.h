/*
 * A bitmap of pages, one bit each, for regions of any size (regions.h): a
 * mapping of terabytes of which a few pages are held (ThreadSanitizer's
 * shadow, tracked whole as memory no hook saw) costs a few leaves, not a
 * bitmap of hundreds of megabytes cleared on every pass.  The bits are kept
 * in leaves of PFS_BITS_LEAF pages, allocated when a bit in them is first
 * set; clearing, counting and copying walk only the leaves there are.  A
 * bitmap of one leaf (most regions) is that leaf alone, sized to the pages.
 * Not thread-safe: the regions lock is held.
 */
#ifndef PFS_BITS_H
#define PFS_BITS_H

#include <stdint.h>

#define PFS_BITS_LEAF (1ull << 15) /* pages per leaf: 4 KiB of bits, 128 MiB of 4 KiB pages */

struct pfs_bits {
	uint64_t pages;	 /* bits it has room for */
	uint64_t *only;	 /* one leaf: it, or NULL while all clear */
	uint64_t **leaf; /* more leaves: a pointer each, NULL while all its bits are clear */
	uint64_t *used;	 /* more leaves: a bit per leaf allocated */
	int per_fork;	 /* its memory from the per-fork pool (arena.h) */
};

/* An empty bitmap of `pages` bits; 0 or -ENOMEM. */
int pfs_bits_init(struct pfs_bits *b, uint64_t pages);
/* The same in the per-fork pool: for a bitmap rebuilt after every fork, gone in a forked child. */
int pfs_bits_init_per_fork(struct pfs_bits *b, uint64_t pages);
void pfs_bits_free(struct pfs_bits *b);
/* Room for at least `pages` bits, keeping what is set; 0 or -ENOMEM. */
int pfs_bits_grow(struct pfs_bits *b, uint64_t pages);

int pfs_bits_get(const struct pfs_bits *b, uint64_t i);
/* Sets [from, to) and returns how many were clear (bits whose leaf cannot be allocated are left clear, not counted). */
uint64_t pfs_bits_set_count(struct pfs_bits *b, uint64_t from, uint64_t to);
/* Clears [from, to) and returns how many were set. */
uint64_t pfs_bits_clear(struct pfs_bits *b, uint64_t from, uint64_t to);
/* Whether a bit of [from, to) is set; the first that is (or `to`). */
int pfs_bits_any(const struct pfs_bits *b, uint64_t from, uint64_t to);
uint64_t pfs_bits_next(const struct pfs_bits *b, uint64_t from, uint64_t to);
/* The first bit of [from, to) that is clear (or `to`). */
uint64_t pfs_bits_next_clear(const struct pfs_bits *b, uint64_t from, uint64_t to);
/* The bits set. */
uint64_t pfs_bits_count(const struct pfs_bits *b);
/* dst's bits [at, at + to - from) become src's [from, to) (dst's others there cleared first). */
void pfs_bits_copy(struct pfs_bits *dst, uint64_t at, const struct pfs_bits *src, uint64_t from, uint64_t to);

#endif
