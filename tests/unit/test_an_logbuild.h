/*
 * Hand-built pfshim logs for the analyzer's unit tests: records are laid out
 * as the shim lays them out (log_format.h), so the reader can be tested on
 * exact offsets, cut files and flipped bytes without running the shim.
 */
#ifndef TEST_AN_LOGBUILD_H
#define TEST_AN_LOGBUILD_H

#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pfshim/log_format.h>

#include "../../analyzer/cli.h"

/*
 * Reports built from these logs weigh faults at fixed costs, those of a
 * loaded virtual machine (a first touch 20 us: this project's machine under
 * a load average of 8), not at what the machine measures at the moment: the
 * storms a test expects (10,000 pages/s: 20% of the time) do not depend on
 * the machine's load.
 */
__attribute__((constructor)) static void lb_fixed_fault_cost(void)
{
	setenv("PFSHIM_FAULT_COST", "first=20us,cow=60us,huge=200us", 0);
}

struct lb {
	uint8_t *buf;
	size_t cap;		/* bytes allocated, whole blocks */
	size_t pos;		/* where the next record goes */
	size_t len;		/* file length: every block touched, zero-filled */
	uint32_t block_size;
};

static inline void lb_ensure(struct lb *b, size_t need)
{
	if (need <= b->cap)
		return;
	size_t ncap = b->cap ? b->cap : b->block_size;
	while (ncap < need)
		ncap *= 2;
	b->buf = realloc(b->buf, ncap);
	if (!b->buf)
		abort();
	memset(b->buf + b->cap, 0, ncap - b->cap);
	b->cap = ncap;
}

static inline void lb_init(struct lb *b, uint64_t pid, uint64_t start_ns)
{
	struct pfs_file_header h;

	memset(b, 0, sizeof(*b));
	b->block_size = 4096;	/* the smallest legal block keeps the tests small */
	lb_ensure(b, b->block_size);
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, PFS_LOG_MAGIC, 8);
	h.version = PFS_LOG_VERSION;
	h.header_size = sizeof(h);
	h.block_size = b->block_size;
	h.page_size = 4096;
	h.pid = pid;
	h.start_mono_ns = start_ns;
	memcpy(b->buf, &h, sizeof(h));
	b->pos = sizeof(h);
	b->len = b->block_size;
}

/* Start the next block, as a thread taking a fresh block does. */
static inline void lb_next_block(struct lb *b)
{
	b->pos = (b->pos / b->block_size + 1) * b->block_size;
	lb_ensure(b, b->pos + b->block_size);
	if (b->len < b->pos + b->block_size)
		b->len = b->pos + b->block_size;
}

/*
 * Append a record: `fixed` bytes of its struct (the header's type and flags
 * set by the caller; size set here) then `tail`, padded to 8.  Returns the
 * record's file offset.
 */
static inline size_t lb_put(struct lb *b, void *rec, size_t fixed, const void *tail,
			    size_t tail_len)
{
	struct pfs_rec_hdr *h = rec;
	size_t size = (fixed + tail_len + 7) & ~(size_t)7, off;

	h->size = (uint32_t)size;
	if (b->pos % b->block_size + size > b->block_size)
		lb_next_block(b);
	off = b->pos;
	lb_ensure(b, off + size);
	memcpy(b->buf + off, rec, fixed);
	if (tail_len)
		memcpy(b->buf + off + fixed, tail, tail_len);
	b->pos += size;
	if (b->len < (off / b->block_size + 1) * b->block_size)
		b->len = (off / b->block_size + 1) * b->block_size;
	return off;
}

