/*
 * The advisor: its rules (analyzer/advise_rules.c) on made-up evidence, one
 * case per rule and its edges; the evidence (analyzer/evidence.c) of a
 * hand-built fast-mode log whose times and sizes are known; and the advice
 * of a hand-built run as a whole: every rule names the user's code, reaches
 * no site advised otherwise, and none is tried after a rule that would take
 * its allocations (shadowing).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../analyzer/advise.h"
#include "../../analyzer/evidence.h"
#include "../../analyzer/model.h"
#include "../../analyzer/storms.h"
#include "test_an_logbuild.h"

#define MS 1000000ull
#define MiB (1ull << 20)
#define T0 (1000 * MS)

/* The functions of the hand-built run's stacks: the user's, and an allocation wrapper (a runtime's). */
LB_SITE_FN(adv_inner)
LB_SITE_FN(adv_outer)
LB_SITE_FN(adv_main)
LB_SITE_FN(adv_sparse)
LB_SITE_FN(zmalloc_pool)

/*
 * 32 MiB malloc'd, all touched within 12 ms of the allocation at 600k
 * pages/s (a storm's rate here: 66.7k/s), living 0.5 s of a 2 s process.
 */
static struct pfs_evidence dense_burst(void)
{
	return (struct pfs_evidence){
		.tracked_allocs = 1, .requested_bytes = 32 * MiB, .requested_pages = 8192,
		.min_size = 32 * MiB, .max_size = 32 * MiB, .touched_pages = 8192, .touched_bytes = 32 * MiB,
		.touch_faults = 8192, .tracked_touched_pages = 8192, .tracked_touch_faults = 8192,
		.density = 1.0, .timed_allocs = 1,
		.first_touch_lo_ns = 0, .first_touch_hi_ns = 12 * MS, .spread_hi_ns = 12 * MS,
		.lifetime_ns = 500 * MS, .proc_life_ns = 2000 * MS, .touch_rate = 600000, .storm_rate = 640000,
		.burst_rate = 66667, .page_size = 4096,
	};
}

static struct pfs_adv_site site(const struct pfs_evidence *e, uint32_t kind, const char *fn)
{
	return (struct pfs_adv_site){.ev = e, .kind = kind, .function = fn,
				     .first_touch_faults = e->touch_faults, .cow_faults = e->cow_faults};
}

static void test_dense_burst_populate(void **state)
{
	struct pfs_evidence e = dense_burst();
	struct pfs_adv_site s = site(&e, PFS_KIND_MALLOC, "load_table");
	struct pfs_advice a;

	(void)state;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_POPULATE);
	assert_string_equal(a.rule, "populate if site=load_table");
	assert_int_equal(a.faults_avoided, 8192);
	/* the name is in another site's stack too: the size narrows the rule */
	s.size_cond = 32 * MiB;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_string_equal(a.rule, "populate if site=load_table,size>=32M");
	/* the label is the runtime's (no function for a rule): the caller's object names it */
	s.size_cond = 0;
	s.function = NULL;
	s.module = "_multiarray_umath.cpython-311-x86_64-linux-gnu.so";
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_string_equal(a.rule, "populate if module=_multiarray_umath.*");
	/* pages that came as huge pages (the program asked itself): populate keeps them, hugepage first */
	e.tracked_touch_faults = e.touch_faults = 16;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_string_equal(a.rule, "hugepage,populate if module=_multiarray_umath.*");
	assert_int_equal(a.faults_avoided, 16);
	assert_non_null(strstr(a.expect, "its 16 first-touch faults (8192 pages)"));
}

