/*
 * Exact mode (see exact.h).
 *
 * The descriptor: a full userfaultfd (kernel-side touches, such as read(2)
 * into an untouched buffer, are delivered too; a user-mode-only one would
 * make those system calls fail with EFAULT).  Asked for THREAD_ID (the
 * faulting thread) and PAGEFAULT_FLAG_WP (copy-on-write after fork).
 *
 * The handler: one thread, started with every signal blocked, that first
 * unshares its descriptor table, so that a program that closes every
 * descriptor (close_range) or dup2()s over ours cannot take the handler's
 * copy away.  The program keeps its own copy only to register memory; a
 * registration on a copy that is gone fails with one message and the
 * memory runs untracked.  The handler resolves a read of a missing page
 * with the zero page and a write with a zeroed page (what the kernel does),
 * a write to a page write-protected at a fork by lifting the protection
 * (the kernel then copies it), and appends one event per fault to a batch
 * that becomes a FAULTS record when full, after 10 ms without faults, or
 * when the program flushes it (fork, exec, exit).
 *
 * What a handler thread changes in the program, and why not a process:
 * glibc switches to its multi-threaded paths once a thread exists (malloc
 * takes its arena locks).  A separate process sharing the address space
 * would avoid it but needs its own thread-local storage for every libc call
 * it makes; docs/design.md weighs the two.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "alloc_glibc.h"
#include "arena.h"
#include "exact.h"
#include "kcompat.h"
#include "pfs.h"
#include "real.h"
#include "regions.h"
#include "track.h"

#include <uthash.h>

#define UFFD_FD_MIN 540
#define BATCH_BYTES 4000u
#define BATCH_IDLE_MS 10
#define MSGS_PER_READ 16
#define CPU_CHECK_EVERY 64

/* A range registered with the descriptor: what a fork must protect, and register again in the child. */
struct xrange {
	UT_hash_handle hh; /* keyed by start */
	uint64_t start, len;
	uint64_t alloc_seq;
	uint32_t stack;
	uint8_t kind;
	uint8_t heap;
	uint8_t cowable;
};

/* A malloc heap (brk heap or a thread arena's heap): its carving mark and how far it is registered. */
#define HEAPS_MAX 64
struct xheap {
	uint64_t key;
	uint64_t start;	  /* first page tracked */
	uint64_t hwm;	  /* highest byte handed out */
	uint64_t reg_end; /* registered up to here */
};

static int enabled;
static int uffd = -1;		/* the program's copy, for registering */
static dev_t uffd_dev;
static ino_t uffd_ino;
static int uffd_lost;		/* the program closed or replaced it: said once */
static uint64_t features;
static int can_wp;
static uint64_t page_size = 4096;
static void *zero_page;

static pthread_mutex_t xlock = PTHREAD_MUTEX_INITIALIZER; /* ranges and heaps */
static struct xrange *ranges;
static struct xheap heaps[HEAPS_MAX];
static unsigned nheaps;

static uint64_t first_touches, cow_faults; /* atomic */

/*
 * A batch of events being encoded.  The handler owns one (hb); carving
 * makes short ones on its stack.  No lock: nothing the handler does may
 * wait for a program thread, which may itself be waiting for the handler.
 */
struct fbatch {
	uint32_t len, count;
	uint64_t base_time, prev_time, prev_page;
	uint32_t base_tid, cur_tid;
	uint8_t buf[BATCH_BYTES + 64];
};
static struct fbatch hb;
static uint64_t flush_req, flush_done; /* atomic: the program asks the handler to write hb */
static int efd = -1;		       /* the program's copy of the eventfd that wakes the handler */
static dev_t efd_dev;
static ino_t efd_ino;

unsigned pfs_leb128_put(uint8_t *p, uint64_t v)
{
	unsigned n = 0;
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		p[n++] = (uint8_t)(b | (v ? 0x80 : 0));
	} while (v);
	return n;
}

