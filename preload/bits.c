/* Page bitmaps allocated by leaves (bits.h). */
#include <errno.h>
#include <string.h>

#include "arena.h"
#include "bits.h"

#define LEAF PFS_BITS_LEAF
#define LEAF_WORDS (LEAF / 64)

static uint64_t words(uint64_t bits)
{
	return (bits + 63) / 64;
}

static uint64_t nleaves(uint64_t pages)
{
	return (pages + LEAF - 1) / LEAF;
}

/* Bytes of one leaf: a whole one, or for a bitmap of one leaf what its pages need. */
static uint64_t leaf_bytes(const struct pfs_bits *b)
{
	return (b->leaf ? LEAF_WORDS : (words(b->pages) ? words(b->pages) : 1)) * sizeof(uint64_t);
}

static uint64_t *leaf_at(const struct pfs_bits *b, uint64_t l)
{
	return b->leaf ? b->leaf[l] : b->only;
}

/* Its memory: from the per-fork pool for a bitmap rebuilt at every fork (arena.h). */
static void *mem_alloc(const struct pfs_bits *b, size_t size)
{
	return b->per_fork ? pfs_forkpool_alloc(size) : pfs_pool_alloc(size);
}

static void mem_free(const struct pfs_bits *b, void *p, size_t size)
{
	if (b->per_fork)
		pfs_forkpool_free(p, size);
	else
		pfs_pool_free(p, size);
}

/* The first leaf at or after l and before end that is allocated, or end. */
static uint64_t next_leaf(const struct pfs_bits *b, uint64_t l, uint64_t end)
{
	if (!b->leaf)
		return l < end && b->only ? l : end;
	while (l < end) {
		uint64_t w = b->used[l / 64] >> (l % 64);
		if (w)
			return l + (uint64_t)__builtin_ctzll(w) < end ? l + (uint64_t)__builtin_ctzll(w) : end;
		l = (l / 64 + 1) * 64;
	}
	return end;
}

static uint64_t *leaf_make(struct pfs_bits *b, uint64_t l)
{
	uint64_t *p = leaf_at(b, l);
	if (p)
		return p;
	p = mem_alloc(b, leaf_bytes(b));
	if (!p)
		return NULL;
	if (!b->leaf) {
		b->only = p;
	} else {
		b->leaf[l] = p;
		b->used[l / 64] |= 1ull << (l % 64);
	}
	return p;
}

static void leaf_drop(struct pfs_bits *b, uint64_t l)
{
	mem_free(b, b->leaf[l], LEAF_WORDS * sizeof(uint64_t));
	b->leaf[l] = NULL;
	b->used[l / 64] &= ~(1ull << (l % 64));
}

/* The mask of bits [lo, lo + n) of a word, n <= 64. */
static uint64_t mask(uint64_t lo, uint64_t n)
{
	return (n == 64 ? ~0ull : ((1ull << n) - 1)) << lo;
}

/* ---- within one leaf: bits [from, to) of w ---------------------------------- */

/*
 * A word is written only when it changes.  After a fork the bitmaps are
 * shared with the other process until one of them writes: a write that
 * changes nothing would still copy the page, a page fault the program pays
 * (and the kernel counts) in both processes of every fork.
 */
static uint64_t w_set_count(uint64_t *w, uint64_t from, uint64_t to)
{
	uint64_t fresh = 0;
	while (from < to) {
		uint64_t i = from / 64, lo = from % 64, n = 64 - lo < to - from ? 64 - lo : to - from, m = mask(lo, n);
		uint64_t add = m & ~w[i];
		if (add) {
			fresh += (uint64_t)__builtin_popcountll(add);
			w[i] |= m;
		}
		from += n;
	}
	return fresh;
}

static uint64_t w_clear(uint64_t *w, uint64_t from, uint64_t to)
{
	uint64_t was = 0;
	while (from < to) {
		uint64_t i = from / 64, lo = from % 64, n = 64 - lo < to - from ? 64 - lo : to - from, m = mask(lo, n);
		uint64_t gone = w[i] & m;
		if (gone) {
			was += (uint64_t)__builtin_popcountll(gone);
			w[i] &= ~m;
		}
		from += n;
	}
	return was;
}

