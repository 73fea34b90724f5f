/*
 * `pfshim advise DIR` and `advise --verify`; see advise_run.h.
 *
 * --verify runs the program under the shim without a policy, takes the
 * advice from that first run, then alternates runs with and without the
 * policy (advised, without, advised, without, ...) so that a machine
 * growing busier or a cache warming up favours neither.  The runs without
 * carry the same rules made inert (inert_rules): the shim reads the same
 * symbol tables and matches every allocation as with the policy, and
 * applies nothing, so that the difference is what the actions did (site=
 * costs a process 8-18 ms at its start, which a plain run never paid: a
 * populate rule that changed nothing read as 20 % slower).  Each run is made by the
 * launcher (launch.c), timed from fork to wait (whose rusage gives the peak
 * RSS), its stdout kept in a
 * file and compared with the first run's, and its logs read like `pfshim
 * report` reads them.  Medians over the runs are printed.
 */
#include "advise_run.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "launch.h"
#include "json.h"
#include "symbolize.h"

struct pfs_adv_run {
	struct pfs_run run;
	struct pfs_sym *sym;
	struct pfs_report rep;
};

const struct pfs_report *pfs_adv_report(const struct pfs_adv_run *r)
{
	return &r->rep;
}

void pfs_adv_run_free(struct pfs_adv_run *r)
{
	if (!r)
		return;
	pfs_report_free(&r->rep);
	pfs_sym_free(r->sym);
	pfs_model_free(&r->run);
	free(r);
}

