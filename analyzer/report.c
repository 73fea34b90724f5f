/*
 * Building the report: resolve each site's stack (module at the stack's
 * seq, then the symbolizer) and give sites report-wide ids.  See report.h.
 */
#include "report.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "faultcost.h"
#include "label.h"
#include "pyframes.h"

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
		if (!m)
			continue;
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

const struct pfs_rframe *pfs_report_label(const struct pfs_rsite *rs)
{
	if (rs->category.function)
		return &rs->category;
	return rs->label < rs->nframes ? &rs->frames[rs->label] : NULL;
}


size_t pfs_report_label_index(const struct pfs_rsite *rs)
{
	return rs->label < rs->nframes ? rs->label : 0;
}

size_t pfs_report_depth_end(const struct pfs_rsite *rs, unsigned depth)
{
	size_t end = pfs_report_label_index(rs) + depth;

	return depth && end < rs->nframes ? end : rs->nframes;
}

uint64_t pfs_report_site_faults(const struct pfs_rsite *rs)
{
	return rs->site->first_touch_faults + rs->site->cow_faults;
}

uint64_t pfs_report_site_weight(const struct pfs_report *rep, const struct pfs_rsite *rs)
{
	return rep->by_faults ? pfs_report_site_faults(rs) : rs->site->bytes_allocated;
}

void pfs_report_frame_name(const struct pfs_rframe *f, char *buf, size_t len)
{
	if (f->function)
		snprintf(buf, len, "%s", f->function);
	else if (f->python)	/* a Python function never recorded */
		snprintf(buf, len, "?");
	else if (f->module)
		snprintf(buf, len, "%s+0x%" PRIx64, f->module, f->offset);
	else
		snprintf(buf, len, "0x%" PRIx64, f->address);
}

void pfs_report_site_name(const struct pfs_rsite *rs, char *buf, size_t len)
{
	const struct pfs_rframe *f = pfs_report_label(rs);

	if (f)
		pfs_report_frame_name(f, buf, len);
	else
		snprintf(buf, len, "?");
}

void pfs_report_site_label(const struct pfs_rsite *rs, char *buf, size_t len)
{
	const struct pfs_rframe *f = pfs_report_label(rs);
	size_t n;

	pfs_report_site_name(rs, buf, len);
	n = strlen(buf);
	if (f && f->file && n < len)
		snprintf(buf + n, len - n, f->line ? " (%s:%u)" : " (%s)", f->file, f->line);
}

int pfs_report_site_key(const struct pfs_rsite *rs, const struct pfs_proc *p, char **out)
{
	size_t len;
	FILE *f = open_memstream(out, &len);

	if (!f)
		return -ENOMEM;
	fputs(pfs_kind_name(rs->site->key.kind), f);
	if (rs->category.function)	/* memory accounted by kind has no stack: its name ("[data of X]") */
		fprintf(f, "|%s", rs->category.function);
	else if (rs->stack_missing)	/* nothing to match it by */
		fprintf(f, "|missing:%s:%" PRIu32, p->log_path, rs->site->key.stack);
	for (size_t i = 0; i < rs->nframes; i++) {
		const struct pfs_rframe *fr = &rs->frames[i];

		/* the file's base name: a build elsewhere names its sources by other paths */
		if (fr->function)
			fprintf(f, "|%s@%s:%u", fr->function, fr->file ? fr->file : "", fr->line);
		else if (fr->module)
			fprintf(f, "|%s+0x%" PRIx64, fr->module, fr->offset);
		else
			fprintf(f, "|0x%" PRIx64, fr->address);
	}
	if (fclose(f) || !*out)
		return -ENOMEM;
	return 0;
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

/* ---- the filter ---------------------------------------------------------- */

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

static void free_rsite(struct pfs_rsite *rs)
{
	free(rs->frames);
	free(rs->touches);
}

static void drop_proc(struct pfs_rproc *rp)
{
	for (size_t j = 0; j < rp->nsites; j++)
		free_rsite(&rp->sites[j]);
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
			free_rsite(&rp->sites[j]);
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
static int apply_filter(struct pfs_report *rep, const struct pfs_report_filter *f)
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
		rc = apply_filter(rep, filter);
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
			free_rsite(&rep->procs[i].sites[j]);
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
