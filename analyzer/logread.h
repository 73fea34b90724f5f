/*
 * Reading pfshim logs (include/pfshim/log_format.h): map a file, check its
 * header, walk its blocks and hand each well-formed record to the consumer's
 * handler for that record type, in the manner of perf's session/tool split.
 *
 * Every length is checked against the record, the block and the file before
 * anything is read; a bad record is reported with its file offset, counted,
 * and the reader resumes at the next block boundary, which the format makes
 * a resynchronisation point.
 */
#ifndef PFSHIM_LOGREAD_H
#define PFSHIM_LOGREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <pfshim/log_format.h>

/*
 * STACK and COUNTERS end in flexible arrays, and a struct with one may not
 * be a union member in ISO C (clang refuses it): their fixed parts, tied to
 * log_format.h by the asserts below.
 */
struct pfs_rec_stack_head {
	struct pfs_rec_hdr h;
	uint64_t seq;
	uint32_t id;
	uint32_t nframes;
};

struct pfs_rec_counters_head {
	struct pfs_rec_hdr h;
	uint32_t nslots;
	uint32_t pad;
};

_Static_assert(sizeof(struct pfs_rec_stack_head) == sizeof(struct pfs_rec_stack) &&
	       offsetof(struct pfs_rec_stack_head, seq) == offsetof(struct pfs_rec_stack, seq) &&
	       offsetof(struct pfs_rec_stack_head, id) == offsetof(struct pfs_rec_stack, id) &&
	       offsetof(struct pfs_rec_stack_head, nframes) ==
		       offsetof(struct pfs_rec_stack, nframes),
	       "STACK fixed part as in log_format.h");
_Static_assert(sizeof(struct pfs_rec_counters_head) == sizeof(struct pfs_rec_counters) &&
	       offsetof(struct pfs_rec_counters_head, nslots) ==
		       offsetof(struct pfs_rec_counters, nslots),
	       "COUNTERS fixed part as in log_format.h");

/* One log, mapped (or a caller's buffer). */
struct pfs_logfile {
	const char *name;	/* for messages: the path */
	const uint8_t *data;
	size_t len;
	struct pfs_file_header hdr; /* valid after a successful open */
	bool mapped;
};

/*
 * A decoded record.  The fixed part is copied (so the record's alignment in
 * the file never matters) and zero-extended; trailing data points into the
 * mapping and has been checked to lie inside the record.
 */
struct pfs_rec {
	uint64_t offset;	/* of the record header in the file */
	struct pfs_rec_hdr h;
	const uint8_t *raw;	/* h.size bytes */
	union {
		struct pfs_rec_hdr hdr;
		struct pfs_rec_proc_start proc_start;
		struct pfs_rec_module module;
		struct pfs_rec_module_unload module_unload;
		struct pfs_rec_stack_head stack;
		struct pfs_rec_alloc alloc;
		struct pfs_rec_free free;
		struct pfs_rec_remap remap;
		struct pfs_rec_madvise madvise;
		struct pfs_rec_counters_head counters;
		struct pfs_rec_fork fork;
		struct pfs_rec_image image;
		struct pfs_rec_exec exec;
		struct pfs_rec_proc_end proc_end;
		struct pfs_rec_message message;
		struct pfs_rec_pycode pycode;
		struct pfs_rec_touch touch;
		struct pfs_rec_scan scan;
		struct pfs_rec_faults faults;
		struct pfs_rec_ureg ureg;
		struct pfs_rec_carve carve;
		struct pfs_rec_policy policy;
	} u;
	/*
	 * Strings after the fixed part: PROC_START exe (0) and command line (1),
	 * MODULE and EXEC path (0), MESSAGE text (0), POLICY rule (0), PYCODE file (0)
	 * and qualified name (1).  Not NUL-terminated.
	 */
	const char *str[2];
	uint32_t str_len[2];
	/* STACK frames (8 bytes each), COUNTERS slots (use the accessors), FAULTS event bytes. */
	const uint8_t *items;
	uint32_t nitems;
};

static inline uint64_t pfs_logread_frame(const struct pfs_rec *r, uint32_t i)
{
	uint64_t v;

	memcpy(&v, r->items + (size_t)i * sizeof(v), sizeof(v));
	return v;
}

static inline struct pfs_counter_slot pfs_logread_slot(const struct pfs_rec *r, uint32_t i)
{
	struct pfs_counter_slot s;

	memcpy(&s, r->items + (size_t)i * sizeof(s), sizeof(s));
	return s;
}

struct pfs_logread_tool;

/*
 * A consumer's handler for one record type: 0, -ENOMEM (reading stops), or
 * another -errno with *why set: the record is well-formed but makes no sense
 * (it is reported and counted as bad; reading goes on with the next record).
 */
typedef int (*pfs_logread_handler)(struct pfs_logread_tool *tool,
				   const struct pfs_rec *rec, const char **why);

struct pfs_logread_tool {
	/* indexed by record type; NULL entries are read and ignored */
	const pfs_logread_handler *handlers;
	/* after the header checked out, before any record; may be NULL */
	int (*begin)(struct pfs_logread_tool *tool, const struct pfs_logfile *lf);
	/* a problem (offset UINT64_MAX: the whole file); may be NULL */
	void (*problem)(struct pfs_logread_tool *tool, const struct pfs_logfile *lf,
			uint64_t offset, const char *what);
	FILE *diag;		/* problems are also printed here; NULL: silent */
	/* before each block: how far the walk is (off of lf->len); may be NULL */
	void (*progress)(struct pfs_logread_tool *tool, const struct pfs_logfile *lf,
			 uint64_t off);
};

struct pfs_logread_stats {
	uint64_t records;	/* handed to a handler (or known and ignored) */
	uint64_t unknown;	/* types below PFS_REC_TYPE_MAX this reader does not know */
	uint64_t bad;		/* corrupt or truncated records, rejected ones */
	uint64_t blocks;	/* blocks visited */
};

/*
 * Map `path` read-only and check its header.  0, or -errno with a message
 * in err (the file is then closed): -EINVAL not a log / corrupt header,
 * -EPROTONOSUPPORT a newer format version, or the open/mmap error.
 */
int pfs_logread_open(struct pfs_logfile *lf, const char *path, char *err, size_t errlen);
/* The same for a buffer the caller owns (tests, fuzzing). */
int pfs_logread_open_buffer(struct pfs_logfile *lf, const void *buf, size_t len,
			    const char *name, char *err, size_t errlen);
/* Walk every block; 0 (bad records are in stats, not errors) or -ENOMEM / a begin() error. */
int pfs_logread_walk(struct pfs_logfile *lf, struct pfs_logread_tool *tool,
		     struct pfs_logread_stats *st);
void pfs_logread_close(struct pfs_logfile *lf);

/* Name of a record type for messages ("ALLOC", "type 40"). */
const char *pfs_logread_type_name(unsigned type, char *buf, size_t len);

#endif
