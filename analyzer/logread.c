/*
 * Log reader: header checks, the block walk, and one decoder per record type
 * that checks the record's variable part against its size.  See logread.h.
 */
#include "logread.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Largest block the reader accepts: a corrupt header must not make it loop oddly. */
#define PFS_LOGREAD_MAX_BLOCK (1u << 30)
/* Read pages of a mapped log are given back in steps of this many bytes (a multiple of any page size). */
#define PFS_LOGREAD_DROP_BYTES (32u << 20)

struct rec_desc {
	const char *name;
	uint32_t fixed;	/* size of the fixed part this reader knows */
	uint32_t min;	/* the shortest a writer made it (fields appended since read as 0); 0: fixed */
	/* checks and points at the trailing data; -EINVAL with a message in why */
	int (*decode)(struct pfs_rec *r, char *why, size_t whylen);
};

static int decode_fixed(struct pfs_rec *r, char *why, size_t whylen)
{
	(void)r, (void)why, (void)whylen;
	return 0;
}

/*
 * Trailing bytes begin right after the fixed part this reader knows; a later
 * version that appends fields to such a record has to bump PFS_LOG_VERSION
 * (see the report of this work), so sizeof() is the right start here.
 */
static int take_string(struct pfs_rec *r, uint64_t *pos, uint32_t len, int slot,
		       const char *what, char *why, size_t whylen)
{
	if (*pos + len > r->h.size) {
		snprintf(why, whylen, "%s length %" PRIu32 " overflows the %" PRIu32 "-byte record",
			 what, len, r->h.size);
		return -EINVAL;
	}
	r->str[slot] = (const char *)r->raw + *pos;
	r->str_len[slot] = len;
	*pos += len;
	return 0;
}

static int decode_proc_start(struct pfs_rec *r, char *why, size_t whylen)
{
	uint64_t pos = sizeof(struct pfs_rec_proc_start);
	int rc;

	rc = take_string(r, &pos, r->u.proc_start.exe_len, 0, "PROC_START exe", why, whylen);
	if (!rc)
		rc = take_string(r, &pos, r->u.proc_start.cmd_len, 1, "PROC_START command line",
				 why, whylen);
	return rc;
}

static int decode_module(struct pfs_rec *r, char *why, size_t whylen)
{
	uint64_t pos = sizeof(struct pfs_rec_module);

	if (r->u.module.build_id_len > PFS_BUILD_ID_MAX) {
		snprintf(why, whylen, "MODULE build-id length %u exceeds %u",
			 r->u.module.build_id_len, PFS_BUILD_ID_MAX);
		return -EINVAL;
	}
	if (r->u.module.end < r->u.module.start) {
		snprintf(why, whylen, "MODULE range ends before it starts");
		return -EINVAL;
	}
	return take_string(r, &pos, r->u.module.path_len, 0, "MODULE path", why, whylen);
}

static int decode_items(struct pfs_rec *r, uint32_t fixed, uint32_t n, size_t item,
			const char *what, char *why, size_t whylen)
{
	/* 64-bit arithmetic: n * item cannot wrap for a 32-bit n */
	if ((uint64_t)fixed + (uint64_t)n * item > r->h.size) {
		snprintf(why, whylen, "%s count %" PRIu32 " overflows the %" PRIu32 "-byte record",
			 what, n, r->h.size);
		return -EINVAL;
	}
	r->items = r->raw + fixed;
	r->nitems = n;
	return 0;
}

static int decode_stack(struct pfs_rec *r, char *why, size_t whylen)
{
	return decode_items(r, sizeof(struct pfs_rec_stack), r->u.stack.nframes,
			    sizeof(uint64_t), "STACK frame", why, whylen);
}

static int decode_counters(struct pfs_rec *r, char *why, size_t whylen)
{
	return decode_items(r, sizeof(struct pfs_rec_counters), r->u.counters.nslots,
			    sizeof(struct pfs_counter_slot), "COUNTERS slot", why, whylen);
}

static int decode_exec(struct pfs_rec *r, char *why, size_t whylen)
{
	uint64_t pos = sizeof(struct pfs_rec_exec);

	return take_string(r, &pos, r->u.exec.path_len, 0, "EXEC path", why, whylen);
}

static int decode_message(struct pfs_rec *r, char *why, size_t whylen)
{
	uint64_t pos = sizeof(struct pfs_rec_message);

	return take_string(r, &pos, r->u.message.len, 0, "MESSAGE text", why, whylen);
}

