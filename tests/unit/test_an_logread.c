/*
 * The log reader on hand-built logs: every record delivered, unknown types
 * skipped, corrupt and cut records reported at their offset with the other
 * blocks still read, foreign and newer files refused, and random damage
 * never read out of bounds (run under ASan to make that strict).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../analyzer/logread.h"
#include "test_an_logbuild.h"

/* A tool that remembers what it was given. */
struct seen {
	struct pfs_logread_tool tool;
	unsigned ntypes;
	uint16_t types[256];
	uint64_t offsets[256];
	unsigned nproblems;
	uint64_t problem_off[32];
	char problem[32][256];
	/* copies of a few decoded fields */
	char exe[64], cmd[64];
	uint64_t frames[8];
	uint32_t nframes;
	uint64_t slot_count_sum;
};

static int seen_any(struct pfs_logread_tool *tool, const struct pfs_rec *rec, const char **why)
{
	struct seen *s = (struct seen *)tool;

	(void)why;
	if (s->ntypes < 256) {
		s->types[s->ntypes] = rec->h.type;
		s->offsets[s->ntypes] = rec->offset;
		s->ntypes++;
	}
	switch (rec->h.type) {
	case PFS_REC_PROC_START:
		snprintf(s->exe, sizeof(s->exe), "%.*s", (int)rec->str_len[0], rec->str[0]);
		memcpy(s->cmd, rec->str[1], rec->str_len[1] < 63 ? rec->str_len[1] : 63);
		break;
	case PFS_REC_STACK:
		s->nframes = rec->nitems;
		for (uint32_t i = 0; i < rec->nitems && i < 8; i++)
			s->frames[i] = pfs_logread_frame(rec, i);
		break;
	case PFS_REC_COUNTERS:
		for (uint32_t i = 0; i < rec->nitems; i++)
			s->slot_count_sum += pfs_logread_slot(rec, i).count;
		break;
	}
	return 0;
}

static void seen_problem(struct pfs_logread_tool *tool, const struct pfs_logfile *lf,
			 uint64_t offset, const char *what)
{
	struct seen *s = (struct seen *)tool;

	(void)lf;
	if (s->nproblems < 32) {
		s->problem_off[s->nproblems] = offset;
		snprintf(s->problem[s->nproblems], sizeof(s->problem[0]), "%s", what);
		s->nproblems++;
	}
}

static const pfs_logread_handler all_handlers[PFS_REC_TYPE_MAX] = {
	[1] = seen_any, [2] = seen_any, [3] = seen_any, [4] = seen_any, [5] = seen_any,
	[6] = seen_any, [7] = seen_any, [8] = seen_any, [9] = seen_any, [10] = seen_any,
	[11] = seen_any, [12] = seen_any, [13] = seen_any,
};

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	s->tool.handlers = all_handlers;
	s->tool.problem = seen_problem;
	s->tool.diag = NULL;	/* quiet: the tests look at the problems themselves */
}

static int read_buf(const struct lb *b, size_t len, struct seen *s, struct pfs_logread_stats *st,
		    char *err, size_t errlen)
{
	struct pfs_logfile lf;
	int rc;

	rc = pfs_logread_open_buffer(&lf, b->buf, len, "test.pfslog", err, errlen);
	if (rc)
		return rc;
	return pfs_logread_walk(&lf, &s->tool, st);
}

/* block 0: start, module, stack, counters, alloc; block 1: free, fork, end. */
static void build_basic(struct lb *b, size_t *offs)
{
	static const char cmd[] = "prog\0-v\0";
	uint64_t frames[3] = {0x401136, 0x401200, 0x7f0000001000};
	struct pfs_counter_slot slots[2] = {{.stack = 1, .kind = 1, .count = 5, .bytes = 80},
					    {.stack = 0}};

	lb_init(b, 42, 1000);
	offs[0] = lb_proc_start(b, 42, 1, 1000, 0, "/bin/prog", cmd, sizeof(cmd) - 1);
	offs[1] = lb_module(b, 1, 1, 0, 0x400000, 0x402000, "/bin/prog", NULL, 0);
	offs[2] = lb_stack(b, 2, 1, frames, 3);
	offs[3] = lb_counters(b, slots, 2);
	offs[4] = lb_alloc(b, 3, 1, PFS_KIND_MMAP, 0x10000, 8192, 8192);
	lb_next_block(b);
	offs[5] = lb_free(b, 4, 0x10000, 8192, PFS_KIND_MMAP);
	offs[6] = lb_fork(b, 5, 43);
	offs[7] = lb_proc_end(b, 6, 0, PFS_END_EXIT);
}