int pfs_adv_load(const char *dir, struct pfs_adv_run **out, bool *bad)
{
	struct pfs_adv_run *r = calloc(1, sizeof(*r));
	int rc;

	*out = NULL;
	if (!r)
		return -ENOMEM;
	pfs_model_init(&r->run, stderr);
	rc = pfs_model_load_path(&r->run, dir);
	if (!rc)
		rc = pfs_model_finish(&r->run);
	if (!rc)
		rc = pfs_sym_new(&r->sym, &r->run.warnings, stderr);
	if (!rc)
		rc = pfs_report_build(&r->rep, &r->run, r->sym, NULL);
	if (!rc && !r->run.nprocs)
		rc = -EINVAL;	/* the loader said why */
	*bad = r->run.errors > 0;
	if (rc) {
		if (rc != -EINVAL)
			fprintf(stderr, "pfshim: advise: %s\n", strerror(-rc));
		pfs_adv_run_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

int pfs_adv_dir(const char *dir, bool json, FILE *out)
{
	struct pfs_adv_run *r;
	struct pfs_adv_list l;
	bool bad = false;
	int rc;

	if (pfs_adv_load(dir, &r, &bad))
		return 1;
	rc = pfs_adv_build(&r->rep, pfs_adv_thp(), &l);
	if (!rc)
		rc = json ? pfs_adv_print_json(&r->rep, &l, out, dir)
			  : pfs_adv_print_text(&r->rep, &l, out, dir);
	if (rc)
		fprintf(stderr, "pfshim: advise: %s\n", strerror(-rc));
	pfs_adv_free(&l);
	pfs_adv_run_free(r);
	return rc || bad ? 1 : 0;
}

/* ---- --verify ------------------------------------------------------------ */

/* What one run measured; per-site arrays follow the advice's order. */
struct measure {
	bool ran;		/* exec happened and logs were read */
	int status;		/* exit status, 128+N when killed by signal N */
	bool same_out;		/* stdout byte-equal to the first run's */
	uint64_t wall_ns;
	uint64_t rss_bytes;	/* wait4's ru_maxrss */
	uint64_t first_touch, cow, prefaulted;
	uint64_t *site_faults, *site_pages, *site_prefaulted, *site_phase_ns;
	bool *site_phase_known;
	char *unmatched;	/* a run with the policy: its rules that matched nothing ("; "-joined) */
};

static bool same_file(const char *a, const char *b)
{
	FILE *x = fopen(a, "rb"), *y = fopen(b, "rb");
	bool same = x && y;
	int c, d;

	while (same) {
		c = fgetc(x);
		d = fgetc(y);
		if (c != d)
			same = false;
		if (c == EOF || d == EOF)
			break;
	}
	if (x)
		fclose(x);
	if (y)
		fclose(y);
	return same;
}

/*
 * Each advised site's own figures in one run's logs: the site found by its
 * identity across runs (kind and symbolized frames, as diff pairs them),
 * never by its label alone (a C++ program's sites share the label of the
 * function that holds the containers); the process totals apart.
 */
static int measure_logs(const struct pfs_report *rep, const struct pfs_adv_list *l, struct measure *m)
{
	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_rproc *rp = &rep->procs[i];
		const struct pfs_totals *t = &rp->proc->totals;

		m->first_touch += t->first_touch_faults;
		m->cow += t->cow_faults;
		m->prefaulted += t->prefaulted_pages;
		for (size_t j = 0; j < rp->nsites; j++) {
			const struct pfs_evidence *e = rp->evidence ? &rp->evidence[j] : NULL;
			char *key = NULL;

			if (pfs_report_site_key(&rp->sites[j], rp->proc, &key))
				return -ENOMEM;
			for (size_t k = 0; k < l->n; k++) {
				if (!l->items[k].key || strcmp(key, l->items[k].key))
					continue;
				m->site_faults[k] += rp->sites[j].site->first_touch_faults;
				m->site_pages[k] += rp->sites[j].site->first_touch_pages;
				m->site_prefaulted[k] += rp->sites[j].site->prefaulted_pages;
				if (e && e->timed_allocs && e->spread_hi_ns >= m->site_phase_ns[k]) {
					m->site_phase_ns[k] = e->spread_hi_ns;
					m->site_phase_known[k] = true;
				}
			}
			free(key);
		}
	}
	return 0;
}

/*
 * The rules of `policy` made inert: each with one more condition that never
 * holds (size<0), so that the shim parses and matches them, symbol tables
 * and all, and applies none.  NULL when out of memory.
 */
static char *inert_rules(const char *policy)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	bool first = true;

	if (!f)
		return NULL;
	for (const char *p = policy; p && *p;) {
		size_t n = strcspn(p, ";"), k;
		const char *r = p;
		bool conds = false;

		p += n + (p[n] == ';');
		while (n && strchr(" \t\n\r", *r))
			r++, n--;
		while (n && strchr(" \t\n\r", r[n - 1]))
			n--;
		if (!n)
			continue;
		/* "ACTIONS if CONDS": the word if, between blanks */
		for (k = 1; k + 2 < n && !conds; k++)
			conds = strchr(" \t", r[k - 1]) && r[k] == 'i' && r[k + 1] == 'f' && strchr(" \t", r[k + 2]);
		fprintf(f, "%s%.*s%s", first ? "" : "; ", (int)n, r, conds ? ",size<0" : " if size<0");
		first = false;
	}
	if (fclose(f)) {
		free(out);
		return NULL;
	}
	return out;
}

