/*
 * `pfshim report --format json`: the schema of docs/json.md, stable fields
 * first, extra fields after them in each object.
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "json.h"

static void json_u64(struct pfs_json *w, const char *key, uint64_t v)
{
	pfs_json_key(w, key);
	pfs_json_uint(w, v);
}

static void json_str(struct pfs_json *w, const char *key, const char *s)
{
	pfs_json_key(w, key);
	pfs_json_string(w, s);
}

static void json_address(struct pfs_json *w, const char *key, uint64_t a)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%" PRIx64, a);
	json_str(w, key, buf);
}

void pfs_report_json_frame(struct pfs_json *w, const struct pfs_rframe *f)
{
	pfs_json_begin_object(w);
	json_str(w, "function", f->function);
	json_str(w, "file", f->file);
	pfs_json_kv_uint_or_null(w, "line", f->line, f->line);
	json_str(w, "module", f->module);
	if (f->python)	/* a Python frame: no address */
		json_str(w, "address", NULL);
	else
		json_address(w, "address", f->address);
	pfs_json_key(w, "inlined");
	pfs_json_bool(w, f->inlined);
	/* extras */
	json_str(w, "symbol", f->symbol);
	if (f->module) {
		json_address(w, "offset", f->offset);
		json_str(w, "module_path", f->module_path);
	}
	if (f->source_path)
		json_str(w, "source_path", f->source_path);
	if (f->python) {
		pfs_json_key(w, "python");
		pfs_json_bool(w, true);
	}
	if (f->jit) {
		pfs_json_key(w, "jit");
		pfs_json_bool(w, true);
	}
	pfs_json_end_object(w);
}

/* How often a rule was applied at the site, and each action that failed: how often, the last error. */
static void json_policy(struct pfs_json *w, const struct pfs_site *s)
{
	json_u64(w, "policy_applications", s->policy_applications);
	pfs_json_key(w, "policy_failures");
	pfs_json_begin_object(w);
	for (unsigned k = 0; k < PFS_POLICY_NACTIONS; k++) {
		if (!s->policy_failures[k])
			continue;
		pfs_json_key(w, pfs_policy_action_name(k));
		pfs_json_begin_object(w);
		json_u64(w, "count", s->policy_failures[k]);
		json_str(w, "error", strerror(-s->policy_error[k]));
		pfs_json_end_object(w);
	}
	pfs_json_end_object(w);
}

static void json_site(struct pfs_json *w, const struct pfs_rsite *rs,
		      const struct pfs_evidence *ev, unsigned depth)
{
	const struct pfs_site *s = rs->site;
	size_t end = pfs_report_depth_end(rs, depth);

	pfs_json_begin_object(w);
	json_u64(w, "id", rs->id);
	json_str(w, "kind", pfs_kind_name(s->key.kind));
	pfs_json_key(w, "label");
	if (pfs_report_label(rs)) {
		const struct pfs_rframe *l = pfs_report_label(rs);

		pfs_json_begin_object(w);
		json_str(w, "function", l->function);
		json_str(w, "file", l->file);
		pfs_json_kv_uint_or_null(w, "line", l->line, l->line);
		json_str(w, "module", l->module);
		pfs_json_end_object(w);
	} else {
		pfs_json_null(w);
	}
	pfs_json_key(w, "frames");
	pfs_json_begin_array(w);
	for (size_t i = 0; i < end; i++)
		pfs_report_json_frame(w, &rs->frames[i]);
	pfs_json_end_array(w);
	json_u64(w, "first_touch_faults", s->first_touch_faults);
	json_u64(w, "first_touch_pages", s->first_touch_pages);
	json_u64(w, "cow_faults", s->cow_faults);
	json_u64(w, "cow_pages", s->cow_pages);
	json_u64(w, "allocations", s->allocations);
	json_u64(w, "bytes_allocated", s->bytes_allocated);
	json_u64(w, "prefaulted_pages", s->prefaulted_pages);
	json_str(w, "policy", s->policy);	/* null: no rule applied here */
	/* extras */
	if (s->policy_applications)
		json_policy(w, s);
	if (rs->ntouches) {
		/* exact mode, PFSHIM_TOUCH_SITE=1: the instructions (or system calls) that touched its pages */
		pfs_json_key(w, "touch_sites");
		pfs_json_begin_array(w);
		for (size_t i = 0; i < rs->ntouches; i++) {
			const struct pfs_rtouch *t = &rs->touches[i];
			const char *name = t->sys >= 0 ? pfs_report_syscall_name(t->sys) : NULL;

			pfs_json_begin_object(w);
			json_u64(w, "faults", t->faults);
			pfs_json_key(w, "syscall");
			if (t->sys < 0)
				pfs_json_null(w);
			else if (name)
				pfs_json_string(w, name);
			else
				pfs_json_int(w, t->sys);
			pfs_json_key(w, "frame");
			pfs_report_json_frame(w, &t->frame);
			pfs_json_end_object(w);
		}
		pfs_json_end_array(w);
		json_u64(w, "touch_sites_other_faults", rs->touches_other);
	}
	json_u64(w, "bytes_live_at_end", s->bytes_live_at_end);
	json_u64(w, "blocks_live_at_end", s->live_blocks);
	json_u64(w, "stack", s->key.stack);
	json_u64(w, "rank", rs->rank);
	if (end < rs->nframes)
		json_u64(w, "frames_cut", rs->nframes - end);	/* --depth */
	if (ev) {
		pfs_json_key(w, "evidence");	/* docs/advisor.md */
		pfs_evidence_json(w, ev);
	}
	if (rs->stack_missing) {
		pfs_json_key(w, "stack_missing");
		pfs_json_bool(w, true);
	}
	if (rs->stack_truncated) {
		pfs_json_key(w, "stack_truncated");
		pfs_json_bool(w, true);
	}
	pfs_json_end_object(w);
}

