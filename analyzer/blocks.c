/*
 * Large-block replay; see blocks.h.  A block is live from its ALLOC to the
 * FREE of its address; munmap may cut a mapping in pieces and mremap move
 * it.  Live bytes are the requested bytes still mapped: [addr, req_end)
 * clipped to what is left of the mapping.
 */
#include "blocks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * Keys are addresses (8 bytes): a multiply-shift mix instead of uthash's
 * byte-wise Jenkins hash, which was a tenth of a report of 10 M allocation
 * events.
 */
#undef HASH_FUNCTION /* model.h brought uthash's own */
#define HASH_FUNCTION(keyptr, keylen, hashv)                                                   \
	do {                                                                                   \
		uint64_t k_;                                                                   \
		memcpy(&k_, (keyptr), sizeof(k_));                                             \
		k_ ^= k_ >> 33;                                                                \
		k_ *= 0xff51afd7ed558ccdULL;                                                   \
		k_ ^= k_ >> 33;                                                                \
		(hashv) = (unsigned)k_;                                                        \
	} while (0)
#include <uthash.h>

/* A live large block during the replay; [addr, addr+length) is what is mapped. */
struct live_block {
	uint64_t addr;
	uint64_t length;
	uint64_t req_end;	/* addr + requested size at allocation */
	bool mapping;		/* munmap can cut it */
	struct pfs_site *site;
	UT_hash_handle hh;
};

struct replay {
	struct pfs_proc *p;
	struct live_block *live;
	struct live_block *spare; /* dropped ones, kept for the next (by ->site): a malloc and a free per block were a tenth of the replay */
};

static void live_drop(struct replay *r, struct live_block *b)
{
	HASH_DEL(r->live, b);
	b->site = (struct pfs_site *)(void *)r->spare;
	r->spare = b;
}

static int live_add(struct replay *r, uint64_t addr, uint64_t length, uint64_t req_end,
		    bool mapping, struct pfs_site *site)
{
	struct live_block *b;

	HASH_FIND(hh, r->live, &addr, sizeof(addr), b);
	if (b)	/* its free went unrecorded (an untraced path): it is gone */
		live_drop(r, b);
	b = r->spare;
	if (b) {
		r->spare = (struct live_block *)(void *)b->site;
		memset(b, 0, sizeof(*b));
	} else if (!(b = calloc(1, sizeof(*b)))) {
		return -ENOMEM;
	}
	b->addr = addr;
	b->length = length;
	b->req_end = req_end;
	b->mapping = mapping;
	b->site = site;
	HASH_ADD(hh, r->live, addr, sizeof(b->addr), b);
	return 0;
}

static uint64_t range_end(uint64_t a, uint64_t len)
{
	return len > UINT64_MAX - a ? UINT64_MAX : a + len;
}

/* munmap(a, len): drop the mappings inside, cut the ones it overlaps. */
static int unmap_range(struct replay *r, uint64_t a, uint64_t len)
{
	uint64_t end = range_end(a, len), cur = a;
	struct live_block *b, *tmp, *moved = NULL;
	size_t nmoved = 0, cap = 0;
	int rc = 0;

	/* the usual case: whole mappings unmapped from their start, found by address */
	for (;;) {
		HASH_FIND(hh, r->live, &cur, sizeof(cur), b);
		if (!b || !b->mapping || range_end(b->addr, b->length) > end)
			break;
		cur = range_end(b->addr, b->length);
		live_drop(r, b);
		if (cur >= end)
			return 0;
	}
	/*
	 * Partial unmaps: cut every mapping that overlaps [a, end).  Pieces that
	 * start at a new address are re-added after the walk, since adding during
	 * HASH_ITER may reorder the table under it.
	 */
	HASH_ITER(hh, r->live, b, tmp) {
		uint64_t bend = range_end(b->addr, b->length);

		if (!b->mapping || bend <= a || b->addr >= end)
			continue;
		if (b->addr < a)	/* a head survives in place */
			b->length = a - b->addr;
		if (bend > end) {	/* a tail survives at `end` */
			if (pfs_an_reserve((void **)&moved, &cap, nmoved + 1, sizeof(*moved))) {
				rc = -ENOMEM;
				goto out;
			}
			moved[nmoved] = *b;
			moved[nmoved].addr = end;
			moved[nmoved].length = bend - end;
			nmoved++;
		}
		if (b->addr >= a)
			live_drop(r, b);
	}
	for (size_t i = 0; i < nmoved && !rc; i++)
		rc = live_add(r, moved[i].addr, moved[i].length, moved[i].req_end, true,
			      moved[i].site);
out:
	free(moved);
	return rc;
}