/* The first bit of [from, to) of w equal to `set`, or to. */
static uint64_t w_find(const uint64_t *w, uint64_t from, uint64_t to, int set)
{
	while (from < to) {
		uint64_t i = from / 64, lo = from % 64, n = 64 - lo < to - from ? 64 - lo : to - from;
		uint64_t x = (set ? w[i] : ~w[i]) & mask(lo, n);
		if (x)
			return i * 64 + (uint64_t)__builtin_ctzll(x);
		from += n;
	}
	return to;
}

/* ---- the bitmap ------------------------------------------------------------- */

static int init(struct pfs_bits *b, uint64_t pages, int per_fork)
{
	memset(b, 0, sizeof(*b));
	b->pages = pages;
	b->per_fork = per_fork != 0;
	if (nleaves(pages) <= 1)
		return 0;
	b->leaf = mem_alloc(b, nleaves(pages) * sizeof(*b->leaf));
	b->used = mem_alloc(b, words(nleaves(pages)) * sizeof(uint64_t));
	if (!b->leaf || !b->used) {
		pfs_bits_free(b);
		return -ENOMEM;
	}
	return 0;
}

int pfs_bits_init(struct pfs_bits *b, uint64_t pages)
{
	return init(b, pages, 0);
}

int pfs_bits_init_per_fork(struct pfs_bits *b, uint64_t pages)
{
	return init(b, pages, 1);
}

void pfs_bits_free(struct pfs_bits *b)
{
	if (b->leaf) {
		for (uint64_t l = next_leaf(b, 0, nleaves(b->pages)); l < nleaves(b->pages);
		     l = next_leaf(b, l + 1, nleaves(b->pages)))
			mem_free(b, b->leaf[l], LEAF_WORDS * sizeof(uint64_t));
		mem_free(b, b->leaf, nleaves(b->pages) * sizeof(*b->leaf));
		mem_free(b, b->used, words(nleaves(b->pages)) * sizeof(uint64_t));
	} else if (b->only) {
		mem_free(b, b->only, leaf_bytes(b));
	}
	int per_fork = b->per_fork;
	memset(b, 0, sizeof(*b));
	b->per_fork = per_fork;
}

int pfs_bits_grow(struct pfs_bits *b, uint64_t pages)
{
	if (pages <= b->pages)
		return 0;
	struct pfs_bits g;
	if (init(&g, pages, b->per_fork))
		return -ENOMEM;
	if (!b->leaf && b->only) { /* the one leaf: copied into the new bitmap's first */
		uint64_t *p = leaf_make(&g, 0);
		if (!p) {
			pfs_bits_free(&g);
			return -ENOMEM;
		}
		memcpy(p, b->only, leaf_bytes(b));
		mem_free(b, b->only, leaf_bytes(b));
	} else if (b->leaf) { /* leaves are whole in both: moved */
		memcpy(g.leaf, b->leaf, nleaves(b->pages) * sizeof(*b->leaf));
		memcpy(g.used, b->used, words(nleaves(b->pages)) * sizeof(uint64_t));
		mem_free(b, b->leaf, nleaves(b->pages) * sizeof(*b->leaf));
		mem_free(b, b->used, words(nleaves(b->pages)) * sizeof(uint64_t));
	}
	*b = g;
	return 0;
}

int pfs_bits_get(const struct pfs_bits *b, uint64_t i)
{
	const uint64_t *w = leaf_at(b, i / LEAF);
	return w && (w[i % LEAF / 64] >> (i % 64) & 1);
}

uint64_t pfs_bits_set_count(struct pfs_bits *b, uint64_t from, uint64_t to)
{
	uint64_t fresh = 0;
	to = to < b->pages ? to : b->pages;
	while (from < to) {
		uint64_t l = from / LEAF, end = (l + 1) * LEAF < to ? (l + 1) * LEAF : to;
		uint64_t *w = leaf_make(b, l);
		if (w)
			fresh += w_set_count(w, from - l * LEAF, end - l * LEAF);
		from = end;
	}
	return fresh;
}

