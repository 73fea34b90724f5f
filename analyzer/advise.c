/*
 * The advisor over a whole report (pfs_adv_build); see advise.h and
 * docs/advisor.md.  The rules (advise_rules.c) give each site its advice;
 * then each rule is narrowed until it acts on no site that was advised
 * otherwise, and the rules are ordered so that none is tried after another
 * that would take its allocations.
 */
#include "advise.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "an_common.h"
#include "label.h"

/* ---- a report's sites --------------------------------------------------- */

/*
 * Rules name the site's label, the user's own code (label.h): never an
 * allocator's or a runtime's function, which every allocation of that
 * runtime shares.  NULL when the label is none of the user's.  A JIT's
 * code has no name the shim can match while the program runs (its names
 * are in the perf map, read afterwards): the rule names the runtime's
 * function that the JIT code called instead, the nearest named frame above
 * the label (V8's Runtime_GrowArrayElements under a script's function).
 */
static const char *user_function(const struct pfs_rsite *rs)
{
	const struct pfs_rframe *l = pfs_report_label(rs);

	if (!l || !l->function || rs->category.function || pfs_label_role(l) != PFS_FRAME_USER)
		return NULL;
	if (!l->jit)
		return l->function;
	for (size_t k = pfs_report_label_index(rs); k-- > 0;)
		if (rs->frames[k].function && !rs->frames[k].jit && !rs->frames[k].python)
			return rs->frames[k].function;
	return NULL;
}

/* The label when it is an allocator's or a runtime's (no rule names it): its function or object. */
static const char *runtime_label(const struct pfs_rsite *rs)
{
	const struct pfs_rframe *l = pfs_report_label(rs);

	if (!l || rs->category.function || pfs_label_role(l) == PFS_FRAME_USER)
		return NULL;
	return l->function ? l->function : l->module;
}

/* The object that called the allocator (module= matches it), when it is the user's: its base name. */
static const char *caller_module(const struct pfs_rproc *rp, const struct pfs_rsite *rs)
{
	const struct pfs_proc *owner = NULL;
	const struct pfs_stack *st = pfs_model_stack(rp->proc, rs->site->key.stack, &owner);
	const struct pfs_module *m;
	const char *base;

	if (!st || !st->nframes || !owner)
		return NULL;
	/* as the shim looks it up (preload/policy_apply.c): the call instruction, before the return address */
	m = pfs_model_module_at(owner, st->frames[0] - 1, st->seq);
	if (!m || !m->path)
		return NULL;
	base = strrchr(m->path, '/');
	return base ? base + 1 : m->path;
}

static bool module_is_users(const char *module)
{
	struct pfs_rframe f = {.module = module};

	return module && pfs_label_role(&f) == PFS_FRAME_USER;
}

bool pfs_adv_reaches(const struct pfs_adv_target *t, uint32_t target_kind, const struct pfs_rsite *rs,
		     const struct pfs_evidence *ev, const char *module)
{
	bool named = false;

	/* policies act on allocations with records of their own (preload/track.c), at allocation time */
	if (!ev || !ev->tracked_allocs || pfs_kind_is_category(rs->site->key.kind))
		return false;
	if (t->min_size && ev->max_size < t->min_size)
		return false;
	if (t->kind && rs->site->key.kind != target_kind)
		return false;
	if (t->site[0]) {
		for (size_t k = 0; k < rs->nframes && !named; k++) /* as the shim matches them: no JIT names */
			named = (rs->frames[k].function && !rs->frames[k].jit &&
				 !fnmatch(t->site, rs->frames[k].function, 0)) ||
				(rs->frames[k].symbol && !fnmatch(t->site, rs->frames[k].symbol, 0));
		if (!named)
			return false;
	}
	if (t->module[0] && (!module || fnmatch(t->module, module, 0)))
		return false;
	return t->site[0] || t->module[0];
}