static void test_burst_edges(void **state)
{
	struct pfs_evidence e = dense_burst();
	struct pfs_adv_site s = site(&e, PFS_KIND_MALLOC, "f");
	struct pfs_advice a;

	(void)state;
	/* touched slowly, at 2000 pages/s: 3% of the time at this machine's cost, and topping no storm */
	e.touch_rate = 2000;
	e.storm_rate = 0;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
	assert_non_null(strstr(a.reason, "gradually"));
	assert_string_equal(a.rule, "");
	/* fast again, but first touched 300 ms after a 500 ms life began */
	e = dense_burst();
	e.first_touch_lo_ns = 300 * MS;
	e.first_touch_hi_ns = 310 * MS;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
	assert_non_null(strstr(a.reason, "long after"));
	/* 40% touched: neither dense nor sparse */
	e = dense_burst();
	e.tracked_touched_pages = 8192 * 4 / 10;
	e.density = 0.4;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
	/* fast mode saw it all in one scan 2 s on: no burst known, and the advice says why */
	e = dense_burst();
	e.coarse = true;
	e.spread_hi_ns = e.first_touch_hi_ns = 2000 * MS;
	e.lifetime_ns = 3000 * MS;
	e.touch_rate = 8192 / 2.0;	/* the lower bound: pages over the whole interval */
	e.storm_rate = 0;
	pfs_adv_site(&s, PFS_THP_NEVER, &a);	/* (under "madvise": hugepage, with the same note) */
	assert_int_equal(a.what, PFS_ADVICE_FINE);
	assert_non_null(strstr(a.reason, "in one scan, up to 2000.0 ms after the allocation"));
	assert_non_null(strstr(a.reason, "--mode exact"));
	/* blanks and glob characters in a name: a glob that matches only it */
	e = dense_burst();
	s.function = "operator new[]";
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_POPULATE);
	assert_string_equal(a.rule, "populate if site=operator?new\\[\\]");
	/* a name longer than a glob may be: cut, ending in '*' */
	s.function = "Pool<std::basic_string<char, std::char_traits<char>, std::allocator<char> > >::grab";
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_string_equal(a.rule, "populate if site=Pool<std::basic_string<char??std::char_traits<char>??std::allo*");
	/* no name at all: the advice stands, without a rule */
	s.function = NULL;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_POPULATE);
	assert_string_equal(a.rule, "");
	assert_non_null(strstr(a.expect, "no rule"));
}

static void test_sparse_names_waste(void **state)
{
	struct pfs_evidence e = {
		.tracked_allocs = 1, .requested_bytes = 64 * MiB, .requested_pages = 16384,
		.min_size = 64 * MiB, .touched_pages = 64, .touched_bytes = 64 * 4096,
		.tracked_touched_pages = 64, .density = 64.0 / 16384, .timed_allocs = 1,
		.lifetime_ns = 2000 * MS, .touch_rate = 1e6, .page_size = 4096,
		.waste_if_populated = (16384 - 64) * 4096ull,
	};
	struct pfs_adv_site s = site(&e, PFS_KIND_MALLOC, "sparse_site");
	struct pfs_advice a;

	(void)state;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_SPARSE);
	assert_string_equal(a.rule, "");
	assert_int_equal(a.waste_bytes, (16384 - 64) * 4096ull);
	assert_non_null(strstr(a.reason, "do not populate"));
	assert_non_null(strstr(a.reason, "63.8 MiB resident"));
	/* THP "always": each touched 4 KiB could bring a 2 MiB page */
	pfs_adv_site(&s, PFS_THP_ALWAYS, &a);
	assert_string_equal(a.rule, "nohugepage if site=sparse_site");
	/* realloc asks again for what it moves: a growing block is not sparse */
	s.kind = PFS_KIND_REALLOC;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
	assert_non_null(strstr(a.reason, "realloc"));
	s.kind = PFS_KIND_MALLOC;
	/* small: not worth a word */
	e.requested_pages = 256;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_not_equal(a.what, PFS_ADVICE_SPARSE);
	/* heap chunks, whose pages are the site's heap pages: their share is unknown, never "sparse" */
	e.requested_pages = 0;
	e.shared_allocs = 1;
	pfs_evidence_density(&e);
	assert_true(e.density < 0);
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
	assert_non_null(strstr(a.reason, "shared heap"));
}

