/* The log writer: file creation rules, records across blocks, threads, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include <cmocka.h>

#include "arena.h"
#include "shim_fixture.h"

struct test_rec {
	struct pfs_rec_hdr h;
	uint64_t writer;
	uint64_t n;
	uint64_t pad[5];
};

static void put(struct pfs_thread *t, uint64_t writer, uint64_t n)
{
	struct test_rec *r = pfs_rec_begin(&t->w, sizeof(*r));
	assert_non_null(r);
	r->writer = writer;
	r->n = n;
	pfs_rec_end(r, PFS_REC_MESSAGE, 0, sizeof(*r));
}

static void test_file_created_private(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	struct stat st, dst;
	assert_int_equal(stat(pfs_log_proc.path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	char expect[128];
	snprintf(expect, sizeof(expect), "%s/pfshim.%d.pfslog", fixture_dir, (int)getpid());
	assert_string_equal(pfs_log_proc.path, expect);
	assert_int_equal(stat(fixture_dir, &dst), 0);
	struct walked w = fixture_map(pfs_log_proc.path);
	assert_non_null(w.data);
	const struct pfs_file_header *h = (const void *)w.data;
	assert_memory_equal(h->magic, PFS_LOG_MAGIC, 8);
	assert_int_equal(h->version, PFS_LOG_VERSION);
	assert_int_equal(h->block_size, PFS_LOG_BLOCK_SIZE);
	munmap(w.data, w.len);
	fixture_close();
}

static void test_second_image_gets_suffix_and_symlink_not_followed(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	/* A symlink planted where the next image's log would go must not be followed. */
	char first[PATH_MAX], link[PATH_MAX + 16], target[PATH_MAX + 16];
	snprintf(first, sizeof(first), "%s", pfs_log_proc.path);
	snprintf(target, sizeof(target), "%s/victim", fixture_dir);
	snprintf(link, sizeof(link), "%s/pfshim.%d.1.pfslog", fixture_dir, (int)getpid());
	assert_int_equal(symlink(target, link), 0);
	struct pfs_log second;
	struct pfs_writer w;
	struct pfs_file_header h = {.pid = (uint64_t)getpid()};
	int dfd = open(fixture_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(pfs_log_open(&second, &w, dfd, fixture_dir, &h), 0);
	close(dfd);
	assert_int_equal(second.gen, 2);
	assert_non_null(strstr(second.path, ".2.pfslog"));
	struct stat st;
	assert_int_equal(stat(target, &st), -1); /* the symlink's target was never created */
	pfs_log_close(&second);
	fixture_close();
}

