/*
 * Exact mode (see exact.h).
 *
 * The descriptor: a full userfaultfd (kernel-side touches, such as read(2)
 * into an untouched buffer, are delivered too; a user-mode-only one would
 * make those system calls fail with EFAULT).  Asked for THREAD_ID (the
 * faulting thread) and PAGEFAULT_FLAG_WP (copy-on-write after fork).
 *
 * The handlers: processes of their own, one per CPU (see struct hslot),
 * that share the program's memory (clone with CLONE_VM, not CLONE_THREAD), so that the program stays
 * single-threaded for glibc (a handler thread would switch malloc to its
 * locking paths, and a program that allocates in a signal handler would
 * deadlock; tested), and has a descriptor table of its own (a program that
 * closes every descriptor cannot take the handlers' away).  They hold the
 * only copies of the userfaultfd: if they die, the kernel releases the
 * registrations and no faulting thread waits for ever.  The program
 * borrows a copy for the moment of a registration (pidfd_getfd).  The
 * handler resolves a read of a missing page with the zero page and a write
 * with a zeroed page (what the kernel does), a write to a page
 * write-protected at a fork by lifting the protection (the kernel then
 * copies it), and appends one event per fault to a batch that becomes a
 * FAULTS record when full, after 10 ms without faults, or when the program
 * asks (exit, exec) through its pipe, whose end of file (the program exited
 * or exec'd) ends the handler.  Each runs with a thread-local storage block
 * of its own (a copy of the creating thread's control block over zeroed
 * storage): errno and the shim's thread variables of the program's threads
 * are never written by it.  It calls no libc function that reads locale
 * or other thread-local state (its /proc parsing is by hand).
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
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
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
#define CONTENDED_DECAY 64 /* faults after which the count of long windows is halved */

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
static int uffd = -1;		/* the program's copy, until the handler has its own */
static int handler_uffd = -1;	/* its number in the handlers' tables */
static int handler_gone;	/* said once: the handler stopped, or the program took our descriptors */

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
 * A batch of events being encoded.  Each handler owns one; carving
 * makes short ones on its stack.  No lock: nothing the handler does may
 * wait for a program thread, which may itself be waiting for the handler.
 */
struct fbatch {
	uint32_t len, count;
	uint64_t base_time;
	uint32_t base_tid;
	struct pfs_fev_cursor cur;
	uint8_t buf[BATCH_BYTES + PFS_FEV_MAX_BYTES];
};
static uint64_t flush_req; /* atomic: the program asks the handlers to write their batches */

/*
 * The handlers: one per CPU the program may run on (up to HANDLERS_MAX),
 * each pinned to its CPU, all reading the one descriptor.  A fault wakes
 * them all; the one on the faulting thread's CPU, which that thread just
 * left idle, wins the read almost always, so the fault is served on the
 * thread's own CPU whichever thread it is (one handler that followed the
 * threads cost 20-40x with several threads faulting, measured).
 */
#define HANDLERS_MAX 8
struct handler_args {
	struct pfs_thread *t;
	int ufd, rd;
	int cpu;		/* pinned to it; -1 none */
	pid_t pid;		/* the handler's, filled by the middle process */
	void *stack;		/* the handler's stack top */
	void *tls;		/* its thread pointer */
	pid_t program;
};
struct hslot {
	struct handler_args args;
	struct fbatch hb;	/* the handler's own */
	char *mem;		/* its stack, the middle process's, its TLS */
	int pipe_w;		/* the program's write end of its pipe */
	dev_t pipe_dev;
	ino_t pipe_ino;
	int pidfd;		/* the program's pidfd of it, to borrow the descriptor */
	uint64_t flush_done;	/* atomic */
	int stop_err;		/* atomic: why it stopped (errno), 0 while it runs */
};
static struct hslot hs[HANDLERS_MAX];
static unsigned nh;

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
		b->base_time = now;
		b->base_tid = tid;
		pfs_fev_start(&b->cur, now, tid);
	}
	const struct pfs_fev ev = {.page = addr / page_size, .time_ns = now, .pc = pc, .sys = sys, .tid = tid,
				   .flags = flags};
	b->len += pfs_fev_encode(b->buf + b->len, &b->cur, &ev);
	b->count++;
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
 * The handler writes its batch when asked (exit, exec): woken by a byte on
 * its pipe, acknowledged through flush_done.  Where the program closed the
 * pipe, the handler has ended and written what it had.
 */