static void test_file_readahead(void **state)
{
	struct pfs_evidence e = dense_burst();
	struct pfs_adv_site s = site(&e, PFS_KIND_MMAP_FILE, "map_input");
	struct pfs_advice a;

	(void)state;
	e.requested_bytes = e.min_size = 16 * MiB;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FILE);
	assert_string_equal(a.rule, "willneed if site=map_input,kind=mmap-file");
	/* too large to read ahead at once: sequential */
	e.requested_bytes = e.min_size = 1024 * MiB;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_string_equal(a.rule, "sequential if site=map_input,kind=mmap-file");
	/* read in part: nothing (and never populate a file mapping) */
	e.density = 0.3;
	e.tracked_touched_pages = 2000;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
}

static void test_cow_after_fork(void **state)
{
	struct pfs_evidence e = dense_burst();
	struct pfs_adv_site s = site(&e, PFS_KIND_MALLOC, "cow_site");
	struct pfs_advice a;

	(void)state;
	e.cow_pages = 8192;
	e.forks = 2;
	e.cow_per_fork = 4096;
	s.cow_faults = 8192;
	s.child_cow_faults = 8192;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_COW);
	assert_string_equal(a.rule, "");
	assert_non_null(strstr(a.reason, "4096 pages (16.0 MiB) copied per fork"));
	assert_non_null(strstr(a.expect, "in the child after fork"));
	/* the parent writes while a child shares: DONTFORK or layout */
	s.child_cow_faults = 0;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_non_null(strstr(a.expect, "MADV_DONTFORK"));
	assert_non_null(strstr(a.expect, "layout"));
	/* a few copies are no reason */
	e.cow_per_fork = 10;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_POPULATE);
}

static void test_hugepage(void **state)
{
	struct pfs_evidence e = dense_burst();
	struct pfs_adv_site s = site(&e, PFS_KIND_MMAP, "arena_grow");
	struct pfs_advice a;

	(void)state;
	/* large, dense, living the whole process, touched gradually: hugepage alone */
	e.lifetime_ns = e.proc_life_ns = 5000 * MS;
	e.touch_rate = 3000;
	e.storm_rate = 0;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_HUGEPAGE);
	assert_string_equal(a.rule, "hugepage if site=arena_grow");
	/* long-lived is a share of the process's life, not a time: a loaded machine stretches both */
	e.lifetime_ns = 2400 * MS;	/* under half */
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
	e.lifetime_ns = 100 * MS;
	e.proc_life_ns = 150 * MS;	/* a short program's table, living most of it */
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_HUGEPAGE);
	/* the kernel maps it with huge pages already: nothing to advise */
	e.tracked_touch_faults = 16;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
	assert_non_null(strstr(a.reason, "huge pages already (16 faults for 8192 pages)"));
	e.tracked_touch_faults = 8192;
	e.lifetime_ns = e.proc_life_ns = 5000 * MS;
	/* in a burst too: both, hugepage first */
	e.touch_rate = 600000;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_string_equal(a.rule, "hugepage,populate if site=arena_grow");
	/* THP "never": the advice would do nothing */
	pfs_adv_site(&s, PFS_THP_NEVER, &a);
	assert_string_equal(a.rule, "populate if site=arena_grow");
	/* below four huge pages */
	e.min_size = 4 * MiB;
	e.touch_rate = 3000;
	pfs_adv_site(&s, PFS_THP_MADVISE, &a);
	assert_int_equal(a.what, PFS_ADVICE_FINE);
}

/* lb_free with the FREE's time, which lifetimes end at. */
static void put_free_at(struct lb *b, uint64_t seq, uint64_t t, uint64_t addr)
{
	size_t off = lb_free(b, seq, addr, 0, PFS_KIND_MALLOC);

	((struct pfs_rec_free *)(void *)(b->buf + off))->time_ns = t;
}