static int replay_ev(struct replay *r, const struct pfs_block_ev *ev)
{
	struct live_block *b;
	uint64_t length;
	bool mapping;

	switch (ev->type) {
	case PFS_REC_ALLOC: {
		struct pfs_site *s = pfs_model_site(r->p, ev->stack, ev->kind);

		mapping = ev->kind == PFS_KIND_MMAP || ev->kind == PFS_KIND_MMAP_FILE;
		length = ev->length ? ev->length : ev->size;
		if (!s || length == 0 || ev->category) /* a stack or .data is no block of the program's */
			return 0;
		return live_add(r, ev->addr, length, range_end(ev->addr, ev->size), mapping, s);
	}
	case PFS_REC_FREE:
		if (ev->length)
			return unmap_range(r, ev->addr, ev->length);
		HASH_FIND(hh, r->live, &ev->addr, sizeof(ev->addr), b);
		if (b)
			live_drop(r, b);
		return 0;
	case PFS_REC_REMAP: {
		struct pfs_site *site;
		uint64_t bend;
		int rc;

		HASH_FIND(hh, r->live, &ev->addr, sizeof(ev->addr), b);
		if (!b)	/* a mapping made before the shim, or by an untraced path */
			return 0;
		site = b->site;
		bend = range_end(b->addr, b->length);
		if (ev->length && range_end(ev->addr, ev->length) < bend) {
			/* only the head moved: the rest stays where it was */
			uint64_t tail = range_end(ev->addr, ev->length);

			rc = live_add(r, tail, bend - tail, b->req_end, b->mapping, site);
			if (rc)
				return rc;
		}
		HASH_FIND(hh, r->live, &ev->addr, sizeof(ev->addr), b);
		if (b)
			live_drop(r, b);
		/* MREMAP_FIXED replaces whatever was at the target */
		rc = unmap_range(r, ev->new_addr, ev->new_length);
		if (rc || ev->new_length == 0)
			return rc;
		return live_add(r, ev->new_addr, ev->new_length,
				range_end(ev->new_addr, ev->new_length), true, site);
	}
	}
	return 0;
}

static int cmp_ev(const void *a, const void *b)
{
	const struct pfs_block_ev *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

int pfs_blocks_replay(struct pfs_proc *p)
{
	struct replay r = {.p = p};
	struct live_block *b, *tmp;
	int rc = 0;

	/* one thread's records are in seq order already: sort only what is not (qsort's base must not be NULL) */
	for (size_t i = 1; i < p->nevs; i++)
		if (cmp_ev(&p->evs[i - 1], &p->evs[i]) > 0) {
			qsort(p->evs, p->nevs, sizeof(*p->evs), cmp_ev);
			break;
		}
	for (size_t i = 0; i < p->nevs && !rc; i++)
		rc = replay_ev(&r, &p->evs[i]);
	HASH_ITER(hh, r.live, b, tmp) {
		if (!rc) {
			uint64_t end = range_end(b->addr, b->length);

			if (b->req_end < end)
				end = b->req_end;
			b->site->live_blocks++;
			b->site->bytes_live_at_end += end > b->addr ? end - b->addr : 0;
		}
		live_drop(&r, b);
	}
	while ((b = r.spare)) {
		r.spare = (struct live_block *)(void *)b->site;
		free(b);
	}
	return rc;
}

