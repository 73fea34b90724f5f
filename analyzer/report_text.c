/*
 * `pfshim report` (text), in the manner of `perf report --stdio`: '#'
 * header lines; for a run of several processes the processes by faults,
 * the process tree and the run's top sites with their frames; then per
 * process its ranked sites; warnings at the end.  Every word it prints is
 * in docs/analyzer.md's glossary (tests/integration/glossary.sh checks).
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define C_RESET "\033[0m"
#define C_BOLD "\033[1m"
#define C_RED "\033[31m"
#define C_GREEN "\033[32m"
#define C_YELLOW "\033[33m"

struct text_out {
	FILE *f;
	bool color;
};

static void color_on(struct text_out *t, const char *c)
{
	if (t->color)
		fputs(c, t->f);
}

static void color_off(struct text_out *t)
{
	if (t->color)
		fputs(C_RESET, t->f);
}

/*
 * Strings from the logs and the objects (commands, paths, symbols) go to a
 * terminal: control bytes become '?' so they cannot move the cursor or
 * change colours.  At most `max` bytes (0: all), "..." marking a cut.
 */
static void put_safe(struct text_out *t, const char *s, size_t max)
{
	size_t len, n;

	if (!s)
		s = "?";
	len = strlen(s);
	n = max && len > max && max > 3 ? max - 3 : len;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		fputc(c < 0x20 || c == 0x7f ? '?' : c, t->f);
	}
	if (n < len)
		fputs("...", t->f);
}

static uint64_t faults_of(const struct pfs_totals *t)
{
	return t->first_touch_faults + t->cow_faults;
}

/* The report's entry for p, when the filter kept it. */
static const struct pfs_rproc *shown(const struct pfs_report *rep, const struct pfs_proc *p)
{
	for (size_t i = 0; i < rep->nprocs; i++)
		if (rep->procs[i].proc == p)
			return &rep->procs[i];
	return NULL;
}

/* p and its descendants; those the filter left out are skipped, their children moved up. */
static void tree_line(struct text_out *t, const struct pfs_report *rep, const struct pfs_proc *p,
		      unsigned depth)
{
	char bytes[24];
	unsigned indent = depth > 16 ? 16 : depth;

	if (shown(rep, p)) {
		pfs_an_fmt_bytes(bytes, sizeof(bytes), p->totals.bytes_allocated);
		fprintf(t->f, "  %*s%-7" PRIu64 " ", indent * 2, "", p->pid);
		if (p->via_exec)
			fprintf(t->f, "[exec %" PRIu32 "] ", p->exec_gen);
		put_safe(t, p->command, 48);
		fprintf(t->f, "  (%" PRIu64 " allocs, %s, %" PRIu64 " faults", p->totals.allocations,
			bytes, faults_of(&p->totals));
		if (!p->ended)
			fputs(", did not end", t->f);
		fputs(")\n", t->f);
		depth++;
	}
	for (size_t i = 0; i < p->nkids; i++)
		tree_line(t, rep, p->kids[i], depth);
}

static void frame_line(struct text_out *t, const struct pfs_rframe *f)
{
	fputs("            ", t->f);
	if (f->function) {
		color_on(t, C_BOLD);
		put_safe(t, f->function, 0);
		color_off(t);
	} else if (f->module) {
		put_safe(t, f->module, 0);
		fprintf(t->f, "+0x%" PRIx64, f->offset);
	} else {
		fprintf(t->f, "0x%" PRIx64, f->address);
	}
	if (f->file) {
		fputs(" (", t->f);
		put_safe(t, f->file, 0);
		if (f->line)
			fprintf(t->f, ":%u", f->line);
		fputc(')', t->f);
	}
	fputs(" [", t->f);
	put_safe(t, pfs_report_frame_where(f) ? pfs_report_frame_where(f) : "?", 0);
	fputc(']', t->f);
	if (f->inlined)
		fputs(" (inlined)", t->f);
	fputc('\n', t->f);
}