/*
 * A log with known answers: 8 MiB allocated at +1 ms, 1024 pages found by
 * the scan at +10 ms and 1024 by the one at +20 ms, freed at +101 ms; and
 * 16 MiB allocated at +30 ms, 16 pages touched, never freed (the process
 * ends at +200 ms).
 */
static void test_evidence_from_log(void **state)
{
	static const char cmd[] = "app\0";
	struct pfs_run run;
	struct lb b;
	struct pfs_series ser;
	struct pfs_evidence *ev;
	const struct pfs_site *sites[2];

	(void)state;
	lb_init(&b, 42, T0);
	lb_proc_start(&b, 42, 1, T0, 0, "/usr/bin/app", cmd, sizeof(cmd) - 1);
	lb_alloc_at(&b, 1, T0 + 1 * MS, 2, PFS_KIND_MALLOC, 0x10000000, 8 * MiB);
	lb_touch(&b, T0 + 10 * MS, 1, 2, PFS_KIND_MALLOC, 1024, 0);
	lb_scan(&b, T0 + 10 * MS, 1024, PFS_SCAN_PERIODIC);
	lb_touch(&b, T0 + 20 * MS, 1, 2, PFS_KIND_MALLOC, 1024, 0);
	lb_scan(&b, T0 + 20 * MS, 1024, PFS_SCAN_PERIODIC);
	lb_alloc_at(&b, 3, T0 + 30 * MS, 3, PFS_KIND_MMAP, 0x20000000, 16 * MiB);
	lb_touch(&b, T0 + 40 * MS, 3, 3, PFS_KIND_MMAP, 16, 0);
	lb_scan(&b, T0 + 40 * MS, 16, PFS_SCAN_PERIODIC);
	put_free_at(&b, 4, T0 + 101 * MS, 0x10000000);
	lb_proc_end_at(&b, 5, T0 + 200 * MS);

	pfs_model_init(&run, NULL);
	assert_int_equal(pfs_model_load_buffer(&run, b.buf, b.len, "t.pfslog"), 0);
	assert_int_equal(pfs_model_finish(&run), 0);
	assert_int_equal(run.errors, 0);
	sites[0] = pfs_model_site(run.procs[0], 2, PFS_KIND_MALLOC);
	sites[1] = pfs_model_site(run.procs[0], 3, PFS_KIND_MMAP);
	assert_non_null(sites[0]);
	assert_non_null(sites[1]);
	assert_int_equal(pfs_storms_compute(run.procs[0], NULL, &ser), 0);
	for (size_t i = 0; i < ser.nstorms; i++)
		ser.storms[i].top_index = SIZE_MAX;
	assert_int_equal(pfs_evidence_compute(run.procs[0], &ser, sites, 2, &ev), 0);

	assert_int_equal(ev[0].requested_bytes, 8 * MiB);
	assert_int_equal(ev[0].touched_pages, 2048);
	assert_int_equal(ev[0].touched_bytes, 8 * MiB);
	assert_true(ev[0].density == 1.0);
	assert_true(ev[0].resident_share > 0.99 * 2048 / 2064 && ev[0].resident_share < 2048.0 / 2064 + 1e-9);
	/* first touch: between the allocation and the first scan (9 ms later) */
	assert_int_equal(ev[0].first_touch_lo_ns, 0);
	assert_int_equal(ev[0].first_touch_hi_ns, 9 * MS);
	/* the last first touch came in (10, 20] ms: spread at most 20 - 1 ms */
	assert_int_equal(ev[0].spread_hi_ns, 19 * MS);
	assert_int_equal(ev[0].spread_lo_ns, 0);	/* both could have come at 10 ms */
	assert_int_equal(ev[0].lifetime_ns, 100 * MS);
	assert_int_equal(ev[0].freed_allocs, 1);

	assert_int_equal(ev[1].requested_bytes, 16 * MiB);
	assert_int_equal(ev[1].tracked_touched_pages, 16);
	assert_int_equal(ev[1].waste_if_populated, 16 * MiB - 16 * 4096);
	/* never freed: it lived to the end */
	assert_int_equal(ev[1].lifetime_ns, 170 * MS);
	assert_int_equal(ev[1].freed_allocs, 0);
	assert_int_equal(ev[1].forks, 0);

	free(ev);
	pfs_storms_free(&ser);
	pfs_model_free(&run);
	lb_release(&b);
}