/* argv given as one string of NUL-separated arguments, `cmd_len` bytes. */
static inline size_t lb_proc_start(struct lb *b, uint64_t pid, uint64_t ppid, uint64_t start_ns,
				   uint32_t exec_gen, const char *exe, const char *cmd,
				   size_t cmd_len)
{
	struct pfs_rec_proc_start r;
	size_t exe_len = strlen(exe);
	char tail[512];

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_PROC_START;
	r.pid = pid;
	r.ppid = ppid;
	r.root_pid = pid;
	r.start_mono_ns = start_ns;
	r.mode = PFS_MODE_FAST;
	r.exec_gen = exec_gen;
	r.page_size = 4096;
	r.argc = 0;
	r.exe_len = (uint32_t)exe_len;
	r.cmd_len = (uint32_t)cmd_len;
	memcpy(tail, exe, exe_len);
	memcpy(tail + exe_len, cmd, cmd_len);
	return lb_put(b, &r, sizeof(r), tail, exe_len + cmd_len);
}

static inline size_t lb_module(struct lb *b, uint64_t seq, uint32_t id, uint64_t base,
			       uint64_t start, uint64_t end, const char *path,
			       const uint8_t *build_id, uint8_t build_id_len)
{
	struct pfs_rec_module r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_MODULE;
	r.seq = seq;
	r.id = id;
	r.base = base;
	r.start = start;
	r.end = end;
	r.build_id_len = build_id_len;
	if (build_id_len)
		memcpy(r.build_id, build_id, build_id_len);
	r.path_len = (uint32_t)strlen(path);
	return lb_put(b, &r, sizeof(r), path, strlen(path));
}

static inline size_t lb_unload(struct lb *b, uint64_t seq, uint32_t id)
{
	struct pfs_rec_module_unload r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_MODULE_UNLOAD;
	r.seq = seq;
	r.id = id;
	return lb_put(b, &r, sizeof(r), NULL, 0);
}

/* A STACK record with flags (PFS_STACK_PYTHON: pfs_pyframe values among the frames). */
static inline size_t lb_stack_flags(struct lb *b, uint64_t seq, uint32_t id, const uint64_t *frames,
				    uint32_t n, uint16_t flags)
{
	struct pfs_rec_stack r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_STACK;
	r.h.flags = flags;
	r.seq = seq;
	r.id = id;
	r.nframes = n;
	return lb_put(b, &r, sizeof(r), frames, n * sizeof(*frames));
}

static inline size_t lb_stack(struct lb *b, uint64_t seq, uint32_t id, const uint64_t *frames,
			      uint32_t n)
{
	return lb_stack_flags(b, seq, id, frames, n, 0);
}

/* A Python function that Python frames name. */
static inline size_t lb_pycode(struct lb *b, uint64_t seq, uint32_t id, uint32_t first_line,
			       const char *file, const char *name)
{
	struct pfs_rec_pycode r;
	char tail[1024];
	size_t fl = strlen(file), nl = strlen(name);

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_PYCODE;
	r.seq = seq;
	r.id = id;
	r.first_line = first_line;
	r.file_len = (uint32_t)fl;
	r.name_len = (uint32_t)nl;
	memcpy(tail, file, fl);
	memcpy(tail + fl, name, nl);
	return lb_put(b, &r, sizeof(r), tail, fl + nl);
}

static inline size_t lb_alloc(struct lb *b, uint64_t seq, uint32_t stack, uint8_t kind,
			      uint64_t addr, uint64_t size, uint64_t length)
{
	struct pfs_rec_alloc r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_ALLOC;
	r.seq = seq;
	r.stack = stack;
	r.kind = kind;
	r.addr = addr;
	r.size = size;
	r.length = length;
	r.prot = 0x3; /* PROT_READ | PROT_WRITE, as the shim logs a mapping the program can use */
	return lb_put(b, &r, sizeof(r), NULL, 0);
}

/* A FREE record at a time of its own (exact mode's attribution replays frees in time order). */
static inline size_t lb_free_at(struct lb *b, uint64_t seq, uint64_t time_ns, uint64_t addr, uint64_t length,
				uint8_t kind)
{
	struct pfs_rec_free r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_FREE;
	r.seq = seq;
	r.time_ns = time_ns;
	r.addr = addr;
	r.length = length;
	r.kind = kind;
	return lb_put(b, &r, sizeof(r), NULL, 0);
}