static void fb_flush(struct fbatch *b, struct pfs_thread *t)
{
	if (!b->count)
		return;
	uint32_t size = PFS_ALIGN8((uint32_t)sizeof(struct pfs_rec_faults) + b->len);
	struct pfs_rec_faults *r = t ? pfs_rec_begin(t, size) : NULL;
	if (r) {
		r->time_ns = b->base_time;
		r->tid = b->base_tid;
		r->count = b->count;
		r->bytes = b->len;
		memcpy(r + 1, b->buf, b->len);
		pfs_rec_end(r, PFS_REC_FAULTS, 0, size);
	}
	b->count = 0;
	b->len = 0;
}

static void fb_add(struct fbatch *b, struct pfs_thread *t, uint64_t addr, uint32_t tid, unsigned flags, uint64_t pc,
		   long sys, uint64_t now)
{
	if (b->len > BATCH_BYTES)
		fb_flush(b, t);
	if (!b->count) {
		b->base_time = b->prev_time = now;
		b->prev_page = 0;
		b->base_tid = b->cur_tid = tid;
	}
	if (tid != b->cur_tid)
		flags |= PFS_FEV_TID;
	uint64_t page = addr / page_size;
	int64_t d = (int64_t)(page - b->prev_page);
	uint64_t zz = ((uint64_t)d << 1) ^ (uint64_t)(d >> 63);
	uint8_t *p = b->buf + b->len;
	p += pfs_leb128_put(p, zz << 4 | flags);
	p += pfs_leb128_put(p, now >= b->prev_time ? now - b->prev_time : 0);
	if (flags & PFS_FEV_TID)
		p += pfs_leb128_put(p, tid);
	if (flags & PFS_FEV_SITE) {
		p += pfs_leb128_put(p, pc);
		p += pfs_leb128_put(p, (uint64_t)(sys + 1));
	}
	b->len = (uint32_t)(p - b->buf);
	b->count++;
	b->prev_page = page;
	if (now >= b->prev_time)
		b->prev_time = now;
	b->cur_tid = tid;
	__atomic_add_fetch(flags & PFS_FEV_COW ? &cow_faults : &first_touches, 1, __ATOMIC_RELAXED);
}

/* Moves a descriptor of the shim's out of the way (fd 540 and up) and notes what it is. */
static int fd_keep(int fd, dev_t *dev, ino_t *ino)
{
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, UFFD_FD_MIN);
	if (hi >= 0) {
		close(fd);
		fd = hi;
	}
	struct stat st;
	if (fstat(fd, &st) == 0) {
		*dev = st.st_dev;
		*ino = st.st_ino;
	}
	return fd;
}

static int fd_is(int fd, dev_t dev, ino_t ino)
{
	struct stat st;
	return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/*
 * The handler writes its batch when asked (exit, exec): woken by the
 * eventfd, acknowledged through flush_done.  Where the program closed the
 * eventfd, the handler's own 10 ms idle flush is waited for instead.
 */
void pfs_exact_flush(struct pfs_thread *t)
{
	(void)t;
	if (!enabled)
		return;
	int saved = errno;
	uint64_t want = __atomic_add_fetch(&flush_req, 1, __ATOMIC_ACQ_REL);
	uint64_t one = 1;
	if (fd_is(efd, efd_dev, efd_ino))
		(void)!write(efd, &one, sizeof(one));
	for (int i = 0; i < 400; i++) { /* at most 200 ms */
		if (__atomic_load_n(&flush_done, __ATOMIC_ACQUIRE) >= want || !__atomic_load_n(&hb.count, __ATOMIC_ACQUIRE))
			break;
		struct timespec ts = {0, 500000};
		nanosleep(&ts, NULL);
	}
	errno = saved;
}

/* ---- the descriptor ------------------------------------------------------ */

static int uffd_open(const char **why)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int err_sys = fd < 0 ? errno : 0;
	if (fd < 0) {
		int dev = PFS_NO_EINTR(open("/dev/userfaultfd", O_RDWR | O_CLOEXEC));
		if (dev >= 0) {
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
			close(dev);
		}
	}
	if (fd < 0) {
		*why = err_sys == EPERM || errno == EACCES || errno == EPERM
			       ? "a userfaultfd that sees every fault needs CAP_SYS_PTRACE, "
				 "vm.unprivileged_userfaultfd=1, or access to /dev/userfaultfd"
			       : "userfaultfd is not available in this kernel";
		return -(err_sys ? err_sys : ENOSYS);
	}
	struct uffdio_api probe = {.api = UFFD_API, .features = 0};
	/* One UFFDIO_API per descriptor: learn what is offered on a throw-away one first? Ask for what we use. */
	probe.features = UFFD_FEATURE_THREAD_ID | UFFD_FEATURE_PAGEFAULT_FLAG_WP;
	if (ioctl(fd, UFFDIO_API, &probe)) {
		/* An older kernel without write-protect: first touches only. */
		close(fd);
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		if (fd < 0) {
			*why = "userfaultfd refused a second descriptor";
			return -errno;
		}
		probe = (struct uffdio_api){.api = UFFD_API, .features = UFFD_FEATURE_THREAD_ID};
		if (ioctl(fd, UFFDIO_API, &probe)) {
			int err = -errno;
			close(fd);
			*why = "the userfaultfd handshake failed";
			return err;
		}
	}
	features = probe.features;
	can_wp = (features & UFFD_FEATURE_PAGEFAULT_FLAG_WP) != 0;
	return fd_keep(fd, &uffd_dev, &uffd_ino);
}

