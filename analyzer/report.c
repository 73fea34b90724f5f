/*
 * Building the report: resolve each site's stack (module at the stack's
 * seq, then the symbolizer) and give sites report-wide ids; the filter
 * (report_filter.c) picks from them, then the run-wide ranking.  See report.h.
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "faultcost.h"
#include "jitmap.h"
#include "label.h"
#include "pyframes.h"
#include "report_filter.h"

struct pfs_site_id {
	char *key;
	uint32_t id;
	UT_hash_handle hh;
};

const char *pfs_report_end_reason(uint32_t reason)
{
	switch (reason) {
	case PFS_END_EXIT: return "exit";
	case PFS_END_UEXIT: return "_exit";
	case PFS_END_EXEC: return "exec";
	case PFS_END_SIGNAL: return "signal";
	case PFS_END_GONE: return "ended";
	}
	return NULL;
}

static int push_rframe(struct pfs_rsite *rs, size_t *cap, const struct pfs_rframe *f)
{
	if (pfs_an_reserve((void **)&rs->frames, cap, rs->nframes + 1, sizeof(*rs->frames)))
		return -ENOMEM;
	rs->frames[rs->nframes++] = *f;
	return 0;
}

/*
 * Resolve the frames of one site and write its canonical key: the kind and,
 * per frame, the module path and module-relative offset (the raw address
 * outside any module), which do not change with the load address.
 */
static int resolve_site(struct pfs_report *rep, struct pfs_sym *sym, const struct pfs_proc *p,
			struct pfs_rsite *rs, FILE *key)
{
	const struct pfs_proc *owner = p;
	const struct pfs_stack *st = NULL;
	size_t cap = 0;
	int rc;

	fprintf(key, "%" PRIu32, rs->site->key.kind);
	if (rs->site->key.stack == 0)
		return 0;	/* logged without a stack: no frames */
	if (rs->site->key.stack == PFS_STACK_ALLOCATOR) {
		/* exact mode: faults on pages no allocation covered, malloc's own writes */
		struct pfs_rframe f = {.function = "[allocator]"};

		fputs("|[allocator]", key);
		return push_rframe(rs, &cap, &f);
	}
	st = pfs_model_stack(p, rs->site->key.stack, &owner);
	if (!st) {
		rs->stack_missing = true;
		/* unresolvable, so only equal within this process */
		fprintf(key, "|missing:%s:%" PRIu32, p->log_path, rs->site->key.stack);
		return pfs_an_warn(&rep->run->warnings, "pid %" PRIu64 ": stack %" PRIu32
				    " is used by a site but never recorded", p->pid,
				    rs->site->key.stack);
	}
	rs->stack_truncated = st->truncated;
	for (uint32_t i = 0; i < st->nframes; i++) {
		uint64_t a = st->frames[i];
		const struct pfs_module *m;
		const struct pfs_sym_result *res;
		struct pfs_rframe f = {.address = a, .offset = a};

		if (pfs_pyframe_in(st, a)) {
			pfs_pyframe_resolve(owner, a, &f, key);
			rc = push_rframe(rs, &cap, &f);
			if (rc)
				return rc;
			continue;
		}
		m = pfs_model_module_at(owner, a, st->seq);
		if (!m) {
			/* a return address: the call is the byte before it */
			f.function = pfs_jitmap_name(owner, a - 1);
			f.jit = f.function != NULL;
			if (f.jit)	/* its name, the same in every process */
				fprintf(key, "|jit:%s", f.function);
			else
				fprintf(key, "|0x%" PRIx64, a);
			rc = push_rframe(rs, &cap, &f);
			if (rc)
				return rc;
			continue;
		}
		f.offset = a - m->base;
		f.module = pfs_an_basename(m->path);
		f.module_path = m->path;
		fprintf(key, "|%s+0x%" PRIx64, m->path, f.offset);
		if (pfs_label_role(&f) == PFS_FRAME_SHIM)
			continue;	/* never shown: not worth reading the shim's symbols */
		/* a return address: the call is the instruction before it */
		res = pfs_sym_lookup(sym, m->path, m->build_id, m->build_id_len, f.offset - 1);
		if (!res)
			return -ENOMEM;
		for (size_t j = 0; j < res->n; j++) {
			f.function = res->frames[j].function;
			f.symbol = res->frames[j].symbol;
			f.source_path = res->frames[j].file;
			f.file = f.source_path ? pfs_an_basename(f.source_path) : NULL;
			f.line = res->frames[j].line;
			f.inlined = res->frames[j].inlined;
			rc = push_rframe(rs, &cap, &f);
			if (rc)
				return rc;
		}
	}
	return 0;
}