static void merge(struct pfs_evidence *to, const struct pfs_evidence *from)
{
	to->tracked_allocs += from->tracked_allocs;
	to->requested_bytes += from->requested_bytes;
	to->requested_pages += from->requested_pages;
	to->touched_pages += from->touched_pages;
	to->touched_bytes += from->touched_bytes;
	to->touch_faults += from->touch_faults;
	to->tracked_touched_pages += from->tracked_touched_pages;
	to->tracked_touch_faults += from->tracked_touch_faults;
	to->populated_allocs += from->populated_allocs;
	to->reserved_allocs += from->reserved_allocs;
	to->shared_allocs += from->shared_allocs;
	to->cow_pages += from->cow_pages;
	to->cow_faults += from->cow_faults;
	to->prefaulted_pages += from->prefaulted_pages;
	if (from->min_size && (!to->min_size || from->min_size < to->min_size))
		to->min_size = from->min_size;
	if (from->max_size > to->max_size)
		to->max_size = from->max_size;
	if (from->storm_rate > to->storm_rate) {
		to->storm_rate = from->storm_rate;
		to->storm_faults = from->storm_faults;
	}
}

static uint64_t item_faults(const struct pfs_adv_item *it)
{
	return it->in.first_touch_faults + it->in.cow_faults;
}

static int cmp_item(const void *a, const void *b)
{
	const struct pfs_adv_item *x = a, *y = b;

	if (item_faults(x) != item_faults(y))
		return item_faults(x) > item_faults(y) ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int collect(const struct pfs_report *rep, struct pfs_adv_list *l, size_t *cap)
{
	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_rproc *rp = &rep->procs[i];

		for (size_t j = 0; rp->evidence && j < rp->nsites; j++) {
			const struct pfs_site *s = rp->sites[j].site;
			struct pfs_adv_item *it = NULL;

			for (size_t k = 0; k < l->n && !it; k++)
				if (l->items[k].id == rp->sites[j].id)
					it = &l->items[k];
			if (!it) {
				if (pfs_an_reserve((void **)&l->items, cap, l->n + 1, sizeof(*l->items)))
					return -ENOMEM;
				it = &l->items[l->n++];
				memset(it, 0, sizeof(*it));
				it->id = rp->sites[j].id;
				it->rp = rp;
				it->index = j;
				it->ev = rp->evidence[j];
				it->in.first_touch_faults = s->first_touch_faults;
				it->in.cow_faults = s->cow_faults;
			} else {
				const struct pfs_site *best = it->rp->sites[it->index].site;
				struct pfs_evidence sum = it->ev;

				/* the counts add up; the timings are those of the process that touched it first-hand */
				if (s->first_touch_faults > best->first_touch_faults ||
				    (s->first_touch_faults == best->first_touch_faults &&
				     s->cow_faults > best->cow_faults)) {
					it->rp = rp;
					it->index = j;
					sum = rp->evidence[j];
					merge(&sum, &it->ev);
				} else {
					merge(&sum, &rp->evidence[j]);
				}
				it->ev = sum;
				it->in.first_touch_faults += s->first_touch_faults;
				it->in.cow_faults += s->cow_faults;
			}
			if (rp->proc->fork_parent)
				it->in.child_cow_faults += s->cow_faults;
		}
	}
	return 0;
}

/* The actions advised for report-wide site `id`, rule or not ("" none: fine, quiet, sparse, a code change). */
static const char *actions_of(const struct pfs_adv_list *l, uint32_t id)
{
	for (size_t k = 0; k < l->n; k++)
		if (l->items[k].id == id)
			return l->items[k].adv.actions;
	return "";
}

/*
 * The first site of the report, other than `it`'s own, that a rule with
 * target t would act on and `stop` accepts (its process in *where); NULL none.
 */