/* The program may have closed our copy, or put another file at its number. */
static int uffd_ok(void)
{
	if (fd_is(uffd, uffd_dev, uffd_ino))
		return 1;
	if (!uffd_lost) {
		uffd_lost = 1;
		pfs_warn("exact mode: the program closed or replaced the shim's userfaultfd; memory allocated from "
			 "now on in process %d is not tracked",
			 (int)pfs_proc.pid);
	}
	return 0;
}

/* ---- the handler ----------------------------------------------------------- */

/* The CPU a thread last ran on: field 39 of /proc/self/task/TID/stat. */
static int thread_cpu(uint32_t tid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/self/task/%u/stat", tid);
	int fd = PFS_NO_EINTR(open(path, O_RDONLY | O_CLOEXEC));
	if (fd < 0)
		return -1;
	ssize_t n = PFS_NO_EINTR(read(fd, buf, sizeof(buf) - 1));
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* the command may contain spaces */
	if (!p)
		return -1;
	int field = 2;
	for (; *p && field < 39; p++)
		if (*p == ' ')
			field++;
	return *p ? (int)strtol(p, NULL, 10) : -1;
}

/* Where a thread blocked in a fault is: /proc/self/task/TID/syscall is "NR args... sp pc", or "-1 sp pc". */
static void thread_site(uint32_t tid, uint64_t *pc, long *sys)
{
	char path[64], buf[256];
	*pc = 0;
	*sys = -1;
	snprintf(path, sizeof(path), "/proc/self/task/%u/syscall", tid);
	int fd = PFS_NO_EINTR(open(path, O_RDONLY | O_CLOEXEC));
	if (fd < 0)
		return;
	ssize_t n = PFS_NO_EINTR(read(fd, buf, sizeof(buf) - 1));
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	char *end;
	long nr = strtol(buf, &end, 0);
	if (end == buf)
		return;
	char *last = strrchr(buf, ' ');
	if (!last)
		return;
	*pc = strtoull(last + 1, NULL, 0);
	*sys = nr;
}

static int handler_fd = -1;

static void wake(uint64_t addr)
{
	struct uffdio_range r = {.start = addr, .len = page_size};
	ioctl(handler_fd, UFFDIO_WAKE, &r);
}

/*
 * The event's time and site are taken before the fault is resolved: the
 * thread is still blocked then (its /proc state shows the fault), and
 * whatever it does next (a free, say) is logged later than its fault.
 */