const char *pfs_report_syscall_name(int32_t nr)
{
#if defined(__x86_64__)
	static const struct {
		int32_t nr;
		const char *name;
	} names[] = {
		{0, "read"}, {1, "write"}, {4, "stat"}, {5, "fstat"}, {6, "lstat"}, {7, "poll"},
		{16, "ioctl"}, {17, "pread64"}, {18, "pwrite64"}, {19, "readv"}, {20, "writev"},
		{23, "select"}, {44, "sendto"}, {45, "recvfrom"}, {46, "sendmsg"}, {47, "recvmsg"},
		{61, "wait4"}, {78, "getdents"}, {89, "readlink"}, {96, "gettimeofday"},
		{202, "futex"}, {217, "getdents64"}, {228, "clock_gettime"}, {232, "epoll_wait"},
		{262, "newfstatat"}, {270, "pselect6"}, {271, "ppoll"}, {295, "preadv"},
		{299, "recvmmsg"}, {318, "getrandom"}, {326, "copy_file_range"}, {327, "preadv2"},
		{332, "statx"},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].nr == nr)
			return names[i].name;
#endif
	(void)nr;
	return NULL;
}

static int cmp_touch(const void *a, const void *b)
{
	const struct pfs_touch_pc *x = *(struct pfs_touch_pc *const *)a, *y = *(struct pfs_touch_pc *const *)b;

	if (x->faults != y->faults)
		return x->faults > y->faults ? -1 : 1;
	return x->key.pc < y->key.pc ? -1 : x->key.pc > y->key.pc;
}

/* The site's most frequent touch sites, each faulting instruction symbolized (no -1: not a return address). */
static int resolve_touches(struct pfs_sym *sym, const struct pfs_proc *p, struct pfs_rsite *rs)
{
	size_t n = HASH_COUNT(rs->site->touch_pcs), k = 0;
	struct pfs_touch_pc **all, *tp, *tmp;

	if (!n)
		return 0;
	all = malloc(n * sizeof(*all));
	if (!all)
		return -ENOMEM;
	HASH_ITER(hh, rs->site->touch_pcs, tp, tmp)
		all[k++] = tp;
	qsort(all, n, sizeof(*all), cmp_touch);
	rs->ntouches = n < PFS_REPORT_TOUCH_SITES ? n : PFS_REPORT_TOUCH_SITES;
	rs->touches = calloc(rs->ntouches, sizeof(*rs->touches));
	if (!rs->touches) {
		free(all);
		return -ENOMEM;
	}
	for (size_t i = rs->ntouches; i < n; i++)
		rs->touches_other += all[i]->faults;
	for (size_t i = 0; i < rs->ntouches; i++) {
		struct pfs_rtouch *t = &rs->touches[i];
		uint64_t a = all[i]->key.pc;
		const struct pfs_module *m = a ? pfs_model_module_at(p, a, UINT64_MAX) : NULL;

		t->faults = all[i]->faults;
		t->sys = (int32_t)all[i]->key.sys;
		t->frame.address = t->frame.offset = a;
		if (!m) {	/* JIT code: its name, if the runtime wrote a map (the instruction itself: no -1) */
			t->frame.function = a ? pfs_jitmap_name(p, a) : NULL;
			t->frame.jit = t->frame.function != NULL;
			continue;
		}
		t->frame.offset = a - m->base;
		t->frame.module = pfs_an_basename(m->path);
		t->frame.module_path = m->path;
		const struct pfs_sym_result *res =
			pfs_sym_lookup(sym, m->path, m->build_id, m->build_id_len, t->frame.offset);
		if (!res) {
			free(all);
			return -ENOMEM;
		}
		if (res->n) {
			t->frame.function = res->frames[0].function;
			t->frame.symbol = res->frames[0].symbol;
			t->frame.source_path = res->frames[0].file;
			t->frame.file = t->frame.source_path ? pfs_an_basename(t->frame.source_path) : NULL;
			t->frame.line = res->frames[0].line;
			t->frame.inlined = res->frames[0].inlined;
		}
	}
	free(all);
	return 0;
}

