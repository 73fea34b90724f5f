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
#include "exact.h"

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

/* Builds a FAULTS record by hand: pages 1000, 999 (backwards), 5000 on another thread, with a site. */
static void decode_events(void **state)
{
	(void)state;
	uint8_t raw[256] = {0}, *q = raw + sizeof(struct pfs_rec_faults);
	struct {
		int64_t dpage;
		uint64_t dt;
		unsigned flags;
		uint64_t tid, pc, sys1;
	} ev[3] = {
		{1000, 0, PFS_FEV_WRITE, 0, 0, 0},
		{-1, 4000, 0, 0, 0, 0},
		{4001, 100, PFS_FEV_COW | PFS_FEV_WRITE | PFS_FEV_TID | PFS_FEV_SITE, 77, 0x401136, 0 + 1},
	};
	for (int i = 0; i < 3; i++) {
		uint64_t zz = ((uint64_t)ev[i].dpage << 1) ^ (uint64_t)(ev[i].dpage >> 63);
		q += pfs_leb128_put(q, zz << 4 | ev[i].flags);
		q += pfs_leb128_put(q, ev[i].dt);
		if (ev[i].flags & PFS_FEV_TID)
			q += pfs_leb128_put(q, ev[i].tid);
		if (ev[i].flags & PFS_FEV_SITE) {
			q += pfs_leb128_put(q, ev[i].pc);
			q += pfs_leb128_put(q, ev[i].sys1);
		}
	}
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
