/*
 * `pfshim diff`: two runs side by side.  Each run is read as the report
 * reads it (pfs_report_load); processes are paired by a key made of their
 * commands and positions in the process tree, sites by a key made of their
 * symbolized frames.  See diff.h and docs/analyzer.md ("diff").  The result
 * is written by diff_write.c.
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
#include "diff_model.h"
#include "report.h"

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

		rc = pfs_report_site_key(rs, p, &key);
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
				     stderr, &progress, NULL);
		if (!rc && !d.side[s].run.nprocs) {
			fprintf(stderr, "pfshim: diff: no logs read from '%s'\n", path);
			status = PFS_EXIT_BAD_LOGS;
		}
	}
	if (!rc)
		rc = build(&d);
	if (!rc)
		rc = o->json ? pfs_diff_write_json(&d, out, o) : pfs_diff_write_text(&d, out, o);
	if (rc) {
		fprintf(stderr, "pfshim: diff: %s\n", strerror(-rc));
		status = PFS_EXIT_BAD_LOGS;
	} else if (d.side[0].run.errors || d.side[1].run.errors) {
		status = PFS_EXIT_BAD_LOGS;
	}
	diff_free(&d);
	return status;
}