static const struct pfs_rsite *first_reached(const struct pfs_report *rep, const struct pfs_adv_item *it,
					     const struct pfs_adv_target *t, const struct pfs_adv_list *l,
					     bool (*stop)(const struct pfs_adv_list *, const struct pfs_adv_item *,
							  const struct pfs_rsite *),
					     const struct pfs_rproc **where)
{
	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_rproc *rp = &rep->procs[i];

		for (size_t j = 0; rp->evidence && j < rp->nsites; j++) {
			const struct pfs_rsite *rs = &rp->sites[j];

			if (rs->id == it->id ||
			    !pfs_adv_reaches(t, it->in.kind, rs, &rp->evidence[j], caller_module(rp, rs)))
				continue;
			if (stop(l, it, rs)) {
				*where = rp;
				return rs;
			}
		}
	}
	return NULL;
}

/* A site the rule would reach that was advised something else (or nothing). */
static bool advised_otherwise(const struct pfs_adv_list *l, const struct pfs_adv_item *it, const struct pfs_rsite *rs)
{
	return strcmp(actions_of(l, rs->id), it->adv.actions) != 0;
}

/* Allocations of their own that the target names, besides the item's: in how many sites, of how many. */
static void reach_count(const struct pfs_report *rep, const struct pfs_adv_item *it, size_t *named, size_t *all)
{
	struct pfs_adv_target t = it->adv.target;

	t.min_size = 0;
	t.kind = false;
	*named = *all = 0;
	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_rproc *rp = &rep->procs[i];

		for (size_t j = 0; rp->evidence && j < rp->nsites; j++) {
			const struct pfs_rsite *rs = &rp->sites[j];

			if (!rp->evidence[j].tracked_allocs || pfs_kind_is_category(rs->site->key.kind))
				continue;
			(*all)++;
			*named += pfs_adv_reaches(&t, it->in.kind, rs, &rp->evidence[j], caller_module(rp, rs));
		}
	}
}

/*
 * Narrows item k's rule until it acts on no other site of the run that was
 * advised otherwise (or not at all): the name alone, then size>= the site's
 * smallest allocation, then its kind too.  When nothing narrows it enough
 * there is no rule, and the expectation names the site it would have
 * reached.  A name in most stacks (main, a dispatch loop) makes a rule of
 * sizes and kinds: the reason says so, and what keeps it to this site.
 */
static void narrow(const struct pfs_report *rep, struct pfs_adv_list *l, size_t k)
{
	struct pfs_adv_item *it = &l->items[k];
	struct pfs_advice *a = &it->adv;
	const struct pfs_rproc *where = NULL;
	const struct pfs_rsite *bad;
	char before[256], name[256], n[24];
	size_t named, all;

	if (!a->rule[0])
		return;
	snprintf(before, sizeof(before), "%s", a->rule);
	for (int step = 0;; step++) {
		bad = first_reached(rep, it, &a->target, l, advised_otherwise, &where);
		if (!bad || step == 2)
			break;
		if (step == 0 && it->ev.min_size)
			a->target.min_size = pfs_adv_size_cond(it->ev.min_size);
		else
			a->target.kind = true;
		pfs_adv_make_rule(a, it->in.kind);
	}
	if (bad) {
		const char *other = actions_of(l, bad->id);

		pfs_report_site_label(bad, name, sizeof(name));
		a->rule[0] = '\0';
		pfs_an_append(a->expect, sizeof(a->expect), " (no rule: '%s' would also act on site #%" PRIu32
		              " %s (pid %" PRIu64 "), %s%s, however narrowed by size and kind)", before, bad->id, name,
		              where->proc->pid, other[0] ? "advised " : "which needs nothing", other);
		return;
	}
	reach_count(rep, it, &named, &all);
	if (named > 2 && named * 2 >= all && (a->target.min_size || a->target.kind)) {
		char cond[64] = "";

		if (a->target.min_size) {
			pfs_adv_fmt_size_cond(n, sizeof(n), a->target.min_size);
			snprintf(cond, sizeof(cond), "size>=%s", n);
		}
		if (a->target.kind)
			pfs_an_append(cond, sizeof(cond), "%skind=%s", cond[0] ? "," : "", pfs_kind_name(it->in.kind));
		pfs_an_append(a->reason, sizeof(a->reason), "; %s=%s is in %zu of the %zu stacks with allocations of "
		              "their own%s: %s keeps it off the sites advised otherwise in this run",
		              a->target.site[0] ? "site" : "module",
		              a->target.site[0] ? a->target.site : a->target.module,
		              named, all, named == all ? " (all)" : "", cond);
	}
}