static int continue_in(struct pfs_log *log, struct pfs_writer *w, uint64_t start)
{
	struct pfs_file_header h = {.pid = (uint64_t)getpid(), .start_mono_ns = start, .flags = PFS_FILE_EXECED,
				    .page_size = 4096};
	int dfd = open(fixture_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = pfs_log_continue(log, w, dfd, fixture_dir, &h);
	close(dfd);
	return rc;
}

/*
 * An image exec'd by a traced image goes on in its file, in the last block
 * after its records (its own block when that one is nearly full: the next
 * test), beginning with IMAGE; only when handed over, once, and only in the
 * newest file of its pid (an older one may say it was handed over: its
 * successor was not traced, and its pid was reused).
 */
static void test_exec_image_goes_on_in_the_file(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	struct pfs_thread *t = pfs_thread_get();
	for (uint64_t i = 0; i < 300; i++) /* into a second block */
		put(t, 0, i);
	struct pfs_log next;
	struct pfs_writer w;
	assert_int_equal(continue_in(&next, &w, 5), -ENOENT); /* not handed over */
	pfs_log_hand_over(&pfs_log_proc, (uint32_t)getpid(), 1);
	pfs_log_hand_over(&pfs_log_proc, 0, 0); /* the exec failed */
	assert_int_equal(continue_in(&next, &w, 5), -ENOENT);
	pfs_log_hand_over(&pfs_log_proc, (uint32_t)getpid(), 1);
	uint64_t last = pfs_log_proc.next_block - 1; /* the block the records end in: a few KiB used */
	size_t used = (size_t)(t->w.cur - (t->w.end - PFS_LOG_BLOCK_SIZE));
	assert_int_equal(t->w.block, last);
	assert_true(used > 0 && used < PFS_LOG_BLOCK_SIZE / 2);
	assert_int_equal(continue_in(&next, &w, 5), 0);
	assert_string_equal(next.path, pfs_log_proc.path);
	assert_int_equal(next.gen, 1);
	assert_int_equal(next.first_block, last);
	struct test_rec *r = pfs_log_reserve(&next, &w, sizeof(*r));
	assert_non_null(r);
	r->writer = 9;
	pfs_log_commit(r, PFS_REC_MESSAGE, 0, sizeof(*r));
	struct pfs_log again;
	struct pfs_writer w2;
	assert_int_equal(continue_in(&again, &w2, 6), -ENOENT); /* taken once */

	struct walked m = fixture_map(pfs_log_proc.path);
	assert_int_equal(m.len, (last + 1) * PFS_LOG_BLOCK_SIZE); /* no block more */
	const struct pfs_file_header *h = (const void *)m.data;
	assert_int_equal(h->handoff_pid, 0);
	const struct test_rec *before = (const void *)(m.data + last * PFS_LOG_BLOCK_SIZE + used - sizeof(*before));
	assert_int_equal(before->n, 299); /* the first image's last record, kept */
	const struct pfs_rec_image *img = (const void *)(m.data + last * PFS_LOG_BLOCK_SIZE + used);
	assert_int_equal(img->h.type, PFS_REC_IMAGE);
	assert_int_equal(img->pid, (uint64_t)getpid());
	assert_int_equal(img->start_mono_ns, 5);
	assert_int_equal(img->flags, PFS_FILE_EXECED);
	const struct test_rec *after = (const void *)(img + 1);
	assert_int_equal(after->h.type, PFS_REC_MESSAGE);
	assert_int_equal(after->writer, 9);
	munmap(m.data, m.len);

	/* a newer file of the pid (a later process) that was not handed over: the older one's handoff is stale */
	struct pfs_log newer;
	struct pfs_file_header nh = {.pid = (uint64_t)getpid()};
	int dfd = open(fixture_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(pfs_log_open(&newer, &w2, dfd, fixture_dir, &nh), 0);
	close(dfd);
	pfs_log_hand_over(&pfs_log_proc, (uint32_t)getpid(), 2);
	assert_int_equal(continue_in(&again, &w2, 7), -ENOENT);
	pfs_log_close(&newer);
	pfs_log_close(&next);
	fixture_close();
}

/*
 * The next image (start time 5) takes the handed-over file from a block of
 * its own, `block`, the file's last: IMAGE at its start.
 */
static void next_image_at_block(uint64_t block)
{
	struct pfs_log next;
	struct pfs_writer w;
	assert_int_equal(continue_in(&next, &w, 5), 0);
	assert_int_equal(next.first_block, block);
	struct walked m = fixture_map(pfs_log_proc.path);
	assert_int_equal(m.len, (block + 1) * PFS_LOG_BLOCK_SIZE);
	const struct pfs_rec_image *img = (const void *)(m.data + block * PFS_LOG_BLOCK_SIZE);
	assert_int_equal(img->h.type, PFS_REC_IMAGE);
	assert_int_equal(img->start_mono_ns, 5);
	munmap(m.data, m.len);
	pfs_log_close(&next);
}

/* A last block with less than a KiB left: the next image takes a block of its own. */
static void test_exec_image_takes_a_block_past_a_full_one(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	struct pfs_thread *t = pfs_thread_get();
	uint64_t n = 0;
	while (t->w.block < 1 || t->w.end - t->w.cur >= 1024)
		put(t, 0, n++);
	pfs_log_hand_over(&pfs_log_proc, (uint32_t)getpid(), 1);
	next_image_at_block(pfs_log_proc.next_block);
	fixture_close();
}

/* A last block the file does not hold whole (its reservation cut short): the next image takes a block of its own. */
static void test_exec_image_skips_a_cut_block(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	struct pfs_thread *t = pfs_thread_get();
	for (uint64_t i = 0; i < 300; i++) /* into a second block, a few KiB of it used */
		put(t, 0, i);
	assert_int_equal(t->w.block, 1);
	pfs_log_hand_over(&pfs_log_proc, (uint32_t)getpid(), 1);
	assert_int_equal(truncate(pfs_log_proc.path, PFS_LOG_BLOCK_SIZE + PFS_LOG_BLOCK_SIZE / 2), 0);
	next_image_at_block(2);
	fixture_close();
}

static void test_records_span_blocks_in_order(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	struct pfs_thread *t = pfs_thread_get();
	const uint64_t n = 3000; /* 64-byte records: about 12 blocks */
	for (uint64_t i = 0; i < n; i++)
		put(t, 0, i);
	struct walked w = fixture_map(pfs_log_proc.path);
	uint64_t next = 0, bad = 0;
	size_t off = sizeof(struct pfs_file_header);
	while (off + 8 <= w.len) {
		const struct test_rec *r = (const void *)(w.data + off);
		size_t block_end = (off / PFS_LOG_BLOCK_SIZE + 1) * PFS_LOG_BLOCK_SIZE;
		if (r->h.type == 0) {
			off = block_end;
			continue;
		}
		bad += r->n != next++;
		off += r->h.size;
	}
	assert_int_equal(next, n);
	assert_int_equal(bad, 0);
	assert_true(pfs_log_proc.next_block > 10);
	munmap(w.data, w.len);
	fixture_close();
}

static void test_oversized_record_is_lost_not_written(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	struct pfs_thread *t = pfs_thread_get();
	assert_null(pfs_rec_begin(&t->w, PFS_LOG_BLOCK_SIZE + 8));
	assert_int_equal(pfs_log_proc.lost, 1);
	fixture_close();
}

#define NWRITERS 4
#define PER_WRITER 5000

static void *writer_main(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	struct pfs_thread *t = pfs_thread_get();
	for (uint64_t i = 0; i < PER_WRITER; i++) {
		struct test_rec *r = pfs_rec_begin(&t->w, sizeof(*r));
		if (!r)
			continue;
		r->writer = id;
		r->n = i;
		pfs_rec_end(r, PFS_REC_MESSAGE, 0, sizeof(*r));
	}
	return NULL;
}

static void count_by_writer(const struct pfs_rec_hdr *h, void *arg)
{
	uint64_t *counts = arg;
	const struct test_rec *r = (const void *)h;
	if (h->type == PFS_REC_MESSAGE && r->writer >= 1 && r->writer <= NWRITERS)
		counts[r->writer - 1] += r->n + 1; /* sum of 1..PER_WRITER when complete */
}

static void test_concurrent_writers_lose_nothing(void **state)
{
	(void)state;
	assert_int_equal(fixture_open(), 0);
	pthread_t th[NWRITERS];
	for (uintptr_t i = 0; i < NWRITERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, writer_main, (void *)(i + 1)), 0);
	for (int i = 0; i < NWRITERS; i++)
		pthread_join(th[i], NULL);
	struct walked w = fixture_map(pfs_log_proc.path);
	uint64_t counts[NWRITERS] = {0};
	fixture_walk(&w, count_by_writer, counts);
	for (int i = 0; i < NWRITERS; i++)
		assert_int_equal(counts[i], (uint64_t)PER_WRITER * (PER_WRITER + 1) / 2);
	munmap(w.data, w.len);
	fixture_close();
}

static void test_arena_zeroed_aligned(void **state)
{
	(void)state;
	size_t before = pfs_arena_bytes();
	for (size_t sz = 1; sz < 5000; sz += 333) {
		unsigned char *p = pfs_arena_alloc(sz);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 16, 0);
		for (size_t i = 0; i < sz; i++)
			assert_int_equal(p[i], 0);
		memset(p, 0xab, sz);
	}
	void *big = pfs_arena_alloc(1 << 20);
	assert_non_null(big);
	assert_true(pfs_arena_bytes() >= before + (1 << 20));
	pfs_arena_free(big, 1 << 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_created_private),
		cmocka_unit_test(test_second_image_gets_suffix_and_symlink_not_followed),
		cmocka_unit_test(test_exec_image_goes_on_in_the_file),
		cmocka_unit_test(test_exec_image_takes_a_block_past_a_full_one),
		cmocka_unit_test(test_exec_image_skips_a_cut_block),
		cmocka_unit_test(test_records_span_blocks_in_order),
		cmocka_unit_test(test_oversized_record_is_lost_not_written),
		cmocka_unit_test(test_concurrent_writers_lose_nothing),
		cmocka_unit_test(test_arena_zeroed_aligned),
	};
	return cmocka_run_group_tests_name("shim log", tests, NULL, NULL);
}