static inline size_t lb_free(struct lb *b, uint64_t seq, uint64_t addr, uint64_t length,
			     uint8_t kind)
{
	return lb_free_at(b, seq, 0, addr, length, kind);
}

static inline size_t lb_remap(struct lb *b, uint64_t seq, uint64_t old_addr, uint64_t old_len,
			      uint64_t new_addr, uint64_t new_len)
{
	struct pfs_rec_remap r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_REMAP;
	r.seq = seq;
	r.old_addr = old_addr;
	r.old_length = old_len;
	r.new_addr = new_addr;
	r.new_length = new_len;
	return lb_put(b, &r, sizeof(r), NULL, 0);
}

static inline size_t lb_counters(struct lb *b, const struct pfs_counter_slot *slots, uint32_t n)
{
	struct pfs_rec_counters r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_COUNTERS;
	r.nslots = n;
	return lb_put(b, &r, sizeof(r), slots, n * sizeof(*slots));
}

static inline size_t lb_fork(struct lb *b, uint64_t seq, uint64_t child)
{
	struct pfs_rec_fork r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_FORK;
	r.seq = seq;
	r.child_pid = child;
	r.how = PFS_FORK;
	return lb_put(b, &r, sizeof(r), NULL, 0);
}

static inline size_t lb_proc_end(struct lb *b, uint64_t seq, int32_t status, uint32_t reason)
{
	struct pfs_rec_proc_end r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_PROC_END;
	r.seq = seq;
	r.status = status;
	r.reason = reason;
	return lb_put(b, &r, sizeof(r), NULL, 0);
}

/* An image exec'd by the one written so far, going on in the same file: a block of its own, IMAGE first. */
static inline size_t lb_image(struct lb *b, uint64_t pid, uint64_t start_ns)
{
	struct pfs_rec_image r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_IMAGE;
	r.pid = pid;
	r.start_mono_ns = start_ns;
	r.flags = PFS_FILE_EXECED;
	r.page_size = 4096;
	lb_next_block(b);
	return lb_put(b, &r, sizeof(r), NULL, 0);
}

/* An ALLOC with its time (storms bound touches by it). */
static inline size_t lb_alloc_at(struct lb *b, uint64_t seq, uint64_t time_ns, uint32_t stack,
				 uint8_t kind, uint64_t addr, uint64_t size)
{
	struct pfs_rec_alloc r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_ALLOC;
	r.seq = seq;
	r.time_ns = time_ns;
	r.stack = stack;
	r.kind = kind;
	r.addr = addr;
	r.size = size;
	r.length = size;
	r.prot = 0x3; /* PROT_READ | PROT_WRITE */
	return lb_put(b, &r, sizeof(r), NULL, 0);
}

/* A TOUCH record with its faults as the kernel took them (a huge page is one for 512 pages; 0: one a page). */
static inline size_t lb_touch_faults(struct lb *b, uint64_t time_ns, uint64_t alloc_seq, uint32_t stack,
				     uint8_t kind, uint32_t pages, uint32_t faults, uint16_t flags)
{
	struct pfs_rec_touch r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_TOUCH;
	r.h.flags = flags;
	r.time_ns = time_ns;
	r.alloc_seq = alloc_seq;
	r.stack = stack;
	r.kind = kind;
	r.pages = pages;
	r.faults = faults;
	return lb_put(b, &r, sizeof(r), NULL, 0);
}

static inline size_t lb_touch(struct lb *b, uint64_t time_ns, uint64_t alloc_seq, uint32_t stack,
			      uint8_t kind, uint32_t pages, uint16_t flags)
{
	return lb_touch_faults(b, time_ns, alloc_seq, stack, kind, pages, 0, flags);
}

