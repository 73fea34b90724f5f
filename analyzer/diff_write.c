/* `pfshim diff`'s output: the paired runs (diff_model.h) as JSON or text. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "diff_model.h"
#include "json.h"

#define C_RESET "\033[0m"
#define C_BOLD "\033[1m"
#define C_RED "\033[31m"
#define C_GREEN "\033[32m"

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

int pfs_diff_write_json(const struct diff *d, FILE *out, const struct pfs_diff_opts *o)
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
	if (pfs_report_label(rs) && pfs_report_label(rs)->file) {
		fputs(" (", t->f);
		put_safe(t, pfs_report_label(rs)->file);
		fprintf(t->f, ":%u)", pfs_report_label(rs)->line);
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
	for (size_t i = rs->label + 1; i < rs->nframes && i < rs->label + 3; i++) {
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


/* Whether a site= rule applied to a site of side w of the process (what its logs show). */
static bool site_rules(const struct dproc *dp, int w)
{
	for (size_t i = 0; i < dp->nsites; i++) {
		const char *pol = dp->sorted[i]->s[w].policy;
		if (pol && (strstr(pol, " site=") || strstr(pol, ",site=")))
			return true;
	}
	return false;
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
	/* a site= rule costs its process at start, whatever it does: said where one side has one */
	if (a.present && b.present && site_rules(dp, 0) != site_rules(dp, 1))
		fprintf(t->f, "#     (only %s ran site= rules: they cost a process its symbol tables and DWARF at "
			"start, whatever they do; advise --verify gives both sides the rules)\n",
			site_rules(dp, 1) ? "B" : "A");
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

int pfs_diff_write_text(const struct diff *d, FILE *out, const struct pfs_diff_opts *o)
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