static void handle_fault(struct pfs_thread *t, const struct uffd_msg *m)
{
	uint64_t addr = m->arg.pagefault.address & ~(page_size - 1);
	uint64_t flags = m->arg.pagefault.flags;
	uint32_t tid = m->arg.pagefault.feat.ptid;
	unsigned ev = 0;
	uint64_t pc = 0;
	long sys = -1;
	if (pfs_proc.cfg.touch_site) {
		thread_site(tid, &pc, &sys);
		ev |= PFS_FEV_SITE;
	}
	uint64_t now = pfs_now_ns();
	int rc;
	if (flags & UFFD_PAGEFAULT_FLAG_WP) {
		struct uffdio_writeprotect wp = {.range = {.start = addr, .len = page_size}, .mode = 0};
		rc = ioctl(handler_fd, UFFDIO_WRITEPROTECT, &wp); /* wakes the thread */
		ev |= PFS_FEV_COW | PFS_FEV_WRITE;
	} else if (flags & UFFD_PAGEFAULT_FLAG_WRITE) {
		struct uffdio_copy c = {.dst = addr, .src = (uint64_t)(uintptr_t)zero_page, .len = page_size};
		rc = ioctl(handler_fd, UFFDIO_COPY, &c);
		ev |= PFS_FEV_WRITE;
	} else {
		struct uffdio_zeropage z = {.range = {.start = addr, .len = page_size}};
		rc = ioctl(handler_fd, UFFDIO_ZEROPAGE, &z);
	}
	if (rc) { /* EEXIST: another thread's fault or a populate got there first; not a first touch */
		wake(addr);
		return;
	}
	fb_add(&hb, t, addr, tid, ev, pc, sys, now);
}

static int handler_efd = -1;

static void handler_serve_flush(struct pfs_thread *t)
{
	uint64_t v;
	(void)!read(handler_efd, &v, sizeof(v));
	uint64_t want = __atomic_load_n(&flush_req, __ATOMIC_ACQUIRE);
	fb_flush(&hb, t);
	__atomic_store_n(&flush_done, want, __ATOMIC_RELEASE);
}

static void handler_main(struct pfs_thread *t)
{
	uint32_t last_tid = 0;
	unsigned since_check = 0;
	struct uffd_msg msgs[MSGS_PER_READ];
	for (;;) {
		struct pollfd pfd[2] = {{.fd = handler_fd, .events = POLLIN}, {.fd = handler_efd, .events = POLLIN}};
		int n = poll(pfd, handler_efd >= 0 ? 2 : 1, hb.count ? BATCH_IDLE_MS : -1);
		if (n == 0) {
			fb_flush(&hb, t);
			continue;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents & (POLLERR | POLLNVAL))
			break;
		if (pfd[1].revents & POLLIN)
			handler_serve_flush(t);
		if (!(pfd[0].revents & POLLIN))
			continue;
		ssize_t got = read(handler_fd, msgs, sizeof(msgs));
		if (got < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break;
		}
		for (ssize_t i = 0; i < got / (ssize_t)sizeof(msgs[0]); i++) {
			if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			uint32_t tid = msgs[i].arg.pagefault.feat.ptid;
			/* Same CPU as the faulting thread: a wake-up across CPUs costs ~25x more here (KERNEL-FACTS). */
			if (tid != last_tid || ++since_check >= CPU_CHECK_EVERY) {
				since_check = 0;
				last_tid = tid;
				int cpu = thread_cpu(tid);
				if (cpu >= 0 && cpu < CPU_SETSIZE && cpu != sched_getcpu()) {
					cpu_set_t set;
					CPU_ZERO(&set);
					CPU_SET(cpu, &set);
					sched_setaffinity(0, sizeof(set), &set);
				}
			}
			handle_fault(t, &msgs[i]);
		}
	}
	int err = errno;
	fb_flush(&hb, t);
	/* Nothing may wait for a handler that is gone: drop every registration, then say so. */
	pthread_mutex_lock(&xlock);
	struct xrange *r, *tmp;
	HASH_ITER(hh, ranges, r, tmp)
	{
		struct uffdio_range ur = {.start = r->start, .len = r->len};
		ioctl(handler_fd, UFFDIO_UNREGISTER, &ur);
	}
	enabled = 0;
	pthread_mutex_unlock(&xlock);
	close(handler_fd);
	pfs_warn("exact mode: the fault handler of process %d stopped (%s); later faults are not counted",
		 (int)pfs_proc.pid, strerror(err));
}

