/* The log writer: file creation, segment mapping, block hand-out. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "arena.h"
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

/*
 * Created relative to the run's directory, opened once and checked by the
 * caller: a directory swapped for a symlink after that check cannot
 * redirect the log (opening by path followed it).
 */
static int create_file(struct pfs_log *log, int dirfd, const char *dir, uint64_t pid)
{
	size_t dlen = strlen(dir);
	if (dlen + 2 >= sizeof(log->path))
		return -ENAMETOOLONG;
	memcpy(log->path, dir, dlen);
	log->path[dlen] = '/';
	char *name = log->path + dlen + 1;
	size_t room = sizeof(log->path) - dlen - 1;
	/* pfshim.PID[.GEN].pfslog, written by hand: printf's code is two fresh pages at every start */
	static const char prefix[] = "pfshim.", suffix[] = PFS_LOG_FILE_SUFFIX;
	if (room < sizeof(prefix) + 20 + 1 + 10 + sizeof(suffix))
		return -ENAMETOOLONG;
	for (uint32_t gen = 0; gen < 1000; gen++) {
		memcpy(name, prefix, sizeof(prefix) - 1);
		char *e = pfs_put_dec(name + sizeof(prefix) - 1, pid);
		if (gen) {
			*e++ = '.';
			e = pfs_put_dec(e, gen);
		}
		memcpy(e, suffix, sizeof(suffix));
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
	if (log->max_blocks && __atomic_load_n(&log->next_block, __ATOMIC_ACQUIRE) >= log->max_blocks &&
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
	w->cur = base + (block % PFS_LOG_BLOCKS_PER_SEG) * PFS_LOG_BLOCK_SIZE;
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

int pfs_log_open(struct pfs_log *log, struct pfs_writer *w0, int dirfd, const char *dir,
		 const struct pfs_file_header *hdr)
{
	memset(log, 0, offsetof(struct pfs_log, path)); /* not the path's 4 KiB: written next, two fresh pages */
	log->path[0] = 0;
	log->fd = (struct pfs_fd)PFS_FD_INIT(PFS_LOG_FD_MIN, log->path, O_RDWR | O_NOFOLLOW);
	log->fd.same = 1;
	w0->cur = w0->end = NULL;
	log->segs = pfs_arena_alloc(PFS_LOG_MAX_SEGS * sizeof(char *));
	log->seg_left = pfs_arena_alloc(PFS_LOG_MAX_SEGS * sizeof(*log->seg_left));
	if (!log->segs || !log->seg_left)
		return -ENOMEM;
	int fd = pfs_fd_keep(&log->fd, create_file(log, dirfd, dir, hdr->pid));
	if (fd < 0)
		return fd;
	log->next_block = 1;
	char *base = map_segment(log, 0, fd); /* just made and kept: no second check */
	int err = base ? reserve_block(fd, 0) : -ENOMEM;
	if (err) {
		pfs_log_close(log);
		unlinkat(dirfd, strrchr(log->path, '/') + 1, 0);
		return err;
	}
	memcpy(base, hdr, sizeof(*hdr));
	w0->block = 0;
	w0->kept = 0;
	w0->cur = base + sizeof(*hdr);
	w0->end = base + PFS_LOG_BLOCK_SIZE;
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