/* One site of the run: its stack (return addresses into the functions above), kind, size, pages touched. */
struct run_site {
	int (*frames[3])(int);
	uint8_t kind;
	uint64_t size;
	uint32_t touched;
};

/*
 * The run: adv_inner (called by adv_outer, called by adv_main) and
 * adv_outer bursts, each into a mapping of its own; adv_sparse maps 64 MiB
 * and touches 16 pages; adv_main bursts into an 8 MiB malloc; zmalloc_pool,
 * Redis's allocation wrapper (a runtime: never a rule's name), into a 4 MiB
 * malloc.  Every burst comes at once after its allocation; the process lives
 * 1 s, every block to its end.
 */
static const struct run_site run_sites[] = {
	{{adv_inner, adv_outer, adv_main}, PFS_KIND_MMAP, 32 * MiB, 8192},
	{{adv_outer, adv_main}, PFS_KIND_MMAP, 16 * MiB, 4096},
	{{adv_sparse, adv_main}, PFS_KIND_MMAP, 64 * MiB, 16},
	{{adv_main}, PFS_KIND_MALLOC, 8 * MiB, 2048},
	{{zmalloc_pool}, PFS_KIND_MALLOC, 4 * MiB, 1024},
};

static int write_run(const char *path)
{
	static const char cmd[] = "app\0";
	struct lb_self self;
	struct lb b;
	uint64_t seq = 2;

	if (lb_self_module(&self))
		return -1;
	lb_init(&b, 42, T0);
	lb_proc_start(&b, 42, 1, T0, 0, "/usr/bin/app", cmd, sizeof(cmd) - 1);
	lb_module(&b, 1, 1, self.base, self.start, self.end, self.path, self.build_id, (uint8_t)self.build_id_len);
	for (uint32_t i = 0; i < sizeof(run_sites) / sizeof(run_sites[0]); i++) {
		const struct run_site *r = &run_sites[i];
		uint64_t fr[3], t = T0 + (10 + 20 * i) * MS, addr = 0x10000000ull * (i + 1);
		uint32_t n = 0, id = i + 1;

		while (n < 3 && r->frames[n]) {
			fr[n] = (uintptr_t)r->frames[n] + 1;
			n++;
		}
		lb_stack(&b, seq++, id, fr, n);
		lb_alloc_at(&b, seq, t, id, r->kind, addr, r->size);
		/* glibc's large chunk: usable size a whole number of pages less its header */
		((struct pfs_rec_alloc *)(void *)(b.buf + b.pos - sizeof(struct pfs_rec_alloc)))->length =
			r->size + 4096 - 16;
		lb_touch(&b, t + 5 * MS, seq, id, r->kind, r->touched, 0);
		lb_scan(&b, t + 5 * MS, r->touched, PFS_SCAN_PERIODIC);
		seq++;
	}
	lb_proc_end_at(&b, seq, T0 + 1000 * MS);
	int rc = lb_write(&b, path, b.len);
	lb_release(&b);
	return rc;
}

static const struct pfs_adv_item *item_of(const struct pfs_adv_list *l, const char *fn)
{
	for (size_t k = 0; k < l->n; k++) {
		const struct pfs_rframe *f = pfs_report_label(&l->items[k].rp->sites[l->items[k].index]);

		if (f && f->function && !strcmp(f->function, fn))
			return &l->items[k];
	}
	return NULL;
}