struct handler_start {
	volatile int done;
	int err;
};

static void *handler_entry(void *arg)
{
	struct handler_start *hs = arg;
	pfs_tls_busy = 1; /* for life: nothing this thread does is the program's */
	struct pfs_thread *t = pfs_thread_get();
	int err = t ? 0 : ENOMEM;
	if (!err && unshare(CLONE_FILES))
		err = errno;
	if (!err) { /* the same numbers, in a table of our own now */
		handler_fd = uffd;
		handler_efd = efd;
	}
	__atomic_store_n(&hs->err, err, __ATOMIC_RELEASE);
	__atomic_store_n(&hs->done, 1, __ATOMIC_RELEASE);
	if (!err)
		handler_main(t);
	return NULL;
}

static int handler_start(const char **why)
{
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;
	struct handler_start hs = {0, 0};
	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 128 * 1024);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int err = real_pthread_create ? real_pthread_create(&th, &attr, handler_entry, &hs) : ENOSYS;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err) {
		*why = "the fault handler thread could not start";
		return -err;
	}
	while (!__atomic_load_n(&hs.done, __ATOMIC_ACQUIRE))
		sched_yield();
	if (hs.err) {
		*why = "the fault handler could not get a descriptor table of its own";
		return -hs.err;
	}
	return 0;
}

static void close_fds(void)
{
	if (uffd >= 0)
		close(uffd);
	if (efd >= 0)
		close(efd);
	uffd = efd = -1;
}

static int open_fds(const char **why)
{
	int fd = uffd_open(why);
	if (fd < 0)
		return fd;
	uffd = fd;
	uffd_lost = 0;
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd >= 0)
		efd = fd_keep(efd, &efd_dev, &efd_ino);
	if (!zero_page) {
		zero_page = pfs_sys_mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (zero_page == MAP_FAILED) {
			zero_page = NULL;
			close_fds();
			*why = "no memory for the zero page";
			return -ENOMEM;
		}
	}
	return 0;
}

int pfs_exact_init(const char **why)
{
	page_size = pfs_proc.page_size ? pfs_proc.page_size : 4096;
	return open_fds(why);
}

int pfs_exact_start(const char **why)
{
	int err = handler_start(why);
	if (err) {
		close_fds();
		return err;
	}
	enabled = 1;
	pfs_carving = pfs_alloc_is_glibc; /* heaps are registered as carving reaches them */
	return 0;
}

int pfs_exact_enabled(void)
{
	return enabled;
}

/* ---- registration ---------------------------------------------------------- */

/* THP could have backed this range: its length holds an aligned 2 MiB and THP is not off for it. */
static int thp_possible(uint64_t start, uint64_t end)
{
	const uint64_t huge = 2ull << 20;
	return ((start + huge - 1) & ~(huge - 1)) + huge <= end;
}

static void write_ureg(struct pfs_thread *t, uint64_t start, uint64_t len, uint64_t alloc_seq, int result,
		       uint16_t flags, uint32_t present)
{
	struct pfs_rec_ureg *r = t ? pfs_rec_begin(t, sizeof(*r)) : NULL;
	if (!r)
		return;
	r->time_ns = pfs_now_ns();
	r->addr = start;
	r->length = len;
	r->alloc_seq = alloc_seq;
	r->result = result;
	r->present = present;
	pfs_rec_end(r, PFS_REC_UREG, flags, sizeof(*r));
}

/* Registers [start, start + len); 0 or -errno.  *wp: registered for write-protect too. */
static int do_register(uint64_t start, uint64_t len, int *wp)
{
	*wp = 0;
	if (!uffd_ok())
		return -EBADF;
	struct uffdio_register reg = {.range = {.start = start, .len = len},
				      .mode = UFFDIO_REGISTER_MODE_MISSING | (can_wp ? UFFDIO_REGISTER_MODE_WP : 0)};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) == 0) {
		*wp = can_wp;
		return 0;
	}
	if (can_wp) { /* shared memory on a kernel without WP for it: missing pages only */
		reg.mode = UFFDIO_REGISTER_MODE_MISSING;
		if (ioctl(uffd, UFFDIO_REGISTER, &reg) == 0)
			return 0;
	}
	return -errno;
}