static void test_reads_every_record(void **state)
{
	struct pfs_logread_stats st;
	struct seen s;
	struct lb b;
	size_t offs[8];
	char err[256];
	static const uint16_t want[8] = {PFS_REC_PROC_START, PFS_REC_MODULE, PFS_REC_STACK,
					 PFS_REC_COUNTERS, PFS_REC_ALLOC, PFS_REC_FREE,
					 PFS_REC_FORK, PFS_REC_PROC_END};

	(void)state;
	build_basic(&b, offs);
	seen_init(&s);
	assert_int_equal(read_buf(&b, b.len, &s, &st, err, sizeof(err)), 0);
	assert_int_equal(s.ntypes, 8);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(s.types[i], want[i]);
		assert_int_equal(s.offsets[i], offs[i]);
	}
	assert_int_equal(offs[5], 4096);	/* block 1 really was used */
	assert_string_equal(s.exe, "/bin/prog");
	assert_memory_equal(s.cmd, "prog\0-v\0", 8);
	assert_int_equal(s.nframes, 3);
	assert_int_equal(s.frames[2], 0x7f0000001000);
	assert_int_equal(s.slot_count_sum, 5);
	assert_int_equal(st.records, 8);
	assert_int_equal(st.bad, 0);
	assert_int_equal(st.unknown, 0);
	assert_int_equal(s.nproblems, 0);
	lb_release(&b);
}

static void test_unknown_type_skipped(void **state)
{
	struct pfs_logread_stats st;
	struct seen s;
	struct lb b;
	char err[256];

	(void)state;
	lb_init(&b, 1, 0);
	lb_proc_start(&b, 1, 0, 0, 0, "/x", "", 0);
	lb_raw(&b, 60, 24);	/* a record type of a newer shim, say */
	lb_raw(&b, 30, 0);	/* no type yet */
	lb_proc_end(&b, 2, 0, PFS_END_EXIT);
	seen_init(&s);
	assert_int_equal(read_buf(&b, b.len, &s, &st, err, sizeof(err)), 0);
	assert_int_equal(s.ntypes, 2);
	assert_int_equal(s.types[1], PFS_REC_PROC_END);
	assert_int_equal(st.unknown, 2);
	assert_int_equal(st.bad, 0);
	assert_int_equal(s.nproblems, 0);
	lb_release(&b);
}

static void test_flipped_size_reported_other_blocks_read(void **state)
{
	struct pfs_logread_stats st;
	struct seen s;
	struct lb b;
	size_t offs[8];
	char err[256];
	struct pfs_rec_hdr h;

	(void)state;
	build_basic(&b, offs);
	/* the STACK record's size byte: 24 + 3*8 = 48 becomes 49 */
	memcpy(&h, b.buf + offs[2], sizeof(h));
	assert_int_equal(h.size, 48);
	b.buf[offs[2] + 4] ^= 0x01;
	seen_init(&s);
	assert_int_equal(read_buf(&b, b.len, &s, &st, err, sizeof(err)), 0);
	assert_int_equal(s.nproblems, 1);
	assert_int_equal(s.problem_off[0], offs[2]);
	assert_non_null(strstr(s.problem[0], "size 49"));
	assert_int_equal(st.bad, 1);
	/* before it in block 0, and all of block 1 */
	assert_int_equal(s.ntypes, 2 + 3);
	assert_int_equal(s.types[0], PFS_REC_PROC_START);
	assert_int_equal(s.types[1], PFS_REC_MODULE);
	assert_int_equal(s.types[2], PFS_REC_FREE);
	assert_int_equal(s.types[4], PFS_REC_PROC_END);
	lb_release(&b);
}

