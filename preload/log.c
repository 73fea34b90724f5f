/* The log writer: file creation, segment mapping, block hand-out. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "arena.h"
#include "kcompat.h"
#include "log.h"
#include "msg.h"

struct pfs_log pfs_log_proc;

/*
 * A process that shares this memory but not its descriptor table (exact
 * mode's fault handlers) writes the log through a copy of the descriptor
 * in its own table, and never reopens or checks the program's (fdkeep's
 * state is the program's).  Nor does it say anything: a message calls into
 * libc's locale (strerror), whose locks and thread state are the program's
 * (a handler that did so took the locale lock for reading and died on its
 * empty thread-local locale: the program then hung in setlocale).  A
 * failure there is said by the program, at its next record.
 */
static __thread int other_process __attribute__((tls_model("initial-exec")));
static __thread int other_fd __attribute__((tls_model("initial-exec")));

void pfs_log_other_process(int fd)
{
	other_process = 1;
	other_fd = fd;
}

/* Keep the log's descriptor out of the way of programs that dup2 onto low numbers. */
#define PFS_LOG_FD_MIN 500
/* Files a pid may have in a run's directory (its pid reused by later processes) */
#define PFS_LOG_GENS 1000u

/*
 * pfshim.PID[.GEN].pfslog in log->path (the run's directory, then the
 * name), written by hand: printf's code is two fresh pages at every start.
 * Returns the name's start, NULL when it does not fit.
 */
static char *put_name(struct pfs_log *log, const char *dir, uint64_t pid, uint32_t gen)
{
	static const char prefix[] = "pfshim.", suffix[] = PFS_LOG_FILE_SUFFIX;
	size_t dlen = strlen(dir);
	if (dlen + 2 + sizeof(prefix) + 20 + 1 + 10 + sizeof(suffix) >= sizeof(log->path))
		return NULL;
	memcpy(log->path, dir, dlen);
	log->path[dlen] = '/';
	char *name = log->path + dlen + 1;
	memcpy(name, prefix, sizeof(prefix) - 1);
	char *e = pfs_put_dec(name + sizeof(prefix) - 1, pid);
	if (gen) {
		*e++ = '.';
		e = pfs_put_dec(e, gen);
	}
	memcpy(e, suffix, sizeof(suffix));
	return name;
}

/*
 * Created relative to the run's directory, opened once and checked by the
 * caller: a directory swapped for a symlink after that check cannot
 * redirect the log (opening by path followed it).
 */
