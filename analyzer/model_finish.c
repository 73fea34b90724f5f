/*
 * Finishing a loaded run (model.h): modules unloaded in order, large blocks
 * replayed, the process tree linked, exact mode's faults attributed (after
 * the tree: owners may be in fork parents' heaps), sites ranked.
 */
#include "model.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "blocks.h"
#include "faults.h"

/* ---- finish: modules, rank, totals, tree -------------------------------- */

static int cmp_module(const void *a, const void *b)
{
	const struct pfs_module *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void apply_unloads(struct pfs_proc *p)
{
	if (p->nmodules)
		qsort(p->modules, p->nmodules, sizeof(*p->modules), cmp_module);
	for (size_t u = 0; u < p->nunloads; u++) {
		/* the latest load of that id before the unload */
		for (size_t i = p->nmodules; i-- > 0;) {
			struct pfs_module *m = &p->modules[i];

			if (m->id == p->unloads[u].id && m->seq <= p->unloads[u].seq) {
				if (p->unloads[u].seq < m->unload_seq)
					m->unload_seq = p->unloads[u].seq;
				break;
			}
		}
	}
}

static uint64_t site_faults(const struct pfs_site *s)
{
	return s->first_touch_faults + s->cow_faults;
}

/* A site's weight in the ranking: its faults, and the pages a policy populated for it (faults moved, not gone). */
static uint64_t site_weight(const struct pfs_site *s)
{
	return site_faults(s) + s->prefaulted_pages;
}

int pfs_model_cmp_site(const struct pfs_site *x, const struct pfs_site *y)
{
	/* the shim's own memory ([pfshim]) after the program's, however many faults */
	if ((x->key.kind == PFS_KIND_SELF) != (y->key.kind == PFS_KIND_SELF))
		return x->key.kind == PFS_KIND_SELF ? 1 : -1;
	if (site_weight(x) != site_weight(y))
		return site_weight(x) > site_weight(y) ? -1 : 1;
	if (x->bytes_allocated != y->bytes_allocated)
		return x->bytes_allocated > y->bytes_allocated ? -1 : 1;
	if (x->allocations != y->allocations)
		return x->allocations > y->allocations ? -1 : 1;
	if (x->key.stack != y->key.stack)
		return x->key.stack < y->key.stack ? -1 : 1;
	return x->key.kind < y->key.kind ? -1 : x->key.kind > y->key.kind;
}

static int cmp_site(const void *a, const void *b)
{
	return pfs_model_cmp_site(*(struct pfs_site *const *)a, *(struct pfs_site *const *)b);
}

int pfs_model_rank(struct pfs_proc *p)
{
	struct pfs_site *s, *tmp;
	size_t n = 0;

	p->nsites = HASH_COUNT(p->sites);
	memset(&p->totals, 0, sizeof(p->totals));
	p->self_faults = 0;
	free(p->ranked);
	p->ranked = NULL;
	if (!p->nsites)
		return 0;
	p->ranked = malloc(p->nsites * sizeof(*p->ranked));
	if (!p->ranked)
		return -ENOMEM;
	HASH_ITER(hh, p->sites, s, tmp) {
		p->ranked[n++] = s;
		if (s->key.kind == PFS_KIND_SELF) { /* the shim's own: shown apart, never in the program's totals */
			p->self_faults += site_faults(s);
			continue;
		}
		p->totals.first_touch_faults += s->first_touch_faults;
		p->totals.cow_faults += s->cow_faults;
		p->totals.allocations += s->allocations;
		p->totals.bytes_allocated += s->bytes_allocated;
		p->totals.prefaulted_pages += s->prefaulted_pages;
		p->totals.bytes_live_at_end += s->bytes_live_at_end;
	}
	qsort(p->ranked, n, sizeof(*p->ranked), cmp_site);
	return 0;
}

/* The kernel's count for this image: its process's count at the end, less the previous image's at its exec. */
static void coverage(struct pfs_proc *p)
{
	p->accounted_faults = p->totals.first_touch_faults + p->totals.cow_faults;
	if (!p->have_rusage)
		return;
	const struct pfs_proc *prev = p->via_exec && p->parent && p->parent->have_rusage ? p->parent : NULL;
	uint64_t base = prev ? prev->minflt_end : 0, major_base = prev ? prev->majflt_end : 0;
	p->kernel_minor_faults = p->minflt_end >= base ? p->minflt_end - base : 0;
	p->kernel_major_faults = p->majflt_end >= major_base ? p->majflt_end - major_base : 0;
}

static int cmp_wait_pt(const void *a, const void *b)
{
	const struct pfs_wait_pt *x = a, *y = b;
	return (x->t > y->t) - (x->t < y->t);
}

/*
 * The main thread's wait for a CPU over this image's life: the SCAN records'
 * samples and PROC_END's, never more than the time gone by.  The kernel's
 * count runs from the fork: a forked child's is its own, an exec'd image's
 * less the previous image's at the exec; for a first image (its parent not
 * traced: the wait between the fork and the shim's start unknown) from its
 * first sample on, as if it did not wait before.
 */
static int wait_series(struct pfs_proc *p)
{
	p->unwaited_share = 1;
	size_t n = 0;
	for (size_t i = 0; i < p->nscan_evs; i++)
		n += p->scan_evs[i].have_wait;
	if (!n && !p->have_sched)
		return 0;
	struct pfs_wait_pt *w = malloc((n + 2) * sizeof(*w));
	if (!w)
		return -ENOMEM;
	size_t k = 0;
	w[k++] = (struct pfs_wait_pt){0, 0};
	for (size_t i = 0; i < p->nscan_evs; i++)
		if (p->scan_evs[i].have_wait && p->scan_evs[i].time_ns >= p->start_ns)
			w[k++] = (struct pfs_wait_pt){p->scan_evs[i].time_ns - p->start_ns, p->scan_evs[i].wait_ns};
	if (p->have_sched && p->end_ns >= p->start_ns)
		w[k++] = (struct pfs_wait_pt){p->end_ns - p->start_ns, p->wait_ns_end};
	qsort(w + 1, k - 1, sizeof(*w), cmp_wait_pt);
	uint64_t base = 0;
	if (p->via_exec && p->parent && p->parent->have_sched)
		base = p->parent->wait_ns_end;
	else if (!(p->file_flags & PFS_FILE_FORKED) && k > 1)
		base = w[1].wait;
	for (size_t i = 1; i < k; i++) {
		uint64_t v = w[i].wait > base ? w[i].wait - base : 0;
		/* never less than before, never more than the time since */
		if (v < w[i - 1].wait)
			v = w[i - 1].wait;
		if (v > w[i - 1].wait + (w[i].t - w[i - 1].t))
			v = w[i - 1].wait + (w[i].t - w[i - 1].t);
		w[i].wait = v;
	}
	p->waits = w;
	p->nwaits = k;
	if (w[k - 1].t)
		p->unwaited_share = 1 - (double)w[k - 1].wait / (double)w[k - 1].t;
	return 0;
}

static int cmp_proc(const void *a, const void *b)
{
	const struct pfs_proc *x = *(struct pfs_proc *const *)a;
	const struct pfs_proc *y = *(struct pfs_proc *const *)b;

	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->exec_gen != y->exec_gen)
		return x->exec_gen < y->exec_gen ? -1 : 1;
	return strcmp(x->log_path, y->log_path);
}

