/*
 * `pfshim report` (text), in the manner of `perf report --stdio`: '#'
 * header lines, the process tree, then per process the ranked sites with
 * their frames, warnings at the end.
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
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

static void tree_line(struct text_out *t, const struct pfs_proc *p, unsigned depth)
{
	char bytes[24];
	unsigned indent = depth > 16 ? 16 : depth;

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
	for (size_t i = 0; i < p->nkids; i++)
		tree_line(t, p->kids[i], depth + 1);
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
	put_safe(t, f->module ? f->module : "?", 0);
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

static void site_lines(struct text_out *t, const struct pfs_rsite *rs, size_t rank,
		       double pct, const struct pfs_evidence *ev)
{
	const struct pfs_site *s = rs->site;
	char bytes[24];

	pfs_an_fmt_bytes(bytes, sizeof(bytes), s->bytes_allocated);
	fprintf(t->f, "%6zu  ", rank);
	/* perf's colours: red from 5%, green from 0.5% */
	color_on(t, pct >= 5.0 ? C_RED : pct >= 0.5 ? C_GREEN : "");
	fprintf(t->f, "%7.2f%%", pct);
	color_off(t);
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
	fputc('\n', t->f);
	if (s->key.stack == 0 && !pfs_kind_is_category(s->key.kind))
		fputs("            (no stack recorded)\n", t->f);
	else if (rs->stack_missing)
		fprintf(t->f, "            (stack %" PRIu32 " missing from the log)\n", s->key.stack);
	for (size_t i = 0; i < rs->nframes; i++)
		frame_line(t, &rs->frames[i]);
	if (rs->stack_truncated)
		fputs("            ... (deeper frames cut)\n", t->f);
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

#define TEXT_STORMS 5

static void storm_lines(struct text_out *t, const struct pfs_rproc *rp)
{
	const struct pfs_series *s = &rp->series;
	char rate[32];

	if (!s->nstorms)
		return;
	pfs_an_fmt_rate(rate, sizeof(rate), s->threshold);
	fprintf(t->f, "#   storms (fault rate in %.0f ms buckets above %s):\n",
		(double)s->bucket_ns / 1e6, rate);
	for (size_t i = 0; i < s->nstorms && i < TEXT_STORMS; i++) {
		const struct pfs_storm *st = &s->storms[i];
		char name[256];

		pfs_an_fmt_rate(rate, sizeof(rate), st->rate);
		fprintf(t->f, "#     %zu. %.1f-%.1f ms, %" PRIu64 " faults (%s)", i + 1,
			(double)st->start_ns / 1e6, (double)st->end_ns / 1e6, st->faults, rate);
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

static void proc_section(struct text_out *t, const struct pfs_rproc *rp, unsigned top)
{
	const struct pfs_proc *p = rp->proc;
	const struct pfs_totals *tot = &p->totals;
	size_t n = top && top < rp->nsites ? top : rp->nsites;
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
	fprintf(t->f, ", parent %" PRIu64 ", mode %s, ", p->ppid, pfs_mode_name(p->mode));
	if (!p->ended)
		fputs("did not end (killed, or still running)", t->f);
	else if (p->end_reason == PFS_END_EXEC)
		fputs("replaced by exec", t->f);
	else
		fprintf(t->f, "exited with status %" PRId32, p->exit_status);
	fprintf(t->f, "\n#   %zu sites, %" PRIu64 " allocations, %s allocated, %s of large blocks"
		" live at the end\n", rp->nsites, tot->allocations, bytes, live);
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
	fputs("#\n", t->f);
	storm_lines(t, rp);
	if (!rp->nsites) {
		fputs("#   (no allocations recorded)\n", t->f);
		return;
	}
	fprintf(t->f, "# Rank  %8s  %10s  %11s  %9s  %9s  %-9s  Site\n#\n",
		by_faults ? "Faults%" : "Bytes%", "Allocs", "Bytes", "1st-touch", "CoW", "Kind");
	for (size_t i = 0; i < n; i++) {
		const struct pfs_site *s = rp->sites[i].site;
		uint64_t part = by_faults ? s->first_touch_faults + s->cow_faults : s->bytes_allocated;
		uint64_t whole = by_faults ? faults_of(tot) : tot->bytes_allocated;

		site_lines(t, &rp->sites[i], i + 1, whole ? 100.0 * (double)part / (double)whole : 0.0,
			   rp->evidence ? &rp->evidence[i] : NULL);
	}
	if (n < rp->nsites)
		fprintf(t->f, "#   (%zu more site%s; --top 0 lists all)\n", rp->nsites - n,
			rp->nsites - n == 1 ? "" : "s");
}

int pfs_report_text(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o)
{
	struct text_out t = {.f = out, .color = o && o->color};
	const struct pfs_an_warnings *w = &rep->run->warnings;
	unsigned top = o ? o->top : 0;

	color_on(&t, C_BOLD);
	fputs("# pfshim report\n", out);
	color_off(&t);
	fputs("# logs:      ", out);
	put_safe(&t, o && o->source ? o->source : "?", 0);
	fprintf(out, "\n# mode:      %s\n# processes: %zu\n", rep->mode, rep->nprocs);
	if (w->n)
		fprintf(out, "# warnings:  %zu (at the end)\n", w->n);
	if (rep->nprocs) {
		fputs("#\n# Process tree: pid, command (allocations, bytes allocated, faults)\n#\n",
		      out);
		for (size_t i = 0; i < rep->nprocs; i++)
			if (!rep->procs[i].proc->parent)
				tree_line(&t, rep->procs[i].proc, 0);
	}
	for (size_t i = 0; i < rep->nprocs; i++)
		proc_section(&t, &rep->procs[i], top);
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
