/*
 * Per-site evidence: what the touches of a site's allocations say about
 * them (how much of what was asked for was touched, how soon, how fast,
 * how long the memory lived, how much was copied after fork).  Computed
 * once per process from the model (ALLOC/FREE events, TOUCH events and
 * their time bounds from storms.c); printed by the reports and read by
 * the advisor (advise.c).  docs/advisor.md explains each figure.
 *
 * Times: fast mode knows a touch only as "between two scans", so every
 * time is a pair of bounds [lo, hi]; exact mode's events gather the faults
 * of one allocation within 100 us, so there the bounds are that close.
 */
#ifndef PFSHIM_EVIDENCE_H
#define PFSHIM_EVIDENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"
#include "storms.h"

#define PFS_EVIDENCE_COARSE_NS 20000000ull	/* two default scan intervals */

struct pfs_evidence {
	/* sizes: the site's own ALLOC records ("tracked" allocations) */
	uint64_t tracked_allocs;	/* not inherited from a fork parent */
	uint64_t requested_bytes;	/* their requested sizes */
	uint64_t requested_pages;	/* whole pages they span, page-rounded up */
	uint64_t min_size;		/* the smallest requested size; 0 none */
	uint64_t max_size;		/* the largest */
	uint64_t populated_allocs;	/* of them, mapped with MAP_POPULATE (left out below) */
	uint64_t reserved_allocs;	/* of them, mapped without access (PROT_NONE) and opened later by
					   mprotect: nothing a policy could populate at mmap */
	uint64_t shared_allocs;		/* of them, malloc chunks on the shared heap: their pages are
					   the site's heap pages, not theirs alone (left out below) */
	uint64_t touched_pages;		/* the site's first-touch pages (base pages), tracked or not */
	uint64_t touched_bytes;		/* touched_pages x page size */
	uint64_t touch_faults;		/* the faults that brought them: a huge page is one */
	uint64_t tracked_touched_pages;	/* first-touch pages of tracked allocations */
	uint64_t tracked_touch_faults;	/* ... and the faults that brought them */
	double density;			/* (tracked_touched_pages + prefaulted_pages) / requested_pages,
					   populated mappings left out; -1 unknown */
	double resident_share;		/* touched_pages / the process's first-touch pages */
	uint64_t waste_if_populated;	/* bytes populate would make resident and nobody touched */

	/* times over the tracked allocations that were touched: medians and maxima */
	uint64_t timed_allocs;		/* allocations with a first touch and a time */
	uint64_t first_touch_lo_ns;	/* allocation -> first touch, lower bound (median) */
	uint64_t first_touch_hi_ns;	/* ... upper bound (median) */
	uint64_t spread_lo_ns;		/* first -> last first touch of one allocation */
	uint64_t spread_hi_ns;
	uint64_t spread_max_ns;		/* the largest upper bound */
	uint64_t lifetime_ns;		/* ALLOC to FREE, or to the process end (median) */
	uint64_t lifetime_max_ns;
	uint64_t freed_allocs;		/* lifetimes that ended at a FREE */
	uint64_t proc_life_ns;		/* the process's, start to its last known time */
	bool exact;			/* exact mode: the times are the faults' own, within 100 us */
	bool coarse;			/* fast mode found each allocation's pages in one scan,
					   over PFS_EVIDENCE_COARSE_NS after it: how fast they
					   came is unknown */

	/* rates */
	double storm_rate;		/* faults/s in the fastest storm it tops (not one found by a
					   single scan: its rate is a lower bound); 0 none */
	uint64_t storm_faults;		/* its pages in that storm */
	double touch_rate;		/* touched pages / spread, per allocation (median, lower bound) */
	double burst_rate;		/* the storm rule's threshold in first touches/s (storms.h); 0 unknown */

	/* copy-on-write */
	uint64_t cow_pages;		/* base pages copied */
	uint64_t cow_faults;		/* the faults that copied them */
	uint64_t forks;			/* forks this process took part in (children, and its own) */
	double cow_per_fork;		/* cow_pages / forks; 0 when no fork */

	uint64_t prefaulted_pages;	/* populated by a policy */
	uint32_t page_size;
};

/*
 * The evidence of every site of `p` in the order of `sites[]` (keys of
 * the model's sites), with `series` the process's storms (tops matched
 * through `top_index`, as the report fills it).  *out is an array of n,
 * for free(); 0 or -ENOMEM.
 */
int pfs_evidence_compute(const struct pfs_proc *p, const struct pfs_series *series,
			 const struct pfs_site *const *sites, size_t n,
			 struct pfs_evidence **out);

/* density and waste_if_populated from the page counts (also after merging sites). */
void pfs_evidence_density(struct pfs_evidence *e);

struct pfs_json;
/* The evidence as one JSON object (the report's and the advisor's "evidence"). */
void pfs_evidence_json(struct pfs_json *w, const struct pfs_evidence *e);
/* One line for people: "allocated 64.0 MiB, touched 64.0 MiB (100%, ...); first touch ...". */
void pfs_evidence_summary(char *buf, size_t len, const struct pfs_evidence *e);

/* "1.2 ms", "0-67 ms" (bounds), "3.4 s": a time or pair of bounds for people. */
void pfs_evidence_fmt_time(char *buf, size_t len, uint64_t lo, uint64_t hi);

#endif