static int assign_id(struct pfs_report *rep, struct pfs_rsite *rs, char *key)
{
	struct pfs_site_id *e;

	HASH_FIND_STR(rep->ids, key, e);
	if (e) {
		free(key);
		rs->id = e->id;
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		free(key);
		return -ENOMEM;
	}
	e->key = key;
	e->id = ++rep->next_id;
	HASH_ADD_KEYPTR(hh, rep->ids, e->key, strlen(e->key), e);
	rs->id = e->id;
	return 0;
}

/* The process's storms (at this machine's cost per fault: faultcost.h), their top sites named by report id. */
static int storms_of(struct pfs_rproc *rp)
{
	struct pfs_storm_params prm;
	int rc;

	pfs_storms_defaults(&prm);
	if (rp->proc->ntouches)	/* measured once, and only when there are faults to weigh */
		prm.cost = *pfs_faultcost_get();
	rc = pfs_storms_compute(rp->proc, &prm, &rp->series);

	if (rc)
		return rc;
	for (size_t i = 0; i < rp->series.nstorms; i++) {
		struct pfs_storm *st = &rp->series.storms[i];

		for (size_t j = 0; j < rp->nsites; j++) {
			const struct pfs_site_key *k = &rp->sites[j].site->key;

			if (st->top_faults && k->stack == st->top.stack && k->kind == st->top.kind) {
				st->top_id = rp->sites[j].id;
				st->top_index = j;
				break;
			}
		}
	}
	return 0;
}

static int evidence_of(struct pfs_rproc *rp)
{
	const struct pfs_site **sites = calloc(rp->nsites + 1, sizeof(*sites));
	int rc;

	if (!sites)
		return -ENOMEM;
	for (size_t j = 0; j < rp->nsites; j++)
		sites[j] = rp->sites[j].site;
	rc = pfs_evidence_compute(rp->proc, &rp->series, sites, rp->nsites, &rp->evidence);
	free(sites);
	return rc;
}


/* Whether `rule` is one of the "; "-joined rules of a site's policy. */
static bool rule_applied(const char *applied, const char *rule, size_t len)
{
	for (const char *p = applied; p && (p = strstr(p, rule)) != NULL; p++)
		if ((p == applied || !strncmp(p - 2, "; ", 2)) && (p[len] == '\0' || p[len] == ';'))
			return true;
	return false;
}