static void range_drop(struct xrange *r)
{
	HASH_DEL(ranges, r);
	pfs_pool_free(r, sizeof(*r));
}

void pfs_exact_add(struct pfs_thread *t, uint64_t addr, uint64_t len, uint64_t alloc_seq, uint32_t stack, int kind,
		   int cowable)
{
	if (!enabled || !len)
		return;
	uint64_t start = addr & ~(page_size - 1), end = (addr + len + page_size - 1) & ~(page_size - 1);
	int saved = errno, wp;
	pthread_mutex_lock(&xlock);
	struct xrange *r, *tmp;
	HASH_ITER(hh, ranges, r, tmp)
	if (!r->heap && r->start < end && start < r->start + r->len)
		range_drop(r); /* stale: its end was not seen (MAP_FIXED over it) */
	int err = do_register(start, end - start, &wp);
	uint16_t flags = (uint16_t)((wp ? PFS_UREG_WP : 0) | (thp_possible(start, end) ? PFS_UREG_THP : 0));
	write_ureg(t, start, end - start, alloc_seq, err, flags, 0);
	if (!err && (r = pfs_pool_alloc(sizeof(*r))) != NULL) {
		r->start = start;
		r->len = end - start;
		r->alloc_seq = alloc_seq;
		r->stack = stack;
		r->kind = (uint8_t)kind;
		r->cowable = (uint8_t)(cowable && wp);
		HASH_ADD(hh, ranges, start, sizeof(r->start), r);
	}
	pthread_mutex_unlock(&xlock);
	errno = saved;
}

void pfs_exact_free_at(uint64_t addr)
{
	if (!enabled)
		return;
	uint64_t start = addr & ~(page_size - 1);
	pthread_mutex_lock(&xlock);
	struct xrange *r;
	HASH_FIND(hh, ranges, &start, sizeof(start), r);
	if (r && !r->heap)
		range_drop(r);
	pthread_mutex_unlock(&xlock);
}

void pfs_exact_unmap(uint64_t addr, uint64_t len)
{
	if (!enabled || !len)
		return;
	uint64_t start = addr & ~(page_size - 1), end = (addr + len + page_size - 1) & ~(page_size - 1);
	pthread_mutex_lock(&xlock);
	struct xrange *r, *tmp;
	HASH_ITER(hh, ranges, r, tmp)
	{
		uint64_t rend = r->start + r->len;
		if (r->heap || r->start >= end || start >= rend)
			continue;
		/* What stays mapped stays registered: keep the pieces outside. */
		struct xrange keep = *r;
		range_drop(r);
		uint64_t pieces[2][2] = {{keep.start, start}, {end, rend}};
		for (int i = 0; i < 2; i++) {
			if (pieces[i][0] >= pieces[i][1] || pieces[i][0] < keep.start || pieces[i][1] > rend)
				continue;
			struct xrange *n = pfs_pool_alloc(sizeof(*n));
			if (!n)
				continue;
			*n = keep;
			memset(&n->hh, 0, sizeof(n->hh));
			n->start = pieces[i][0];
			n->len = pieces[i][1] - pieces[i][0];
			HASH_ADD(hh, ranges, start, sizeof(n->start), n);
		}
	}
	pthread_mutex_unlock(&xlock);
}

void pfs_exact_remap(struct pfs_thread *t, uint64_t old, uint64_t old_len, uint64_t new_addr, uint64_t new_len)
{
	(void)old_len;
	if (!enabled)
		return;
	uint64_t start = old & ~(page_size - 1);
	pthread_mutex_lock(&xlock);
	struct xrange *r;
	HASH_FIND(hh, ranges, &start, sizeof(start), r);
	int found = r && !r->heap;
	uint64_t seq = found ? r->alloc_seq : 0;
	uint32_t stack = found ? r->stack : 0;
	int kind = found ? r->kind : 0, cowable = found ? r->cowable : 0;
	if (found)
		range_drop(r);
	pthread_mutex_unlock(&xlock);
	/* The pages that moved are present at the new place: only the rest can fault. */
	if (found)
		pfs_exact_add(t, new_addr, new_len, seq, stack, kind, cowable);
}