void pfs_exact_flush(struct pfs_thread *t)
{
	(void)t;
	if (!enabled)
		return;
	int saved = errno;
	uint64_t want = __atomic_add_fetch(&flush_req, 1, __ATOMIC_ACQ_REL);
	char one = 1;
	unsigned asked = 0;
	for (unsigned i = 0; i < nh; i++)
		if (fd_is(hs[i].pipe_w, hs[i].pipe_dev, hs[i].pipe_ino) && write(hs[i].pipe_w, &one, 1) == 1)
			asked |= 1u << i;
	for (int k = 0; k < 400 && asked; k++) { /* at most 200 ms */
		for (unsigned i = 0; i < nh; i++)
			if ((asked >> i & 1) && (__atomic_load_n(&hs[i].flush_done, __ATOMIC_ACQUIRE) >= want ||
						 __atomic_load_n(&hs[i].stop_err, __ATOMIC_ACQUIRE)))
				asked &= ~(1u << i);
		if (!asked)
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
	dev_t d;
	ino_t i;
	return fd_keep(fd, &d, &i);
}

static void say_gone(const char *what)
{
	if (handler_gone)
		return;
	handler_gone = 1;
	pfs_warn("exact mode: %s; memory allocated from now on in process %d is not tracked", what,
		 (int)pfs_proc.pid);
}

/*
 * A copy of the handler's descriptor for one registration (closed at
 * once: a program that held one would hang in its faults if the handler
 * died).  -1 when the handler is gone.
 */
static int uffd_borrow(void)
{
	for (unsigned i = 0; i < nh; i++) {
		if (__atomic_load_n(&hs[i].stop_err, __ATOMIC_ACQUIRE))
			continue;
		int fd = (int)syscall(SYS_pidfd_getfd, hs[i].pidfd, handler_uffd, 0);
		if (fd < 0 && errno == EBADF) { /* the program closed our pidfd: open another */
			int pfd = (int)syscall(SYS_pidfd_open, hs[i].args.pid, 0);
			if (pfd >= 0) {
				dev_t d;
				ino_t n;
				hs[i].pidfd = fd_keep(pfd, &d, &n);
				fd = (int)syscall(SYS_pidfd_getfd, hs[i].pidfd, handler_uffd, 0);
			}
		}
		if (fd >= 0)
			return fd;
	}
	say_gone("the shim cannot reach its fault handlers");
	return -1;
}

/* ---- the handler ----------------------------------------------------------- */

/* "/proc/PID/task/TID/NAME" without snprintf (the handler keeps off locale state). */
static char *put_uint(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static int read_task_file(uint32_t tid, const char *name, char *buf, size_t size)
{
	char path[96], *p = path;
	memcpy(p, "/proc/", 6);
	p = put_uint(p + 6, (uint64_t)pfs_proc.pid);
	memcpy(p, "/task/", 6);
	p = put_uint(p + 6, tid);
	*p++ = '/';
	size_t len = strlen(name);
	memcpy(p, name, len + 1);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return 0;
}

/* A number in base 10, or 16 after "0x"; *end past it.  Returns 0 when there is none. */
static int parse_num(const char *p, const char **end, int64_t *out)
{
	int neg = 0, base = 10, any = 0;
	uint64_t v = 0;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (p[0] == '0' && p[1] == 'x') {
		base = 16;
		p += 2;
	}
	for (;; p++, any = 1) {
		int d = *p >= '0' && *p <= '9' ? *p - '0'
			: base == 16 && *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
								 : -1;
		if (d < 0)
			break;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	*end = p;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return any;
}

/* Where a thread blocked in a fault is: /proc/PID/task/TID/syscall is "NR args... sp pc", or "-1 sp pc". */
static void thread_site(uint32_t tid, uint64_t *pc, long *sys)
{
	char buf[256];
	const char *end;
	int64_t nr, v;
	*pc = 0;
	*sys = -1;
	if (read_task_file(tid, "syscall", buf, sizeof(buf)) || !parse_num(buf, &end, &nr))
		return;
	const char *last = strrchr(buf, ' ');
	if (!last || !parse_num(last + 1, &end, &v))
		return;
	*pc = (uint64_t)v;
	*sys = (long)nr;
}

/*
 * What the handler works with, on its own stack: the statics of this file
 * are the program's memory too, and the program changes them (the next
 * handler after a fork, for one).
 */
struct hctx {
	struct pfs_thread *t;
	int ufd;	/* the userfaultfd, in the handler's table */
	int rd;		/* the read end of its pipe */
	int cpu;	/* its CPU, -1 none */
	struct hslot *slot;
	struct fbatch *hb;
	uint64_t plain_until;	/* placement off until then (contention) */
	unsigned contended;	/* long windows lately */
	unsigned since_check;
};

static void wake(const struct hctx *h, uint64_t addr)
{
	struct uffdio_range r = {.start = addr, .len = page_size};
	ioctl(h->ufd, UFFDIO_WAKE, &r);
}

/*
 * Where the woken thread runs.  The handler that serves a fault runs on the
 * faulting thread's CPU (pinned there); when it wakes the thread, the scheduler sees that CPU
 * busy (the handler is on it) and moves the thread to an idle CPU, so every
 * fault then costs two wake-ups across CPUs (55 us here instead of 5:
 * 3.5 s instead of 0.33 s for 65,536 faults, measured).  A CPU that runs
 * only SCHED_IDLE tasks counts as free, so the handler is SCHED_IDLE for
 * the moment of the wake-up: the thread stays, preempts the handler at
 * once, and the handler is back to normal policy when it runs again
 * (never starved for longer than that window).
 */
static void idle_policy(int on)
{
	struct sched_param sp = {0};
	syscall(SYS_sched_setscheduler, 0, on ? SCHED_IDLE : SCHED_OTHER, &sp);
}

/*
 * Under CPU contention that window is where the handler starves (a
 * SCHED_IDLE task runs only on an idle CPU: 8 s instead of 0.1 s for the
 * storm with two busy loops running, measured).  So the handler times it:
 * a few windows over 1 ms among recent faults mean others want this CPU
 * (one alone is a tick or an interrupt), and for the next 200 ms the
 * handler runs as an ordinary task on any CPU, the scheduler's choice.
 */
#define CONTENDED_NS 1000000u
#define CONTENDED_MAX 4
#define BACKOFF_NS 200000000u

static void pin(int cpu)
{
	cpu_set_t set;
	if (cpu < 0)
		memset(&set, 0xff, sizeof(set));
	else {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
	}
	syscall(SYS_sched_setaffinity, 0, sizeof(set), &set);
}

/* Placement is on (pinned, SCHED_IDLE around wake-ups) unless contention turned it off a while ago. */
static int placement_on(struct hctx *h, uint64_t now)
{
	if (h->plain_until && now >= h->plain_until) {
		h->plain_until = 0;
		pin(h->cpu);
	}
	return !h->plain_until;
}

static void placement_off(struct hctx *h, uint64_t now)
{
	if (!h->plain_until)
		pin(-1);
	h->plain_until = now + BACKOFF_NS;
}

/*
 * The event's time and site are taken before the fault is resolved: the
 * thread is still blocked then (its /proc state shows the fault), and
 * whatever it does next (a free, say) is logged later than its fault.
 */
static void handle_fault(struct hctx *h, const struct uffd_msg *m)
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
	int rc, placed = placement_on(h, now);
	if (placed)
		idle_policy(1);
	if (flags & UFFD_PAGEFAULT_FLAG_WP) {
		struct uffdio_writeprotect wp = {.range = {.start = addr, .len = page_size}, .mode = 0};
		rc = ioctl(h->ufd, UFFDIO_WRITEPROTECT, &wp); /* wakes the thread */
		ev |= PFS_FEV_COW | PFS_FEV_WRITE;
	} else if (flags & UFFD_PAGEFAULT_FLAG_WRITE) {
		struct uffdio_copy c = {.dst = addr, .src = (uint64_t)(uintptr_t)zero_page, .len = page_size};
		rc = ioctl(h->ufd, UFFDIO_COPY, &c);
		ev |= PFS_FEV_WRITE;
	} else {
		struct uffdio_zeropage z = {.range = {.start = addr, .len = page_size}};
		rc = ioctl(h->ufd, UFFDIO_ZEROPAGE, &z);
	}
	if (placed) {
		idle_policy(0);
		uint64_t back = pfs_now_ns();
		if (back - now > CONTENDED_NS && ++h->contended >= CONTENDED_MAX) {
			h->contended = 0;
			placement_off(h, back);
		}
		if (++h->since_check >= CONTENDED_DECAY) { /* long windows count when they come close together */
			h->since_check = 0;
			h->contended /= 2;
		}
	}
	if (rc) { /* EEXIST: another thread's fault or a populate got there first; not a first touch */
		wake(h, addr);
		return;
	}
	fb_add(h->hb, h->t, addr, tid, ev, pc, sys, now);
}

static void handler_serve_flush(struct hctx *h)
{
	char v[64];
	ssize_t n = read(h->rd, v, sizeof(v));
	(void)n;
	uint64_t want = __atomic_load_n(&flush_req, __ATOMIC_ACQUIRE);
	fb_flush(h->hb, h->t);
	__atomic_store_n(&h->slot->flush_done, want, __ATOMIC_RELEASE);
}

/* Returns the errno that ended it (EPIPE: the program ended or exec'd). */
static int handler_main(struct hctx *h)
{
	struct uffd_msg msgs[MSGS_PER_READ];
	for (;;) {
		struct pollfd pfd[2] = {{.fd = h->ufd, .events = POLLIN}, {.fd = h->rd, .events = POLLIN}};
		int n = poll(pfd, 2, h->hb->count ? BATCH_IDLE_MS : -1);
		if (n == 0) {
			fb_flush(h->hb, h->t);
			continue;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (pfd[0].revents & (POLLERR | POLLNVAL))
			return EBADF;
		if (pfd[0].revents & POLLIN) {
			/* another handler may have taken it: EAGAIN */
			ssize_t got = read(h->ufd, msgs, sizeof(msgs));
			if (got < 0 && errno != EAGAIN && errno != EINTR)
				return errno;
			for (ssize_t i = 0; i < got / (ssize_t)sizeof(msgs[0]); i++)
				if (msgs[i].event == UFFD_EVENT_PAGEFAULT)
					handle_fault(h, &msgs[i]);
			continue; /* faults first: a flush or an end can wait for them */
		}
		if (pfd[1].revents & POLLIN)
			handler_serve_flush(h);
		else if (pfd[1].revents & (POLLHUP | POLLERR))
			return EPIPE; /* the program's end closed: it exited or exec'd */
	}
}

/*
 * The handler: signals blocked, every descriptor closed but its two, the
 * program allowed to borrow its descriptor (Yama), then the loop.  At the
 * end its batch is written and the descriptor closed: the kernel releases
 * every registration, and waiting faults complete as if never registered.
 */
static int handler_proc(void *arg)
{
	const struct handler_args *a = arg;
	struct hslot *slot = (struct hslot *)(void *)((char *)arg - offsetof(struct hslot, args));
	struct hctx h = {.t = a->t, .ufd = a->ufd, .rd = a->rd, .cpu = a->cpu, .slot = slot, .hb = &slot->hb};
	sigset_t all;
	sigfillset(&all);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof(uint64_t));
	int lo = h.ufd < h.rd ? h.ufd : h.rd, hi = h.ufd ^ h.rd ^ lo;
	syscall(SYS_close_range, 0, lo - 1, 0);
	syscall(SYS_close_range, lo + 1, hi - 1, 0);
	syscall(SYS_close_range, hi + 1, ~0u, 0);
	prctl(PR_SET_PTRACER, a->program, 0, 0, 0);
	pin(h.cpu);
	int err = handler_main(&h);
	fb_flush(h.hb, h.t);
	__atomic_store_n(&slot->flush_done, __atomic_load_n(&flush_req, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
	close(h.ufd);
	__atomic_store_n(&slot->stop_err, err ? err : EPIPE, __ATOMIC_RELEASE);
	syscall(SYS_exit, 0);
	return 0;
}

/* The middle process: starts the handler and exits, so that the handler is nobody's child to wait for. */
static int handler_middle(void *arg)
{
	struct handler_args *a = arg;
	a->pid = real_clone(handler_proc, a->stack, CLONE_VM | CLONE_SETTLS | CLONE_UNTRACED, a, NULL, a->tls, NULL);
	return 0;
}

#define HANDLER_STACK (256u << 10)
#define MIDDLE_STACK (64u << 10)
#define HANDLER_TLS (64u << 10)
#define TCB_COPY 0x700u

/*
 * The handler's thread pointer: a copy of the creating thread's control
 * block (x86-64: the thread pointer points at it, thread-local variables
 * lie below) over zeroed storage for the variables, with its self pointers
 * set to the copy.  The stack-protector canary comes with the copy.
 */
static void *handler_tls(char *area)
{
#if defined(__x86_64__)
	char *old, *tp = area + HANDLER_TLS - 2 * TCB_COPY;
	__asm__("mov %%fs:0, %0" : "=r"(old));
	memcpy(tp, old, TCB_COPY);
	((void **)tp)[0] = tp; /* tcb */
	((void **)tp)[2] = tp; /* self */
	return tp;
#else
	(void)area;
	return NULL;
#endif
}

/* Starts handler i on `cpu`; 0 or -errno. */
static int handler_start_one(unsigned i, int cpu, const char **why)
{
	struct hslot *h = &hs[i];
	int pfd[2];
	if (!h->mem) {
		h->mem = pfs_sys_mmap(NULL, HANDLER_STACK + MIDDLE_STACK + HANDLER_TLS, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (h->mem == MAP_FAILED) {
			h->mem = NULL;
			*why = "no memory for the fault handler";
			return -ENOMEM;
		}
	}
	if (!h->args.t) {
		h->args.t = pfs_arena_alloc(sizeof(*h->args.t));
		if (!h->args.t) {
			*why = "no memory for the fault handler";
			return -ENOMEM;
		}
	}
	h->args.t->w.cur = h->args.t->w.end = NULL;
	h->hb.count = h->hb.len = 0;
	memset(h->mem + HANDLER_STACK + MIDDLE_STACK, 0, HANDLER_TLS);
	h->args.tls = handler_tls(h->mem + HANDLER_STACK + MIDDLE_STACK);
	if (!h->args.tls) {
		*why = "the fault handler is not built for this architecture";
		return -ENOSYS;
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		*why = "no pipe for the fault handler";
		return -errno;
	}
	h->pipe_w = fd_keep(pfd[1], &h->pipe_dev, &h->pipe_ino);
	dev_t d;
	ino_t n;
	h->args.rd = fd_keep(pfd[0], &d, &n);
	h->args.ufd = uffd;
	h->args.cpu = cpu;
	h->args.stack = h->mem + HANDLER_STACK;
	h->args.program = pfs_proc.pid;
	h->args.pid = -1;
	h->stop_err = 0;
	h->flush_done = 0;
	pid_t mid = real_clone ? real_clone(handler_middle, h->mem + HANDLER_STACK + MIDDLE_STACK,
					    CLONE_VM | CLONE_VFORK | CLONE_UNTRACED, &h->args)
			       : -1;
	int err = mid < 0 ? errno : 0;
	if (mid > 0)
		while (waitpid(mid, NULL, __WALL) < 0 && errno == EINTR)
			;
	close(h->args.rd); /* the handler's now */
	if (err || h->args.pid <= 0) {
		close(h->pipe_w);
		h->pipe_w = -1;
		*why = "the fault handler could not start";
		return -(err ? err : EAGAIN);
	}
	h->args.t->tid = (uint32_t)h->args.pid;
	int pidfd = (int)syscall(SYS_pidfd_open, h->args.pid, 0);
	h->pidfd = pidfd >= 0 ? fd_keep(pidfd, &d, &n) : -1;
	if (h->pidfd < 0) {
		*why = "no pidfd for the fault handler (Linux 5.6 or newer is needed)";
		return -ENOSYS;
	}
	return 0;
}

static int handler_start(const char **why)
{
	cpu_set_t allowed;
	int cpus[HANDLERS_MAX], ncpu = 0;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
		for (int c = 0; c < CPU_SETSIZE && ncpu < HANDLERS_MAX; c++)
			if (CPU_ISSET(c, &allowed))
				cpus[ncpu++] = c;
	if (ncpu <= 1) { /* one CPU, or unknown: one handler, unpinned */
		cpus[0] = -1;
		ncpu = 1;
	}
	flush_req = 0;
	handler_uffd = uffd;
	nh = 0;
	for (int i = 0; i < ncpu; i++) {
		int err = handler_start_one((unsigned)i, cpus[i], why);
		if (err) {
			if (!nh)
				return err;
			break; /* fewer handlers: still correct */
		}
		nh++;
	}
	handler_gone = 0;
	/* The program keeps no copy: the handlers' are the only ones. */
	close(uffd);
	uffd = -1;
	int probe = uffd_borrow();
	if (probe < 0) {
		*why = "the shim cannot borrow its fault handler's descriptor (pidfd_getfd)";
		return -EPERM;
	}
	close(probe);
	return 0;
}

static void close_fds(void)
{
	if (uffd >= 0)
		close(uffd);
	uffd = -1;
	for (unsigned i = 0; i < nh; i++) {
		if (hs[i].pipe_w >= 0)
			close(hs[i].pipe_w); /* the handler, if any, ends */
		if (hs[i].pidfd >= 0)
			close(hs[i].pidfd);
		hs[i].pipe_w = hs[i].pidfd = -1;
	}
	nh = 0;
}

static int open_fds(const char **why)
{
	int fd = uffd_open(why);
	if (fd < 0)
		return fd;
	uffd = fd;
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

/*
 * THP could have backed [start, end) natively: it holds an aligned 2 MiB,
 * and THP is "always", or "madvise" and the range was advised so (noted
 * before registration by a policy, or after by the program).
 */
enum { THP_NEVER, THP_MADVISE, THP_ALWAYS, THP_UNKNOWN };
static int thp_mode = THP_UNKNOWN;
#define ADVISED_MAX 16
static struct {
	uint64_t start, end;
} advised[ADVISED_MAX]; /* recent MADV_HUGEPAGE ranges, under xlock */
static unsigned advised_next;

static int read_thp_mode(void)
{
	char buf[128];
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return THP_NEVER;
	buf[n] = 0;
	return strstr(buf, "[always]") ? THP_ALWAYS : strstr(buf, "[madvise]") ? THP_MADVISE : THP_NEVER;
}

static int holds_huge_page(uint64_t start, uint64_t end)
{
	const uint64_t huge = 2ull << 20;
	return ((start + huge - 1) & ~(huge - 1)) + huge <= end;
}

static int thp_possible(uint64_t start, uint64_t end)
{
	if (thp_mode == THP_UNKNOWN)
		thp_mode = read_thp_mode();
	if (thp_mode == THP_NEVER || !holds_huge_page(start, end))
		return 0;
	if (thp_mode == THP_ALWAYS)
		return 1;
	for (unsigned i = 0; i < ADVISED_MAX; i++)
		if (advised[i].start < end && start < advised[i].end)
			return 1;
	return 0;
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
	int fd = uffd_borrow();
	if (fd < 0)
		return -EBADF;
	int err = 0;
	struct uffdio_register reg = {.range = {.start = start, .len = len},
				      .mode = UFFDIO_REGISTER_MODE_MISSING | (can_wp ? UFFDIO_REGISTER_MODE_WP : 0)};
	if (ioctl(fd, UFFDIO_REGISTER, &reg) == 0) {
		*wp = can_wp;
	} else {
		reg.mode = UFFDIO_REGISTER_MODE_MISSING; /* shared memory on a kernel without WP for it */
		if (!can_wp || ioctl(fd, UFFDIO_REGISTER, &reg))
			err = -errno;
	}
	close(fd);
	return err;
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
	uint64_t start, end;
	pfs_page_span(addr, len, page_size, &start, &end);
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

void pfs_exact_note_hugepage(uint64_t addr, uint64_t len)
{
	if (!enabled || !len)
		return;
	if (thp_mode == THP_UNKNOWN)
		thp_mode = read_thp_mode();
	if (thp_mode != THP_MADVISE)
		return; /* "always": flagged when registered; "never": nothing to lose */
	uint64_t start, end;
	pfs_page_span(addr, len, page_size, &start, &end);
	pthread_mutex_lock(&xlock);
	advised[advised_next % ADVISED_MAX].start = start;
	advised[advised_next % ADVISED_MAX].end = end;
	advised_next++;
	/* Advice after registration: the registered ranges it covers lose their huge pages now. */
	struct pfs_thread *t = pfs_thread_get();
	struct xrange *r, *tmp;
	HASH_ITER(hh, ranges, r, tmp)
	{
		uint64_t lo = r->start > start ? r->start : start, hi = r->start + r->len < end ? r->start + r->len : end;
		if (lo < hi && holds_huge_page(lo, hi))
			write_ureg(t, lo, hi - lo, r->alloc_seq, 0, PFS_UREG_THP, 0);
	}
	pthread_mutex_unlock(&xlock);
}

/* The allocation's range starting in the page of `addr` (heaps are not allocations); xlock held. */
static struct xrange *range_at(uint64_t addr)
{
	uint64_t start = addr & ~(page_size - 1);
	struct xrange *r;
	HASH_FIND(hh, ranges, &start, sizeof(start), r);
	return r && !r->heap ? r : NULL;
}

void pfs_exact_free_at(uint64_t addr)
{
	if (!enabled)
		return;
	pthread_mutex_lock(&xlock);
	struct xrange *r = range_at(addr);
	if (r)
		range_drop(r);
	pthread_mutex_unlock(&xlock);
}

void pfs_exact_unmap(uint64_t addr, uint64_t len)
{
	if (!enabled || !len)
		return;
	uint64_t start, end;
	pfs_page_span(addr, len, page_size, &start, &end);
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
	pthread_mutex_lock(&xlock);
	struct xrange *r = range_at(old), moved;
	int found = r != NULL;
	if (found) {
		moved = *r;
		range_drop(r);
	}
	pthread_mutex_unlock(&xlock);
	/* The pages that moved are present at the new place: only the rest can fault. */
	if (found)
		pfs_exact_add(t, new_addr, new_len, moved.alloc_seq, moved.stack, moved.kind, moved.cowable);
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
	if (!key)
		return;
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
	int fd = uffd_borrow();
	if (fd < 0)
		return;
	struct xrange *r, *tmp;
	HASH_ITER(hh, ranges, r, tmp)
	if (r->cowable) {
		struct uffdio_writeprotect wp = {.range = {.start = r->start, .len = r->len},
						 .mode = UFFDIO_WRITEPROTECT_MODE_WP};
		ioctl(fd, UFFDIO_WRITEPROTECT, &wp);
	}
	close(fd);
}

void pfs_exact_after_fork_parent(void)
{
	if (!enabled)
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
	flush_req = 0; /* the parent's handlers write their own batches */
	first_touches = cow_faults = 0;
	if (!enabled)
		return;
	close_fds(); /* the parent's handler's pipe and pidfd: not ours */
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