/*
 * The rules in the order the shim must try them: a rule that would also
 * act on another rule's site comes after that rule, so that no rule takes
 * the allocations of one listed later (shadowing).  Where two rules would
 * each act on the other's site (their sites are advised the same, narrow()
 * saw to it) the one with more faults stays and covers the other's.
 * Fills each item's rule_index and the policy line.
 */
struct rule_ent {
	const char *rule;	/* one item's; the text shared by every item with the same rule */
	size_t first;		/* its first item (most faults) */
	int placed;		/* its index in the policy, -1 not yet */
};

static bool rule_reaches_item(const struct pfs_report *rep, const struct pfs_adv_item *by,
			      const struct pfs_adv_item *it)
{
	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_rproc *rp = &rep->procs[i];

		for (size_t j = 0; rp->evidence && j < rp->nsites; j++)
			if (rp->sites[j].id == it->id &&
			    pfs_adv_reaches(&by->adv.target, by->in.kind, &rp->sites[j], &rp->evidence[j],
					    caller_module(rp, &rp->sites[j])))
				return true;
	}
	return false;
}

static bool rule_placed(const struct rule_ent *r, size_t nr, const char *rule)
{
	for (size_t q = 0; q < nr; q++)
		if (!strcmp(r[q].rule, rule))
			return r[q].placed >= 0;
	return true;
}

static int order_rules(const struct pfs_report *rep, struct pfs_adv_list *l)
{
	struct rule_ent *r = calloc(l->n + 1, sizeof(*r));
	size_t nr = 0, placed = 0, plen = 0;

	if (!r)
		return -ENOMEM;
	for (size_t k = 0; k < l->n; k++) {
		size_t i;

		l->items[k].rule_index = -1;
		if (!l->items[k].adv.rule[0])
			continue;
		for (i = 0; i < nr && strcmp(r[i].rule, l->items[k].adv.rule); i++)
			;
		if (i == nr)
			r[nr++] = (struct rule_ent){.rule = l->items[k].adv.rule, .first = k, .placed = -1};
	}
	while (placed < nr) {
		size_t pick = nr;

		/* the first rule (by faults) that reaches no site of a rule not placed yet */
		for (size_t i = 0; i < nr && pick == nr; i++) {
			bool waits = false;

			if (r[i].placed >= 0)
				continue;
			for (size_t k = 0; k < l->n && !waits; k++) {
				const char *own = l->items[k].adv.rule;

				waits = own[0] && strcmp(own, r[i].rule) && !rule_placed(r, nr, own) &&
					rule_reaches_item(rep, &l->items[r[i].first], &l->items[k]);
			}
			if (!waits)
				pick = i;
		}
		if (pick == nr) {
			/* a cycle: the first left stays, and covers the sites of the rules it reaches */
			for (pick = 0; r[pick].placed >= 0; pick++)
				;
			for (size_t k = 0; k < l->n; k++) {
				struct pfs_adv_item *it = &l->items[k];

				if (it->adv.rule[0] && strcmp(it->adv.rule, r[pick].rule) &&
				    rule_reaches_item(rep, &l->items[r[pick].first], it)) {
					pfs_an_append(it->adv.expect, sizeof(it->adv.expect),
					              " (its own rule '%s' is left out: the rule of site #%" PRIu32
					              ", '%s', acts on it first, the same way)",
					              it->adv.rule, l->items[r[pick].first].id, r[pick].rule);
					for (size_t q = 0; q < nr; q++)
						if (r[q].placed < 0 && q != pick && !strcmp(r[q].rule, it->adv.rule)) {
							r[q].placed = INT32_MAX;	/* dropped */
							placed++;
						}
					snprintf(it->adv.rule, sizeof(it->adv.rule), "%s", r[pick].rule);
				}
			}
		}
		r[pick].placed = (int)placed++;
	}
	/* the policy line, in that order */
	for (size_t i = 0; i < nr; i++)
		plen += strlen(r[i].rule) + 2;
	l->policy = calloc(plen + 1, 1);
	if (!l->policy) {
		free(r);
		return -ENOMEM;
	}
	for (int idx = 0; idx < (int)nr; idx++)
		for (size_t i = 0; i < nr; i++)
			if (r[i].placed == idx) {
				if (l->policy[0])
					strcat(l->policy, "; ");
				strcat(l->policy, r[i].rule);
				for (size_t k = 0; k < l->n; k++)
					if (!strcmp(l->items[k].adv.rule, r[i].rule))
						l->items[k].rule_index = idx;
			}
	free(r);
	return 0;
}