/* ---- heaps ------------------------------------------------------------------- */

/* The end of the heap that holds `key`: the program break, or a thread heap's size (glibc's heap_info). */
static uint64_t heap_top(uint64_t key, uint64_t brk_now)
{
	if (key == PFS_HEAP_MAIN)
		return (brk_now + page_size - 1) & ~(page_size - 1);
	uint64_t size = ((const uint64_t *)(uintptr_t)key)[2]; /* heap_info: ar_ptr, prev, size */
	if (size > PFS_HEAP_MAX)
		return 0;
	return key + size;
}

static struct xheap *heap_get(uint64_t key, uint64_t p)
{
	for (unsigned i = 0; i < nheaps; i++)
		if (heaps[i].key == key)
			return &heaps[i];
	if (nheaps == HEAPS_MAX)
		return NULL;
	struct xheap *h = &heaps[nheaps++];
	h->key = key;
	h->start = h->hwm = h->reg_end = p & ~(page_size - 1);
	return h;
}

static void write_carve(struct pfs_thread *t, uint64_t from, uint64_t to, uint32_t stack, int kind)
{
	struct pfs_rec_carve *r = pfs_rec_begin(t, sizeof(*r));
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

/*
 * Registers the heap from its registered end to its top.  The pages of that
 * stretch that are already present were touched by malloc on its way to
 * this block (a fresh top chunk's header, the block's own): first touches
 * of this thread now, unless this is the heap's first registration (then
 * they are older than the shim's view of the heap).
 */
static void heap_register(struct pfs_thread *t, struct xheap *h, uint64_t top, int first)
{
	if (top <= h->reg_end)
		return;
	uint64_t from = h->reg_end, len = top - from;
	int wp;
	int err = do_register(from, len, &wp);
	uint32_t present = 0;
	static struct fbatch cb; /* under xlock */
	if (!err) {
		unsigned char vec[256];
		for (uint64_t off = 0; off < len; off += sizeof(vec) * page_size) {
			uint64_t n = (len - off) / page_size < sizeof(vec) ? (len - off) / page_size : sizeof(vec);
			if (mincore((void *)(uintptr_t)(from + off), n * page_size, vec))
				break;
			for (uint64_t i = 0; i < n; i++)
				if (vec[i] & 1) {
					present++;
					if (!first)
						fb_add(&cb, t, from + off + i * page_size, t->tid, PFS_FEV_WRITE, 0, -1,
						       pfs_now_ns());
				}
		}
		fb_flush(&cb, t);
		h->reg_end = top;
		struct xrange *r = pfs_pool_alloc(sizeof(*r));
		if (r) {
			r->start = from;
			r->len = len;
			r->heap = 1;
			r->kind = PFS_KIND_MALLOC;
			r->cowable = (uint8_t)wp;
			HASH_ADD(hh, ranges, start, sizeof(r->start), r);
		}
	}
	write_ureg(t, from, len, 0, err,
		   (uint16_t)(PFS_UREG_HEAP | (wp ? PFS_UREG_WP : 0) | (present && !first ? PFS_UREG_PRESENT : 0)),
		   present);
	if (err)
		h->reg_end = top; /* said once; not tried again for this stretch */
}

void pfs_exact_carve(struct pfs_thread *t, uint64_t p, uint64_t end, uint32_t stack, int kind)
{
	if (!enabled)
		return;
	uint64_t brk_now, key = pfs_heap_key(p, &brk_now);
	int is_main = key == PFS_HEAP_MAIN;
	int saved = errno;
	pthread_mutex_lock(&xlock);
	struct xheap *h = heap_get(key, p);
	if (h && p >= h->start) {
		if (end > h->hwm) {
			uint64_t from = (h->hwm + page_size - 1) & ~(page_size - 1);
			if (h->hwm == h->start)
				from = h->start;
			uint64_t to = (end + page_size - 1) & ~(page_size - 1);
			if (to > from)
				write_carve(t, from, to, stack, kind);
			h->hwm = end;
		}
		uint64_t top = heap_top(key, brk_now);
		int first = h->reg_end == h->start;
		if (top > h->reg_end && top - h->start <= (is_main ? UINT64_MAX : PFS_HEAP_MAX))
			heap_register(t, h, top, first);
		t->carve_lo = is_main ? 0 : key;
		t->carve_hi = (h->hwm + page_size - 1) & ~(page_size - 1);
		if (t->carve_hi > h->reg_end)
			t->carve_hi = h->reg_end;
	}
	pthread_mutex_unlock(&xlock);
	errno = saved;
}

/* ---- fork ---------------------------------------------------------------------- */

void pfs_exact_lock(void)
{
	pthread_mutex_lock(&xlock);
}

void pfs_exact_unlock(void)
{
	pthread_mutex_unlock(&xlock);
}

/* Present pages of every range are shared with the child now: their first write is a copy. */
static void protect_all(void)
{
	struct xrange *r, *tmp;
	HASH_ITER(hh, ranges, r, tmp)
	if (r->cowable) {
		struct uffdio_writeprotect wp = {.range = {.start = r->start, .len = r->len},
						 .mode = UFFDIO_WRITEPROTECT_MODE_WP};
		ioctl(uffd, UFFDIO_WRITEPROTECT, &wp);
	}
}

void pfs_exact_after_fork_parent(void)
{
	if (!enabled || !uffd_ok())
		return;
	int saved = errno;
	pthread_mutex_lock(&xlock);
	protect_all();
	pthread_mutex_unlock(&xlock);
	errno = saved;
}

/*
 * The child: the inherited descriptor belongs to the parent's memory and
 * the child's mappings lost their registration (no UFFD_FEATURE_EVENT_FORK).
 * A descriptor and a handler of its own, every range registered again and
 * announced (ALLOC with PFS_ALLOC_INHERITED, so the child's faults there
 * have an owner in its log), then protected: pages present at the fork
 * are the parent's, the child's first write to one is a copy.
 */
void pfs_exact_child(struct pfs_thread *t)
{
	pthread_mutex_init(&xlock, NULL);
	hb.count = hb.len = 0; /* the parent's handler writes its own */
	flush_req = flush_done = 0;
	first_touches = cow_faults = 0;
	if (!enabled)
		return;
	close_fds();
	enabled = 0;
	const char *why = "";
	int err = open_fds(&why);
	if (!err)
		err = pfs_exact_start(&why);
	if (err) {
		enabled = 0;
		pfs_warn("fork: exact mode cannot continue in process %d: %s (%s); its faults are not counted",
			 (int)pfs_proc.pid, why, strerror(-err));
		return;
	}
	struct xrange *r, *tmp;
	HASH_ITER(hh, ranges, r, tmp)
	{
		int wp;
		if (!r->heap)
			r->alloc_seq = pfs_track_write_alloc(t, r->kind, r->stack, r->start, r->len, r->len, 0, 0,
							     PFS_ALLOC_INHERITED);
		int e = do_register(r->start, r->len, &wp);
		write_ureg(t, r->start, r->len, r->heap ? 0 : r->alloc_seq, e,
			   (uint16_t)((r->heap ? PFS_UREG_HEAP : 0) | (wp ? PFS_UREG_WP : 0)), 0);
		if (e)
			range_drop(r);
		else
			r->cowable = (uint8_t)wp;
	}
	protect_all();
}

uint64_t pfs_exact_first_touches(void)
{
	return __atomic_load_n(&first_touches, __ATOMIC_RELAXED);
}

uint64_t pfs_exact_cow_faults(void)
{
	return __atomic_load_n(&cow_faults, __ATOMIC_RELAXED);
}
