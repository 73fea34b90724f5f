/*
 * Fault storms: per process, the faults over time drawn from the TOUCH
 * records (fast mode's scans, exact mode's fault events), cut into buckets
 * and weighed by what each fault costs on this machine; a storm is a run of
 * buckets where the program spent a noticeable share of its time taking
 * faults.  The rule and its thresholds are in docs/analyzer.md ("Storms");
 * the numbers are the defaults below.
 */
#ifndef PFSHIM_STORMS_H
#define PFSHIM_STORMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

#include "faultcost.h"

/*
 * A bucket is stormy when its faults, at this machine's cost per fault
 * (faultcost.h), took at least this share of its time ...
 */
#define PFS_STORM_SHARE 0.10
/* ... and a storm, a run of such buckets, took at least as long as this many 4 KiB first touches (1 MiB) */
#define PFS_STORM_MIN_FAULTS 256
/* one record costing this many first touches (4 MiB) is a storm by itself: its speed is unknown */
#define PFS_STORM_ONE_SCAN_FAULTS 1024
#define PFS_STORM_DEFAULT_BUCKET_NS 10000000ull	/* 10 ms, the shim's default scan interval */
#define PFS_STORM_MAX_BUCKETS 100000
#define PFS_STORM_MAX_STORMS 256	/* per process, the biggest kept */

struct pfs_storm_params {
	struct pfs_fault_cost cost;	/* per fault, by kind */
	double share;
	uint64_t min_faults;	/* in 4 KiB first touches' time */
	uint64_t one_scan_faults;	/* the same */
	uint64_t bucket_ns;	/* 0: from the data (the scan interval, else 10 ms) */
	size_t max_buckets;
	size_t max_storms;
};

struct pfs_storm {
	uint64_t start_ns, end_ns;	/* relative to the process start */
	uint64_t faults;		/* as the kernel took them */
	double rate;			/* faults/s over [start, end] (the time in it the program did not wait) */
	double fault_ns;		/* what they cost, at the cost per fault */
	double share;			/* fault_ns / the time in [start, end] it did not wait for a CPU, at most 1 */
	struct pfs_site_key top;	/* the site whose faults cost the most in it */
	uint64_t top_faults;
	bool one_scan;			/* one record brought half its cost or more (the one-record rule made it) */
	/* filled by the report: the top site's report-wide id (0: none) and index */
	uint32_t top_id;
	size_t top_index;		/* into pfs_rproc.sites; SIZE_MAX: none */
};

struct pfs_series {
	uint64_t origin_ns;		/* CLOCK_MONOTONIC of bucket 0's start: the process start */
	uint64_t bucket_ns;
	uint64_t scan_interval_ns;	/* estimated from the scans; 0 unknown */
	size_t nbuckets;
	double *faults;			/* faults per bucket (spread over each record's interval) */
	double *cost;			/* their cost per bucket, ns */
	struct pfs_fault_cost unit;	/* the cost per fault used */
	double share;			/* the rule's share */
	double unwaited_share;		/* of its life, the share it did not wait for a CPU (pfs_proc.unwaited_share) */
	double median_rate;		/* of every bucket, faults/s (for information) */
	double threshold;		/* the share in 4 KiB first touches per second (of the time it did not wait) */
	uint64_t handler_ns_removed;	/* exact mode: the handlers' time taken out of the timeline */
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