/* A SCAN record; with PFS_SCAN_WAIT in `flags`, `wait` the main thread's wait so far. */
static inline size_t lb_scan_waited(struct lb *b, uint64_t time_ns, uint64_t new_pages, uint32_t reason,
				    uint16_t flags, uint64_t wait)
{
	struct pfs_rec_scan r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_SCAN;
	r.h.flags = flags;
	r.time_ns = time_ns;
	r.duration_ns = reason == PFS_SCAN_SAMPLE ? 0 : 5000;
	r.new_pages = new_pages;
	r.regions = reason == PFS_SCAN_SAMPLE ? 0 : 2;
	r.reason = reason;
	r.wait_ns = wait;
	return lb_put(b, &r, sizeof(r), NULL, 0);
}

static inline size_t lb_scan(struct lb *b, uint64_t time_ns, uint64_t new_pages, uint32_t reason)
{
	return lb_scan_waited(b, time_ns, new_pages, reason, 0, 0);
}

static inline size_t lb_proc_end_at(struct lb *b, uint64_t seq, uint64_t time_ns)
{
	struct pfs_rec_proc_end r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_PROC_END;
	r.seq = seq;
	r.time_ns = time_ns;
	r.reason = PFS_END_EXIT;
	return lb_put(b, &r, sizeof(r), NULL, 0);
}

/* A record of a type the reader does not know (below PFS_REC_TYPE_MAX). */
static inline size_t lb_policy(struct lb *b, uint64_t alloc_seq, uint32_t stack, uint8_t kind, uint8_t rule,
					uint16_t actions, uint64_t prefaulted, int16_t mlock_result, const char *text)
{
	struct pfs_rec_policy r;

	memset(&r, 0, sizeof(r));
	r.h.type = PFS_REC_POLICY;
	r.alloc_seq = alloc_seq;
	r.stack = stack;
	r.kind = kind;
	r.rule = rule;
	r.actions = actions;
	r.prefaulted_pages = prefaulted;
	r.result[7] = mlock_result;
	r.rule_len = (uint32_t)strlen(text);
	return lb_put(b, &r, sizeof(r), text, strlen(text));
}

static inline size_t lb_raw(struct lb *b, uint16_t type, size_t body_len)
{
	uint8_t rec[256];

	memset(rec, 0xab, sizeof(rec));
	((struct pfs_rec_hdr *)rec)->type = type;
	((struct pfs_rec_hdr *)rec)->flags = 0;
	return lb_put(b, rec, sizeof(struct pfs_rec_hdr) + body_len, NULL, 0);
}

static inline int lb_write(const struct lb *b, const char *path, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f)
		return -1;
	if (fwrite(b->buf, 1, len, f) != len) {
		fclose(f);
		return -1;
	}
	return fclose(f);
}

static inline void lb_release(struct lb *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

/* The running test program as the shim would log it: path, load bias, build-id. */
struct lb_self {
	char path[4096];
	uint64_t base;
	uint64_t start, end;	/* of its PT_LOAD segments, at run time */
	uint8_t build_id[PFS_BUILD_ID_MAX];
	unsigned build_id_len;
};

static inline void lb_note_build_id(struct dl_phdr_info *info, struct lb_self *m)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		const uint8_t *p, *end;

		if (ph->p_type != PT_NOTE)
			continue;
		p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
		end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
			const uint8_t *name = p + sizeof(*n);
			const uint8_t *desc = name + ((n->n_namesz + 3) & ~3u);

			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
			    !memcmp(name, "GNU", 4) && n->n_descsz <= PFS_BUILD_ID_MAX) {
				memcpy(m->build_id, desc, n->n_descsz);
				m->build_id_len = n->n_descsz;
				return;
			}
			p = desc + ((n->n_descsz + 3) & ~3u);
		}
	}
}

static inline int lb_find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct lb_self *m = arg;

	(void)size;
	/* the main program comes first, with an empty name */
	if (info->dlpi_name && info->dlpi_name[0])
		return 0;
	m->base = info->dlpi_addr;
	m->start = UINT64_MAX;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD)
			continue;
		if (info->dlpi_addr + ph->p_vaddr < m->start)
			m->start = info->dlpi_addr + ph->p_vaddr;
		if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > m->end)
			m->end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
	}
	lb_note_build_id(info, m);
	return 1;
}