static void json_totals(struct pfs_json *w, const struct pfs_totals *t)
{
	pfs_json_key(w, "totals");
	pfs_json_begin_object(w);
	json_u64(w, "first_touch_faults", t->first_touch_faults);
	json_u64(w, "cow_faults", t->cow_faults);
	json_u64(w, "allocations", t->allocations);
	json_u64(w, "bytes_allocated", t->bytes_allocated);
	json_u64(w, "prefaulted_pages", t->prefaulted_pages);
	json_u64(w, "bytes_live_at_end", t->bytes_live_at_end);
	pfs_json_end_object(w);
}

/* Most faults first; times relative to the process start. */
static void json_storm(struct pfs_json *w, const struct pfs_storm *st)
{
	pfs_json_begin_object(w);
	json_u64(w, "start_ns", st->start_ns);
	json_u64(w, "end_ns", st->end_ns);
	json_u64(w, "faults", st->faults);
	pfs_json_kv_uint_or_null(w, "top_site", st->top_id, st->top_id);
	/* extras */
	pfs_json_key(w, "rate");
	pfs_json_double(w, st->rate);
	pfs_json_key(w, "fault_ns");
	pfs_json_double(w, st->fault_ns);
	pfs_json_key(w, "share");
	pfs_json_double(w, st->share);
	json_u64(w, "top_site_faults", st->top_faults);
	pfs_json_key(w, "one_scan");
	pfs_json_bool(w, st->one_scan);
	pfs_json_end_object(w);
}

/* How the storms were found (docs/analyzer.md), not the series itself: perfetto has that. */
static void json_series(struct pfs_json *w, const struct pfs_series *s)
{
	pfs_json_key(w, "storm_detection");
	pfs_json_begin_object(w);
	json_u64(w, "bucket_ns", s->bucket_ns);
	json_u64(w, "buckets", s->nbuckets);
	json_u64(w, "scan_interval_ns", s->scan_interval_ns);
	pfs_json_key(w, "median_rate");
	pfs_json_double(w, s->median_rate);
	pfs_json_key(w, "threshold_rate");
	pfs_json_double(w, s->threshold);
	pfs_json_key(w, "share");
	pfs_json_double(w, s->share);
	pfs_json_key(w, "unwaited_share");
	pfs_json_double(w, s->unwaited_share);
	pfs_json_key(w, "fault_cost_ns");
	pfs_json_begin_object(w);
	pfs_json_kv_double(w, "first_touch", s->unit.first_touch_ns);
	pfs_json_kv_double(w, "cow", s->unit.cow_ns);
	pfs_json_kv_double(w, "huge", s->unit.huge_ns);
	pfs_json_kv_string(w, "source", s->unit.source);
	pfs_json_end_object(w);
	json_u64(w, "handler_ns_removed", s->handler_ns_removed);
	pfs_json_end_object(w);
}

