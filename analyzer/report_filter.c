/*
 * The report's filter (struct pfs_report_filter): the processes and sites
 * it keeps, their faults counted again in a time window, evidence and
 * storms kept in step.  See report_filter.h.
 */
#include "report_filter.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>

#include <uthash.h>

static bool glob(const char *pattern, const char *s)
{
	return s && !fnmatch(pattern, s, 0);
}

static bool want_proc(const struct pfs_report_filter *f, const struct pfs_proc *p)
{
	bool pid = !f->npids;

	for (size_t i = 0; i < f->npids && !pid; i++)
		pid = f->pids[i] == p->pid;
	if (!pid)
		return false;
	if (!f->comm)
		return true;
	return glob(f->comm, p->command) || (p->argc && glob(f->comm, pfs_an_basename(p->argv[0]))) ||
	       (p->exe && glob(f->comm, pfs_an_basename(p->exe)));
}

static bool want_site(const struct pfs_report_filter *f, const struct pfs_rsite *rs)
{
	if (f->module) {
		const struct pfs_rframe *l = pfs_report_label(rs);

		if (!l || !glob(f->module, l->module))
			return false;
	}
	if (f->site) {
		char name[256];
		bool any = false;

		for (size_t i = 0; i < rs->nframes && !any; i++)
			any = glob(f->site, rs->frames[i].function);
		if (!any) {	/* a frame without a symbol is matched by its one-line name */
			pfs_report_site_name(rs, name, sizeof(name));
			any = glob(f->site, name);
		}
		if (!any)
			return false;
	}
	if ((f->since_set || f->until_set) && !pfs_report_site_faults(rs))
		return false;	/* nothing of it in the window */
	return true;
}

/*
 * The time window: each site's faults counted again from its touch events
 * (a fast-mode touch at the scan that found it, an exact-mode one at the
 * fault), those from since to until after the process start; then the
 * model's ranking and totals again.  Allocations and bytes stay the run's.
 */
static int window_faults(struct pfs_proc *p, const struct pfs_report_filter *f)
{
	struct pfs_site *s, *tmp;

	HASH_ITER(hh, p->sites, s, tmp)
		s->first_touch_faults = s->cow_faults = s->first_touch_pages = s->cow_pages = 0;
	for (size_t i = 0; i < p->ntouches; i++) {
		const struct pfs_touch_ev *t = &p->touches[i];
		uint64_t at = t->time_ns > p->start_ns ? t->time_ns - p->start_ns : 0;

		if ((f->since_set && at < f->since_ns) || (f->until_set && at > f->until_ns))
			continue;
		s = pfs_model_site(p, t->stack, t->kind);
		if (!s)
			continue;
		if (t->cow) {
			s->cow_faults += t->faults;
			s->cow_pages += t->pages;
		} else {
			s->first_touch_faults += t->faults;
			s->first_touch_pages += t->pages;
		}
	}
	return pfs_model_rank(p);
}

/* Sites by the model's ranking rule, through an index array (their evidence moves with them). */
static int cmp_index(const void *a, const void *b, void *arg)
{
	const struct pfs_rsite *sites = arg;

	return pfs_model_cmp_site(sites[*(const size_t *)a].site, sites[*(const size_t *)b].site);
}


static void drop_proc(struct pfs_rproc *rp)
{
	for (size_t j = 0; j < rp->nsites; j++)
		pfs_report_free_rsite(&rp->sites[j]);
	free(rp->sites);
	pfs_storms_free(&rp->series);
	free(rp->evidence);
}

/*
 * A storm is shown when it overlaps the window, and (with a site filter)
 * its top site is shown; top_index follows the sites' new places (pos[]).
 */
static void keep_storms(struct pfs_rproc *rp, const struct pfs_report_filter *f, const size_t *pos)
{
	struct pfs_series *s = &rp->series;
	size_t n = 0;

	for (size_t i = 0; i < s->nstorms; i++) {
		struct pfs_storm st = s->storms[i];

		if (st.top_index != SIZE_MAX)
			st.top_index = pos[st.top_index];
		if ((f->since_set && st.end_ns < f->since_ns) ||
		    (f->until_set && st.start_ns > f->until_ns) ||
		    ((f->site || f->module) && st.top_index == SIZE_MAX))
			continue;
		s->storms[n++] = st;
	}
	s->nstorms = n;
}

/*
 * One process's sites as the filter wants them: under a time window their
 * faults counted again and ranked again; those it does not want dropped;
 * evidence and storms kept in step.  0 or -ENOMEM.
 */
static int filter_sites(struct pfs_rproc *rp, const struct pfs_report_filter *f)
{
	size_t n = rp->nsites, kept = 0, *order = malloc((n + 1) * sizeof(*order));
	size_t *pos = malloc((n + 1) * sizeof(*pos));
	struct pfs_rsite *sites = malloc((n + 1) * sizeof(*sites));
	struct pfs_evidence *ev = rp->evidence ? malloc((n + 1) * sizeof(*ev)) : NULL;
	int rc = 0;

	if (!order || !pos || !sites || (rp->evidence && !ev)) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t j = 0; j < n; j++)
		order[j] = j;
	if (f->since_set || f->until_set) {
		/* the model is the report's to change: loaded for it alone */
		rc = window_faults((struct pfs_proc *)rp->proc, f);
		if (rc)
			goto out;
		qsort_r(order, n, sizeof(*order), cmp_index, rp->sites);
	}
	for (size_t k = 0; k < n; k++) {
		size_t j = order[k];

		pos[j] = SIZE_MAX;
		if (!want_site(f, &rp->sites[j])) {
			pfs_report_free_rsite(&rp->sites[j]);
			continue;
		}
		pos[j] = kept;
		if (ev)
			ev[kept] = rp->evidence[j];
		sites[kept] = rp->sites[j];
		if (sites[kept].category.function)	/* it names its own array: moved with it */
			sites[kept].category.function = sites[kept].category_name;
		kept++;
	}
	keep_storms(rp, f, pos);
	free(rp->sites);
	free(rp->evidence);
	rp->sites = sites;
	rp->evidence = ev;
	rp->nsites = kept;
	sites = NULL;
	ev = NULL;
out:
	free(order);
	free(pos);
	free(sites);
	free(ev);
	return rc;
}

/* The processes and sites the filter keeps, in place. */
int pfs_report_apply_filter(struct pfs_report *rep, const struct pfs_report_filter *f)
{
	size_t kept = 0;
	int rc = 0;

	for (size_t i = 0; i < rep->nprocs; i++) {
		struct pfs_rproc *rp = &rep->procs[i];

		if (rc || !want_proc(f, rp->proc)) {
			drop_proc(rp);
			continue;
		}
		rc = filter_sites(rp, f);
		rep->procs[kept++] = *rp;
	}
	rep->nprocs = kept;
	return rc;
}