static inline int lb_self_module(struct lb_self *m)
{
	ssize_t n;

	memset(m, 0, sizeof(*m));
	n = readlink("/proc/self/exe", m->path, sizeof(m->path) - 1);
	if (n <= 0)
		return -1;
	m->path[n] = '\0';
	return dl_iterate_phdr(lb_find_self, m) == 1 ? 0 : -1;
}

/*
 * The storm run the format tests share: process `pid`, started at t0 (ns),
 * in this test binary's module; a quiet site (return address quiet_ra)
 * touches 5 pages in each of 100 scans 10 ms apart, a storm site (storm_ra,
 * a 64 MiB mmap) 400 pages in each of 5 scans from 500 ms.  Written to path.
 */
static inline int lb_write_storm_run(const char *path, uint64_t pid, uint64_t t0, uint64_t storm_ra,
				     uint64_t quiet_ra)
{
	static const char cmd[] = "app\0--storm\0";
	const uint64_t ms = 1000000ull;
	uint64_t fs[1] = {storm_ra}, fq[1] = {quiet_ra};
	struct lb_self self;
	struct lb b;

	if (lb_self_module(&self))
		return -1;
	lb_init(&b, pid, t0);
	lb_proc_start(&b, pid, 1, t0, 0, "/usr/bin/app", cmd, sizeof(cmd) - 1);
	lb_module(&b, 1, 1, self.base, self.start, self.end, self.path, self.build_id,
		  (uint8_t)self.build_id_len);
	lb_stack(&b, 2, 1, fq, 1);
	lb_stack(&b, 3, 2, fs, 1);
	lb_alloc_at(&b, 4, t0 + ms, 2, PFS_KIND_MMAP, 0x10000000, 64 << 20);
	for (unsigned i = 1; i <= 100; i++) {
		uint64_t t = t0 + i * 10 * ms;
		uint32_t n = 5;

		lb_touch(&b, t, 0, 1, PFS_KIND_MALLOC, 5, 0);
		if (i >= 50 && i < 55) {
			lb_touch(&b, t, 4, 2, PFS_KIND_MMAP, 400, 0);
			n += 400;
		}
		lb_scan(&b, t, n, PFS_SCAN_PERIODIC);
	}
	lb_proc_end_at(&b, 10, t0 + 1005 * ms);
	int r = lb_write(&b, path, b.len);
	lb_release(&b);
	return r;
}

/*
 * python3 on the file at `path` (json, re, sys and xml.etree.ElementTree as
 * ET imported, the path in `path`): 0 when every assertion held.
 */
static inline int lb_python_check(const char *code, const char *path)
{
	char script[] = "/tmp/pfs-an-py-XXXXXX", cmd[512];
	int fd = mkstemp(script), rc;
	FILE *f;

	if (fd < 0)
		return -1;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(script);
		return -1;
	}
	fprintf(f, "import json, re, sys\nimport xml.etree.ElementTree as ET\npath = sys.argv[1]\n"
		"%s\n", code);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s %s", script, path);
	rc = system(cmd);
	unlink(script);
	return rc;
}

/*
 * A function to be a call site in the test binary's own code (frames that
 * symbolize): kept out of line, and not folded with its twins.
 */
#define LB_SITE_FN(name)                                        \
	static __attribute__((noinline, used)) int name(int x) \
	{                                                       \
		__asm__ volatile("" : "+r"(x));                 \
		return x;                                       \
	}

/* The whole file at `path` as a string (free it); NULL when it cannot be read. */
static inline char *lb_read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	if (getdelim(&text, &len, '\0', f) < 0) {
		free(text);
		text = NULL;
	}
	fclose(f);
	return text;
}

/* A test's scratch directory and output file, removed: 0 or -1. */
/* pfshim ARGS (argv NULL-terminated) in-process, its output flushed first: the exit code. */
static inline int lb_cli(char **argv)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	fflush(NULL);
	return pfs_cli_main(argc, argv);
}

static inline int lb_remove(const char *dir, const char *out)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, out);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
