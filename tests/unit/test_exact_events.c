/* Exact mode's event encoding: what the shim writes, the analyzer reads back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "faults.h"

static void leb128_round_trip(void **state)
{
	(void)state;
	uint8_t buf[16];
	assert_int_equal(pfs_leb128_put(buf, 0), 1);
	assert_int_equal(buf[0], 0);
	assert_int_equal(pfs_leb128_put(buf, 127), 1);
	assert_int_equal(pfs_leb128_put(buf, 128), 2);
	assert_int_equal(buf[0], 0x80);
	assert_int_equal(buf[1], 1);
	assert_int_equal(pfs_leb128_put(buf, UINT64_MAX), 10);
}

/*
 * Encodes with the shim's encoder, decodes with the analyzer's reader: pages
 * 1000, 999 (backwards), 5000 on another thread, with a site.  The first
 * event's bytes are pinned: the format on disk, not only the round trip.
 */
static void decode_events(void **state)
{
	(void)state;
	uint8_t raw[256] = {0}, *q = raw + sizeof(struct pfs_rec_faults);
	const struct pfs_fev ev[3] = {
		{.page = 1000, .time_ns = 1000000, .tid = 5, .flags = PFS_FEV_WRITE},
		{.page = 999, .time_ns = 1004000, .tid = 5, .flags = 0},
		{.page = 5000, .time_ns = 1004100, .tid = 77, .pc = 0x401136, .sys = 0,
		 .flags = PFS_FEV_COW | PFS_FEV_WRITE | PFS_FEV_SITE},
	};
	struct pfs_fev_cursor c;
	pfs_fev_start(&c, 1000000, 5);
	for (int i = 0; i < 3; i++)
		q += pfs_fev_encode(q, &c, &ev[i]);
	static const uint8_t first[] = {0x81, 0xfa, 0x01, 0x00}; /* zigzag(1000) << 4 | WRITE, dt 0 */
	assert_memory_equal(raw + sizeof(struct pfs_rec_faults), first, sizeof(first));
	struct pfs_rec rec;
	memset(&rec, 0, sizeof(rec));
	rec.raw = raw;
	rec.u.faults.time_ns = 1000000;
	rec.u.faults.tid = 5;
	rec.u.faults.count = 3;
	rec.u.faults.bytes = (uint32_t)(q - raw - sizeof(struct pfs_rec_faults));
	rec.h.size = (uint32_t)(q - raw);
	rec.items = raw + sizeof(struct pfs_rec_faults);
	rec.nitems = rec.u.faults.bytes;
	struct pfs_proc p;
	memset(&p, 0, sizeof(p));
	p.page_size = 4096;
	const char *why = NULL;
	assert_int_equal(pfs_faults_decode(&p, &rec, &why), 0);
	assert_int_equal(p.nfaults, 3);
	assert_int_equal(p.faults[0].addr, 1000 * 4096ull);
	assert_int_equal(p.faults[0].tid, 5);
	assert_int_equal(p.faults[1].addr, 999 * 4096ull);
	assert_int_equal(p.faults[1].time_ns, 1004000);
	assert_int_equal(p.faults[2].addr, 5000 * 4096ull);
	assert_int_equal(p.faults[2].tid, 77);
	assert_int_equal(p.faults[2].pc, 0x401136);
	assert_int_equal(p.faults[2].sys, 0);
	assert_true(p.faults[2].flags & PFS_FEV_COW);
	assert_int_equal(p.faults[1].sys, -1);
	/* one byte short: the events before the cut are kept, the record is bad */
	rec.nitems--;
	p.nfaults = 0;
	assert_int_equal(pfs_faults_decode(&p, &rec, &why), -EINVAL);
	assert_non_null(why);
	assert_int_equal(p.nfaults, 2);
	free(p.faults);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(leb128_round_trip),
		cmocka_unit_test(decode_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