static void test_bad_type_and_block_crossing(void **state)
{
	struct pfs_logread_stats st;
	struct seen s;
	struct lb b;
	size_t offs[8];
	char err[256];
	struct pfs_rec_hdr h;

	(void)state;
	/* a type past PFS_REC_TYPE_MAX is corruption, not a newer record */
	build_basic(&b, offs);
	b.buf[offs[3]] = 200;
	seen_init(&s);
	assert_int_equal(read_buf(&b, b.len, &s, &st, err, sizeof(err)), 0);
	assert_int_equal(s.nproblems, 1);
	assert_int_equal(s.problem_off[0], offs[3]);
	assert_int_equal(st.unknown, 0);
	assert_int_equal(s.ntypes, 3 + 3);
	lb_release(&b);

	/* a size that runs past the block boundary */
	build_basic(&b, offs);
	memcpy(&h, b.buf + offs[4], sizeof(h));
	h.size = 4096;
	memcpy(b.buf + offs[4], &h, sizeof(h));
	seen_init(&s);
	assert_int_equal(read_buf(&b, b.len, &s, &st, err, sizeof(err)), 0);
	assert_int_equal(s.nproblems, 1);
	assert_int_equal(s.problem_off[0], offs[4]);
	assert_non_null(strstr(s.problem[0], "block boundary"));
	assert_int_equal(s.ntypes, 4 + 3);
	lb_release(&b);

	/* a known record smaller than its struct */
	build_basic(&b, offs);
	memcpy(&h, b.buf + offs[1], sizeof(h));
	h.size = 16;
	memcpy(b.buf + offs[1], &h, sizeof(h));
	seen_init(&s);
	assert_int_equal(read_buf(&b, b.len, &s, &st, err, sizeof(err)), 0);
	assert_int_equal(s.nproblems, 1);
	assert_int_equal(s.problem_off[0], offs[1]);
	assert_int_equal(s.ntypes, 1 + 3);
	lb_release(&b);
}

static void test_trailing_data_must_fit(void **state)
{
	struct pfs_logread_stats st;
	struct pfs_rec_stack sr;
	struct pfs_rec_proc_start ps;
	struct seen s;
	struct lb b;
	size_t offs[8];
	char err[256];

	(void)state;
	/* STACK claiming more frames than its size holds */
	build_basic(&b, offs);
	memcpy(&sr, b.buf + offs[2], sizeof(sr));
	sr.nframes = 0x40000000u;	/* * 8 would wrap in 32 bits */
	memcpy(b.buf + offs[2], &sr, sizeof(sr));
	seen_init(&s);
	assert_int_equal(read_buf(&b, b.len, &s, &st, err, sizeof(err)), 0);
	assert_int_equal(s.nproblems, 1);
	assert_int_equal(s.problem_off[0], offs[2]);
	assert_non_null(strstr(s.problem[0], "STACK frame count"));
	lb_release(&b);

	/* PROC_START strings longer than the record */
	build_basic(&b, offs);
	memcpy(&ps, b.buf + offs[0], sizeof(ps));
	ps.cmd_len = 0xffffffffu;
	memcpy(b.buf + offs[0], &ps, sizeof(ps));
	seen_init(&s);
	assert_int_equal(read_buf(&b, b.len, &s, &st, err, sizeof(err)), 0);
	assert_int_equal(s.nproblems, 1);
	assert_int_equal(s.problem_off[0], offs[0]);
	assert_int_equal(s.ntypes, 3);	/* block 1 only */
	lb_release(&b);
}

static void test_truncated_file(void **state)
{
	struct pfs_logread_stats st;
	struct seen s;
	struct lb b;
	size_t offs[8];
	char err[256];

	(void)state;
	build_basic(&b, offs);
	/* cut inside the FORK record of block 1 */
	seen_init(&s);
	assert_int_equal(read_buf(&b, offs[6] + 16, &s, &st, err, sizeof(err)), 0);
	assert_int_equal(s.nproblems, 1);
	assert_int_equal(s.problem_off[0], offs[6]);
	assert_non_null(strstr(s.problem[0], "truncated"));
	assert_int_equal(s.ntypes, 5 + 1);
	assert_int_equal(s.types[5], PFS_REC_FREE);
	lb_release(&b);

	/* cut right after the last record, in zero fill: normal, nothing to report */
	build_basic(&b, offs);
	seen_init(&s);
	assert_int_equal(read_buf(&b, offs[7] + sizeof(struct pfs_rec_proc_end) + 5, &s, &st, err,
				  sizeof(err)), 0);
	assert_int_equal(s.nproblems, 0);
	assert_int_equal(s.ntypes, 8);
	lb_release(&b);

	/* cut inside a record header */
	build_basic(&b, offs);
	seen_init(&s);
	assert_int_equal(read_buf(&b, offs[6] + 4, &s, &st, err, sizeof(err)), 0);
	assert_int_equal(s.nproblems, 1);
	assert_int_equal(s.problem_off[0], offs[6]);
	lb_release(&b);
}

