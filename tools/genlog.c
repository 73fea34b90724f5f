/*
 * genlog: writes a synthetic fast-mode pfshim log, for the analyzer's
 * benchmark (bench/analyzer.sh).
 *
 *   genlog OUT.pfslog [TOUCHES [SITES [ALLOCS [distinct]]]]   (10000000, 1000, 100000)
 *
 * One process running 10 s: MODULE records of the objects genlog itself has
 * loaded (so the stacks symbolize, from real files), SITES stacks of 8
 * frames drawn from real functions of genlog and libc, ALLOCS allocations
 * spread over the run, TOUCHES TOUCH records of one page each spread over
 * sites and time, with a storm (a fifth of the pages at one site within
 * 0.5 s), one SCAN per 10 ms, and a PROC_END.  Deterministic: the same
 * arguments give the same records (only the load addresses vary).
 * "distinct": every TOUCH gets a time of its own inside its scan's 10 ms,
 * as one event per fault will have (exact mode), instead of the scan's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pfshim/log_format.h>

#define SCANS 1000			/* 10 ms apart: 10 s */
#define SCAN_NS 10000000ull
#define T0 1000000000000ull		/* CLOCK_MONOTONIC of the start */
#define FRAMES 8
#define STORM_FIRST 400			/* scans 400-449: 4.0-4.5 s */
#define STORM_SCANS 50
#define STORM_SITE 7

static FILE *out;
static uint8_t block[PFS_LOG_BLOCK_SIZE];
static size_t used;
static uint64_t seq;

static void flush_block(void)
{
	memset(block + used, 0, sizeof(block) - used);
	if (fwrite(block, 1, sizeof(block), out) != sizeof(block)) {
		perror("genlog: write");
		exit(1);
	}
	used = 0;
}

/* One record (size a multiple of 8); records never cross a block boundary. */
static void put(const void *rec, size_t size)
{
	if (used + size > sizeof(block))
		flush_block();
	memcpy(block + used, rec, size);
	used += size;
}

static void put_with_tail(void *fixed, size_t fixed_size, const void *tail, size_t tail_len)
{
	uint8_t buf[4096] = {0};
	size_t size = PFS_ALIGN8(fixed_size + tail_len);
	struct pfs_rec_hdr *h = fixed;

	if (size > sizeof(buf)) {
		fprintf(stderr, "genlog: record too long\n");
		exit(1);
	}
	h->size = (uint32_t)size;
	memcpy(buf, fixed, fixed_size);
	memcpy(buf + fixed_size, tail, tail_len);
	put(buf, size);
}

struct mod_ctx {
	uint32_t next_id;
};

static int on_object(struct dl_phdr_info *info, size_t size, void *data)
{
	struct mod_ctx *c = data;
	struct pfs_rec_module m = {.h = {.type = PFS_REC_MODULE}};
	uint64_t lo = UINT64_MAX, hi = 0;
	char path[4096];
	ssize_t n;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD)
			continue;
		if (info->dlpi_addr + ph->p_vaddr < lo)
			lo = info->dlpi_addr + ph->p_vaddr;
		if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > hi)
			hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
	}
	if (hi <= lo)
		return 0;
	if (!info->dlpi_name[0]) {	/* the main program */
		n = readlink("/proc/self/exe", path, sizeof(path) - 1);
		if (n < 0)
			return 0;
		path[n] = '\0';
	} else {
		snprintf(path, sizeof(path), "%s", info->dlpi_name);
	}
	m.seq = ++seq;
	m.base = info->dlpi_addr;
	m.start = lo;
	m.end = hi;
	m.id = ++c->next_id;
	m.path_len = (uint32_t)strlen(path);
	put_with_tail(&m, sizeof(m), path, m.path_len);
	return 0;
}

/* xorshift: deterministic spread of touches over sites */
static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

