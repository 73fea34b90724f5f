/*
 * `pfshim diff`: two runs side by side.  Each run is read as the report
 * reads it (pfs_report_load); processes are paired by a key made of their
 * commands and positions in the process tree, sites by a key made of their
 * symbolized frames.  See diff.h and docs/analyzer.md ("diff").
 */
#include "diff.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uthash.h>

#include "cli.h"
#include "json.h"
#include "report.h"

#define C_RESET "\033[0m"
#define C_BOLD "\033[1m"
#define C_RED "\033[31m"
#define C_GREEN "\033[32m"

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

static int64_t delta(uint64_t a, uint64_t b)
{
	return (int64_t)(b - a);
}

static uint64_t mag(int64_t v)
{
	return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

static uint64_t faults_of(const struct dside *d)
{
	return d->first_touch + d->cow;
}

/* ---- process keys --------------------------------------------------------- */

static const char *command0(const struct pfs_proc *p)
{
	return pfs_an_basename(p->argc ? p->argv[0] : p->command ? p->command : "?");
}

/* The command with argv[0] reduced to its base name: two builds may live in two places. */
static void command_name(FILE *f, const struct pfs_proc *p)
{
	fputs(command0(p), f);
	for (uint32_t i = 1; i < p->argc; i++)
		fprintf(f, " %s", p->argv[i]);
}

static bool same_command(const struct pfs_proc *a, const struct pfs_proc *b)
{
	if (a->argc != b->argc || strcmp(command0(a), command0(b)))
		return false;
	for (uint32_t i = 1; i < a->argc; i++)
		if (strcmp(a->argv[i], b->argv[i]))
			return false;
	return true;
}

/*
 * "cmd#k/cmd#k/...": per level from the root, the command and how many
 * earlier siblings (in start order) had the same one.  Without commands,
 * the plain sibling index: the fallback for a renamed build.
 */
static void proc_key(FILE *f, const struct pfs_report *rep, const struct pfs_proc *p,
		     bool with_cmd, unsigned depth)
{
	const struct pfs_proc *parent = p->parent;
	unsigned k = 0;

	if (parent && depth < 64) {
		proc_key(f, rep, parent, with_cmd, depth + 1);
		fputs(p->via_exec ? "/exec:" : "/", f);
		for (size_t i = 0; i < parent->nkids && parent->kids[i] != p; i++)
			k += !with_cmd || same_command(parent->kids[i], p);
	} else {
		for (size_t i = 0; i < rep->nprocs && rep->procs[i].proc != p; i++)
			if (!rep->procs[i].proc->parent)
				k += !with_cmd || same_command(rep->procs[i].proc, p);
	}
	if (with_cmd)
		command_name(f, p);
	fprintf(f, "#%u", k);
}

static int make_keys(struct dside_run *s)
{
	for (int w = 0; w < 2; w++) {
		s->keys[w] = calloc(s->rep.nprocs + 1, sizeof(char *));
		if (!s->keys[w])
			return -ENOMEM;
		for (size_t i = 0; i < s->rep.nprocs; i++) {
			size_t len;
			FILE *f = open_memstream(&s->keys[w][i], &len);

			if (!f)
				return -ENOMEM;
			proc_key(f, &s->rep, s->rep.procs[i].proc, w == 0, 0);
			if (fclose(f) || !s->keys[w][i])
				return -ENOMEM;
		}
	}
	return 0;
}

/* ---- site keys and figures ------------------------------------------------ */

static int site_key(const struct pfs_rsite *rs, const struct pfs_proc *p, char **out)
{
	size_t len;
	FILE *f = open_memstream(out, &len);

	if (!f)
		return -ENOMEM;
	fputs(pfs_kind_name(rs->site->key.kind), f);
	if (rs->stack_missing)	/* nothing to match it by */
		fprintf(f, "|missing:%s:%" PRIu32, p->log_path, rs->site->key.stack);
	for (size_t i = 0; i < rs->nframes; i++) {
		const struct pfs_rframe *fr = &rs->frames[i];

		/* the file's base name: a build elsewhere names its sources by other paths */
		if (fr->function)
			fprintf(f, "|%s@%s:%u", fr->function, fr->file ? fr->file : "", fr->line);
		else if (fr->module)
			fprintf(f, "|%s+0x%" PRIx64, fr->module, fr->offset);
		else
			fprintf(f, "|0x%" PRIx64, fr->address);
	}
	if (fclose(f) || !*out)
		return -ENOMEM;
	return 0;
}

static void site_ents_free(struct site_ent **map)
{
	struct site_ent *e, *tmp;

	HASH_ITER(hh, *map, e, tmp) {
		HASH_DEL(*map, e);
		free(e);
	}
}

/* The sites of run `w`'s process rp into dp, their touch phases and storms. */
static int add_sites(struct dproc *dp, int w, const struct pfs_rproc *rp)
{
	const struct pfs_proc *p = rp->proc;
	struct site_ent *map = NULL, *e;
	struct dsite **of = NULL;
	int rc = 0;

	if (rp->nsites && !(of = calloc(rp->nsites, sizeof(*of))))
		return -ENOMEM;
	for (size_t i = 0; i < rp->nsites && !rc; i++) {
		const struct pfs_rsite *rs = &rp->sites[i];
		const struct pfs_site *s = rs->site;
		struct dsite *ds;
		char *key = NULL;

		rc = site_key(rs, p, &key);
		if (rc)
			break;
		HASH_FIND_STR(dp->sites, key, ds);
		if (ds) {
			free(key);
		} else {
			ds = calloc(1, sizeof(*ds));
			if (!ds) {
				free(key);
				rc = -ENOMEM;
				break;
			}
			ds->key = key;
			HASH_ADD_KEYPTR(hh, dp->sites, ds->key, strlen(ds->key), ds);
			dp->nsites++;
		}
		/* two sites of one run with equal frames (a rebuilt stack, a cut one): one row */
		if (!ds->rs[w]) {
			ds->rs[w] = rs;
			ds->s[w].id = rs->id;
		}
		ds->s[w].present = true;
		ds->s[w].first_touch += s->first_touch_faults;
		ds->s[w].cow += s->cow_faults;
		ds->s[w].prefaulted += s->prefaulted_pages;
		if (s->policy && !ds->s[w].policy)
			ds->s[w].policy = s->policy;
		ds->s[w].allocations += s->allocations;
		ds->s[w].bytes += s->bytes_allocated;
		of[i] = ds;
		e = calloc(1, sizeof(*e));
		if (!e) {
			rc = -ENOMEM;
			break;
		}
		e->key = s->key;
		e->ds = ds;
		HASH_ADD(hh, map, key, sizeof(e->key), e);
	}
	/* the touch phase: from the scan that found its first pages to the one that found its last */
	for (size_t i = 0; i < p->ntouches && !rc; i++) {
		const struct pfs_touch_ev *t = &p->touches[i];
		struct pfs_site_key k = {.stack = t->stack, .kind = t->kind};
		uint64_t rel = t->time_ns > p->start_ns ? t->time_ns - p->start_ns : 0;
		struct dside *d;

		HASH_FIND(hh, map, &k, sizeof(k), e);
		if (!e)
			continue;
		d = &e->ds->s[w];
		if (!d->touched || rel < d->touch_first_ns)
			d->touch_first_ns = rel;
		if (!d->touched || rel > d->touch_last_ns)
			d->touch_last_ns = rel;
		d->touched = true;
	}
	for (size_t i = 0; i < rp->series.nstorms && !rc; i++) {
		const struct pfs_storm *st = &rp->series.storms[i];

		if (st->top_index < rp->nsites && of[st->top_index]) {
			of[st->top_index]->s[w].storms++;
			of[st->top_index]->s[w].storm_ns += st->end_ns - st->start_ns;
		}
	}
	site_ents_free(&map);
	free(of);
	return rc;
}

static int cmp_sites(const void *x, const void *y)
{
	const struct dsite *a = *(struct dsite *const *)x, *b = *(struct dsite *const *)y;
	uint64_t ka[4] = {
		mag(delta(faults_of(&a->s[0]), faults_of(&a->s[1]))),
		mag(delta(a->s[0].prefaulted, a->s[1].prefaulted)),
		mag(delta(a->s[0].bytes, a->s[1].bytes)),
		mag(delta(a->s[0].allocations, a->s[1].allocations)),
	};
	uint64_t kb[4] = {
		mag(delta(faults_of(&b->s[0]), faults_of(&b->s[1]))),
		mag(delta(b->s[0].prefaulted, b->s[1].prefaulted)),
		mag(delta(b->s[0].bytes, b->s[1].bytes)),
		mag(delta(b->s[0].allocations, b->s[1].allocations)),
	};

	for (int i = 0; i < 4; i++)
		if (ka[i] != kb[i])
			return ka[i] < kb[i] ? 1 : -1;
	/* then the most faults in either run, then the key: the same logs, the same order */
	if (faults_of(&a->s[0]) + faults_of(&a->s[1]) != faults_of(&b->s[0]) + faults_of(&b->s[1]))
		return faults_of(&a->s[0]) + faults_of(&a->s[1]) <
		       faults_of(&b->s[0]) + faults_of(&b->s[1]) ? 1 : -1;
	return strcmp(a->key, b->key);
}

static int build_proc(struct dproc *dp)
{
	struct dsite *ds, *tmp;
	size_t n = 0;
	int rc = 0;

	for (int w = 0; w < 2 && !rc; w++)
		if (dp->rp[w])
			rc = add_sites(dp, w, dp->rp[w]);
	if (rc || !dp->nsites)
		return rc;
	dp->sorted = calloc(dp->nsites, sizeof(*dp->sorted));
	if (!dp->sorted)
		return -ENOMEM;
	HASH_ITER(hh, dp->sites, ds, tmp)
		dp->sorted[n++] = ds;
	qsort(dp->sorted, n, sizeof(*dp->sorted), cmp_sites);
	return 0;
}

static int push_proc(struct diff *d, const struct pfs_rproc *a, const struct pfs_rproc *b)
{
	if (pfs_an_reserve((void **)&d->procs, &d->procs_cap, d->nprocs + 1, sizeof(*d->procs)))
		return -ENOMEM;
	d->procs[d->nprocs++] = (struct dproc){.rp = {a, b}};
	return build_proc(&d->procs[d->nprocs - 1]);
}

static void key_ents_free(struct key_ent **map)
{
	struct key_ent *e, *tmp;

	HASH_ITER(hh, *map, e, tmp) {
		HASH_DEL(*map, e);
		free(e);
	}
}

/*
 * Pair B's processes with A's: by command and tree position, then what is
 * left by tree position alone.  *pair[i]: A's index for B's process i, or
 * SIZE_MAX.
 */
static int match(struct diff *d, size_t *pair, bool *a_taken)
{
	struct dside_run *A = &d->side[0], *B = &d->side[1];
	int rc = 0;

	for (int w = 0; w < 2 && !rc; w++) {
		struct key_ent *map = NULL, *e;

		for (size_t i = 0; i < A->rep.nprocs; i++) {
			if (a_taken[i])
				continue;
			HASH_FIND_STR(map, A->keys[w][i], e);
			if (e)
				continue;	/* keys are unique per run; be safe anyway */
			e = calloc(1, sizeof(*e));
			if (!e) {
				rc = -ENOMEM;
				break;
			}
			e->key = A->keys[w][i];
			e->idx = i;
			HASH_ADD_KEYPTR(hh, map, e->key, strlen(e->key), e);
		}
		for (size_t i = 0; i < B->rep.nprocs && !rc; i++) {
			if (pair[i] != SIZE_MAX)
				continue;
			HASH_FIND_STR(map, B->keys[w][i], e);
			if (e && !e->taken) {
				e->taken = true;
				a_taken[e->idx] = true;
				pair[i] = e->idx;
			}
		}
		key_ents_free(&map);
	}
	return rc;
}

static int build(struct diff *d)
{
	struct dside_run *A = &d->side[0], *B = &d->side[1];
	size_t *pair = calloc(B->rep.nprocs + 1, sizeof(*pair));
	bool *a_taken = calloc(A->rep.nprocs + 1, sizeof(*a_taken));
	int rc = -ENOMEM;

	if (!pair || !a_taken)
		goto out;
	for (size_t i = 0; i < B->rep.nprocs; i++)
		pair[i] = SIZE_MAX;
	rc = make_keys(A);
	if (!rc)
		rc = make_keys(B);
	if (!rc)
		rc = match(d, pair, a_taken);
	/* A's order (start time), each with its partner; then B's unmatched */
	for (size_t i = 0; i < A->rep.nprocs && !rc; i++) {
		const struct pfs_rproc *b = NULL;

		for (size_t j = 0; j < B->rep.nprocs; j++)
			if (pair[j] == i)
				b = &B->rep.procs[j];
		rc = push_proc(d, &A->rep.procs[i], b);
	}
	for (size_t j = 0; j < B->rep.nprocs && !rc; j++)
		if (pair[j] == SIZE_MAX)
			rc = push_proc(d, NULL, &B->rep.procs[j]);
out:
	free(pair);
	free(a_taken);
	return rc;
}

static void diff_free(struct diff *d)
{
	for (size_t i = 0; i < d->nprocs; i++) {
		struct dsite *ds, *tmp;

		HASH_ITER(hh, d->procs[i].sites, ds, tmp) {
			HASH_DEL(d->procs[i].sites, ds);
			free(ds->key);
			free(ds);
		}
		free(d->procs[i].sorted);
	}
	free(d->procs);
	for (int w = 0; w < 2; w++) {
		struct dside_run *s = &d->side[w];

		for (int k = 0; k < 2; k++) {
			for (size_t i = 0; s->keys[k] && i < s->rep.nprocs; i++)
				free(s->keys[k][i]);
			free(s->keys[k]);
		}
		pfs_report_unload(&s->rep, &s->run, s->sym);
	}
}

/* ---- process figures ------------------------------------------------------ */

struct pside {
	bool present;
	struct pfs_totals t;
	bool have_wall;
	uint64_t wall_ns;		/* start to PROC_END */
	uint64_t storms, storm_faults, storm_ns;
};

static struct pside pside_of(const struct pfs_rproc *rp)
{
	struct pside s = {0};

	if (!rp)
		return s;
	s.present = true;
	s.t = rp->proc->totals;
	if (rp->proc->ended && rp->proc->end_ns >= rp->proc->start_ns && rp->proc->start_ns) {
		s.have_wall = true;
		s.wall_ns = rp->proc->end_ns - rp->proc->start_ns;
	}
	s.storms = rp->series.nstorms;
	for (size_t i = 0; i < rp->series.nstorms; i++) {
		s.storm_faults += rp->series.storms[i].faults;
		s.storm_ns += rp->series.storms[i].end_ns - rp->series.storms[i].start_ns;
	}
	return s;
}

/* Fewer faults is better; a site or process in one run only counts from zero. */
static const char *verdict(uint64_t a, uint64_t b)
{
	return b < a ? "better" : b > a ? "worse" : "same";
}

static void add_totals(struct pfs_totals *to, const struct pfs_totals *t)
{
	to->first_touch_faults += t->first_touch_faults;
	to->cow_faults += t->cow_faults;
	to->prefaulted_pages += t->prefaulted_pages;
	to->allocations += t->allocations;
	to->bytes_allocated += t->bytes_allocated;
}

static struct pfs_totals totals_of_dside(const struct dside *s)
{
	return (struct pfs_totals){.first_touch_faults = s->first_touch, .cow_faults = s->cow,
				   .prefaulted_pages = s->prefaulted,
				   .allocations = s->allocations, .bytes_allocated = s->bytes};
}

/* ---- json ------------------------------------------------------------------ */

static void ju(struct pfs_json *w, const char *k, uint64_t v)
{
	pfs_json_key(w, k);
	pfs_json_uint(w, v);
}

static void ji(struct pfs_json *w, const char *k, int64_t v)
{
	pfs_json_key(w, k);
	pfs_json_int(w, v);
}

static void json_counts(struct pfs_json *w, const struct pfs_totals *t)
{
	ju(w, "first_touch_faults", t->first_touch_faults);
	ju(w, "cow_faults", t->cow_faults);
	ju(w, "prefaulted_pages", t->prefaulted_pages);
	ju(w, "allocations", t->allocations);
	ju(w, "bytes_allocated", t->bytes_allocated);
}

static void json_pside(struct pfs_json *w, const char *k, const struct pside *s,
		       const struct pfs_rproc *rp)
{
	pfs_json_key(w, k);
	if (!s->present) {
		pfs_json_null(w);
		return;
	}
	pfs_json_begin_object(w);
	ju(w, "pid", rp->proc->pid);
	json_counts(w, &s->t);
	pfs_json_kv_uint_or_null(w, "wall_ns", s->have_wall, s->wall_ns);
	ju(w, "storms", s->storms);
	ju(w, "storm_faults", s->storm_faults);
	ju(w, "storm_ns", s->storm_ns);
	pfs_json_end_object(w);
}

static void json_dside(struct pfs_json *w, const char *k, const struct dside *s)
{
	struct pfs_totals t = totals_of_dside(s);

	pfs_json_key(w, k);
	if (!s->present) {
		pfs_json_null(w);
		return;
	}
	pfs_json_begin_object(w);
	ju(w, "id", s->id);
	json_counts(w, &t);
	pfs_json_kv_string(w, "policy", s->policy); /* null: none */
	if (s->touched) {
		ju(w, "touch_first_ns", s->touch_first_ns);
		ju(w, "touch_last_ns", s->touch_last_ns);
		ju(w, "touch_phase_ns", s->touch_last_ns - s->touch_first_ns);
	}
	ju(w, "storms", s->storms);
	ju(w, "storm_ns", s->storm_ns);
	pfs_json_end_object(w);
}

static void json_frames(struct pfs_json *w, const struct pfs_rsite *rs)
{
	pfs_json_key(w, "frames");
	pfs_json_begin_array(w);
	for (size_t i = 0; rs && i < rs->nframes; i++)
		pfs_report_json_frame(w, &rs->frames[i]);
	pfs_json_end_array(w);
}

static void json_change(struct pfs_json *w, uint64_t fa, uint64_t fb, const struct pfs_totals *a,
			const struct pfs_totals *b)
{
	pfs_json_key(w, "change");
	pfs_json_begin_object(w);
	ji(w, "faults", delta(fa, fb));
	ji(w, "first_touch_faults", delta(a->first_touch_faults, b->first_touch_faults));
	ji(w, "cow_faults", delta(a->cow_faults, b->cow_faults));
	ji(w, "prefaulted_pages", delta(a->prefaulted_pages, b->prefaulted_pages));
	ji(w, "allocations", delta(a->allocations, b->allocations));
	ji(w, "bytes_allocated", delta(a->bytes_allocated, b->bytes_allocated));
	pfs_json_end_object(w);
	pfs_json_key(w, "verdict");
	pfs_json_string(w, verdict(fa, fb));
}

static const char *only_in(bool a, bool b)
{
	return a && b ? NULL : a ? "a" : "b";
}

static int write_json(const struct diff *d, FILE *out, const struct pfs_diff_opts *o)
{
	struct pfs_json w;
	struct pfs_totals ta = {0}, tb = {0};

	pfs_json_init(&w, out, 2);
	pfs_json_begin_object(&w);
	ju(&w, "version", 1);
	for (int s = 0; s < 2; s++) {
		pfs_json_key(&w, s ? "b" : "a");
		pfs_json_begin_object(&w);
		pfs_json_key(&w, "path");
		pfs_json_string(&w, d->side[s].path);
		pfs_json_key(&w, "mode");
		pfs_json_string(&w, d->side[s].rep.mode);
		ju(&w, "processes", d->side[s].rep.nprocs);
		pfs_json_end_object(&w);
	}
	pfs_json_key(&w, "processes");
	pfs_json_begin_array(&w);
	for (size_t i = 0; i < d->nprocs; i++) {
		const struct dproc *dp = &d->procs[i];
		struct pside a = pside_of(dp->rp[0]), b = pside_of(dp->rp[1]);
		const struct pfs_proc *p = (dp->rp[0] ? dp->rp[0] : dp->rp[1])->proc;
		size_t n = o->top && o->top < dp->nsites ? o->top : dp->nsites;

		pfs_json_begin_object(&w);
		pfs_json_key(&w, "command");
		pfs_json_string(&w, p->command);
		pfs_json_key(&w, "only_in");
		pfs_json_string(&w, only_in(a.present, b.present));
		json_pside(&w, "a", &a, dp->rp[0]);
		json_pside(&w, "b", &b, dp->rp[1]);
		json_change(&w, a.t.first_touch_faults + a.t.cow_faults,
			    b.t.first_touch_faults + b.t.cow_faults, &a.t, &b.t);
		pfs_json_key(&w, "wall_ns_change");
		if (a.have_wall && b.have_wall)
			pfs_json_int(&w, delta(a.wall_ns, b.wall_ns));
		else
			pfs_json_null(&w);
		pfs_json_key(&w, "sites");
		pfs_json_begin_array(&w);
		for (size_t j = 0; j < n; j++) {
			const struct dsite *ds = dp->sorted[j];
			const struct pfs_rsite *rs = ds->rs[0] ? ds->rs[0] : ds->rs[1];
			struct pfs_totals sa = totals_of_dside(&ds->s[0]), sb = totals_of_dside(&ds->s[1]);
			char name[256];

			pfs_report_site_name(rs, name, sizeof(name));
			pfs_json_begin_object(&w);
			pfs_json_key(&w, "function");
			pfs_json_string(&w, name);
			pfs_json_key(&w, "kind");
			pfs_json_string(&w, pfs_kind_name(rs->site->key.kind));
			pfs_json_key(&w, "only_in");
			pfs_json_string(&w, only_in(ds->s[0].present, ds->s[1].present));
			json_dside(&w, "a", &ds->s[0]);
			json_dside(&w, "b", &ds->s[1]);
			json_change(&w, faults_of(&ds->s[0]), faults_of(&ds->s[1]), &sa, &sb);
			pfs_json_key(&w, "touch_phase_ns_change");
			if (ds->s[0].touched && ds->s[1].touched)
				pfs_json_int(&w, (int64_t)(ds->s[1].touch_last_ns - ds->s[1].touch_first_ns) -
					     (int64_t)(ds->s[0].touch_last_ns - ds->s[0].touch_first_ns));
			else
				pfs_json_null(&w);
			json_frames(&w, rs);
			pfs_json_end_object(&w);
		}
		pfs_json_end_array(&w);
		pfs_json_end_object(&w);
		add_totals(&ta, &a.t);	/* zero for a process the run lacks */
		add_totals(&tb, &b.t);
	}
	pfs_json_end_array(&w);
	pfs_json_key(&w, "totals");
	pfs_json_begin_object(&w);
	json_change(&w, ta.first_touch_faults + ta.cow_faults, tb.first_touch_faults + tb.cow_faults,
		    &ta, &tb);
	pfs_json_end_object(&w);
	pfs_json_key(&w, "warnings");
	pfs_json_begin_array(&w);
	for (int s = 0; s < 2; s++)
		for (size_t i = 0; i < d->side[s].run.warnings.n; i++)
			pfs_json_string(&w, d->side[s].run.warnings.msgs[i]);
	pfs_json_end_array(&w);
	pfs_json_end_object(&w);
	return pfs_json_finish(&w);
}

/* ---- text ------------------------------------------------------------------ */

struct tout {
	FILE *f;
	bool color;
};

/* Log strings go to a terminal: no control bytes. */
static void put_safe(struct tout *t, const char *s)
{
	for (; s && *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, t->f);
}

static void put_verdict(struct tout *t, uint64_t a, uint64_t b)
{
	const char *v = verdict(a, b);

	if (t->color && b != a)
		fputs(b < a ? C_GREEN : C_RED, t->f);
	fputs(v, t->f);
	if (t->color && b != a)
		fputs(C_RESET, t->f);
}

/* "A -> B (+N, +P%)" for a count. */
static void count_change(struct tout *t, const char *label, uint64_t a, uint64_t b, bool pa,
			 bool pb)
{
	int64_t dv = delta(a, b);

	fprintf(t->f, "#   %-22s ", label);
	if (pa)
		fprintf(t->f, "%12" PRIu64, a);
	else
		fprintf(t->f, "%12s", "-");
	fputs(" -> ", t->f);
	if (pb)
		fprintf(t->f, "%-12" PRIu64, b);
	else
		fprintf(t->f, "%-12s", "-");
	if (dv) {
		fprintf(t->f, " %+" PRId64, dv);
		if (a)
			fprintf(t->f, " (%+.0f%%)", 100.0 * (double)dv / (double)a);
	}
	fputc('\n', t->f);
}

static void ms(char *buf, size_t len, bool have, uint64_t ns)
{
	if (have)
		snprintf(buf, len, "%.1f ms", (double)ns / 1e6);
	else
		snprintf(buf, len, "-");
}

/* "at 7.1-32.0 ms (24.9 ms)": the scans that found its first and last pages, from the start */
static void phase(char *buf, size_t len, const struct dside *d)
{
	if (!d->touched)
		snprintf(buf, len, "-");
	else if (d->touch_first_ns == d->touch_last_ns)
		snprintf(buf, len, "at %.1f ms (one scan)", (double)d->touch_first_ns / 1e6);
	else
		snprintf(buf, len, "at %.1f-%.1f ms (%.1f ms)", (double)d->touch_first_ns / 1e6,
			 (double)d->touch_last_ns / 1e6,
			 (double)(d->touch_last_ns - d->touch_first_ns) / 1e6);
}

static void text_site(struct tout *t, const struct dsite *ds, size_t rank)
{
	const struct dside *a = &ds->s[0], *b = &ds->s[1];
	const struct pfs_rsite *rs = ds->rs[0] ? ds->rs[0] : ds->rs[1];
	int64_t dv = delta(faults_of(a), faults_of(b));
	char name[256], pa[32], pb[32];

	pfs_report_site_name(rs, name, sizeof(name));
	fprintf(t->f, "%4zu  %10" PRIu64 "  %10" PRIu64 "  %+10" PRId64 "  ", rank, faults_of(a),
		faults_of(b), dv);
	if (!a->present || !b->present)
		fputs(a->present ? "gone  " : "new   ", t->f);
	put_verdict(t, faults_of(a), faults_of(b));
	fputs("  ", t->f);
	if (t->color)
		fputs(C_BOLD, t->f);
	put_safe(t, name);
	if (t->color)
		fputs(C_RESET, t->f);
	if (rs->nframes && rs->frames[0].file) {
		fputs(" (", t->f);
		put_safe(t, rs->frames[0].file);
		fprintf(t->f, ":%u)", rs->frames[0].line);
	}
	fprintf(t->f, " [%s]\n", pfs_kind_name(rs->site->key.kind));
	fprintf(t->f, "        first-touch %" PRIu64 " -> %" PRIu64 ", copy-on-write %" PRIu64
		" -> %" PRIu64 ", prefaulted %" PRIu64 " -> %" PRIu64 ", allocations %" PRIu64
		" -> %" PRIu64 ", bytes %" PRIu64 " -> %" PRIu64 "\n",
		a->first_touch, b->first_touch, a->cow, b->cow, a->prefaulted, b->prefaulted,
		a->allocations, b->allocations, a->bytes, b->bytes);
	if (a->policy || b->policy) {
		fputs("        policy ", t->f);
		put_safe(t, a->policy ? a->policy : "none");
		fputs(" -> ", t->f);
		put_safe(t, b->policy ? b->policy : "none");
		fputc('\n', t->f);
	}
	if (a->touched || b->touched) {
		phase(pa, sizeof(pa), a);
		phase(pb, sizeof(pb), b);
		fprintf(t->f, "        touches found %s -> %s", pa, pb);
		if (a->storms || b->storms) {
			ms(pa, sizeof(pa), true, a->storm_ns);
			ms(pb, sizeof(pb), true, b->storm_ns);
			fprintf(t->f, ", storms %" PRIu64 " (%s) -> %" PRIu64 " (%s)", a->storms, pa,
				b->storms, pb);
		}
		fputc('\n', t->f);
	}
	/* the caller's caller too: a site is best told apart by two frames */
	for (size_t i = 1; i < rs->nframes && i < 3; i++) {
		const struct pfs_rframe *f = &rs->frames[i];

		fputs("          <- ", t->f);
		put_safe(t, f->function ? f->function : f->module ? f->module : "?");
		if (f->file) {
			fputs(" (", t->f);
			put_safe(t, f->file);
			fprintf(t->f, ":%u)", f->line);
		}
		fputc('\n', t->f);
	}
}

static void text_proc(struct tout *t, const struct dproc *dp, unsigned top)
{
	struct pside a = pside_of(dp->rp[0]), b = pside_of(dp->rp[1]);
	const struct pfs_proc *p = (dp->rp[0] ? dp->rp[0] : dp->rp[1])->proc;
	size_t n = top && top < dp->nsites ? top : dp->nsites;
	char wa[32], wb[32];

	fputs("#\n", t->f);
	if (t->color)
		fputs(C_BOLD, t->f);
	fputs("# ", t->f);
	put_safe(t, p->command);
	if (t->color)
		fputs(C_RESET, t->f);
	if (a.present && b.present)
		fprintf(t->f, " (pid %" PRIu64 " -> %" PRIu64 "): ", dp->rp[0]->proc->pid,
			dp->rp[1]->proc->pid);
	else
		fprintf(t->f, " (pid %" PRIu64 ", only in %s): ", p->pid, a.present ? "A" : "B");
	put_verdict(t, a.t.first_touch_faults + a.t.cow_faults, b.t.first_touch_faults + b.t.cow_faults);
	fputc('\n', t->f);
	count_change(t, "faults", a.t.first_touch_faults + a.t.cow_faults,
		     b.t.first_touch_faults + b.t.cow_faults, a.present, b.present);
	count_change(t, "  first-touch", a.t.first_touch_faults, b.t.first_touch_faults, a.present,
		     b.present);
	count_change(t, "  copy-on-write", a.t.cow_faults, b.t.cow_faults, a.present, b.present);
	count_change(t, "prefaulted pages", a.t.prefaulted_pages, b.t.prefaulted_pages, a.present,
		     b.present);
	count_change(t, "allocations", a.t.allocations, b.t.allocations, a.present, b.present);
	count_change(t, "bytes allocated", a.t.bytes_allocated, b.t.bytes_allocated, a.present,
		     b.present);
	ms(wa, sizeof(wa), a.have_wall, a.wall_ns);
	ms(wb, sizeof(wb), b.have_wall, b.wall_ns);
	fprintf(t->f, "#   %-22s %12s -> %-12s", "wall time", wa, wb);
	if (a.have_wall && b.have_wall && a.wall_ns)
		fprintf(t->f, " %+.1f ms (%+.0f%%)", (double)delta(a.wall_ns, b.wall_ns) / 1e6,
			100.0 * (double)delta(a.wall_ns, b.wall_ns) / (double)a.wall_ns);
	fputc('\n', t->f);
	ms(wa, sizeof(wa), a.present, a.storm_ns);
	ms(wb, sizeof(wb), b.present, b.storm_ns);
	fprintf(t->f, "#   %-22s %12" PRIu64 " -> %-12" PRIu64 " (%s -> %s, %" PRIu64 " -> %" PRIu64
		" faults)\n", "storms", a.storms, b.storms, wa, wb, a.storm_faults, b.storm_faults);
	if (!n)
		return;
	fputs("#\n# Rank    Faults A    Faults B      Change  Verdict  Site\n", t->f);
	for (size_t i = 0; i < n; i++)
		text_site(t, dp->sorted[i], i + 1);
	if (n < dp->nsites)
		fprintf(t->f, "#   (%zu more site%s; --top 0 lists all)\n", dp->nsites - n,
			dp->nsites - n == 1 ? "" : "s");
}

static int write_text(const struct diff *d, FILE *out, const struct pfs_diff_opts *o)
{
	struct tout t = {.f = out, .color = o->color};
	size_t matched = 0, only[2] = {0, 0};

	for (size_t i = 0; i < d->nprocs; i++) {
		if (d->procs[i].rp[0] && d->procs[i].rp[1])
			matched++;
		else
			only[d->procs[i].rp[0] ? 0 : 1]++;
	}
	if (t.color)
		fputs(C_BOLD, out);
	fputs("# pfshim diff", out);
	if (t.color)
		fputs(C_RESET, out);
	for (int s = 0; s < 2; s++) {
		fprintf(out, "\n# %s: ", s ? "B" : "A");
		put_safe(&t, d->side[s].path);
		fprintf(out, " (mode %s, %zu processes)", d->side[s].rep.mode, d->side[s].rep.nprocs);
	}
	fprintf(out, "\n# processes: %zu matched, %zu only in A, %zu only in B\n"
		"# sites matched by function, file and line; ranked by the change in faults\n",
		matched, only[0], only[1]);
	for (size_t i = 0; i < d->nprocs; i++)
		text_proc(&t, &d->procs[i], o->top);
	for (int s = 0; s < 2; s++) {
		const struct pfs_an_warnings *w = &d->side[s].run.warnings;

		if (!w->n)
			continue;
		fprintf(out, "#\n# Warnings of %s (%zu):\n", s ? "B" : "A", w->n);
		for (size_t i = 0; i < w->n; i++) {
			fputs("#   ", out);
			put_safe(&t, w->msgs[i]);
			fputc('\n', out);
		}
	}
	if (fflush(out) != 0 || ferror(out))
		return -EIO;
	return 0;
}

int pfs_diff_paths(const char *a, const char *b, FILE *out, const struct pfs_diff_opts *o)
{
	struct diff d = {0};
	struct pfs_an_progress progress;
	int rc = 0, status = PFS_EXIT_OK;

	pfs_an_progress_init(&progress, STDERR_FILENO);
	d.side[0].path = a;
	d.side[1].path = b;
	for (int s = 0; s < 2 && !rc; s++) {
		char *path = (char *)d.side[s].path;

		rc = pfs_report_load(&d.side[s].rep, &d.side[s].run, &d.side[s].sym, &path, 1,
				     stderr, &progress);
		if (!rc && !d.side[s].run.nprocs) {
			fprintf(stderr, "pfshim: diff: no logs read from '%s'\n", path);
			status = PFS_EXIT_BAD_LOGS;
		}
	}
	if (!rc)
		rc = build(&d);
	if (!rc)
		rc = o->json ? write_json(&d, out, o) : write_text(&d, out, o);
	if (rc) {
		fprintf(stderr, "pfshim: diff: %s\n", strerror(-rc));
		status = PFS_EXIT_BAD_LOGS;
	} else if (d.side[0].run.errors || d.side[1].run.errors) {
		status = PFS_EXIT_BAD_LOGS;
	}
	diff_free(&d);
	return status;
}
