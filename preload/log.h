/*
 * The log writer.  The file is mapped MAP_SHARED in 4 MiB segments: a record
 * is in the page cache the moment it is stored, so a SIGKILL loses nothing
 * and no system call is made per record.  Each thread owns one block at a
 * time (struct pfs_writer) and fills it without locks; blocks are handed out
 * by an atomic counter and reserved on disk (fallocate) before use, so a
 * full disk means lost records and one warning, never SIGBUS.
 */
#ifndef PFS_LOG_H
#define PFS_LOG_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "fdkeep.h"
#include "pfshim/log_format.h"
#include "proc.h"
#include "util.h"

#define PFS_LOG_SEG_SIZE (4u << 20)
#define PFS_LOG_BLOCKS_PER_SEG (PFS_LOG_SEG_SIZE / PFS_LOG_BLOCK_SIZE)
#define PFS_LOG_MAX_SEGS 16384u /* 64 GiB */

struct pfs_log {
	struct pfs_fd fd;	/* reopened by path, as the same file, when the program closed or replaced it */
	uint64_t next_block;	/* atomic: next block to hand out */
	pfs_spin_t lock;	/* segment mapping */
	char **segs;		/* PFS_LOG_MAX_SEGS pointers; NULL once unmapped */
	uint16_t *seg_left;	/* atomic: blocks of each segment their writers have left */
	uint64_t unmapped;	/* atomic: segments unmapped */
	uint64_t max_blocks;	/* PFSHIM_LOG_MAX in blocks, 0 none */
	uint64_t first_block;	/* this image's first (the blocks before it are earlier images') */
	uint64_t lost;		/* atomic: records dropped */
	int failed;		/* no more blocks can be had */
	int fail_err;		/* why */
	int capped;		/* atomic: PFSHIM_LOG_MAX reached */
	int ending;		/* atomic: the process's last records are being written (past the cap too) */
	unsigned unsaid;	/* atomic: what another process (a handler) had to say, for the program */
	uint32_t gen;		/* exec generation: images of one pid */
	char path[PATH_MAX];	/* last: the fields above share a page */
};

struct pfs_writer {
	char *cur, *end;	/* end NULL: no block */
	uint64_t block;		/* the block it fills */
	int kept;		/* it holds records written to in place later: its segment stays mapped */
};

/* Fills a file header for a process. */
void pfs_log_header_init(struct pfs_file_header *h, uint64_t pid, uint32_t page_size, uint32_t flags,
			 uint64_t start_mono_ns, uint64_t start_real_ns);

/*
 * Creates pfshim.PID.pfslog (or .PID.N.pfslog when taken) in the directory
 * open at `dirfd` (whose path is `dir`, for messages and reopening) with
 * O_EXCL|O_NOFOLLOW, mode 0600, writes the file header, and hands `w0` the
 * rest of block 0.  Returns 0 or -errno.
 */
int pfs_log_open(struct pfs_log *log, struct pfs_writer *w0, int dirfd, const char *dir,
		 const struct pfs_file_header *hdr);
/*
 * Goes on in the file the image this one replaced by exec handed over
 * (pfs_log_hand_over): the newest pfshim.PID[.N].pfslog of hdr->pid in the
 * directory, if it says so.  Its records begin with an IMAGE record of
 * `hdr`'s fields, after the records of the file's last block when it has
 * room, else at a block of their own.  Returns 0, or -ENOENT when there is
 * no such file (pfs_log_open then), or -errno.
 */
int pfs_log_continue(struct pfs_log *log, struct pfs_writer *w0, int dirfd, const char *dir,
		     const struct pfs_file_header *hdr);
/* The image execs: its next image of pid `pid` (0: none, the exec failed) goes on in this file as exec generation `gen`. */
void pfs_log_hand_over(struct pfs_log *log, uint32_t pid, uint32_t gen);
/*
 * This process shares the traced program's memory but not its descriptors
 * (an exact-mode fault handler): it writes the log through `fd`, its own
 * copy (-1: none), and leaves failures for the program to say.
 */
void pfs_log_other_process(int fd);
/* Says what such a process could not (the log could not grow, or reached its cap); the program's records do too. */
void pfs_log_say_pending(struct pfs_log *log);
/* The process ends (exit, exec): its last records get blocks even past PFSHIM_LOG_MAX. */
void pfs_log_ending(struct pfs_log *log);
/* Forgets a log inherited across fork without touching the parent's file. */
void pfs_log_forget(struct pfs_log *log);
/* Whether addr lies in a segment of the log mapped now: 1 and the segment's [*lo, *hi). */
int pfs_log_segment_at(struct pfs_log *log, uint64_t addr, uint64_t *lo, uint64_t *hi);
void pfs_log_close(struct pfs_log *log);