int pfs_adv_build(const struct pfs_report *rep, enum pfs_thp thp, struct pfs_adv_list *out)
{
	uint64_t forks = 0, proc_touched = 0;
	size_t cap = 0, keep = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_proc *p = rep->procs[i].proc;

		for (size_t c = 0; c < p->nchildren; c++)
			forks += p->children[c].how == PFS_FORK || p->children[c].how == PFS_UFORK ||
				 p->children[c].how == PFS_CLONE;
		for (size_t j = 0; j < rep->procs[i].nsites; j++)
			if (rep->procs[i].sites[j].site->key.kind != PFS_KIND_SELF)
				proc_touched += rep->procs[i].sites[j].site->first_touch_pages;
	}
	rc = collect(rep, out, &cap);
	if (rc)
		goto fail;
	for (size_t k = 0; k < out->n; k++) {
		struct pfs_adv_item *it = &out->items[k];
		struct pfs_evidence *e = &it->ev;
		const struct pfs_rsite *rs = &it->rp->sites[it->index];
		const char *module = caller_module(it->rp, rs);

		pfs_evidence_density(e);
		e->resident_share = proc_touched ? (double)e->touched_pages / (double)proc_touched : 0;
		e->forks = forks;
		e->cow_per_fork = forks ? (double)e->cow_pages / (double)forks : 0;
		it->in.ev = e;
		it->in.kind = rs->site->key.kind;
		it->in.function = user_function(rs);
		it->in.runtime = runtime_label(rs);
		it->in.module = module_is_users(module) ? module : NULL;
		/* a site matters by its faults, or by a large allocation it barely touches */
		if (item_faults(it) < PFS_ADV_MIN_PAGES &&
		    !(e->density >= 0 && e->density < PFS_ADV_SPARSE_SHARE &&
		      e->requested_pages * e->page_size >= PFS_ADV_SPARSE_MIN_BYTES)) {
			out->quiet++;
			continue;
		}
		pfs_adv_site(&it->in, thp, &it->adv);
		out->items[keep++] = *it;
	}
	out->n = keep;
	if (out->n)
		qsort(out->items, out->n, sizeof(*out->items), cmp_item);
	for (size_t k = 0; k < out->n; k++) {	/* the copies moved: point at their own evidence */
		struct pfs_adv_item *it = &out->items[k];

		it->in.ev = &it->ev;
		if (pfs_report_site_key(&it->rp->sites[it->index], it->rp->proc, &it->key)) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	for (size_t k = 0; k < out->n; k++)
		narrow(rep, out, k);
	rc = order_rules(rep, out);
	if (rc)
		goto fail;
	return 0;
fail:
	pfs_adv_free(out);
	return rc;
}

void pfs_adv_free(struct pfs_adv_list *l)
{
	for (size_t k = 0; k < l->n; k++)
		free(l->items[k].key);
	free(l->items);
	free(l->policy);
	memset(l, 0, sizeof(*l));
}