static int create_file(struct pfs_log *log, int dirfd, const char *dir, uint64_t pid)
{
	for (uint32_t gen = 0; gen < PFS_LOG_GENS; gen++) {
		char *name = put_name(log, dir, pid, gen);
		if (!name)
			return -ENAMETOOLONG;
		int fd = PFS_NO_EINTR(openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
		if (fd >= 0) {
			log->gen = gen;
			return fd;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

/* The program may have closed or replaced our descriptor: checked (and reopened) before each use. */
static int log_fd(struct pfs_log *log)
{
	return other_process ? other_fd : pfs_fd_get(&log->fd);
}

/*
 * Reserve disk space for one block so that stores into it cannot SIGBUS;
 * the file grows to cover it (fallocate without KEEP_SIZE, or the writes).
 * `fd` is the log's, checked just before (log_fd): after a dup2 over it,
 * fallocate would grow the program's file instead of the log.
 */
static int reserve_block(int fd, uint64_t block)
{
	off_t off = (off_t)(block * PFS_LOG_BLOCK_SIZE);
	if (fd < 0)
		return -EBADF;
	if (PFS_NO_EINTR(fallocate(fd, 0, off, PFS_LOG_BLOCK_SIZE)) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	static const char zero[4096];
	for (uint32_t done = 0; done < PFS_LOG_BLOCK_SIZE; done += sizeof(zero))
		if (PFS_NO_EINTR(pwrite(fd, zero, sizeof(zero), off + done)) != (ssize_t)sizeof(zero))
			return -ENOSPC;
	return 0;
}

/*
 * Block `block` of the segment mapped at seg_base, its pages made present
 * (reserved: reserve_block) by one call: a record at a time, each of its
 * pages was a page fault, the first one of a file's page the dearest.
 */
static char *block_ready(char *seg_base, uint64_t block)
{
	char *p = seg_base + (block % PFS_LOG_BLOCKS_PER_SEG) * PFS_LOG_BLOCK_SIZE;
	pfs_prefault(p, PFS_LOG_BLOCK_SIZE, MADV_POPULATE_WRITE);
	return p;
}

/* Segment seg mapped (through fd, the log's, checked: log_fd) if it is not yet. */
static char *map_segment(struct pfs_log *log, uint64_t seg, int fd)
{
	char *p = __atomic_load_n(&log->segs[seg], __ATOMIC_ACQUIRE);
	if (p)
		return p;
	pfs_spin_lock(&log->lock);
	p = log->segs[seg];
	if (!p && fd >= 0) {
		/*
		 * The mapping may reach past the end of the file: only blocks that
		 * reserve_block allocated, which extends the file, are ever touched.
		 * No holes are made, so a reader never faults on one (a hole of a
		 * file on a full tmpfs is SIGBUS to whoever reads it).
		 */
		void *m = pfs_sys_mmap(NULL, PFS_LOG_SEG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				       (off_t)(seg * PFS_LOG_SEG_SIZE));
		if (m != MAP_FAILED) {
			/* A forked child writes its own log; it must not inherit this one. */
			pfs_sys_madvise(m, PFS_LOG_SEG_SIZE, MADV_DONTFORK);
			p = m;
			__atomic_store_n(&log->segs[seg], p, __ATOMIC_RELEASE);
		}
	}
	pfs_spin_unlock(&log->lock);
	return p;
}

/* What the log has to say; a process that shares the program's memory (a handler) leaves it for the program. */
enum { SAY_FAILED = 1, SAY_CAPPED = 2 };

static void say_now(struct pfs_log *log, unsigned what)
{
	if (what & SAY_FAILED)
		pfs_warn("log %s: cannot grow (%s); later records of this process are lost", log->path,
			 strerror(log->fail_err));
	if (what & SAY_CAPPED)
		pfs_warn("log %s reached PFSHIM_LOG_MAX (%llu MiB): later records of process %d are dropped, its "
			 "allocation counters go on",
			 log->path, (unsigned long long)(log->max_blocks * PFS_LOG_BLOCK_SIZE >> 20), (int)pfs_sys_getpid());
}

static void say(struct pfs_log *log, unsigned what)
{
	if (other_process)
		__atomic_or_fetch(&log->unsaid, what, __ATOMIC_ACQ_REL);
	else
		say_now(log, what);
}

static void log_fail(struct pfs_log *log, int err)
{
	if (__atomic_exchange_n(&log->failed, 1, __ATOMIC_ACQ_REL))
		return;
	log->fail_err = err;
	say(log, SAY_FAILED);
}

void pfs_log_say_pending(struct pfs_log *log)
{
	if (!other_process && __atomic_load_n(&log->unsaid, __ATOMIC_ACQUIRE))
		say_now(log, __atomic_exchange_n(&log->unsaid, 0, __ATOMIC_ACQ_REL));
}

/*
 * A writer leaves its block: nobody writes there again unless it holds
 * records updated in place later (counters).  Its pages leave the
 * process's memory at once (MADV_DONTNEED on a shared file mapping: the
 * records stay in the file), and once every block of a segment is left so,
 * the segment is unmapped: the process's memory stays bounded however long
 * the log grows (every segment used to stay mapped and resident: a steady
 * allocator's RSS grew with its log, 2.6 to 71 MB in 35 s).  The first
 * block holds the header, updated in place: its segment stays mapped.
 */
static void leave_block(struct pfs_log *log, uint64_t block, int kept)
{
	uint64_t seg = block / PFS_LOG_BLOCKS_PER_SEG;
	if (kept || block == 0 || seg >= PFS_LOG_MAX_SEGS || !log->segs)
		return;
	char *base = __atomic_load_n(&log->segs[seg], __ATOMIC_ACQUIRE);
	if (base) /* mapped until this block is counted as left */
		pfs_sys_madvise(base + (block % PFS_LOG_BLOCKS_PER_SEG) * PFS_LOG_BLOCK_SIZE, PFS_LOG_BLOCK_SIZE,
				MADV_DONTNEED);
	if (seg == 0 || __atomic_add_fetch(&log->seg_left[seg], 1, __ATOMIC_ACQ_REL) != PFS_LOG_BLOCKS_PER_SEG)
		return;
	pfs_spin_lock(&log->lock);
	char *p = log->segs[seg];
	__atomic_store_n(&log->segs[seg], NULL, __ATOMIC_RELEASE);
	pfs_spin_unlock(&log->lock);
	if (p)
		pfs_sys_munmap(p, PFS_LOG_SEG_SIZE);
	__atomic_add_fetch(&log->unmapped, 1, __ATOMIC_RELAXED);
}

void pfs_log_ending(struct pfs_log *log)
{
	__atomic_store_n(&log->ending, 1, __ATOMIC_RELEASE);
	pfs_log_say_pending(log);
}

void *pfs_log_reserve_slow(struct pfs_log *log, struct pfs_writer *w, uint32_t size)
{
	int saved = errno;
	void *p = NULL;
	if (__atomic_load_n(&log->failed, __ATOMIC_ACQUIRE)) {
		pfs_log_say_pending(log);
		goto lost;
	}
	if (size > PFS_LOG_BLOCK_SIZE || !log->segs)
		goto lost;
	/* PFSHIM_LOG_MAX: past it only the process's last records (PROC_END) get a block. */
	if (log->max_blocks && __atomic_load_n(&log->next_block, __ATOMIC_ACQUIRE) - log->first_block >= log->max_blocks &&
	    !__atomic_load_n(&log->ending, __ATOMIC_ACQUIRE)) {
		if (!__atomic_exchange_n(&log->capped, 1, __ATOMIC_ACQ_REL))
			say(log, SAY_CAPPED);
		pfs_log_say_pending(log);
		goto lost;
	}
	if (w->end)
		leave_block(log, w->block, w->kept);
	w->cur = w->end = NULL;
	w->kept = 0;
	uint64_t block = __atomic_fetch_add(&log->next_block, 1, __ATOMIC_ACQ_REL);
	uint64_t seg = block / PFS_LOG_BLOCKS_PER_SEG;
	if (seg >= PFS_LOG_MAX_SEGS) {
		log_fail(log, EFBIG);
		goto lost;
	}
	int fd = log_fd(log); /* checked once for both */
	char *base = map_segment(log, seg, fd);
	if (!base) {
		log_fail(log, errno ? errno : ENOMEM);
		leave_block(log, block, 0);
		goto lost;
	}
	int err = reserve_block(fd, block);
	if (err) {
		log_fail(log, -err);
		leave_block(log, block, 0);
		goto lost;
	}
	w->block = block;
	w->cur = block_ready(base, block);
	w->end = w->cur + PFS_LOG_BLOCK_SIZE;
	p = w->cur;
	w->cur += size;
	errno = saved;
	return p;
lost:
	__atomic_add_fetch(&log->lost, 1, __ATOMIC_RELAXED);
	/* Said in the file itself too (its first page is always mapped): the report warns. */
	if (log->segs && log->segs[0])
		__atomic_add_fetch((uint32_t *)(log->segs[0] + offsetof(struct pfs_file_header, lost_records)), 1,
				   __ATOMIC_RELAXED);
	errno = saved;
	return NULL;
}

void pfs_log_header_init(struct pfs_file_header *h, uint64_t pid, uint32_t page_size, uint32_t flags,
			 uint64_t start_mono_ns, uint64_t start_real_ns)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, PFS_LOG_MAGIC, sizeof(h->magic));
	h->version = PFS_LOG_VERSION;
	h->header_size = sizeof(*h);
	h->block_size = PFS_LOG_BLOCK_SIZE;
	h->page_size = page_size;
	h->pid = pid;
	h->start_mono_ns = start_mono_ns;
	h->start_real_ns = start_real_ns;
	h->flags = flags;
}

/* The state of a log not yet opened: no file, no block. */
static void log_reset(struct pfs_log *log, struct pfs_writer *w0)
{
	memset(log, 0, offsetof(struct pfs_log, path)); /* not the path's 4 KiB: written next, two fresh pages */
	log->path[0] = 0;
	log->fd = (struct pfs_fd)PFS_FD_INIT(PFS_LOG_FD_MIN, log->path, O_RDWR | O_NOFOLLOW);
	log->fd.same = 1;
	w0->cur = w0->end = NULL;
}

/* The table of its mapped segments, for a log that has a file. */
static int log_tables(struct pfs_log *log)
{
	log->segs = pfs_arena_alloc(PFS_LOG_MAX_SEGS * sizeof(char *));
	log->seg_left = pfs_arena_alloc(PFS_LOG_MAX_SEGS * sizeof(*log->seg_left));
	if (log->segs) /* a mapping of its own: its first segments' entries are written at once */
		pfs_prefault(log->segs, sizeof(char *), MADV_POPULATE_WRITE);
	return log->segs && log->seg_left ? 0 : -ENOMEM;
}

/*
 * The log's first block, `block` (mapped, reserved), handed to w0 from `at`
 * bytes in: segment 0 is mapped too (the header, always).  Returns the
 * block's start, NULL on failure (-errno in *err).
 */
static char *first_block(struct pfs_log *log, struct pfs_writer *w0, int fd, uint64_t block, uint32_t at, int *err)
{
	log->first_block = block;
	log->next_block = block + 1;
	char *hdr = map_segment(log, 0, fd);
	char *base = hdr ? map_segment(log, block / PFS_LOG_BLOCKS_PER_SEG, fd) : NULL;
	*err = base ? reserve_block(fd, block) : -ENOMEM;
	if (*err)
		return NULL;
	base = block_ready(base, block);
	w0->block = block;
	w0->kept = 0;
	w0->cur = base + at;
	w0->end = base + PFS_LOG_BLOCK_SIZE;
	return base;
}

int pfs_log_open(struct pfs_log *log, struct pfs_writer *w0, int dirfd, const char *dir,
		 const struct pfs_file_header *hdr)
{
	log_reset(log, w0);
	if (log_tables(log))
		return -ENOMEM;
	int fd = pfs_fd_keep(&log->fd, create_file(log, dirfd, dir, hdr->pid));
	if (fd < 0)
		return fd;
	int err;
	char *base = first_block(log, w0, fd, 0, sizeof(*hdr), &err); /* just made and kept: no second check */
	if (!base) {
		pfs_log_close(log);
		unlinkat(dirfd, strrchr(log->path, '/') + 1, 0);
		return err;
	}
	memcpy(base, hdr, sizeof(*hdr));
	return 0;
}

/* The handoff word of a file header: handoff_pid | handoff_gen << 32. */
static uint64_t *handoff_word(char *hdr)
{
	return (uint64_t *)(void *)(hdr + offsetof(struct pfs_file_header, handoff_pid));
}

_Static_assert(offsetof(struct pfs_file_header, handoff_pid) % 8 == 0 &&
		       offsetof(struct pfs_file_header, handoff_gen) ==
			       offsetof(struct pfs_file_header, handoff_pid) + 4,
	       "the handoff is one aligned 8-byte word");

void pfs_log_hand_over(struct pfs_log *log, uint32_t pid, uint32_t gen)
{
	char **segs = log->segs;
	char *hdr = segs ? __atomic_load_n(&segs[0], __ATOMIC_ACQUIRE) : NULL;
	if (hdr)
		__atomic_store_n(handoff_word(hdr), pid ? (uint64_t)pid | (uint64_t)gen << 32 : 0, __ATOMIC_RELEASE);
}

/*
 * The image before this one left its last block partly used (a forked
 * child that execs writes a few KiB): this image goes on where its records
 * end, after the first record header that is 0 (the reader reads records in
 * file order: those before the IMAGE record are the earlier images').  A
 * block's reservation and its four fresh page-cache pages fewer per exec
 * (a bash script's command: one block of its file, not two).  Only a block
 * the file holds whole (a reservation cut by a full disk leaves a shorter
 * one: a store past the file's end is SIGBUS).  NULL when the block has no
 * room for more than a few records or does not read as records (w0
 * untouched then).
 */
#define REST_MIN 1024u
static char *last_block_rest(struct pfs_log *log, struct pfs_writer *w0, int fd, uint64_t block)
{
	char *seg = map_segment(log, block / PFS_LOG_BLOCKS_PER_SEG, fd);
	if (!seg)
		return NULL;
	char *base = block_ready(seg, block);
	uint32_t at = block ? 0 : (uint32_t)sizeof(struct pfs_file_header);
	for (;;) {
		if (at > PFS_LOG_BLOCK_SIZE - REST_MIN)
			return NULL;
		uint64_t h = __atomic_load_n((uint64_t *)(void *)(base + at), __ATOMIC_ACQUIRE);
		if (!h)
			break;
		uint32_t size = (uint32_t)(h >> 32);
		if (size < sizeof(struct pfs_rec_hdr) || size % 8 || size > PFS_LOG_BLOCK_SIZE - at)
			return NULL;
		at += size;
	}
	log->first_block = block;
	log->next_block = block + 1;
	w0->block = block;
	w0->kept = 0;
	w0->cur = base + at;
	w0->end = base + PFS_LOG_BLOCK_SIZE;
	return base;
}

/*
 * The newest file of pid `pid` in the directory, open (-errno: none); its
 * name in log->path.  The newest: a file of an earlier process of the same
 * pid (pids are reused) may still say it was handed over, if that image's
 * successor was not traced (a setuid program); the predecessor of this
 * image made or took over the newest.
 */
static int newest_file(struct pfs_log *log, int dirfd, const char *dir, uint64_t pid)
{
	int fd = -ENOENT;
	for (uint32_t g = 0; g < PFS_LOG_GENS; g++) {
		char *name = put_name(log, dir, pid, g);
		int f = name ? PFS_NO_EINTR(openat(dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) : -1;
		if (f < 0) {
			if (g && fd >= 0)
				put_name(log, dir, pid, g - 1);
			break;
		}
		if (fd >= 0)
			close(fd);
		fd = f;
	}
	return fd;
}

int pfs_log_continue(struct pfs_log *log, struct pfs_writer *w0, int dirfd, const char *dir,
		     const struct pfs_file_header *hdr)
{
	log_reset(log, w0);
	int fd = newest_file(log, dirfd, dir, hdr->pid);
	if (fd < 0)
		return -ENOENT;
	struct pfs_file_header old;
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    PFS_NO_EINTR(pread(fd, &old, sizeof(old), 0)) != (ssize_t)sizeof(old) || memcmp(old.magic, PFS_LOG_MAGIC, sizeof(old.magic)) || old.version != PFS_LOG_VERSION ||
	    old.block_size != PFS_LOG_BLOCK_SIZE || old.pid != hdr->pid || old.handoff_pid != hdr->pid ||
	    st.st_size < (off_t)PFS_LOG_BLOCK_SIZE) {
		close(fd);
		return -ENOENT;
	}
	if (log_tables(log)) {
		close(fd);
		return -ENOMEM;
	}
	fd = pfs_fd_keep(&log->fd, fd);
	if (fd < 0)
		return fd;
	uint64_t block = ((uint64_t)st.st_size + PFS_LOG_BLOCK_SIZE - 1) / PFS_LOG_BLOCK_SIZE;
	char *h0 = map_segment(log, 0, fd);
	if (h0) /* the header is written (its handoff taken, later its counts) */
		pfs_prefault(h0, sizeof(struct pfs_file_header), MADV_POPULATE_WRITE);
	uint64_t want = (uint64_t)old.handoff_pid | (uint64_t)old.handoff_gen << 32;
	int err = -ENOENT;
	char *base = NULL;
	/* taken once: the handoff cleared as the file is taken */
	if (h0 && __atomic_compare_exchange_n(handoff_word(h0), &want, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) &&
	    !((uint64_t)st.st_size == block * PFS_LOG_BLOCK_SIZE && (base = last_block_rest(log, w0, fd, block - 1))))
		base = first_block(log, w0, fd, block, 0, &err);
	if (!base) {
		pfs_log_close(log);
		return err;
	}
	log->gen = old.handoff_gen;
	struct pfs_rec_image *r = pfs_log_reserve(log, w0, sizeof(*r));
	r->pid = hdr->pid;
	r->start_mono_ns = hdr->start_mono_ns;
	r->start_real_ns = hdr->start_real_ns;
	r->flags = hdr->flags;
	r->page_size = hdr->page_size;
	pfs_log_commit(r, PFS_REC_IMAGE, 0, sizeof(*r));
	return 0;
}

void pfs_log_forget(struct pfs_log *log)
{
	/* The segments were MADV_DONTFORK: nothing of them is mapped in the child. */
	pfs_fd_drop(&log->fd);
	log->segs = NULL;
	log->seg_left = NULL;
	log->failed = 1;
}

int pfs_log_segment_at(struct pfs_log *log, uint64_t addr, uint64_t *lo, uint64_t *hi)
{
	char **segs = __atomic_load_n(&log->segs, __ATOMIC_ACQUIRE);
	if (!segs)
		return 0;
	/* mapped in order: none past the segment of the last block handed out */
	uint64_t n = __atomic_load_n(&log->next_block, __ATOMIC_RELAXED) / PFS_LOG_BLOCKS_PER_SEG + 1;
	for (uint64_t s = 0; s < n && s < PFS_LOG_MAX_SEGS; s++) {
		char *p = __atomic_load_n(&segs[s], __ATOMIC_ACQUIRE);
		if (p && addr - (uint64_t)(uintptr_t)p < PFS_LOG_SEG_SIZE) {
			*lo = (uint64_t)(uintptr_t)p;
			*hi = *lo + PFS_LOG_SEG_SIZE;
			return 1;
		}
	}
	return 0;
}

void pfs_log_close(struct pfs_log *log)
{
	/* Only for a log no thread writes to any more (tests, a failed open). */
	if (log->segs)
		for (uint32_t i = 0; i < PFS_LOG_MAX_SEGS; i++)
			if (log->segs[i])
				pfs_sys_munmap(log->segs[i], PFS_LOG_SEG_SIZE);
	pfs_fd_drop(&log->fd);
	log->segs = NULL;
	log->failed = 1;
}