uint64_t pfs_bits_clear(struct pfs_bits *b, uint64_t from, uint64_t to)
{
	uint64_t was = 0;
	to = to < b->pages ? to : b->pages;
	if (from >= to)
		return 0;
	uint64_t last = (to - 1) / LEAF + 1;
	for (uint64_t l = next_leaf(b, from / LEAF, last); l < last; l = next_leaf(b, l + 1, last)) {
		uint64_t lo = from > l * LEAF ? from - l * LEAF : 0, hi = to < (l + 1) * LEAF ? to - l * LEAF : LEAF;
		uint64_t n = w_clear(leaf_at(b, l), lo, hi);
		was += n;
		if (n && b->leaf && lo == 0 && hi == LEAF)
			leaf_drop(b, l); /* all of it: the leaf goes (an empty one stays: unwritten) */
	}
	return was;
}

/* The first bit of [from, to) equal to `set`, or to. */
static uint64_t find(const struct pfs_bits *b, uint64_t from, uint64_t to, int set)
{
	while (from < to) {
		uint64_t l = from / LEAF;
		if (set) {
			uint64_t n = next_leaf(b, l, (to - 1) / LEAF + 1);
			if (n != l) {
				if (n * LEAF >= to)
					return to;
				from = n * LEAF;
				l = n;
			}
		} else if (!leaf_at(b, l)) {
			return from;
		}
		uint64_t end = (l + 1) * LEAF < to ? (l + 1) * LEAF : to;
		uint64_t at = w_find(leaf_at(b, l), from - l * LEAF, end - l * LEAF, set) + l * LEAF;
		if (at < end)
			return at;
		from = end;
	}
	return to;
}

uint64_t pfs_bits_next(const struct pfs_bits *b, uint64_t from, uint64_t to)
{
	to = to < b->pages ? to : b->pages;
	return from < to ? find(b, from, to, 1) : to;
}

uint64_t pfs_bits_next_clear(const struct pfs_bits *b, uint64_t from, uint64_t to)
{
	to = to < b->pages ? to : b->pages;
	return from < to ? find(b, from, to, 0) : to;
}

int pfs_bits_any(const struct pfs_bits *b, uint64_t from, uint64_t to)
{
	to = to < b->pages ? to : b->pages;
	return from < to && find(b, from, to, 1) < to;
}

uint64_t pfs_bits_count(const struct pfs_bits *b)
{
	uint64_t n = 0, last = nleaves(b->pages);
	for (uint64_t l = next_leaf(b, 0, last); l < last; l = next_leaf(b, l + 1, last)) {
		const uint64_t *w = leaf_at(b, l);
		for (uint64_t i = 0; i < leaf_bytes(b) / sizeof(uint64_t); i++)
			n += (uint64_t)__builtin_popcountll(w[i]);
	}
	return n;
}

/* Whether dst's [at, at + (to - from)) equals src's [from, to), read run by run. */
static int same_bits(const struct pfs_bits *dst, uint64_t at, const struct pfs_bits *src, uint64_t from, uint64_t to)
{
	uint64_t d = at - from; /* dst's bit for src's i: i + d (mod 2^64) */
	for (uint64_t i = from; i < to;) {
		uint64_t j = find(src, i, to, 1); /* [i, j) clear in src */
		if (j > i && find(dst, i + d, j + d, 1) < j + d)
			return 0;
		if (j >= to)
			break;
		uint64_t k = find(src, j, to, 0); /* [j, k) set */
		if (find(dst, j + d, k + d, 0) < k + d)
			return 0;
		i = k;
	}
	return 1;
}

void pfs_bits_copy(struct pfs_bits *dst, uint64_t at, const struct pfs_bits *src, uint64_t from, uint64_t to)
{
	if (from >= to || (at + (to - from) <= dst->pages && same_bits(dst, at, src, from, to)))
		return; /* nothing changes: nothing written (w_set_count) */
	pfs_bits_clear(dst, at, at + (to - from));
	for (uint64_t i = find(src, from, to, 1); i < to;) {
		uint64_t j = find(src, i, to, 0);
		pfs_bits_set_count(dst, at + (i - from), at + (j - from));
		i = j < to ? find(src, j, to, 1) : to;
	}
}