static int decode_pycode(struct pfs_rec *r, char *why, size_t whylen)
{
	uint64_t pos = sizeof(struct pfs_rec_pycode);
	int rc;

	rc = take_string(r, &pos, r->u.pycode.file_len, 0, "PYCODE file", why, whylen);
	if (!rc)
		rc = take_string(r, &pos, r->u.pycode.name_len, 1, "PYCODE name", why, whylen);
	return rc;
}

static int decode_faults(struct pfs_rec *r, char *why, size_t whylen)
{
	return decode_items(r, sizeof(struct pfs_rec_faults), r->u.faults.bytes, 1, "FAULTS event byte",
			    why, whylen);
}

static int decode_policy(struct pfs_rec *r, char *why, size_t whylen)
{
	uint64_t pos = sizeof(struct pfs_rec_policy);

	return take_string(r, &pos, r->u.policy.rule_len, 0, "POLICY rule", why, whylen);
}

#define REC(type, st, fn) [PFS_REC_##type] = {#type, sizeof(struct st), 0, fn}
/* A record whose writers appended fields: `min` is its size before them. */
#define REC_GREW(type, st, min, fn) [PFS_REC_##type] = {#type, sizeof(struct st), min, fn}
static const struct rec_desc rec_descs[PFS_REC_TYPE_MAX] = {
	REC(PROC_START, pfs_rec_proc_start, decode_proc_start),
	REC(MODULE, pfs_rec_module, decode_module),
	REC(MODULE_UNLOAD, pfs_rec_module_unload, decode_fixed),
	REC(STACK, pfs_rec_stack, decode_stack),
	REC(ALLOC, pfs_rec_alloc, decode_fixed),
	REC(FREE, pfs_rec_free, decode_fixed),
	REC(REMAP, pfs_rec_remap, decode_fixed),
	REC(MADVISE, pfs_rec_madvise, decode_fixed),
	REC(COUNTERS, pfs_rec_counters, decode_counters),
	REC(FORK, pfs_rec_fork, decode_fixed),
	REC(EXEC, pfs_rec_exec, decode_exec),
	REC_GREW(PROC_END, pfs_rec_proc_end, 32, decode_fixed), /* minflt, majflt; run_ns, wait_ns appended */
	REC(MESSAGE, pfs_rec_message, decode_message),
	REC(PYCODE, pfs_rec_pycode, decode_pycode),
	REC(IMAGE, pfs_rec_image, decode_fixed),
	REC(TOUCH, pfs_rec_touch, decode_fixed),
	REC_GREW(SCAN, pfs_rec_scan, 40, decode_fixed), /* wait_ns appended */
	REC(FAULTS, pfs_rec_faults, decode_faults),
	REC(UREG, pfs_rec_ureg, decode_fixed),
	REC(CARVE, pfs_rec_carve, decode_fixed),
	REC(POLICY, pfs_rec_policy, decode_policy),
};
#undef REC

/* Every decoded struct must fit the union the decoders copy into. */
_Static_assert(sizeof(((struct pfs_rec *)0)->u) == sizeof(struct pfs_rec_module),
	       "the union is as large as its largest member");

const char *pfs_logread_type_name(unsigned type, char *buf, size_t len)
{
	if (type < PFS_REC_TYPE_MAX && rec_descs[type].name)
		return rec_descs[type].name;
	snprintf(buf, len, "type %u", type);
	return buf;
}