/* The rule a policy applied here, the pages it prefaulted, what failed. */
static void policy_line(struct text_out *t, const struct pfs_site *s)
{
	fputs("            policy: ", t->f);
	put_safe(t, s->policy, 0);
	fprintf(t->f, " (%" PRIu64 " applied, %" PRIu64 " pages prefaulted", s->policy_applications,
		s->prefaulted_pages);
	for (unsigned k = 0; k < PFS_POLICY_NACTIONS; k++)
		if (s->policy_failures[k])
			fprintf(t->f, "; %s failed %" PRIu64 "x: %s", pfs_policy_action_name(k),
				s->policy_failures[k], strerror(-s->policy_error[k]));
	fputs(")\n", t->f);
}

/* The site's frames to `depth` below its label (0: all); a runtime's frames above it too. */
static void frame_lines(struct text_out *t, const struct pfs_rsite *rs, unsigned depth)
{
	size_t end = pfs_report_depth_end(rs, depth);

	for (size_t i = 0; i < end; i++)
		frame_line(t, &rs->frames[i]);
	if (end < rs->nframes)
		fprintf(t->f, "            ... (%zu more frame%s; --depth all shows them)\n",
			rs->nframes - end, rs->nframes - end == 1 ? "" : "s");
	else if (rs->stack_truncated)
		fputs("            ... (deeper frames not recorded)\n", t->f);
}

static void site_row(struct text_out *t, const struct pfs_rsite *rs, size_t rank, double pct)
{
	const struct pfs_site *s = rs->site;
	char bytes[24];

	pfs_an_fmt_bytes(bytes, sizeof(bytes), s->bytes_allocated);
	fprintf(t->f, "%6zu  ", rank);
	/* perf's colours: red from 5%, green from 0.5% */
	if (s->key.kind == PFS_KIND_SELF) {	/* the shim's own: no share of the program's totals */
		fprintf(t->f, "%8s", "-");
	} else {
		color_on(t, pct >= 5.0 ? C_RED : pct >= 0.5 ? C_GREEN : "");
		fprintf(t->f, "%7.2f%%", pct);
		color_off(t);
	}
	fprintf(t->f, "  %10" PRIu64 "  %11s  %9" PRIu64 "  %9" PRIu64 "  %-9s  #%" PRIu32,
		s->allocations, bytes, s->first_touch_faults, s->cow_faults,
		pfs_kind_name(s->key.kind), rs->id);
	if (pfs_report_label(rs)) {
		char label[512];

		pfs_report_site_label(rs, label, sizeof(label));
		fputs("  ", t->f);
		color_on(t, C_BOLD);
		put_safe(t, label, 0);
		color_off(t);
	}
}

/* Under the row: frames, touch sites, policy, evidence. */
static void site_body(struct text_out *t, const struct pfs_rsite *rs, unsigned depth,
		      const struct pfs_evidence *ev)
{
	const struct pfs_site *s = rs->site;

	if (s->key.stack == 0 && !pfs_kind_is_category(s->key.kind))
		fputs("            (no stack recorded)\n", t->f);
	else if (rs->stack_missing)
		fprintf(t->f, "            (stack %" PRIu32 " missing from the log)\n", s->key.stack);
	frame_lines(t, rs, depth);
	for (size_t i = 0; i < rs->ntouches; i++) {
		const struct pfs_rtouch *tc = &rs->touches[i];
		const char *name = tc->sys >= 0 ? pfs_report_syscall_name(tc->sys) : NULL;

		if (tc->sys < 0)
			fprintf(t->f, "          touched (%" PRIu64 " faults) at:\n", tc->faults);
		else if (name)
			fprintf(t->f, "          touched (%" PRIu64 " faults) by the kernel in %s(2), entered at:\n",
				tc->faults, name);
		else
			fprintf(t->f, "          touched (%" PRIu64 " faults) by the kernel in system call %" PRId32
				", entered at:\n", tc->faults, tc->sys);
		frame_line(t, &tc->frame);
	}
	if (rs->touches_other)
		fprintf(t->f, "          touched (%" PRIu64 " faults) elsewhere\n", rs->touches_other);
	if (s->policy)
		policy_line(t, s);
	/* Evidence is about allocations: memory accounted by kind has none. */
	if (ev && !pfs_kind_is_category(s->key.kind) && (ev->touched_pages || ev->cow_pages || ev->tracked_allocs)) {
		char line[512];

		pfs_evidence_summary(line, sizeof(line), ev);
		fprintf(t->f, "            = %s\n", line);
	}
	fputc('\n', t->f);
}