/*
 * The advice of the run as a whole.  adv_outer is in adv_inner's stack, and
 * both are advised populate: its rule may reach adv_inner's allocations,
 * and comes after adv_inner's, which would otherwise never apply.  adv_main
 * is in every stack, adv_sparse's too (sparse: never populate it): its rule
 * is narrowed by size and kind until it reaches no site advised otherwise.
 * zmalloc_pool is a runtime's: the rule names the object that called the
 * allocator instead, narrowed the same way.
 */
static void test_run_rules(void **state)
{
	char dir[] = "/tmp/pfs-an-adv-XXXXXX", path[96];
	char *paths[1] = {dir};
	struct pfs_report rep;
	struct pfs_run run;
	struct pfs_sym *sym;
	struct pfs_adv_list l;
	const struct pfs_adv_item *inner, *outer, *sparse, *main_, *pool;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/app.pfslog", dir);
	assert_int_equal(write_run(path), 0);
	assert_int_equal(pfs_report_load(&rep, &run, &sym, paths, 1, NULL, NULL, NULL), 0);
	assert_int_equal(pfs_adv_build(&rep, PFS_THP_NEVER, &l), 0);

	inner = item_of(&l, "adv_inner");
	outer = item_of(&l, "adv_outer");
	sparse = item_of(&l, "adv_sparse");
	main_ = item_of(&l, "adv_main");
	pool = item_of(&l, "zmalloc_pool");
	assert_non_null(inner);
	assert_non_null(outer);
	assert_non_null(sparse);
	assert_non_null(main_);
	assert_non_null(pool);
	assert_string_equal(inner->adv.rule, "populate if site=adv_inner");
	assert_string_equal(outer->adv.rule, "populate if site=adv_outer");
	assert_int_equal(sparse->adv.what, PFS_ADVICE_SPARSE);
	assert_string_equal(sparse->adv.rule, "");
	assert_string_equal(main_->adv.rule, "populate if site=adv_main,size>=8M,kind=malloc");
	assert_non_null(strstr(main_->adv.reason, "site=adv_main is in 4 of the 5 stacks"));
	assert_null(strstr(pool->adv.rule, "zmalloc"));
	assert_string_equal(pool->adv.rule + strlen(pool->adv.rule) - strlen(",size>=4M,kind=malloc"),
			    ",size>=4M,kind=malloc");
	assert_non_null(strstr(pool->adv.rule, "populate if module=test_an_advise"));

	/* no rule is tried after one that would take its site's allocations */
	assert_true(inner->rule_index < outer->rule_index);
	assert_true(main_->rule_index < pool->rule_index);
	for (size_t k = 0; k < l.n; k++) {
		const struct pfs_adv_item *it = &l.items[k];
		const struct pfs_rsite *rs = &it->rp->sites[it->index];

		if (it->rule_index < 0)
			continue;
		for (size_t q = 0; q < l.n; q++) {
			const struct pfs_adv_item *by = &l.items[q];

			if (by->rule_index >= 0 && by->rule_index < it->rule_index)
				assert_false(pfs_adv_reaches(&by->adv.target, by->in.kind, rs, &it->rp->evidence[it->index],
							     "test_an_advise"));
		}
	}
	/* the policy line lists them in that order */
	assert_true(strstr(l.policy, inner->adv.rule) < strstr(l.policy, outer->adv.rule));
	assert_true(strstr(l.policy, main_->adv.rule) < strstr(l.policy, pool->adv.rule));

	if (getenv("PFS_TEST_SHOW"))
		pfs_adv_print_text(&rep, &l, stdout, dir);
	pfs_adv_free(&l);
	pfs_report_unload(&rep, &run, sym);
	assert_int_equal(lb_remove(dir, path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dense_burst_populate),
		cmocka_unit_test(test_burst_edges),
		cmocka_unit_test(test_sparse_names_waste),
		cmocka_unit_test(test_file_readahead),
		cmocka_unit_test(test_cow_after_fork),
		cmocka_unit_test(test_hugepage),
		cmocka_unit_test(test_evidence_from_log),
		cmocka_unit_test(test_run_rules),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
