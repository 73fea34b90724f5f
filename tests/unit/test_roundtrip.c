/* Round trip: records written by the shim's core, read back by the analyzer's log reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "alloc_glibc.h"
#include "heap.h"
#include "logread.h"
#include "real.h"
#include "shim_fixture.h"
#include "track.h"

struct seen {
	int by_type[PFS_REC_TYPE_MAX];
	uint64_t alloc_addr, alloc_size, alloc_seq;
	uint32_t alloc_stack, alloc_kind;
	uint64_t free_addr, free_seq;
	uint32_t stack_id, stack_n;
	uint64_t stack_frames[3];
	uint64_t counted, counted_bytes;
	uint64_t madv_len;
	int madv_advice;
	char message[64];
};

static struct seen seen;

static int on_any(struct pfs_logread_tool *tool, const struct pfs_rec *r, const char **why)
{
	(void)tool;
	(void)why;
	seen.by_type[r->h.type]++;
	switch (r->h.type) {
	case PFS_REC_ALLOC:
		seen.alloc_addr = r->u.alloc.addr;
		seen.alloc_size = r->u.alloc.size;
		seen.alloc_seq = r->u.alloc.seq;
		seen.alloc_stack = r->u.alloc.stack;
		seen.alloc_kind = r->u.alloc.kind;
		break;
	case PFS_REC_FREE:
		seen.free_addr = r->u.free.addr;
		seen.free_seq = r->u.free.seq;
		break;
	case PFS_REC_STACK:
		if (r->u.stack.nframes == 3) {
			seen.stack_id = r->u.stack.id;
			seen.stack_n = r->nitems;
			for (uint32_t i = 0; i < 3; i++)
				seen.stack_frames[i] = pfs_logread_frame(r, i);
		}
		break;
	case PFS_REC_COUNTERS:
		for (uint32_t i = 0; i < r->nitems; i++) {
			struct pfs_counter_slot s = pfs_logread_slot(r, i);
			seen.counted += s.count;
			seen.counted_bytes += s.bytes;
		}
		break;
	case PFS_REC_MADVISE:
		seen.madv_len = r->u.madvise.length;
		seen.madv_advice = r->u.madvise.advice;
		break;
	case PFS_REC_MESSAGE:
		snprintf(seen.message, sizeof(seen.message), "%.*s", (int)r->str_len[0], r->str[0]);
		break;
	}
	return 0;
}

static int read_back(struct pfs_logread_stats *st)
{
	static pfs_logread_handler handlers[PFS_REC_TYPE_MAX];
	for (unsigned i = 1; i < PFS_REC_TYPE_MAX; i++)
		handlers[i] = on_any;
	struct pfs_logread_tool tool = {.handlers = handlers, .diag = stderr};
	struct pfs_logfile lf;
	char err[256];
	memset(&seen, 0, sizeof(seen));
	memset(st, 0, sizeof(*st));
	if (pfs_logread_open(&lf, pfs_log_proc.path, err, sizeof(err)))
		return -1;
	int r = pfs_logread_walk(&lf, &tool, st);
	pfs_logread_close(&lf);
	return r;
}

static int setup(void **state)
{
	(void)state;
	pfs_real_resolve();
	pfs_alloc_detect();
	return fixture_open();
}

static int teardown(void **state)
{
	(void)state;
	fixture_close();
	return 0;
}

static void test_big_alloc_and_free(void **state)
{
	(void)state;
	void *p = real_malloc(100000);
	pfs_track_alloc(PFS_KIND_MALLOC, p, 100000, 0x401234, 0x7ffe0000);
	struct pfs_heap_free f;
	pfs_track_free(p, PFS_KIND_MALLOC, &f);
	real_free(p);
	struct pfs_logread_stats st;
	assert_int_equal(read_back(&st), 0);
	assert_int_equal(st.bad, 0);
	assert_int_equal(seen.by_type[PFS_REC_ALLOC], 1);
	assert_int_equal(seen.by_type[PFS_REC_FREE], 1);
	assert_int_equal(seen.alloc_addr, (uint64_t)(uintptr_t)p);
	assert_int_equal(seen.alloc_size, 100000);
	assert_int_equal(seen.alloc_kind, PFS_KIND_MALLOC);
	assert_int_equal(seen.free_addr, (uint64_t)(uintptr_t)p);
	assert_true(seen.free_seq > seen.alloc_seq);
	assert_true(seen.alloc_stack >= 1);
	assert_true(seen.by_type[PFS_REC_STACK] >= 1); /* the stack the ALLOC names is in the log */
}

static void test_small_allocs_counted(void **state)
{
	(void)state;
	for (int i = 0; i < 777; i++) {
		void *p = real_malloc(24);
		pfs_track_alloc(PFS_KIND_MALLOC, p, 24, 0x405000, 0x7ffe1000);
		struct pfs_heap_free f;
		pfs_track_free(p, PFS_KIND_MALLOC, &f);
		real_free(p);
	}
	struct pfs_logread_stats st;
	assert_int_equal(read_back(&st), 0);
	assert_int_equal(seen.counted, 777);
	assert_int_equal(seen.counted_bytes, 777 * 24);
	assert_int_equal(seen.by_type[PFS_REC_ALLOC], 0); /* small blocks: counters only */
	assert_int_equal(seen.by_type[PFS_REC_FREE], 0);
}

static void test_stack_frames_exact(void **state)
{
	(void)state;
	uint64_t frames[3] = {0x1111, 0x2222, 0xffffffffffff0000ull};
	uint32_t id = pfs_stacks_intern(pfs_thread_get(), frames, 3, 0);
	struct pfs_logread_stats st;
	assert_int_equal(read_back(&st), 0);
	assert_int_equal(seen.stack_id, id);
	assert_int_equal(seen.stack_n, 3);
	assert_memory_equal(seen.stack_frames, frames, sizeof(frames));
}

static void test_madvise_and_message(void **state)
{
	(void)state;
	pfs_track_madvise((void *)0x10000, 8192, 4 /* MADV_DONTNEED */, 0);
	pfs_set_warn_sink(NULL);
	struct pfs_thread *t = pfs_thread_get();
	uint32_t size = PFS_ALIGN8(sizeof(struct pfs_rec_message) + 5);
	struct pfs_rec_message *m = pfs_rec_begin(&t->w, size);
	m->len = 5;
	memcpy(m + 1, "hello", 5);
	pfs_rec_end(m, PFS_REC_MESSAGE, 0, size);
	struct pfs_logread_stats st;
	assert_int_equal(read_back(&st), 0);
	assert_int_equal(seen.madv_len, 8192);
	assert_int_equal(seen.madv_advice, 4);
	assert_string_equal(seen.message, "hello");
}

static void test_thousands_of_records_across_blocks(void **state)
{
	(void)state;
	for (int i = 0; i < 5000; i++)
		pfs_track_madvise((void *)(uintptr_t)(0x10000 + i * 4096), 4096, 4, 0);
	struct pfs_logread_stats st;
	assert_int_equal(read_back(&st), 0);
	assert_int_equal(seen.by_type[PFS_REC_MADVISE], 5000);
	assert_int_equal(st.bad, 0);
	assert_true(st.blocks > 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_big_alloc_and_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_allocs_counted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_frames_exact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_madvise_and_message, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thousands_of_records_across_blocks, setup, teardown),
	};
	return cmocka_run_group_tests_name("log round trip (shim writer, analyzer reader)", tests, NULL, NULL);
}