static void json_proc(struct pfs_json *w, const struct pfs_rproc *rp,
		      const struct pfs_report_opts *o)
{
	const struct pfs_proc *p = rp->proc;

	pfs_json_begin_object(w);
	json_u64(w, "pid", p->pid);
	json_u64(w, "ppid", p->ppid);
	json_str(w, "command", p->command ? p->command : "");
	json_totals(w, &p->totals);
	pfs_json_key(w, "coverage");
	pfs_json_begin_object(w);
	pfs_json_kv_uint_or_null(w, "kernel_minor_faults", p->have_rusage, p->kernel_minor_faults);
	pfs_json_kv_uint_or_null(w, "kernel_major_faults", p->have_rusage, p->kernel_major_faults); /* extra */
	json_u64(w, "accounted_faults", p->accounted_faults);
	json_u64(w, "pfshim_faults", p->self_faults); /* extra: the shim's own memory, apart */
	pfs_json_end_object(w);
	pfs_json_key(w, "sites");
	pfs_json_begin_array(w);
	for (size_t i = 0; i < rp->nsites; i++)
		if (pfs_report_in_top(&rp->sites[i], o->top))
			json_site(w, &rp->sites[i], rp->evidence ? &rp->evidence[i] : NULL, o->depth);
	pfs_json_end_array(w);
	pfs_json_key(w, "storms");
	pfs_json_begin_array(w);
	for (size_t i = 0; i < rp->series.nstorms; i++)
		json_storm(w, &rp->series.storms[i]);
	pfs_json_end_array(w);
	/* extras */
	json_u64(w, "exec_gen", p->exec_gen);
	json_str(w, "exe", p->exe);
	json_u64(w, "root_pid", p->root_pid);
	json_str(w, "mode", pfs_mode_name(p->mode));
	json_str(w, "mechanism", pfs_mechanism_name(p->mode, p->start_flags));
	json_u64(w, "start_ns", p->start_ns);
	json_series(w, &rp->series);
	json_u64(w, "scans", p->scans); /* fast mode: scan passes logged (those that found touches, and their edges) */
	pfs_json_key(w, "argv");
	pfs_json_begin_array(w);
	for (uint32_t i = 0; i < p->argc; i++)
		pfs_json_string(w, p->argv[i]);
	pfs_json_end_array(w);
	if (p->cmd_truncated) {
		pfs_json_key(w, "command_truncated");
		pfs_json_bool(w, true);
	}
	pfs_json_key(w, "ended");
	pfs_json_bool(w, p->ended);
	pfs_json_key(w, "exit_status");
	if (p->ended && p->have_status)
		pfs_json_int(w, p->exit_status);
	else
		pfs_json_null(w);
	json_str(w, "end_reason", p->ended ? pfs_report_end_reason(p->end_reason) : NULL);
	if (p->exec_path)
		json_str(w, "exec_path", p->exec_path);
	pfs_json_key(w, "children");
	pfs_json_begin_array(w);
	for (size_t i = 0; i < p->nchildren; i++)
		pfs_json_uint(w, p->children[i].pid);
	pfs_json_end_array(w);
	json_u64(w, "sites_total", p->nsites);
	json_u64(w, "sites_shown", rp->nsites);
	json_str(w, "log", p->log_path);
	json_u64(w, "bad_records", p->bad_records);
	json_u64(w, "unknown_records", p->unknown_records);
	pfs_json_end_object(w);
}

/* What the report was asked to show, as the options said it (no object when nothing). */
static void json_filter(struct pfs_json *w, const struct pfs_report *rep)
{
	const struct pfs_report_filter *f = rep->filter;

	if (!f)
		return;
	pfs_json_key(w, "filter");
	pfs_json_begin_object(w);
	pfs_json_key(w, "pids");
	pfs_json_begin_array(w);
	for (size_t i = 0; i < f->npids; i++)
		pfs_json_uint(w, f->pids[i]);
	pfs_json_end_array(w);
	json_str(w, "comm", f->comm);
	json_str(w, "site", f->site);
	json_str(w, "module", f->module);
	pfs_json_kv_uint_or_null(w, "since_ns", f->since_set, f->since_ns);
	pfs_json_kv_uint_or_null(w, "until_ns", f->until_set, f->until_ns);
	pfs_json_end_object(w);
}

/* The run-wide ranking: which process and site, most faults first. */
static void json_top(struct pfs_json *w, const struct pfs_report *rep, unsigned top)
{
	size_t n = top && top < rep->nranked ? top : rep->nranked;

	pfs_json_key(w, "top_sites");
	pfs_json_begin_array(w);
	for (size_t i = 0; i < n; i++) {
		const struct pfs_rproc *rp = rep->ranked[i].rp;
		const struct pfs_rsite *rs = &rp->sites[rep->ranked[i].index];

		pfs_json_begin_object(w);
		json_u64(w, "pid", rp->proc->pid);
		json_u64(w, "exec_gen", rp->proc->exec_gen);
		json_u64(w, "id", rs->id);
		json_u64(w, "first_touch_faults", rs->site->first_touch_faults);
		json_u64(w, "cow_faults", rs->site->cow_faults);
		json_u64(w, "bytes_allocated", rs->site->bytes_allocated);
		pfs_json_end_object(w);
	}
	pfs_json_end_array(w);
}

int pfs_report_json(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o)
{
	static const struct pfs_report_opts none;
	struct pfs_json w;
	int rc;

	if (!o)
		o = &none;
	pfs_json_init(&w, out, 2);
	pfs_json_begin_object(&w);
	json_u64(&w, "version", 1);
	json_str(&w, "mode", rep->mode);
	pfs_json_key(&w, "processes");
	pfs_json_begin_array(&w);
	for (size_t i = 0; i < rep->nprocs; i++)
		json_proc(&w, &rep->procs[i], o);
	pfs_json_end_array(&w);
	/* extras */
	json_top(&w, rep, o->top);
	json_u64(&w, "processes_in_run", rep->nprocs_run);
	json_filter(&w, rep);
	pfs_json_key(&w, "warnings");
	pfs_json_begin_array(&w);
	for (size_t i = 0; i < rep->run->warnings.n; i++)
		pfs_json_string(&w, rep->run->warnings.msgs[i]);
	pfs_json_end_array(&w);
	pfs_json_end_object(&w);
	rc = pfs_json_finish(&w);
	/* misuse would be a bug here; only the stream can fail */
	return rc ? -EIO : 0;
}