static const struct pfs_evidence *evidence(const struct pfs_rproc *rp, size_t j)
{
	return rp->evidence ? &rp->evidence[j] : NULL;
}

static double share(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

#define TEXT_STORMS 5

static void storm_lines(struct text_out *t, const struct pfs_rproc *rp)
{
	const struct pfs_series *s = &rp->series;
	char rate[32], c1[24], c2[24], c3[24];

	if (!s->nstorms)
		return;
	/* the rule and its unit, as docs/analyzer.md gives them ("Storms") */
	pfs_an_fmt_rate(rate, sizeof(rate), s->threshold);
	pfs_evidence_fmt_time(c1, sizeof(c1), (uint64_t)s->unit.first_touch_ns, (uint64_t)s->unit.first_touch_ns);
	pfs_evidence_fmt_time(c2, sizeof(c2), (uint64_t)s->unit.cow_ns, (uint64_t)s->unit.cow_ns);
	pfs_evidence_fmt_time(c3, sizeof(c3), (uint64_t)s->unit.huge_ns, (uint64_t)s->unit.huge_ns);
	fprintf(t->f, "#   storms (%.0f ms buckets where faults took %.0f%% of the time or more, at this machine's"
		" cost per fault, %s: a first touch %s, a copy %s, a huge page %s; %.0f%% is %s first touches):\n",
		(double)s->bucket_ns / 1e6, 100.0 * s->share, s->unit.source, c1, c2, c3, 100.0 * s->share, rate);
	if (s->handler_ns_removed)
		fprintf(t->f, "#   (exact mode: its handlers' %.1f ms taken out of the timeline)\n",
			(double)s->handler_ns_removed / 1e6);
	if (s->unwaited_share < 0.9)
		fprintf(t->f, "#   (a loaded machine: its main thread waited for a CPU %.0f%% of its life; "
			"the shares and rates are of the rest)\n", 100.0 * (1 - s->unwaited_share));
	for (size_t i = 0; i < s->nstorms && i < TEXT_STORMS; i++) {
		const struct pfs_storm *st = &s->storms[i];
		char name[256];

		pfs_an_fmt_rate(rate, sizeof(rate), st->rate);
		fprintf(t->f, "#     %zu. %.1f-%.1f ms, %" PRIu64 " faults ", i + 1,
			(double)st->start_ns / 1e6, (double)st->end_ns / 1e6, st->faults);
		if (st->one_scan)	/* how fast they came is unknown: the rate is a lower bound */
			fprintf(t->f, "(found by one scan: at least %s)", rate);
		else
			fprintf(t->f, "(%s, %.0f%% of the time)", rate, 100.0 * st->share);
		if (st->top_index != SIZE_MAX) {
			pfs_report_site_label(&rp->sites[st->top_index], name, sizeof(name));
			fprintf(t->f, ", site #%" PRIu32 " ", st->top_id);
			put_safe(t, name, 80);
		}
		fputc('\n', t->f);
	}
	if (s->nstorms > TEXT_STORMS)
		fprintf(t->f, "#     (%zu more; --format json lists all)\n", s->nstorms - TEXT_STORMS);
	fputs("#\n", t->f);
}

#define COLUMNS "# Rank  %8s  %10s  %11s  %9s  %9s  %-9s  Site%s\n#\n"

static void proc_section(struct text_out *t, const struct pfs_rproc *rp,
			 const struct pfs_report_opts *o, bool run_wide)
{
	const struct pfs_proc *p = rp->proc;
	const struct pfs_totals *tot = &p->totals;
	size_t n = o->top && o->top < rp->nsites ? o->top : rp->nsites;
	bool by_faults = faults_of(tot) > 0;
	char bytes[24], live[24];

	pfs_an_fmt_bytes(bytes, sizeof(bytes), tot->bytes_allocated);
	pfs_an_fmt_bytes(live, sizeof(live), tot->bytes_live_at_end);
	fputs("#\n", t->f);
	color_on(t, C_BOLD);
	fprintf(t->f, "# pid %" PRIu64, p->pid);
	if (p->exec_gen)
		fprintf(t->f, " (exec %" PRIu32 ")", p->exec_gen);
	fputs(": ", t->f);
	put_safe(t, p->command, 0);
	color_off(t);
	fputs("\n#   exe ", t->f);
	put_safe(t, p->exe ? p->exe : "?", 0);
	fprintf(t->f, ", parent %" PRIu64 ", mode %s", p->ppid, pfs_mode_name(p->mode));
	if (p->start_flags & PFS_PROC_OUTSIDE)
		fputs(" (the kernel's fault events, seen by pfshim record: no shim inside, memory by mapping)", t->f);
	else if (p->mode == PFS_MODE_EXACT)
		fputs(p->start_flags & PFS_PROC_FAULT_EVENTS ? " (the kernel's fault events)" : " (userfaultfd)", t->f);
	fputs(", ", t->f);
	if (!p->ended)
		fputs("did not end (killed, or still running)", t->f);
	else if (p->end_reason == PFS_END_EXEC)
		fputs("replaced by exec", t->f);
	else if (p->end_reason == PFS_END_GONE)
		fputs("ended (status not seen)", t->f);
	else if (p->end_reason == PFS_END_SIGNAL)
		fprintf(t->f, "killed by signal %" PRId32, p->exit_status);
	else
		fprintf(t->f, "exited with status %" PRId32, p->exit_status);
	fprintf(t->f, "\n#   %zu sites, %" PRIu64 " allocations, %s allocated, %s of large blocks"
		" live at the end\n", p->nsites, tot->allocations, bytes, live);
	fprintf(t->f, "#   faults: %" PRIu64 " first-touch, %" PRIu64 " copy-on-write, %" PRIu64
		" pages prefaulted\n", tot->first_touch_faults, tot->cow_faults,
		tot->prefaulted_pages);
	/* Coverage: what the kernel counted for the process beside what the report accounts for. */
	if (p->have_rusage)
		fprintf(t->f, "#   coverage: the kernel counted %" PRIu64 " minor faults, the report accounts for %" PRIu64
			" (%.0f%%)\n", p->kernel_minor_faults, p->accounted_faults,
			p->kernel_minor_faults ? 100.0 * (double)p->accounted_faults / (double)p->kernel_minor_faults : 100.0);
	if (p->self_faults)
		fprintf(t->f, "#   the shim's own memory took %" PRIu64 " of them ([pfshim], not in the totals)\n",
			p->self_faults);
	if (p->have_rusage && p->kernel_major_faults)
		fprintf(t->f, "#   major faults: %" PRIu64 " (the program waited for a page read from disk or swap; the counts"
			" by site do not tell them apart)\n", p->kernel_major_faults);
	fputs("#\n", t->f);
	storm_lines(t, rp);
	if (!rp->nsites) {
		fputs(p->nsites ? "#   (no site matches the filter)\n" : "#   (no allocations recorded)\n",
		      t->f);
		return;
	}
	fprintf(t->f, COLUMNS, by_faults ? "Faults%" : "Bytes%", "Allocs", "Bytes", "1st-touch", "CoW",
		"Kind", "");
	for (size_t i = 0; i < n; i++) {
		const struct pfs_rsite *rs = &rp->sites[i];
		uint64_t part = by_faults ? pfs_report_site_faults(rs) : rs->site->bytes_allocated;

		site_row(t, rs, i + 1, share(part, by_faults ? faults_of(tot) : tot->bytes_allocated));
		fputc('\n', t->f);
		if (run_wide && rs->rank && pfs_report_in_top(rs, o->top))	/* its frames are in the top sites */
			fprintf(t->f, "            (frames above: the run's site %zu)\n\n", rs->rank);
		else
			site_body(t, rs, o->depth, evidence(rp, i));
	}
	if (n < rp->nsites)
		fprintf(t->f, "#   (%zu more site%s; --top 0 lists all)\n", rp->nsites - n,
			rp->nsites - n == 1 ? "" : "s");
}

#define TEXT_PROCS 20

static int cmp_busy(const void *a, const void *b)
{
	const struct pfs_rproc *x = *(const struct pfs_rproc *const *)a;
	const struct pfs_rproc *y = *(const struct pfs_rproc *const *)b;
	uint64_t fx = faults_of(&x->proc->totals), fy = faults_of(&y->proc->totals);

	if (fx != fy)
		return fx > fy ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* The processes, those with the most faults first (the run's order among equals). */
static void proc_summary(struct text_out *t, const struct pfs_report *rep)
{
	const struct pfs_rproc **by = malloc(rep->nprocs * sizeof(*by));
	uint64_t all = 0, rest = 0;
	size_t n = rep->nprocs < TEXT_PROCS ? rep->nprocs : TEXT_PROCS;

	if (!by)
		return;
	for (size_t i = 0; i < rep->nprocs; i++) {
		by[i] = &rep->procs[i];
		all += faults_of(&rep->procs[i].proc->totals);
	}
	qsort(by, rep->nprocs, sizeof(*by), cmp_busy);
	fputs("#\n# Processes by faults (first-touch + copy-on-write), the busiest first:\n#\n",
	      t->f);
	fprintf(t->f, "# %7s  %10s  %10s  %11s  %-7s  Command\n", "Faults%", "Faults", "Allocs",
		"Bytes", "Pid");
	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_proc *p = by[i]->proc;
		char bytes[24];

		if (i >= n) {
			rest += faults_of(&p->totals);
			continue;
		}
		pfs_an_fmt_bytes(bytes, sizeof(bytes), p->totals.bytes_allocated);
		fprintf(t->f, "  %7.2f%%  %10" PRIu64 "  %10" PRIu64 "  %11s  %-7" PRIu64 "  ",
			share(faults_of(&p->totals), all), faults_of(&p->totals), p->totals.allocations,
			bytes, p->pid);
		put_safe(t, p->command, 60);
		fputc('\n', t->f);
	}
	if (n < rep->nprocs)
		fprintf(t->f, "#   (%zu more processes: %.2f%% of the faults; --pid or --comm chooses)\n",
			rep->nprocs - n, share(rest, all));
	free(by);
}

/* The run's top sites across processes, each with its process, frames and evidence. */
static void top_sites(struct text_out *t, const struct pfs_report *rep,
		      const struct pfs_report_opts *o)
{
	size_t n = o->top && o->top < rep->nranked ? o->top : rep->nranked;
	uint64_t all = 0;

	for (size_t i = 0; i < rep->nranked; i++)
		all += pfs_report_site_weight(rep, &rep->ranked[i].rp->sites[rep->ranked[i].index]);
	fprintf(t->f, "#\n# Top sites of the run, by %s:\n#\n", rep->by_faults ? "faults" : "bytes");
	fprintf(t->f, COLUMNS, rep->by_faults ? "Faults%" : "Bytes%", "Allocs", "Bytes", "1st-touch",
		"CoW", "Kind", ", process");
	for (size_t i = 0; i < n; i++) {
		const struct pfs_rproc *rp = rep->ranked[i].rp;
		const struct pfs_rsite *rs = &rp->sites[rep->ranked[i].index];

		site_row(t, rs, i + 1, share(pfs_report_site_weight(rep, rs), all));
		fprintf(t->f, "  pid %" PRIu64 " ", rp->proc->pid);
		put_safe(t, rp->proc->command, 40);
		fputc('\n', t->f);
		site_body(t, rs, o->depth, evidence(rp, rep->ranked[i].index));
	}
	if (n < rep->nranked)
		fprintf(t->f, "#   (%zu more site%s in the run; --top 0 lists all)\n", rep->nranked - n,
			rep->nranked - n == 1 ? "" : "s");
}

/* "# filter: ..." as the options were given, and what a time window counts. */
static void filter_lines(struct text_out *t, const struct pfs_report *rep)
{
	const struct pfs_report_filter *f = rep->filter;

	if (!f)
		return;
	const struct {
		const char *name, *glob;
	} globs[] = {{"comm", f->comm}, {"site", f->site}, {"module", f->module}};

	fputs("# filter:   ", t->f);
	if (f->npids) {
		fputs(" --pid ", t->f);
		for (size_t i = 0; i < f->npids; i++)
			fprintf(t->f, "%s%" PRIu64, i ? "," : "", f->pids[i]);
	}
	for (size_t i = 0; i < PFS_AN_ARRAY_SIZE(globs); i++) {
		if (!globs[i].glob)
			continue;
		fprintf(t->f, " --%s '", globs[i].name);
		put_safe(t, globs[i].glob, 0);
		fputc('\'', t->f);
	}
	if (f->since_set)
		fprintf(t->f, " --since %gs", (double)f->since_ns / 1e9);
	if (f->until_set)
		fprintf(t->f, " --until %gs", (double)f->until_ns / 1e9);
	fputc('\n', t->f);
	if (f->since_set || f->until_set)
		fputs("# window:    the faults in it, from each process's start; allocations, bytes and"
		      " evidence of the whole run\n", t->f);
}

int pfs_report_text(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o)
{
	static const struct pfs_report_opts none;
	struct text_out t = {.f = out, .color = o && o->color};
	const struct pfs_an_warnings *w = &rep->run->warnings;
	bool run_wide = rep->nprocs > 1;

	if (!o)
		o = &none;
	color_on(&t, C_BOLD);
	fputs("# pfshim report\n", out);
	color_off(&t);
	fputs("# logs:      ", out);
	put_safe(&t, o->source ? o->source : "?", 0);
	fprintf(out, "\n# mode:      %s\n# processes: %zu", rep->mode, rep->nprocs);
	if (rep->nprocs != rep->nprocs_run)
		fprintf(out, " of %zu", rep->nprocs_run);
	fputc('\n', out);
	filter_lines(&t, rep);
	if (w->n)
		fprintf(out, "# warnings:  %zu (at the end)\n", w->n);
	if (rep->filter && !rep->nranked)
		fputs("#\n# (nothing matches the filter)\n", out);
	if (run_wide) {
		proc_summary(&t, rep);
		if (rep->nranked)
			top_sites(&t, rep, o);
		fputs("#\n# Process tree: pid, command (allocations, bytes allocated, faults)\n#\n",
		      out);
		for (size_t i = 0; i < rep->run->nprocs; i++)
			if (!rep->run->procs[i]->parent)
				tree_line(&t, rep, rep->run->procs[i], 0);
	}
	for (size_t i = 0; i < rep->nprocs; i++)
		proc_section(&t, &rep->procs[i], o, run_wide);
	if (w->n) {
		fputs("#\n", out);
		color_on(&t, C_YELLOW);
		fprintf(out, "# Warnings (%zu):\n", w->n);
		color_off(&t);
		for (size_t i = 0; i < w->n; i++) {
			fputs("#   ", out);
			put_safe(&t, w->msgs[i], 0);
			fputc('\n', out);
		}
	}
	if (fflush(out) != 0 || ferror(out))
		return -EIO;
	return 0;
}
