/*
 * The run model's data (model.h): sites, stacks and modules of a process,
 * looked up; a process freed.  Loading a run and finishing it are
 * model_load.c's.
 */
#include "model.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>


struct pfs_site *pfs_model_site(const struct pfs_proc *p, uint32_t stack, uint32_t kind)
{
	struct pfs_site_key key = {.stack = stack, .kind = kind};
	struct pfs_site *s;

	HASH_FIND(hh, p->sites, &key, sizeof(key), s);
	return s;
}

struct pfs_site *pfs_model_site_get(struct pfs_proc *p, uint32_t stack, uint32_t kind)
{
	struct pfs_site *s = pfs_model_site(p, stack, kind);

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->key.stack = stack;
	s->key.kind = kind;
	HASH_ADD(hh, p->sites, key, sizeof(s->key), s);
	return s;
}

/* The main thread's cumulative wait at t (linear between samples; after the last, the last). */
static double wait_at(const struct pfs_proc *p, uint64_t t)
{
	size_t lo = 0, hi = p->nwaits;	/* the last sample at or before t: waits[lo] */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->waits[mid].t <= t)
			lo = mid;
		else
			hi = mid;
	}
	const struct pfs_wait_pt *a = &p->waits[lo];
	if (lo + 1 >= p->nwaits || t <= a->t)
		return (double)a->wait;
	const struct pfs_wait_pt *b = &p->waits[lo + 1];
	return (double)a->wait + (double)(b->wait - a->wait) * (double)(t - a->t) / (double)(b->t - a->t);
}

uint64_t pfs_model_unwaited_ns(const struct pfs_proc *p, uint64_t from, uint64_t to)
{
	if (to <= from)
		return 0;
	uint64_t span = to - from;
	if (!p->nwaits)
		return span;
	double un = (double)span - (wait_at(p, to) - wait_at(p, from));
	return un > (double)span / 100 ? (uint64_t)un : span / 100;
}

void pfs_model_proc_free(struct pfs_proc *p)
{
	struct pfs_stack *st, *st_tmp;
	struct pfs_pycode *pc, *pc_tmp;
	struct pfs_site *si, *si_tmp;

	if (!p)
		return;
	free(p->waits);
	HASH_ITER(hh, p->pycodes, pc, pc_tmp) {
		HASH_DEL(p->pycodes, pc);
		free(pc->file);
		free(pc->name);
		free(pc);
	}
	HASH_ITER(hh, p->stacks, st, st_tmp) {
		HASH_DEL(p->stacks, st);
		free(st->frames);
		free(st);
	}
	HASH_ITER(hh, p->sites, si, si_tmp) {
		struct pfs_touch_pc *tp, *tp_tmp;

		HASH_ITER(hh, si->touch_pcs, tp, tp_tmp) {
			HASH_DEL(si->touch_pcs, tp);
			free(tp);
		}
		HASH_DEL(p->sites, si);
		free(si->policy);
		free(si);
	}
	for (size_t i = 0; i < p->nmodules; i++)
		free(p->modules[i].path);
	for (uint32_t i = 0; p->argv && i < p->argc; i++)
		free(p->argv[i]);
	free(p->argv);
	free(p->modules);
	free(p->unloads);
	free(p->children);
	pfs_an_release(p->evs, p->evs_cap, sizeof(*p->evs));
	pfs_an_release(p->touches, p->touches_cap, sizeof(*p->touches));
	pfs_an_release(p->faults, p->faults_cap, sizeof(*p->faults));
	free(p->carves);
	free(p->scan_evs);
	free(p->ranked);
	free(p->kids);
	free(p->exe);
	free(p->command);
	free(p->exec_path);
	free(p->log_path);
	free(p);
}

void pfs_model_init(struct pfs_run *run, FILE *diag)
{
	memset(run, 0, sizeof(*run));
	run->diag = diag;
}

void pfs_model_free(struct pfs_run *run)
{
	for (size_t i = 0; i < run->nprocs; i++)
		pfs_model_proc_free(run->procs[i]);
	free(run->procs);
	pfs_an_warn_free(&run->warnings);
	memset(run, 0, sizeof(*run));
}

/* ---- lookups ------------------------------------------------------------ */

const struct pfs_stack *pfs_model_stack(const struct pfs_proc *p, uint32_t id,
					const struct pfs_proc **owner)
{
	/* a forked child inherits its parent's stack table with its memory */
	for (; p; p = p->fork_parent) {
		struct pfs_stack *s;

		HASH_FIND(hh, p->stacks, &id, sizeof(id), s);
		if (s) {
			if (owner)
				*owner = p;
			return s;
		}
	}
	return NULL;
}

const struct pfs_pycode *pfs_model_pycode(const struct pfs_proc *p, uint32_t id)
{
	/* like stacks: a forked child inherits its parent's functions */
	for (; p; p = p->fork_parent) {
		struct pfs_pycode *c;

		HASH_FIND(hh, p->pycodes, &id, sizeof(id), c);
		if (c)
			return c;
	}
	return NULL;
}

static const struct pfs_module *module_at(const struct pfs_proc *p, uint64_t addr,
					  uint64_t seq, bool strict)
{
	/* modules are sorted by seq: walk back from the latest */
	for (size_t i = p->nmodules; i-- > 0;) {
		const struct pfs_module *m = &p->modules[i];

		if (addr < m->start || addr >= m->end)
			continue;
		if (!strict || (m->seq <= seq && seq < m->unload_seq))
			return m;
	}
	return NULL;
}

const struct pfs_module *pfs_model_module_at(const struct pfs_proc *p, uint64_t addr,
					     uint64_t seq)
{
	const struct pfs_module *m;
	const struct pfs_proc *q;
	uint64_t s = seq;

	for (q = p; q; s = q->fork_seq, q = q->fork_parent) {
		m = module_at(q, addr, s, true);
		if (m)
			return m;
	}
	return module_at(p, addr, seq, false);
}