static const struct pfs_child *fork_record(const struct pfs_proc *parent, uint64_t pid)
{
	for (size_t i = parent->nchildren; i-- > 0;)
		if (parent->children[i].pid == pid)
			return &parent->children[i];
	return NULL;
}

/*
 * Parents come earlier in start order, so a link always points back and the
 * tree has no cycles whatever pids the logs claim.
 */
static int link_tree(struct pfs_run *run)
{
	for (size_t i = 0; i < run->nprocs; i++) {
		struct pfs_proc *p = run->procs[i], *parent = NULL;
		const struct pfs_child *fr = NULL;

		for (size_t j = i; j-- > 0;) {
			struct pfs_proc *q = run->procs[j];

			if (p->exec_gen > 0) {
				/* this pid's image before the exec */
				if (q->pid == p->pid && q->exec_gen < p->exec_gen &&
				    (!parent || q->exec_gen > parent->exec_gen))
					parent = q;
				continue;
			}
			if (q->pid != p->ppid)
				continue;
			/* the image that logged the fork, else the latest one of that pid */
			if ((fr = fork_record(q, p->pid)) != NULL) {
				parent = q;
				break;
			}
			if (!parent)
				parent = q;
		}
		if (!parent)
			continue;
		p->parent = parent;
		p->via_exec = p->exec_gen > 0;
		if (!p->via_exec && (fr || (p->file_flags & PFS_FILE_FORKED))) {
			p->fork_parent = parent;
			p->fork_seq = fr ? fr->seq : UINT64_MAX;
		}
		if (pfs_an_reserve((void **)&parent->kids, &parent->kids_cap, parent->nkids + 1,
				    sizeof(*parent->kids)))
			return -ENOMEM;
		parent->kids[parent->nkids++] = p;
	}
	return 0;
}

int pfs_model_finish(struct pfs_run *run)
{
	int rc = 0;

	if (run->nprocs)
		qsort(run->procs, run->nprocs, sizeof(*run->procs), cmp_proc);
	for (size_t i = 0; i < run->nprocs && !rc; i++) {
		struct pfs_proc *p = run->procs[i];

		apply_unloads(p);
		rc = pfs_blocks_replay(p);
		if ((!p->command || !*p->command) && p->exe) {
			/* no argv logged: the executable names it best */
			free(p->command);
			p->command = strdup(p->exe);
			if (!p->command)
				return -ENOMEM;
		}
		if (!p->have_start)
			pfs_an_warn(&run->warnings, "%s: no PROC_START record: pid %" PRIu64
				     " (from the file header), command unknown", p->log_path, p->pid);
		if (p->lost_records)
			pfs_an_warn(&run->warnings, "pid %" PRIu64 " (%s): the shim lost %" PRIu32 " records"
				     " (its log could not grow: disk full?); counts are incomplete", p->pid,
				     p->command && *p->command ? p->command : "?", p->lost_records);
		if (!p->ended)
			pfs_an_warn(&run->warnings, "pid %" PRIu64 " (%s) did not end normally:"
				     " no PROC_END (killed, or still running)", p->pid,
				     p->command && *p->command ? p->command : "?");
	}
	if (!rc)
		rc = link_tree(run);
	/* Exact mode's faults find their owners in the fork parents' heaps too: after the tree. */
	for (size_t i = 0; i < run->nprocs && !rc; i++) {
		rc = pfs_faults_attribute(run->procs[i], &run->warnings);
		if (!rc)
			rc = pfs_model_rank(run->procs[i]);
		if (!rc) {
			coverage(run->procs[i]);
			rc = wait_series(run->procs[i]);
		}
	}
	return rc;
}
