/*
 * Fault storms: per process, the fault rate over time drawn from fast mode's
 * TOUCH records (first-touch and copy-on-write pages), cut into buckets, and
 * the windows where it stays high.  The rule and its thresholds are in
 * docs/analyzer.md ("Storms"); the numbers are the defaults below.
 */
#ifndef PFSHIM_STORMS_H
#define PFSHIM_STORMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

#define PFS_STORM_FLOOR_RATE 1000.0	/* pages/s: below this nothing is a storm */
#define PFS_STORM_MEDIAN_FACTOR 4.0	/* ... nor below this many times the run's median */
#define PFS_STORM_MIN_FAULTS 256	/* a storm has at least this many pages (1 MiB of 4 KiB) */
#define PFS_STORM_ONE_SCAN_PAGES 1024	/* one record this big is a storm by itself */
#define PFS_STORM_DEFAULT_BUCKET_NS 10000000ull	/* 10 ms, the shim's default scan interval */
#define PFS_STORM_MAX_BUCKETS 100000
#define PFS_STORM_MAX_STORMS 256	/* per process, the biggest kept */

struct pfs_storm_params {
	double floor_rate;
	double median_factor;
	uint64_t min_faults;
	uint64_t one_scan_pages;
	uint64_t bucket_ns;	/* 0: from the data (the scan interval, else 10 ms) */
	size_t max_buckets;
	size_t max_storms;
};

struct pfs_storm {
	uint64_t start_ns, end_ns;	/* relative to the process start */
	uint64_t faults;
	double rate;			/* faults/s over [start, end] */
	struct pfs_site_key top;	/* the site with the most faults in it */
	uint64_t top_faults;
	bool one_scan;			/* made (or joined) by the one-record rule */
	/* filled by the report: the top site's report-wide id (0: none) and index */
	uint32_t top_id;
	size_t top_index;		/* into pfs_rproc.sites; SIZE_MAX: none */
};

struct pfs_series {
	uint64_t origin_ns;		/* CLOCK_MONOTONIC of bucket 0's start: the process start */
	uint64_t bucket_ns;
	uint64_t scan_interval_ns;	/* estimated from the scans; 0 unknown */
	size_t nbuckets;
	double *faults;			/* pages per bucket (spread over each record's interval) */
	double median_rate;		/* of every bucket, faults/s */
	double threshold;		/* faults/s */
	uint64_t total_faults;
	struct pfs_storm *storms;	/* most faults first */
	size_t nstorms;
};

void pfs_storms_defaults(struct pfs_storm_params *prm);
/* The series and storms of `p` (after pfs_model_finish).  0 or -ENOMEM. */
int pfs_storms_compute(const struct pfs_proc *p, const struct pfs_storm_params *prm,
		       struct pfs_series *out);
void pfs_storms_free(struct pfs_series *s);
/*
 * Each of p->touches[i] as the interval [lo[i], hi[i]] it happened in, in ns
 * from s->origin_ns (s computed for p): the bounds the storms are drawn from.
 * 0 or -ENOMEM.
 */
int pfs_storms_touch_bounds(const struct pfs_proc *p, const struct pfs_series *s,
			    uint64_t *lo, uint64_t *hi);

#endif