static int run_once(const struct pfs_verify_opts *o, const char *dir, const char *policy, bool with,
		    const char *first_out, const struct pfs_adv_list *l, struct measure *m)
{
	struct pfs_launch_result res;
	char *out = NULL, *err = NULL;
	int rc;

	if (asprintf(&out, "%s.out", dir) < 0 || asprintf(&err, "%s.err", dir) < 0) {
		free(out);
		return -ENOMEM;
	}
	{
		/* the plain runs must not inherit a policy from the caller's environment */
		struct pfs_launch ln = {.who = "advise", .lib = o->lib, .argv = o->cmd, .outdir = dir,
					.force = true, .policy = policy, .no_policy = !policy,
					.stdout_path = out, .stderr_path = err, .null_stdin = true};

		rc = pfs_launch_run(&ln, &res);
	}
	free(err);
	if (rc) {
		free(out);
		return rc == PFS_EXIT_CANNOT_RUN ? -ENOEXEC : -EINVAL;
	}
	free(res.outdir);
	m->wall_ns = res.wall_ns;
	m->rss_bytes = (uint64_t)res.ru.ru_maxrss * 1024;
	m->status = res.status;
	if (first_out)
		m->same_out = same_file(first_out, out);
	free(out);
	if (l) {
		struct pfs_adv_run *r;
		bool bad;

		if (pfs_adv_load(dir, &r, &bad))
			return -EINVAL;
		measure_logs(pfs_adv_report(r), l, m);
		if (with && !m->unmatched &&
		    pfs_report_unmatched_rules(pfs_adv_report(r), policy, &m->unmatched)) {
			pfs_adv_run_free(r);
			return -ENOMEM;
		}
		pfs_adv_run_free(r);
	}
	m->ran = true;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The median of field `off` (a uint64_t) over n measures, or of a per-site array at k. */
static uint64_t med(const struct measure *ms, unsigned n, size_t off, ssize_t k)
{
	uint64_t v[n];

	for (unsigned i = 0; i < n; i++) {
		const char *base = (const char *)&ms[i];

		if (k < 0)
			v[i] = *(const uint64_t *)(base + off);
		else
			v[i] = (*(uint64_t *const *)(base + off))[k];
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static int alloc_measures(struct measure *ms, unsigned n, size_t nsites)
{
	for (unsigned i = 0; i < n; i++) {
		ms[i].site_faults = calloc(nsites + 1, sizeof(uint64_t));
		ms[i].site_pages = calloc(nsites + 1, sizeof(uint64_t));
		ms[i].site_prefaulted = calloc(nsites + 1, sizeof(uint64_t));
		ms[i].site_phase_ns = calloc(nsites + 1, sizeof(uint64_t));
		ms[i].site_phase_known = calloc(nsites + 1, sizeof(bool));
		if (!ms[i].site_faults || !ms[i].site_pages || !ms[i].site_prefaulted || !ms[i].site_phase_ns ||
		    !ms[i].site_phase_known)
			return -ENOMEM;
	}
	return 0;
}

static void free_measures(struct measure *ms, unsigned n)
{
	for (unsigned i = 0; ms && i < n; i++) {
		free(ms[i].site_faults);
		free(ms[i].site_pages);
		free(ms[i].site_prefaulted);
		free(ms[i].site_phase_ns);
		free(ms[i].site_phase_known);
		free(ms[i].unmatched);
	}
	free(ms);
}

/* A site's verdict: did the rule remove most of its first-touch faults, or save time? */
struct verdict {
	bool has_rule, helped;
	char text[256];
};

/* The fastest and slowest of n runs' wall times: their spread. */
static void spread(const struct measure *ms, unsigned n, uint64_t *lo, uint64_t *hi)
{
	*lo = UINT64_MAX;
	*hi = 0;
	for (unsigned i = 0; i < n; i++) {
		if (ms[i].wall_ns < *lo)
			*lo = ms[i].wall_ns;
		if (ms[i].wall_ns > *hi)
			*hi = ms[i].wall_ns;
	}
}

/*
 * The runs with the policy and those without do not overlap: every run of
 * one faster than every run of the other.  -1 faster with the policy, +1
 * slower, 0 within the runs' spread, the noise of a shared machine (with
 * fewer than 3 runs each, always).
 */
static int outside_spread(const struct measure *base, const struct measure *pol, unsigned n)
{
	uint64_t b0, b1, p0, p1;

	if (n < 3)
		return 0;
	spread(base, n, &b0, &b1);
	spread(pol, n, &p0, &p1);
	return p1 < b0 ? -1 : p0 > b1 ? 1 : 0;
}

/*
 * Site k's verdict: its first-touch faults halved, or the wall time 5% lower
 * (median) and lower in every run; otherwise "did not help", with the numbers.
 */
static void judge(const struct pfs_adv_item *it, const struct measure *base,
		  const struct measure *pol, unsigned n, size_t k, struct verdict *v)
{
	uint64_t f0 = med(base, n, offsetof(struct measure, site_faults), (ssize_t)k);
	uint64_t f1 = med(pol, n, offsetof(struct measure, site_faults), (ssize_t)k);
	uint64_t w0 = med(base, n, offsetof(struct measure, wall_ns), -1);
	uint64_t w1 = med(pol, n, offsetof(struct measure, wall_ns), -1);

	v->has_rule = it->adv.rule[0] != '\0';
	if (!v->has_rule) {
		snprintf(v->text, sizeof(v->text), "%s",
			 it->adv.what == PFS_ADVICE_COW ? "a code change: not measured by a policy run"
						     : "no rule: nothing to measure");
		return;
	}
	if (f0 && f1 * 2 <= f0) {
		v->helped = true;
		snprintf(v->text, sizeof(v->text), "helped: first-touch faults %" PRIu64 " -> %" PRIu64
			 " (%+.0f%%)", f0, f1, 100.0 * ((double)f1 - (double)f0) / (double)f0);
	} else if (w1 * 100 <= w0 * 95 && outside_spread(base, pol, n) < 0) {
		v->helped = true;
		snprintf(v->text, sizeof(v->text), "helped: wall time %.1f -> %.1f ms in every run, "
			 "faults %" PRIu64 " -> %" PRIu64, (double)w0 / 1e6, (double)w1 / 1e6, f0, f1);
	} else {
		snprintf(v->text, sizeof(v->text), "did not help: first-touch faults %" PRIu64 " -> %"
			 PRIu64 ", wall time %.1f -> %.1f ms%s", f0, f1, (double)w0 / 1e6,
			 (double)w1 / 1e6, w1 < w0 ? " (not lower in every run)" : "");
	}
}

/* A median touch phase, or "-" when no run recorded one (no first touch at the site). */
static void phase(FILE *out, const struct measure *ms, unsigned n, size_t k, uint64_t t)
{
	bool known = false;

	for (unsigned i = 0; i < n; i++)
		known |= ms[i].site_phase_known[k];
	if (known)
		fprintf(out, " %9.1f ms", (double)t / 1e6);
	else
		fprintf(out, " %12s", "-");
}

static void pct(FILE *out, uint64_t a, uint64_t b)
{
	if (a)
		fprintf(out, "  %+7.1f%%", 100.0 * ((double)b - (double)a) / (double)a);
	else
		fputs("         -", out);
	fputc('\n', out);
}

/* "880-1408 ms", "25.1-31.0 ms": the fastest and slowest run. */
static void fmt_range(char *buf, size_t len, uint64_t lo, uint64_t hi)
{
	snprintf(buf, len, hi >= 100000000 ? "%.0f-%.0f ms" : "%.1f-%.1f ms", (double)lo / 1e6, (double)hi / 1e6);
}

static void row(FILE *out, const char *what, uint64_t a, uint64_t b)
{
	fprintf(out, "    %-22s %12" PRIu64 " %12" PRIu64, what, a, b);
	pct(out, a, b);
}

struct summary {
	unsigned runs;
	bool out_same, status_same;
	int status0;
	const char *inert;	/* the policy of the runs without: its rules made inert */
};

static int print_text(FILE *out, const struct pfs_verify_opts *o, const char *policy,
		       const struct pfs_adv_list *l, const struct measure *base,
		       const struct measure *pol, const struct summary *s)
{
	unsigned n = s->runs;

	fputs("# pfshim advise --verify:", out);
	for (char **a = o->cmd; *a; a++)
		fprintf(out, " %s", *a);
	fprintf(out, "\n# %u runs without and %u with the policy, alternating; medians\n", n, n);
	fprintf(out, "# policy: %s\n", policy);
	fprintf(out, "# without: %s (the same rules made inert: matched as with the policy, none applied)\n",
		s->inert);
	if (pol[0].unmatched && pol[0].unmatched[0])
		fprintf(out, "# matched no allocation (docs/policy.md): %s\n", pol[0].unmatched);
	fputs("#\n", out);
	fprintf(out, "    %-22s %12s %12s %9s\n", "", "without", "with", "change");
	for (size_t k = 0; k < l->n; k++) {
		const struct pfs_adv_item *it = &l->items[k];
		uint64_t f0 = med(base, n, offsetof(struct measure, site_faults), (ssize_t)k);
		uint64_t f1 = med(pol, n, offsetof(struct measure, site_faults), (ssize_t)k);
		uint64_t p0 = med(base, n, offsetof(struct measure, site_prefaulted), (ssize_t)k);
		uint64_t p1 = med(pol, n, offsetof(struct measure, site_prefaulted), (ssize_t)k);
		uint64_t t0 = med(base, n, offsetof(struct measure, site_phase_ns), (ssize_t)k);
		uint64_t t1 = med(pol, n, offsetof(struct measure, site_phase_ns), (ssize_t)k);
		char name[256];
		struct verdict v = {0};

		if (pfs_kind_is_category(it->in.kind))
			continue;	/* memory accounted by kind: no policy acts on it */
		judge(it, base, pol, n, k, &v);
		pfs_report_site_label(&it->rp->sites[it->index], name, sizeof(name));
		fprintf(out, "site #%" PRIu32 " %s (%s)%s%s\n", it->id, name,
			pfs_kind_name(it->in.kind), v.has_rule ? ": " : "",
			v.has_rule ? it->adv.rule : "");
		/* the site's own counts, found by its identity in each run */
		row(out, "first-touch faults", f0, f1);
		row(out, "first-touch pages", med(base, n, offsetof(struct measure, site_pages), (ssize_t)k),
		    med(pol, n, offsetof(struct measure, site_pages), (ssize_t)k));
		row(out, "prefaulted pages", p0, p1);
		fprintf(out, "    %-22s", "touch phase");
		phase(out, base, n, k, t0);
		phase(out, pol, n, k, t1);
		fputc('\n', out);
		fprintf(out, "    => %s\n", v.text);
	}
	fputs("all processes, in total\n", out);
	row(out, "first-touch faults", med(base, n, offsetof(struct measure, first_touch), -1),
	    med(pol, n, offsetof(struct measure, first_touch), -1));
	row(out, "copy-on-write faults", med(base, n, offsetof(struct measure, cow), -1),
	    med(pol, n, offsetof(struct measure, cow), -1));
	row(out, "prefaulted pages", med(base, n, offsetof(struct measure, prefaulted), -1),
	    med(pol, n, offsetof(struct measure, prefaulted), -1));
	{
		uint64_t w0 = med(base, n, offsetof(struct measure, wall_ns), -1);
		uint64_t w1 = med(pol, n, offsetof(struct measure, wall_ns), -1);
		uint64_t r0 = med(base, n, offsetof(struct measure, rss_bytes), -1);
		uint64_t r1 = med(pol, n, offsetof(struct measure, rss_bytes), -1);

		uint64_t b0, b1, q0, q1;
		int side = outside_spread(base, pol, n);
		char ra[32], rb[32];

		fprintf(out, "    %-22s %9.1f ms %9.1f ms", "wall time", (double)w0 / 1e6,
			(double)w1 / 1e6);
		/* a change only where the runs do not overlap: a shared machine's noise is no gain */
		if (side)
			pct(out, w0, w1);
		else
			fputs("         ~\n", out);
		spread(base, n, &b0, &b1);
		spread(pol, n, &q0, &q1);
		fmt_range(ra, sizeof(ra), b0, b1);
		fmt_range(rb, sizeof(rb), q0, q1);
		fprintf(out, "    %-22s %12s %12s  %s\n", "  fastest-slowest", ra, rb,
			side < 0 ? "faster in every run" : side > 0 ? "slower in every run"
			: n < 3 ? "(3 runs each at least to tell a change)" : "within the runs' spread");
		fprintf(out, "    %-22s %8.1f MiB %8.1f MiB", "peak RSS", (double)r0 / 1048576.0,
			(double)r1 / 1048576.0);
		pct(out, r0, r1);
	}
	fprintf(out, "output: %s in all %u runs; exit status: %s (%d)\n",
		s->out_same ? "unchanged" : "CHANGED", 2 * n,
		s->status_same ? "unchanged" : "CHANGED", s->status0);
	return fflush(out) || ferror(out) ? -EIO : 0;
}

static void json_side(struct pfs_json *w, const char *key, const struct measure *ms, unsigned n,
		      ssize_t k)
{
	pfs_json_key(w, key);
	pfs_json_begin_object(w);
	if (k >= 0) {
		pfs_json_kv_uint(w, "first_touch_faults", med(ms, n, offsetof(struct measure, site_faults), k));
		pfs_json_kv_uint(w, "first_touch_pages", med(ms, n, offsetof(struct measure, site_pages), k));
		pfs_json_kv_uint(w, "prefaulted_pages", med(ms, n, offsetof(struct measure, site_prefaulted), k));
		pfs_json_kv_uint(w, "touch_phase_ns", med(ms, n, offsetof(struct measure, site_phase_ns), k));
	} else {
		pfs_json_kv_uint(w, "first_touch_faults", med(ms, n, offsetof(struct measure, first_touch), -1));
		pfs_json_kv_uint(w, "cow_faults", med(ms, n, offsetof(struct measure, cow), -1));
		pfs_json_kv_uint(w, "prefaulted_pages", med(ms, n, offsetof(struct measure, prefaulted), -1));
		uint64_t lo, hi;

		spread(ms, n, &lo, &hi);
		pfs_json_kv_uint(w, "wall_ns", med(ms, n, offsetof(struct measure, wall_ns), -1));
		pfs_json_kv_uint(w, "wall_ns_min", lo);
		pfs_json_kv_uint(w, "wall_ns_max", hi);
		pfs_json_kv_uint(w, "peak_rss_bytes", med(ms, n, offsetof(struct measure, rss_bytes), -1));
	}
	pfs_json_end_object(w);
}

static int print_json(FILE *out, const struct pfs_verify_opts *o, const char *policy,
		      const struct pfs_adv_list *l, const struct measure *base,
		      const struct measure *pol, const struct summary *s)
{
	unsigned n = s->runs;
	struct pfs_json w;

	pfs_json_init(&w, out, 2);
	pfs_json_begin_object(&w);
	pfs_json_kv_uint(&w, "version", 1);
	pfs_json_key(&w, "command");
	pfs_json_begin_array(&w);
	for (char **a = o->cmd; *a; a++)
		pfs_json_string(&w, *a);
	pfs_json_end_array(&w);
	pfs_json_kv_uint(&w, "runs", n);
	pfs_json_kv_string(&w, "policy", policy);
	/* what the runs without the policy ran with: its rules made inert (inert_rules) */
	pfs_json_kv_string(&w, "policy_without", s->inert);
	/* the rules that matched no allocation in the first run with the policy; null: none */
	pfs_json_kv_string(&w, "unmatched_rules",
			   pol[0].unmatched && pol[0].unmatched[0] ? pol[0].unmatched : NULL);
	pfs_json_key(&w, "sites");
	pfs_json_begin_array(&w);
	for (size_t k = 0; k < l->n; k++) {
		const struct pfs_adv_item *it = &l->items[k];
		struct verdict v = {0};
		char name[256];

		if (pfs_kind_is_category(it->in.kind))
			continue;	/* memory accounted by kind: no policy acts on it */
		judge(it, base, pol, n, k, &v);
		pfs_json_begin_object(&w);
		pfs_json_kv_uint(&w, "site", it->id);
		pfs_report_site_label(&it->rp->sites[it->index], name, sizeof(name));
		pfs_json_kv_string(&w, "label", name);
		pfs_json_kv_string(&w, "function", it->in.function);
		pfs_json_kv_string(&w, "rule", it->adv.rule[0] ? it->adv.rule : NULL);
		json_side(&w, "without", base, n, (ssize_t)k);
		json_side(&w, "with", pol, n, (ssize_t)k);
		pfs_json_key(&w, "helped");
		if (v.has_rule)
			pfs_json_bool(&w, v.helped);
		else
			pfs_json_null(&w);
		pfs_json_kv_string(&w, "verdict", v.text);
		pfs_json_end_object(&w);
	}
	pfs_json_end_array(&w);
	pfs_json_key(&w, "total");
	pfs_json_begin_object(&w);
	json_side(&w, "without", base, n, -1);
	json_side(&w, "with", pol, n, -1);
	/* -1 faster in every run with the policy, 1 slower, 0 within the runs' spread (no time change) */
	pfs_json_key(&w, "wall_change");
	pfs_json_int(&w, outside_spread(base, pol, n));
	pfs_json_end_object(&w);
	pfs_json_key(&w, "output_unchanged");
	pfs_json_bool(&w, s->out_same);
	pfs_json_key(&w, "status_unchanged");
	pfs_json_bool(&w, s->status_same);
	pfs_json_key(&w, "exit_status");
	pfs_json_int(&w, s->status0);
	pfs_json_end_object(&w);
	return pfs_json_finish(&w) ? -EIO : 0;
}

int pfs_adv_verify(const struct pfs_verify_opts *o, FILE *out)
{
	char tmpl[] = "/tmp/pfshim-verify.XXXXXX", *work, *dir = NULL, *first_out = NULL;
	struct measure *base = NULL, *pol = NULL;
	struct pfs_adv_list l = {0};
	struct pfs_adv_run *r = NULL;
	struct summary s = {.runs = o->runs, .out_same = true, .status_same = true};
	struct measure first = {0};
	const char *policy;
	char *inert = NULL;
	bool bad;
	int rc, status = 1;

	if (o->keep) {
		if (mkdir(o->keep, 0777) < 0 && errno != EEXIST) {
			fprintf(stderr, "pfshim: advise: cannot make '%s': %s\n", o->keep, strerror(errno));
			return 1;
		}
		work = (char *)o->keep;
	} else if (!(work = mkdtemp(tmpl))) {
		fprintf(stderr, "pfshim: advise: cannot make a directory in /tmp: %s\n", strerror(errno));
		return 1;
	}
	base = calloc(o->runs, sizeof(*base));
	pol = calloc(o->runs, sizeof(*pol));
	if (!base || !pol || asprintf(&dir, "%s/plain-0", work) < 0 ||
	    asprintf(&first_out, "%s.out", dir) < 0)
		goto nomem;
	/* the first run, plain: where the advice comes from (not measured: the runs without carry the rules, inert) */
	rc = run_once(o, dir, NULL, false, NULL, NULL, &first);
	if (rc == -ENOEXEC)	/* the launcher said why */
		status = PFS_EXIT_CANNOT_RUN;
	if (rc)
		goto out;
	if (pfs_adv_load(dir, &r, &bad))
		goto out;
	rc = pfs_adv_build(pfs_adv_report(r), pfs_adv_thp(), &l);
	if (rc)
		goto nomem;
	policy = o->policy ? o->policy : l.policy;
	if (!policy[0]) {
		/* the advice itself, so that the reason is there to read */
		fprintf(stderr, "pfshim: advise: nothing to verify: the advice has no policy rule\n");
		rc = o->json ? pfs_adv_print_json(pfs_adv_report(r), &l, out, dir)
			     : pfs_adv_print_text(pfs_adv_report(r), &l, out, dir);
		status = rc ? 1 : 0;
		goto out;
	}
	if (alloc_measures(base, o->runs, l.n) || alloc_measures(pol, o->runs, l.n) ||
	    !(inert = inert_rules(policy)))
		goto nomem;
	s.inert = inert;
	s.status0 = first.status;
	for (unsigned i = 0; i < o->runs; i++) {
		for (int with = 1; with >= 0; with--) {
			struct measure *m = with ? &pol[i] : &base[i];

			free(dir);
			if (asprintf(&dir, "%s/%s-%u", work, with ? "policy" : "without", i) < 0)
				goto nomem;
			rc = run_once(o, dir, with ? policy : inert, with, first_out, &l, m);
			if (rc == -ENOEXEC)
				status = PFS_EXIT_CANNOT_RUN;
			if (rc)
				goto out;
			s.out_same &= m->same_out;
			s.status_same &= m->status == s.status0;
		}
	}
	rc = o->json ? print_json(out, o, policy, &l, base, pol, &s)
		     : print_text(out, o, policy, &l, base, pol, &s);
	status = rc ? 1 : 0;
	if (o->keep)
		fprintf(stderr, "pfshim: advise: runs kept in %s\n", work);
	goto out;
nomem:
	fprintf(stderr, "pfshim: advise: %s\n", strerror(ENOMEM));
out:
	if (!o->keep)
		nftw(work, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	pfs_adv_free(&l);
	pfs_adv_run_free(r);
	free_measures(base, o->runs);
	free_measures(pol, o->runs);
	free(dir);
	free(first_out);
	free(inert);
	free(first.unmatched);
	return status;
}