int pfs_report_unmatched_rules(const struct pfs_report *rep, const char *policy, char **out)
{
	size_t len = 0;
	FILE *f = open_memstream(out, &len);
	bool first = true;

	if (!f)
		return -ENOMEM;
	for (const char *p = policy; p && *p;) {
		size_t n = strcspn(p, ";");
		const char *r = p;
		char *rule;
		bool applied = false;

		p += n + (p[n] == ';');
		while (n && strchr(" \t\n\r", *r))	/* the rule as the shim logs it: blanks trimmed */
			r++, n--;
		while (n && strchr(" \t\n\r", r[n - 1]))
			n--;
		if (!n || !(rule = strndup(r, n)))
			continue;
		for (size_t i = 0; i < rep->nprocs && !applied; i++)
			for (size_t j = 0; j < rep->procs[i].nsites && !applied; j++)
				applied = rule_applied(rep->procs[i].sites[j].site->policy, rule, n);
		if (!applied) {
			fprintf(f, "%s%s", first ? "" : "; ", rule);
			first = false;
		}
		free(rule);
	}
	if (fclose(f) || !*out) {
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

int pfs_report_warn_unmatched(struct pfs_report *rep, const char *policy)
{
	char *un = NULL;
	int rc = pfs_report_unmatched_rules(rep, policy, &un);

	if (!rc && *un)
		rc = pfs_an_warn(&rep->run->warnings, "policy: no allocation of the run matched '%s' "
				 "(site= matches a frame's function as reports name it, its symbol, or a "
				 "function inlined there: docs/policy.md)", un);
	free(un);
	return rc;
}

bool pfs_report_has_faults(const struct pfs_report *rep)
{
	return rep->by_faults;
}

/* The objects whose shown frames lack names or lines, explained once (symbolize.h). */
static int explain_missing(const struct pfs_report *rep, struct pfs_sym *sym)
{
	struct pfs_sym_missing m[64];
	size_t n = 0;
	int rc;

	for (size_t i = 0; i < rep->nprocs; i++)
		for (size_t j = 0; j < rep->procs[i].nsites; j++) {
			const struct pfs_rsite *rs = &rep->procs[i].sites[j];

			/* memory accounted by kind: its one frame is a segment's start, not code */
			for (size_t k = 0; k < rs->nframes && !pfs_kind_is_category(rs->site->key.kind); k++) {
				const struct pfs_rframe *f = &rs->frames[k];
				size_t e = 0;

				/* a path names a file to get symbols for (not the vdso) */
				if ((f->function && f->file) || !f->module_path || f->module_path[0] != '/')
					continue;
				while (e < n && strcmp(m[e].path, f->module_path))
					e++;
				if (e == n && n == PFS_AN_ARRAY_SIZE(m))
					continue;
				if (e == n)
					m[n++] = (struct pfs_sym_missing){.path = f->module_path};
				m[e].no_names |= !f->function;
			}
		}
	rc = pfs_sym_explain_missing(sym, m, n);
	return rc;
}

/* Resolve every site of every process and give ids, in report order: processes by start, sites by rank. */
static int build_sites(struct pfs_report *rep, struct pfs_run *run, struct pfs_sym *sym)
{
	int rc = 0;

	for (size_t i = 0; i < run->nprocs && !rc; i++) {
		const struct pfs_proc *p = run->procs[i];
		struct pfs_rproc *rp = &rep->procs[rep->nprocs++];

		rp->proc = p;
		if (!p->nsites)
			continue;
		rp->sites = calloc(p->nsites, sizeof(*rp->sites));
		if (!rp->sites)
			return -ENOMEM;
		for (size_t j = 0; j < p->nsites && !rc; j++) {
			struct pfs_rsite *rs = &rp->sites[rp->nsites++];
			char *key = NULL;
			size_t keylen = 0;
			FILE *kf;

			pfs_an_progress_update(run->progress, "symbolizing", i * 1000 / run->nprocs +
					       j * 1000 / p->nsites / run->nprocs, 1000);
			rs->site = p->ranked[j];
			kf = open_memstream(&key, &keylen);
			if (!kf)
				return -ENOMEM;
			rc = resolve_site(rep, sym, p, rs, kf);
			rs->label = pfs_label_site(rs->frames, &rs->nframes);
			pfs_label_category(rs);
			if (!rc)
				rc = resolve_touches(sym, p, rs);
			if (fclose(kf) != 0 || !key) {
				free(key);
				return -ENOMEM;
			}
			if (rc) {
				free(key);
				return rc;
			}
			rc = assign_id(rep, rs, key);
		}
	}
	return rc;
}


/* The model's ranking rule across processes; equals in run order. */
static int cmp_ref(const void *a, const void *b)
{
	const struct pfs_rref *x = a, *y = b;
	int c = pfs_model_cmp_site(x->rp->sites[x->index].site, y->rp->sites[y->index].site);

	if (c)
		return c;
	if (x->rp != y->rp)
		return x->rp < y->rp ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Every site shown, across processes, by the model's ranking rule (faults first). */
static int rank_run(struct pfs_report *rep)
{
	size_t n = 0;

	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_totals *t = &rep->procs[i].proc->totals;

		n += rep->procs[i].nsites;
		rep->by_faults |= t->first_touch_faults + t->cow_faults > 0;
	}
	if (!n)
		return 0;
	rep->ranked = malloc(n * sizeof(*rep->ranked));
	if (!rep->ranked)
		return -ENOMEM;
	for (size_t i = 0; i < rep->nprocs; i++)
		for (size_t j = 0; j < rep->procs[i].nsites; j++)
			if (rep->procs[i].sites[j].site->key.kind != PFS_KIND_SELF)	/* apart, as in the totals */
				rep->ranked[rep->nranked++] = (struct pfs_rref){&rep->procs[i], j};
	qsort(rep->ranked, rep->nranked, sizeof(*rep->ranked), cmp_ref);
	for (size_t k = 0; k < rep->nranked; k++)
		((struct pfs_rproc *)rep->ranked[k].rp)->sites[rep->ranked[k].index].rank = k + 1;
	return 0;
}

int pfs_report_build(struct pfs_report *rep, struct pfs_run *run, struct pfs_sym *sym,
		     const struct pfs_report_filter *filter)
{
	int rc = 0;

	memset(rep, 0, sizeof(*rep));
	rep->run = run;
	rep->filter = filter;
	rep->nprocs_run = run->nprocs;
	rep->mode = run->nprocs ? pfs_mode_name(run->procs[0]->mode) : pfs_mode_name(PFS_MODE_OFF);
	if (run->nprocs) {
		rep->procs = calloc(run->nprocs, sizeof(*rep->procs));
		if (!rep->procs)
			return -ENOMEM;
	}
	rc = build_sites(rep, run, sym);
	/* storms and evidence of the whole run, before a filter picks from them */
	for (size_t i = 0; i < rep->nprocs && !rc; i++) {
		pfs_an_progress_update(run->progress, "finding storms", i, rep->nprocs);
		rc = storms_of(&rep->procs[i]);
		if (!rc)
			rc = evidence_of(&rep->procs[i]);
	}
	if (!rc)
		rc = explain_missing(rep, sym);
	if (!rc && filter)
		rc = pfs_report_apply_filter(rep, filter);
	if (!rc)
		rc = rank_run(rep);
	return rc;
}

void pfs_report_free(struct pfs_report *rep)
{
	struct pfs_site_id *e, *tmp;

	HASH_ITER(hh, rep->ids, e, tmp) {
		HASH_DEL(rep->ids, e);
		free(e->key);
		free(e);
	}
	for (size_t i = 0; i < rep->nprocs; i++) {
		for (size_t j = 0; j < rep->procs[i].nsites; j++)
			pfs_report_free_rsite(&rep->procs[i].sites[j]);
		free(rep->procs[i].sites);
		pfs_storms_free(&rep->procs[i].series);
		free(rep->procs[i].evidence);
	}
	free(rep->procs);
	free(rep->ranked);
	memset(rep, 0, sizeof(*rep));
}

int pfs_report_load(struct pfs_report *rep, struct pfs_run *run, struct pfs_sym **sym,
		    char *const *paths, int npaths, FILE *diag, struct pfs_an_progress *progress,
		    const struct pfs_report_filter *filter)
{
	int rc = 0;

	memset(rep, 0, sizeof(*rep));
	*sym = NULL;
	pfs_model_init(run, diag);
	run->progress = progress;
	for (int i = 0; i < npaths && !rc; i++)
		rc = pfs_model_load_path(run, paths[i]);
	if (!rc)
		rc = pfs_model_finish(run);
	if (!rc)
		rc = pfs_sym_new(sym, &run->warnings, diag);
	if (!rc)
		rc = pfs_report_build(rep, run, *sym, filter);
	pfs_an_progress_end(progress);
	return rc;
}

void pfs_report_unload(struct pfs_report *rep, struct pfs_run *run, struct pfs_sym *sym)
{
	pfs_report_free(rep);
	pfs_sym_free(sym);
	pfs_model_free(run);
}