static void report_problem(struct pfs_logread_tool *tool, const struct pfs_logfile *lf,
			   uint64_t offset, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void report_problem(struct pfs_logread_tool *tool, const struct pfs_logfile *lf,
			   uint64_t offset, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (tool && tool->diag) {
		if (offset == UINT64_MAX)
			fprintf(tool->diag, "pfshim: %s: %s\n", lf->name, what);
		else
			fprintf(tool->diag, "pfshim: %s: offset %" PRIu64 ": %s\n", lf->name,
				offset, what);
	}
	if (tool && tool->problem)
		tool->problem(tool, lf, offset, what);
}

static int check_header(struct pfs_logfile *lf, char *err, size_t errlen)
{
	struct pfs_file_header *h = &lf->hdr;

	if (lf->len < sizeof(h->magic) || memcmp(lf->data, PFS_LOG_MAGIC, sizeof(h->magic))) {
		snprintf(err, errlen, "not a pfshim log (no %s magic)", PFS_LOG_MAGIC);
		return -EINVAL;
	}
	if (lf->len < sizeof(*h)) {
		snprintf(err, errlen, "truncated: %zu bytes, shorter than the %zu-byte file header",
			 lf->len, sizeof(*h));
		return -EINVAL;
	}
	memcpy(h, lf->data, sizeof(*h));
	if (h->version == 0) {
		snprintf(err, errlen, "bad log format version 0");
		return -EINVAL;
	}
	if (h->version > PFS_LOG_VERSION) {
		snprintf(err, errlen,
			 "log format version %" PRIu32 " is newer than this pfshim reads (%d)",
			 h->version, PFS_LOG_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (h->block_size < 4096 || h->block_size > PFS_LOGREAD_MAX_BLOCK ||
	    (h->block_size & (h->block_size - 1))) {
		snprintf(err, errlen, "bad block size %" PRIu32 " (a power of two >= 4096 expected)",
			 h->block_size);
		return -EINVAL;
	}
	/* records are 8-byte aligned, so the first one must start aligned too */
	if (h->header_size < sizeof(*h) || h->header_size > h->block_size ||
	    h->header_size % 8) {
		snprintf(err, errlen, "bad header size %" PRIu32, h->header_size);
		return -EINVAL;
	}
	if (lf->len < h->header_size) {
		snprintf(err, errlen, "truncated: %zu bytes, shorter than the %" PRIu32
			 "-byte file header", lf->len, h->header_size);
		return -EINVAL;
	}
	return 0;
}

int pfs_logread_open_buffer(struct pfs_logfile *lf, const void *buf, size_t len,
			    const char *name, char *err, size_t errlen)
{
	memset(lf, 0, sizeof(*lf));
	lf->name = name;
	lf->data = buf;
	lf->len = len;
	return check_header(lf, err, errlen);
}

int pfs_logread_open(struct pfs_logfile *lf, const char *path, char *err, size_t errlen)
{
	struct stat st;
	void *map = NULL;
	int fd, rc;

	memset(lf, 0, sizeof(*lf));
	lf->name = path;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open: %s", strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "not a regular file");
		goto out;
	}
	if (st.st_size == 0) {
		rc = -EINVAL;
		snprintf(err, errlen, "empty file, not a pfshim log");
		goto out;
	}
	/*
	 * MAP_PRIVATE, read-only: a log of a process that still runs keeps
	 * growing, and we read the snapshot of the length we saw.
	 */
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		rc = -errno;
		map = NULL;
		snprintf(err, errlen, "cannot map: %s", strerror(errno));
		goto out;
	}
	/* read front to back once: aggressive read-ahead (a cold log costs I/O waits, not faults) */
	madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
	rc = pfs_logread_open_buffer(lf, map, (size_t)st.st_size, path, err, errlen);
	lf->mapped = true;
	if (rc)
		pfs_logread_close(lf);
out:
	close(fd);
	return rc;
}

void pfs_logread_close(struct pfs_logfile *lf)
{
	if (lf->mapped && lf->data)
		munmap((void *)lf->data, lf->len);
	lf->data = NULL;
	lf->len = 0;
	lf->mapped = false;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * Read the records of one block, from off to its boundary `end` (which may
 * lie past the end of a cut file).  Returns 0 when the block is done (or
 * abandoned after a problem), -ENOMEM when a handler ran out.
 */
static int walk_block(struct pfs_logfile *lf, struct pfs_logread_tool *tool,
		      struct pfs_logread_stats *st, uint64_t off, uint64_t end)
{
	char why[200], tbuf[16];

	while (off < end && off < lf->len) {
		const struct rec_desc *d;
		struct pfs_rec rec;
		const char *hwhy = NULL;
		pfs_logread_handler fn;
		int rc;

		if (lf->len - off < sizeof(struct pfs_rec_hdr)) {
			/* a zero tail is unused space the file had when it was cut */
			if (!all_zero(lf->data + off, lf->len - off)) {
				st->bad++;
				report_problem(tool, lf, off,
					       "record header cut by the end of the file (truncated)");
			}
			return 0;
		}
		/* the union is cleared below, only past the bytes copied into it: 10 M records a long log */
		memset(&rec, 0, offsetof(struct pfs_rec, u));
		memset(&rec.str, 0, sizeof(rec) - offsetof(struct pfs_rec, str));
		memcpy(&rec.h, lf->data + off, sizeof(rec.h));
		rec.offset = off;
		rec.raw = lf->data + off;
		if (rec.h.type == PFS_REC_NONE)
			return 0;
		if (rec.h.type >= PFS_REC_TYPE_MAX) {
			st->bad++;
			report_problem(tool, lf, off, "bad record type %u (size %" PRIu32
				       "); skipping to the next block", rec.h.type, rec.h.size);
			return 0;
		}
		d = &rec_descs[rec.h.type];
		if (rec.h.size < sizeof(struct pfs_rec_hdr) || rec.h.size % 8) {
			st->bad++;
			report_problem(tool, lf, off, "%s record has a bad size %" PRIu32
				       " (a multiple of 8, at least 8); skipping to the next block",
				       pfs_logread_type_name(rec.h.type, tbuf, sizeof(tbuf)), rec.h.size);
			return 0;
		}
		if (rec.h.size > end - off) {
			st->bad++;
			report_problem(tool, lf, off, "%s record of %" PRIu32
				       " bytes crosses the block boundary; skipping to the next block",
				       pfs_logread_type_name(rec.h.type, tbuf, sizeof(tbuf)), rec.h.size);
			return 0;
		}
		if (rec.h.size > lf->len - off) {
			st->bad++;
			report_problem(tool, lf, off, "%s record of %" PRIu32
				       " bytes cut by the end of the file (truncated)",
				       pfs_logread_type_name(rec.h.type, tbuf, sizeof(tbuf)), rec.h.size);
			return 0;
		}
		if (!d->name) {
			/* a type a newer shim writes: its size is trustworthy, step over it */
			st->unknown++;
			off += rec.h.size;
			continue;
		}
		uint32_t min = d->min ? d->min : d->fixed;
		if (rec.h.size < min) {
			st->bad++;
			report_problem(tool, lf, off, "%s record of %" PRIu32 " bytes is shorter than its %"
				       PRIu32 "-byte layout; skipping to the next block",
				       d->name, rec.h.size, min);
			return 0;
		}
		/* only the part this reader knows; newer fields past it are ignored, older records lack some */
		uint32_t copied = rec.h.size < d->fixed ? rec.h.size : d->fixed;
		memcpy(&rec.u, rec.raw, copied);
		memset((char *)&rec.u + copied, 0, sizeof(rec.u) - copied);
		why[0] = '\0';
		if (d->decode(&rec, why, sizeof(why))) {
			st->bad++;
			report_problem(tool, lf, off, "%s; skipping to the next block", why);
			return 0;
		}
		st->records++;
		fn = tool && tool->handlers ? tool->handlers[rec.h.type] : NULL;
		rc = fn ? fn(tool, &rec, &hwhy) : 0;
		if (rc == -ENOMEM)
			return rc;
		if (rc) {
			/* well-formed but meaningless: the framing is intact, go on */
			st->bad++;
			report_problem(tool, lf, off, "%s record rejected: %s", d->name,
				       hwhy ? hwhy : strerror(-rc));
		}
		off += rec.h.size;
	}
	return 0;
}

int pfs_logread_walk(struct pfs_logfile *lf, struct pfs_logread_tool *tool,
		     struct pfs_logread_stats *st)
{
	const uint64_t bs = lf->hdr.block_size;
	struct pfs_logread_stats dummy;
	int rc = 0;

	if (!st)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	if (!lf->data || bs == 0)
		return -EINVAL;
	if (tool && tool->begin) {
		rc = tool->begin(tool, lf);
		if (rc)
			return rc;
	}
	for (uint64_t start = 0, dropped = 0; start < lf->len; start += bs) {
		uint64_t off = start ? start : lf->hdr.header_size;

		/*
		 * The handlers copy what they keep: the pages read so far of a
		 * mapped file are dropped from this process (not from the page
		 * cache), so a large log costs its model, not its size, in RSS.
		 */
		if (lf->mapped && start - dropped >= PFS_LOGREAD_DROP_BYTES) {
			madvise((void *)(lf->data + dropped), start - dropped, MADV_DONTNEED);
			dropped = start;
		}
		if (tool && tool->progress)
			tool->progress(tool, lf, start);
		st->blocks++;
		rc = walk_block(lf, tool, st, off, start + bs);
		if (rc)
			break;
	}
	return rc;
}