static void test_foreign_and_newer_files(void **state)
{
	struct pfs_logread_stats st;
	struct pfs_file_header h;
	struct seen s;
	struct lb b;
	size_t offs[8];
	char err[256];

	(void)state;
	build_basic(&b, offs);
	seen_init(&s);
	b.buf[0] = 'X';
	assert_int_equal(read_buf(&b, b.len, &s, &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a pfshim log"));
	assert_int_equal(s.ntypes, 0);
	b.buf[0] = 'P';
	/* shorter than the header */
	assert_int_equal(read_buf(&b, 40, &s, &st, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "shorter than"));
	assert_int_equal(read_buf(&b, 3, &s, &st, err, sizeof(err)), -EINVAL);
	/* a newer format */
	memcpy(&h, b.buf, sizeof(h));
	h.version = PFS_LOG_VERSION + 1;
	memcpy(b.buf, &h, sizeof(h));
	assert_int_equal(read_buf(&b, b.len, &s, &st, err, sizeof(err)), -EPROTONOSUPPORT);
	assert_non_null(strstr(err, "newer"));
	/* block sizes that are no power of two, or too small */
	h.version = PFS_LOG_VERSION;
	h.block_size = 5000;
	memcpy(b.buf, &h, sizeof(h));
	assert_int_equal(read_buf(&b, b.len, &s, &st, err, sizeof(err)), -EINVAL);
	h.block_size = 2048;
	memcpy(b.buf, &h, sizeof(h));
	assert_int_equal(read_buf(&b, b.len, &s, &st, err, sizeof(err)), -EINVAL);
	h.block_size = 4096;
	h.header_size = 60;
	memcpy(b.buf, &h, sizeof(h));
	assert_int_equal(read_buf(&b, b.len, &s, &st, err, sizeof(err)), -EINVAL);
	assert_int_equal(s.ntypes, 0);
	lb_release(&b);

	/* a real file that is not a log, through the mmap path */
	{
		char path[] = "/tmp/pfs-an-foreign-XXXXXX";
		struct pfs_logfile lf;
		int fd = mkstemp(path);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "#!/bin/sh\necho hello, this is not a log at all\n", 47), 47);
		close(fd);
		assert_int_equal(pfs_logread_open(&lf, path, err, sizeof(err)), -EINVAL);
		unlink(path);
		assert_int_equal(pfs_logread_open(&lf, path, err, sizeof(err)), -ENOENT);
	}
}

/*
 * Random damage: flip bytes and cut lengths; the reader must neither crash
 * nor read outside the buffer (the buffer is an exact-size copy so ASan
 * sees any overrun), and must never report more records than fit.
 */
static void test_random_damage(void **state)
{
	unsigned seed = 777;
	size_t offs[8];
	struct lb b;

	(void)state;
	build_basic(&b, offs);
	for (int iter = 0; iter < 3000; iter++) {
		size_t len = b.len - (size_t)(rand_r(&seed) % 600) * (iter & 1);
		uint8_t *copy = malloc(len);
		struct pfs_logread_stats st;
		struct pfs_logfile lf;
		struct seen s;
		char err[256];

		assert_non_null(copy);
		memcpy(copy, b.buf, len);
		for (int k = 0; k < 1 + iter % 8; k++) {
			size_t at = 64 + (size_t)rand_r(&seed) % 700;

			if (iter % 3 == 0)
				at = (size_t)rand_r(&seed) % len;
			if (at < len)
				copy[at] = (uint8_t)rand_r(&seed);
		}
		seen_init(&s);
		if (pfs_logread_open_buffer(&lf, copy, len, "fuzz", err, sizeof(err)) == 0) {
			assert_int_equal(pfs_logread_walk(&lf, &s.tool, &st), 0);
			assert_true(st.records + st.unknown <= len / 8);
		}
		free(copy);
	}
	lb_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads_every_record),
		cmocka_unit_test(test_unknown_type_skipped),
		cmocka_unit_test(test_flipped_size_reported_other_blocks_read),
		cmocka_unit_test(test_bad_type_and_block_crossing),
		cmocka_unit_test(test_trailing_data_must_fit),
		cmocka_unit_test(test_truncated_file),
		cmocka_unit_test(test_foreign_and_newer_files),
		cmocka_unit_test(test_random_damage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
