/*
 * `pfshim diff`'s own model, shared by its two files: diff.c pairs the runs'
 * processes and sites, diff_write.c writes the result (text, JSON).
 */
#ifndef PFSHIM_DIFF_MODEL_H
#define PFSHIM_DIFF_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <uthash.h>

#include "diff.h"
#include "report.h"

/* One run's figures for a site; `present` false: the site is not in that run. */
struct dside {
	bool present;
	uint32_t id;			/* the site's id in that run's report */
	uint64_t first_touch, cow, prefaulted, allocations, bytes;
	const char *policy;		/* the rule applied to it in that run, NULL none */
	bool touched;			/* a TOUCH record of it exists */
	uint64_t touch_first_ns, touch_last_ns;	/* scan times, from the process start */
	uint64_t storms, storm_ns;	/* storms it tops, and their summed durations */
};

struct dsite {
	char *key;			/* kind and symbolized frames */
	const struct pfs_rsite *rs[2];	/* a representative of each run (frames for output) */
	struct dside s[2];
	UT_hash_handle hh;
};

/* A process of A, of B, or a matched pair. */
struct dproc {
	const struct pfs_rproc *rp[2];
	struct dsite *sites;		/* by key */
	struct dsite **sorted;		/* most changed first */
	size_t nsites;
};

struct dside_run {
	const char *path;
	struct pfs_run run;
	struct pfs_sym *sym;
	struct pfs_report rep;
	char **keys[2];		/* per process: with command, positional only */
};

struct diff {
	struct dside_run side[2];
	struct dproc *procs;
	size_t nprocs, procs_cap;
};

/* A string key -> index, for the matching. */
struct key_ent {
	const char *key;
	size_t idx;
	bool taken;
	UT_hash_handle hh;
};

/* Key of one (stack, kind) of one run -> its dsite, to charge touches. */
struct site_ent {
	struct pfs_site_key key;
	struct dsite *ds;
	UT_hash_handle hh;
};

static inline int64_t delta(uint64_t a, uint64_t b)
{
	return (int64_t)(b - a);
}

static inline uint64_t mag(int64_t v)
{
	return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

static inline uint64_t faults_of(const struct dside *d)
{
	return d->first_touch + d->cow;
}

/* The paired runs, written as JSON or text; 0 or -errno. */
int pfs_diff_write_json(const struct diff *d, FILE *out, const struct pfs_diff_opts *o);
int pfs_diff_write_text(const struct diff *d, FILE *out, const struct pfs_diff_opts *o);

#endif