void *pfs_log_reserve_slow(struct pfs_log *log, struct pfs_writer *w, uint32_t size);

/* Space for one record of `size` bytes (multiple of 8), zeroed; NULL if lost. */
static inline void *pfs_log_reserve(struct pfs_log *log, struct pfs_writer *w, uint32_t size)
{
	if (PFS_LIKELY((size_t)(w->end - w->cur) >= size)) {
		void *p = w->cur;
		w->cur += size;
		return p;
	}
	return pfs_log_reserve_slow(log, w, size);
}

/* Publishes a record: the header is stored last, in one 8-byte release store. */
static inline void pfs_log_commit(void *rec, uint16_t type, uint16_t flags, uint32_t size)
{
	uint64_t h = (uint64_t)type | (uint64_t)flags << 16 | (uint64_t)size << 32;
	__atomic_store_n((uint64_t *)rec, h, __ATOMIC_RELEASE);
}

/*
 * The traced process's log.  Every module writes its records there, each
 * through its own thread's writer: pfs_rec_begin, fill the fields,
 * pfs_rec_end.
 */
extern struct pfs_log pfs_log_proc;

static inline void *pfs_rec_begin(struct pfs_writer *w, uint32_t size)
{
	return pfs_log_reserve(&pfs_log_proc, w, size);
}

/* A record whose fields are updated in place for the rest of the process (counters): its segment stays mapped. */
static inline void *pfs_rec_begin_kept(struct pfs_writer *w, uint32_t size)
{
	void *r = pfs_log_reserve(&pfs_log_proc, w, size);
	if (r)
		w->kept = 1;
	return r;
}

static inline void pfs_rec_end(void *rec, uint16_t type, uint16_t flags, uint32_t size)
{
	pfs_log_commit(rec, type, flags, size);
}

/* The next `seq` of the process's records. */
static inline uint64_t pfs_next_seq(void)
{
	return __atomic_fetch_add(&pfs_proc.seq, 1, __ATOMIC_RELAXED);
}

/*
 * An ALLOC record (flags PFS_ALLOC_*) under `seq`: from the hooks' tracking,
 * a forked child's inherited ranges (under the parent's seq), and the
 * memory accounted by kind.  Its seq.
 */
static inline uint64_t pfs_rec_alloc_as(struct pfs_writer *w, uint64_t seq, uint32_t tid, int kind, uint32_t stack,
					uint64_t addr, uint64_t size, uint64_t length, int prot, int mflags, uint16_t flags)
{
	struct pfs_rec_alloc *r = pfs_rec_begin(w, sizeof(*r));
	if (!r)
		return seq;
	r->seq = seq;
	r->time_ns = pfs_now_ns();
	r->addr = addr;
	r->size = size;
	r->length = length;
	r->tid = tid;
	r->stack = stack;
	r->kind = (uint8_t)kind;
	r->prot = (uint16_t)prot;
	r->mflags = (uint32_t)mflags;
	pfs_rec_end(r, PFS_REC_ALLOC, flags, sizeof(*r));
	return seq;
}

/* An ALLOC record under a new seq; returns it. */
static inline uint64_t pfs_rec_alloc(struct pfs_writer *w, uint32_t tid, int kind, uint32_t stack, uint64_t addr,
				     uint64_t size, uint64_t length, int prot, int mflags, uint16_t flags)
{
	return pfs_rec_alloc_as(w, pfs_next_seq(), tid, kind, stack, addr, size, length, prot, mflags, flags);
}

/* A CARVE record: heap pages [from, to) reached first by a block of site (stack, kind) (exact mode's trackers). */
static inline void pfs_rec_carve(struct pfs_writer *w, uint64_t from, uint64_t to, uint32_t stack, int kind)
{
	struct pfs_rec_carve *r = pfs_rec_begin(w, sizeof(*r));
	if (!r)
		return;
	r->seq = pfs_next_seq();
	r->time_ns = pfs_now_ns();
	r->addr = from;
	r->length = to - from;
	r->stack = stack;
	r->kind = (uint8_t)kind;
	pfs_rec_end(r, PFS_REC_CARVE, 0, sizeof(*r));
}

#endif