static unsigned long parse(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !*s || v == 0) {
		fprintf(stderr, "genlog: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	/* frames: return addresses inside real functions of genlog and libc */
	const uintptr_t pool[] = {
		(uintptr_t)main, (uintptr_t)put, (uintptr_t)put_with_tail, (uintptr_t)on_object,
		(uintptr_t)flush_block, (uintptr_t)rnd, (uintptr_t)parse, (uintptr_t)malloc,
		(uintptr_t)free, (uintptr_t)qsort, (uintptr_t)fwrite, (uintptr_t)strtoul,
		(uintptr_t)snprintf, (uintptr_t)readlink, (uintptr_t)fopen, (uintptr_t)perror,
	};
	const size_t npool = sizeof(pool) / sizeof(pool[0]);
	unsigned long touches = 10000000, nsites = 1000, nallocs = 100000;
	struct pfs_file_header fh = {.version = PFS_LOG_VERSION, .header_size = sizeof(fh),
				     .block_size = PFS_LOG_BLOCK_SIZE, .page_size = 4096,
				     .pid = 4242, .start_mono_ns = T0, .start_real_ns = T0};
	static const char exe[] = "/usr/bin/bench-app";
	static const char cmd[] = "bench-app\0--synthetic";
	struct pfs_rec_proc_start ps = {.h = {.type = PFS_REC_PROC_START}, .pid = 4242,
					.ppid = 1, .root_pid = 4242, .start_mono_ns = T0,
					.mode = PFS_MODE_FAST, .page_size = 4096, .argc = 2,
					.exe_len = sizeof(exe) - 1, .cmd_len = sizeof(cmd)};
	struct mod_ctx mc = {0};
	bool distinct = argc == 6;
	uint64_t *last_alloc, touched = 0, allocated = 0;
	uint8_t *tail;

	if (argc < 2 || argc > 6 || (argc == 6 && strcmp(argv[5], "distinct"))) {
		fprintf(stderr, "usage: genlog OUT.pfslog [TOUCHES [SITES [ALLOCS [distinct]]]]\n");
		return 2;
	}
	if (argc > 2)
		touches = parse(argv[2], "TOUCHES");
	if (argc > 3)
		nsites = parse(argv[3], "SITES");
	if (argc > 4)
		nallocs = parse(argv[4], "ALLOCS");
	out = fopen(argv[1], "w");
	last_alloc = calloc(nsites + 1, sizeof(*last_alloc));
	tail = malloc(sizeof(exe) + sizeof(cmd));
	if (!out || !last_alloc || !tail) {
		perror("genlog");
		return 1;
	}
	memcpy(fh.magic, PFS_LOG_MAGIC, sizeof(fh.magic));
	memcpy(block, &fh, sizeof(fh));
	used = sizeof(fh);
	memcpy(tail, exe, ps.exe_len);
	memcpy(tail + ps.exe_len, cmd, ps.cmd_len);
	put_with_tail(&ps, sizeof(ps), tail, ps.exe_len + ps.cmd_len);
	dl_iterate_phdr(on_object, &mc);

	for (unsigned long s = 1; s <= nsites; s++) {
		struct {
			struct pfs_rec_stack st;
			uint64_t frames[FRAMES];
		} r = {.st = {.h = {.type = PFS_REC_STACK, .size = sizeof(r)}, .seq = ++seq,
			      .id = (uint32_t)s, .nframes = FRAMES}};

		for (unsigned f = 0; f < FRAMES; f++)
			r.frames[f] = pool[(s * 7 + f * 13 + s / npool) % npool] + 4 +
				      ((s * 31 + f) % 64);
		put(&r, sizeof(r));
	}

	for (unsigned long k = 0; k < SCANS; k++) {
		uint64_t t = T0 + (k + 1) * SCAN_NS;
		unsigned long a_end = nallocs * (k + 1) / SCANS;
		/* a fifth of the pages in the storm's scans, the rest spread evenly */
		uint64_t storm = touches / 5, calm = touches - storm;
		uint64_t t_end = calm * (k + 1) / SCANS +
				 (k >= STORM_FIRST + STORM_SCANS ? storm :
				  k >= STORM_FIRST ? storm * (k + 1 - STORM_FIRST) / STORM_SCANS : 0);
		struct pfs_rec_scan sc = {.h = {.type = PFS_REC_SCAN, .size = sizeof(sc)},
					  .time_ns = t, .duration_ns = 20000,
					  .new_pages = t_end - touched, .reason = PFS_SCAN_PERIODIC};

		for (; allocated < a_end; allocated++) {
			uint32_t stack = (uint32_t)(allocated % nsites) + 1;
			struct pfs_rec_alloc a = {
				.h = {.type = PFS_REC_ALLOC, .size = sizeof(a)}, .seq = ++seq,
				.time_ns = t - SCAN_NS / 2, .addr = 0x7f0000000000ull + allocated * 0x200000,
				.size = 1 << 20, .length = 1 << 20, .tid = 4242, .stack = stack,
				.kind = PFS_KIND_MALLOC};

			put(&a, sizeof(a));
			last_alloc[stack] = a.seq;
		}
		uint64_t first = touched;

		for (; touched < t_end; touched++) {
			bool in_storm = k >= STORM_FIRST && k < STORM_FIRST + STORM_SCANS &&
					rnd() % 10 < 8;
			uint32_t stack = in_storm ? STORM_SITE : (uint32_t)(rnd() % nsites) + 1;
			struct pfs_rec_touch r = {.h = {.type = PFS_REC_TOUCH, .size = sizeof(r)},
						  .time_ns = distinct ? t - SCAN_NS + 1 + (touched - first) *
									(SCAN_NS - 1) / (t_end - first) : t,
						  .alloc_seq = last_alloc[stack],
						  .stack = stack, .pages = 1, .kind = PFS_KIND_MALLOC};

			put(&r, sizeof(r));
		}
		put(&sc, sizeof(sc));
	}
	struct pfs_rec_proc_end pe = {.h = {.type = PFS_REC_PROC_END, .size = sizeof(pe)},
				      .seq = ++seq, .time_ns = T0 + (SCANS + 1) * SCAN_NS,
				      .reason = PFS_END_EXIT};
	put(&pe, sizeof(pe));
	flush_block();
	if (fclose(out)) {
		perror("genlog: close");
		return 1;
	}
	free(last_alloc);
	free(tail);
	return 0;
}
