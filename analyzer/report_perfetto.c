/*
 * `pfshim report --format perfetto`: Chrome trace event JSON, which
 * ui.perfetto.dev and chrome://tracing open.  Per traced process: its name
 * (metadata), a counter track "faults/s" with one "C" event per bucket of
 * the storm series, and on a "storms" thread one "X" slice per storm named
 * after its top site.  Times are microseconds from the start of the run's
 * first process, so processes line up.  The filters choose the processes
 * and storms (report.c); a time window also the counter's buckets.
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "json.h"

#define TID_STORMS 1

static void meta(struct pfs_json *w, uint64_t pid, uint64_t tid, const char *what,
		 const char *name)
{
	pfs_json_begin_object(w);
	pfs_json_key(w, "ph");
	pfs_json_string(w, "M");
	pfs_json_key(w, "pid");
	pfs_json_uint(w, pid);
	pfs_json_key(w, "tid");
	pfs_json_uint(w, tid);
	pfs_json_key(w, "name");
	pfs_json_string(w, what);
	pfs_json_key(w, "args");
	pfs_json_begin_object(w);
	pfs_json_key(w, "name");
	pfs_json_string(w, name);
	pfs_json_end_object(w);
	pfs_json_end_object(w);
}

static void event_head(struct pfs_json *w, const char *ph, uint64_t pid, uint64_t tid,
		       const char *name, double ts_us)
{
	pfs_json_begin_object(w);
	pfs_json_key(w, "ph");
	pfs_json_string(w, ph);
	pfs_json_key(w, "pid");
	pfs_json_uint(w, pid);
	pfs_json_key(w, "tid");
	pfs_json_uint(w, tid);
	pfs_json_key(w, "name");
	pfs_json_string(w, name);
	pfs_json_key(w, "ts");
	pfs_json_double(w, ts_us);
}

/* Bucket i of s within the filter's time window (from the process start), or no window. */
static bool in_window(const struct pfs_report_filter *f, const struct pfs_series *s, size_t i)
{
	uint64_t a = (uint64_t)i * s->bucket_ns, b = a + s->bucket_ns;

	return !f || ((!f->since_set || b > f->since_ns) && (!f->until_set || a <= f->until_ns));
}

static void proc_events(struct pfs_json *w, const struct pfs_rproc *rp, uint64_t run_origin,
			const struct pfs_report_filter *f)
{
	const struct pfs_proc *p = rp->proc;
	const struct pfs_series *s = &rp->series;
	double base = (double)(s->origin_ns > run_origin ? s->origin_ns - run_origin : 0) / 1e3;
	char pname[160], sname[300];

	snprintf(pname, sizeof(pname), "%.128s (pid %" PRIu64 ")", p->command ? p->command : "?",
		 p->pid);
	meta(w, p->pid, 0, "process_name", pname);
	meta(w, p->pid, TID_STORMS, "thread_name", "storms");
	for (size_t i = 0; i < s->nbuckets; i++) {
		if (!in_window(f, s, i))
			continue;
		event_head(w, "C", p->pid, 0, "faults/s",
			   base + (double)i * (double)s->bucket_ns / 1e3);
		pfs_json_key(w, "args");
		pfs_json_begin_object(w);
		pfs_json_key(w, "faults/s");
		pfs_json_double(w, s->faults[i] * 1e9 / (double)s->bucket_ns);
		pfs_json_end_object(w);
		pfs_json_end_object(w);
	}
	if (s->nbuckets) {	/* back to 0 where the series ends */
		event_head(w, "C", p->pid, 0, "faults/s",
			   base + (double)s->nbuckets * (double)s->bucket_ns / 1e3);
		pfs_json_key(w, "args");
		pfs_json_begin_object(w);
		pfs_json_key(w, "faults/s");
		pfs_json_uint(w, 0);
		pfs_json_end_object(w);
		pfs_json_end_object(w);
	}
	for (size_t i = 0; i < s->nstorms; i++) {
		const struct pfs_storm *st = &s->storms[i];
		char site[256] = "?";

		if (st->top_index != SIZE_MAX)
			pfs_report_site_label(&rp->sites[st->top_index], site, sizeof(site));
		snprintf(sname, sizeof(sname), "storm: %s", site);
		event_head(w, "X", p->pid, TID_STORMS, sname, base + (double)st->start_ns / 1e3);
		pfs_json_key(w, "dur");
		pfs_json_double(w, (double)(st->end_ns - st->start_ns) / 1e3);
		pfs_json_key(w, "args");
		pfs_json_begin_object(w);
		pfs_json_key(w, "faults");
		pfs_json_uint(w, st->faults);
		pfs_json_key(w, "faults_per_s");
		pfs_json_double(w, st->rate);
		pfs_json_key(w, "top_site");
		if (st->top_id)
			pfs_json_uint(w, st->top_id);
		else
			pfs_json_null(w);
		pfs_json_key(w, "top_site_faults");
		pfs_json_uint(w, st->top_faults);
		pfs_json_key(w, "rank");
		pfs_json_uint(w, i + 1);
		if (st->top_index != SIZE_MAX && rp->evidence) {	/* docs/advisor.md */
			char line[640];

			pfs_evidence_summary(line, sizeof(line), &rp->evidence[st->top_index]);
			pfs_json_key(w, "top_site_evidence");
			pfs_json_string(w, line);
		}
		pfs_json_end_object(w);
		pfs_json_end_object(w);
	}
}

int pfs_report_perfetto(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o)
{
	uint64_t origin = UINT64_MAX;
	struct pfs_json w;

	(void)o;
	for (size_t i = 0; i < rep->nprocs; i++)
		if (rep->procs[i].series.origin_ns < origin)
			origin = rep->procs[i].series.origin_ns;
	pfs_json_init(&w, out, 0);
	pfs_json_begin_object(&w);
	pfs_json_key(&w, "displayTimeUnit");
	pfs_json_string(&w, "ms");
	pfs_json_key(&w, "traceEvents");
	pfs_json_begin_array(&w);
	for (size_t i = 0; i < rep->nprocs; i++)
		proc_events(&w, &rep->procs[i], origin, rep->filter);
	pfs_json_end_array(&w);
	pfs_json_end_object(&w);
	return pfs_json_finish(&w) ? -EIO : 0;
}
