/*
 * Exact mode's fault handlers (uffd_handler.h): processes of their own, one
 * per CPU, that share the program's memory (clone with CLONE_VM, not
 * CLONE_THREAD), so that the program stays single-threaded for glibc (a
 * handler thread would switch malloc to its locking paths, and a program
 * that allocates in a signal handler would deadlock; tested), and has a
 * descriptor table of its own (a program that closes every descriptor
 * cannot take the handlers' away).  They hold the only copies of the
 * userfaultfd: if they die, the kernel releases the registrations and no
 * faulting thread waits for ever.  The program borrows a copy for the
 * moment of a registration (pidfd_getfd).  A handler resolves a read of a
 * missing page with the zero page and a write with a zeroed page (what the
 * kernel does), a write to a page write-protected at a fork by lifting the
 * protection (the kernel then copies it), and appends one event per fault
 * to a batch that becomes a FAULTS record when full, after 10 ms without
 * faults, or when the program asks (exit, exec) through its socket.
 *
 * A handler ends when the program ends (a pidfd of it becomes readable) or
 * execs (its end of the socket closes and its memory is another's: kcmp),
 * or when another handler ends (so that a fault one of them had read when
 * it was killed is released with the descriptor, not left waiting).  A
 * program that closes every descriptor (close_range) loses only its end of
 * the socket: the handler then reads the program's requests from memory
 * every 10 ms.  Handlers are named pfshim-handler and have a process group
 * of their own: a signal to the program's group or to its name is not
 * theirs.  Each runs with a thread-local storage block of its own (a copy
 * of the creating thread's control block over zeroed storage, its layout
 * checked at start): errno and the shim's thread variables of the
 * program's threads are never written by it.  It touches no lock or state
 * of the program's libc: no message (strerror, printf read the locale),
 * no reopening of the program's descriptors (it writes the log through its
 * own copy), /proc parsed by hand.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "arena.h"
#include "fbatch.h"
#include "fdkeep.h"
#include "kcompat.h"
#include "log.h"
#include "msg.h"
#include "probe.h"
#include "real.h"
#include "thread.h"
#include "uffd_handler.h"
#include "util.h"

#define FD_MIN 540
#define BATCH_IDLE_MS 10
#define MSGS_PER_READ 16
#define CONTENDED_DECAY 64 /* faults after which the count of long windows is halved */
#define ORPHAN_POLL_MS 10 /* the program closed its end of the socket: its requests are read this often */
#define KCMP_VM 1	   /* linux/kcmp.h */

static uint64_t page_size = 4096;
static void *zero_page;
/*
 * A read of a missing page is resolved as this kernel resolves it natively
 * (probed at start): with the zero page, or with a page of its own (a copy
 * of zeroes), so that the program takes the faults it takes without the
 * shim: a zero-page read here then a write would be a second fault.
 */
static int read_maps_zero_page = 1;
static int handler_uffd = -1;	/* the descriptor's number in the handlers' tables */
static const char *gone;	/* why the handlers stopped while the program runs; NULL while they serve */
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
	int logfd;		/* the program's log, in the handler's table too */
	int cpu;		/* pinned to it; -1 none */
	pid_t pid;		/* the handler's, filled by the middle process */
	void *stack;		/* the handler's stack top */
	void *tls;		/* its thread pointer */
	pid_t program;
};
struct hslot {
	struct handler_args args;
	struct pfs_fbatch hb;	/* the handler's own */
	char *mem;		/* its stack, the middle process's, its TLS */
	struct pfs_fd chan;	/* the program's end of the handler's socket (flush requests) */
	struct pfs_fd pidfd;	/* the program's pidfd of it, to borrow the descriptor */
	uint64_t flush_done;	/* atomic */
	int stop_err;		/* atomic: why it stopped (errno), 0 while it runs */
};
static struct hslot hs[HANDLERS_MAX];
static unsigned nh;

/* Handler i has ended (killed, say): its pidfd is readable. */
static int handler_dead(unsigned i)
{
	if (__atomic_load_n(&hs[i].stop_err, __ATOMIC_ACQUIRE))
		return 1;
	if (!pfs_fd_ok(&hs[i].pidfd))
		pfs_fd_keep(&hs[i].pidfd, (int)syscall(SYS_pidfd_open, hs[i].args.pid, 0));
	struct pollfd p = {.fd = hs[i].pidfd.fd, .events = POLLIN};
	return hs[i].pidfd.fd < 0 || (poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP | POLLNVAL)));
}

static void set_gone(const char *why)
{
	if (!gone)
		gone = why;
}

/* A byte to handler i; 0, or -1 when it cannot hear it (ended, or the program closed the socket). */
static int tell(unsigned i, char what)
{
	if (!pfs_fd_ok(&hs[i].chan))
		return -1;
	/* A socket, not a pipe: a handler killed meanwhile is EPIPE here, never SIGPIPE to the program. */
	ssize_t n = PFS_NO_EINTR(send(hs[i].chan.fd, &what, 1, MSG_NOSIGNAL | MSG_DONTWAIT));
	if (n == 1 || errno == EAGAIN)
		return 0;
	if (errno == EPIPE || errno == ECONNRESET)
		set_gone("a fault handler was killed");
	return -1;
}

/*
 * The handlers write their batches when asked (exit, exec): woken by a
 * byte on their socket, or within 10 ms where the program closed it,
 * acknowledged through flush_done.  At most 2 s (then one line says so: a machine
 * loaded enough to starve them for that long); a handler found dead
 * meanwhile is not waited for.
 */
void pfs_uffd_handlers_flush(void)
{
	int saved = errno;
	uint64_t want = __atomic_add_fetch(&flush_req, 1, __ATOMIC_ACQ_REL);
	unsigned asked = 0;
	for (unsigned i = 0; i < nh; i++)
		if (!__atomic_load_n(&hs[i].stop_err, __ATOMIC_ACQUIRE)) {
			tell(i, 'F');
			asked |= 1u << i;
		}
	uint64_t until = pfs_now_ns() + 2000000000ull;
	for (int k = 0; asked; k++) {
		for (unsigned i = 0; i < nh; i++)
			if ((asked >> i & 1) && (__atomic_load_n(&hs[i].flush_done, __ATOMIC_ACQUIRE) >= want ||
						 ((k & 15) == 15 && handler_dead(i))))
				asked &= ~(1u << i);
		if (!asked)
			break;
		if (pfs_now_ns() > until) {
			pfs_warn("exact mode's fault handlers did not write their last faults within 2 s (a loaded "
				 "machine): process %d's report may miss some", (int)pfs_proc.pid);
			break;
		}
		struct timespec ts = {0, 500000};
		nanosleep(&ts, NULL);
	}
	for (unsigned i = 0; i < nh && !gone; i++)
		if (handler_dead(i) && __atomic_load_n(&hs[i].stop_err, __ATOMIC_ACQUIRE) != EPIPE)
			set_gone("a fault handler ended");
	errno = saved;
}

const char *pfs_uffd_handlers_gone(void)
{
	return gone;
}

/*
 * A copy of the handlers' descriptor for one registration (closed at
 * once: a program that held one would hang in its faults if the handlers
 * died).  -1 when they are gone, or out of descriptors.
 */
int pfs_uffd_borrow(void)
{
	if (gone)
		return -1;
	for (unsigned i = 0; i < nh; i++) {
		if (__atomic_load_n(&hs[i].stop_err, __ATOMIC_ACQUIRE)) {
			set_gone("a fault handler ended"); /* the others end too: they watch each other */
			return -1;
		}
		if (!pfs_fd_ok(&hs[i].pidfd)) /* the program closed or replaced our pidfd: open another */
			pfs_fd_keep(&hs[i].pidfd, (int)syscall(SYS_pidfd_open, hs[i].args.pid, 0));
		int fd = (int)syscall(SYS_pidfd_getfd, hs[i].pidfd.fd, handler_uffd, 0);
		if (fd >= 0)
			return fd;
		if (handler_dead(i)) {
			set_gone("a fault handler was killed");
			return -1;
		}
	}
	return -1;
}

/* "/proc/PID/task/TID/NAME" without snprintf (the handler keeps off locale state): pfs_put_dec. */
static int read_task_file(uint32_t tid, const char *name, char *buf, size_t size)
{
	char path[96], *p = path;
	memcpy(p, "/proc/", 6);
	p = pfs_put_dec(p + 6, (uint64_t)pfs_proc.pid);
	memcpy(p, "/task/", 6);
	p = pfs_put_dec(p + 6, tid);
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
	int rd;		/* its end of the socket; -1 once the program closed the other */
	int prog;	/* a pidfd of the program: readable when it has ended */
	int sib[HANDLERS_MAX]; /* pidfds of the other handlers, once the program said they all run */
	unsigned nsib;
	pid_t self, program;
	int cpu;	/* its CPU, -1 none */
	struct hslot *slot;
	struct pfs_fbatch *hb;
	uint64_t plain_until;	/* placement off until then (contention) */
	unsigned contended;	/* long windows lately */
	unsigned since_check;
	int sfd;	/* its own schedstat, -1 none */
	uint64_t wait_mark;	/* its time waiting for a CPU when it last went to sleep */
	int psfd;	/* the program's schedstat (its main thread's), -1 none */
};

static void wake(const struct hctx *h, uint64_t addr)
{
	struct uffdio_range r = {.start = addr, .len = page_size};
	pfs_sys_ioctl(h->ufd, UFFDIO_WAKE, &r);
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
 * (one alone is a tick or an interrupt), and so does one window over 8 ms
 * (two ticks at 250 Hz: with three busy loops on two CPUs single windows
 * of 100 ms and more were seen, the program waiting on a starved handler,
 * before the fourth came); for the next 200 ms the handler runs as an
 * ordinary task on any CPU, the scheduler's choice.
 */
#define CONTENDED_NS 1000000u
#define CONTENDED_MAX 4
#define STARVED_NS 8000000u
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
 * The handler's own CPU time (its CPU clock: the time the woken thread runs
 * before the handler finishes is not in it), 0 unknown.  With waited_ns
 * below, what serving a fault kept its thread waiting, which the analyzer
 * takes out of the program's timeline (docs/analyzer.md, "Storms").  No
 * vDSO for it: a syscall.
 */
static uint64_t cpu_ns(void)
{
	struct timespec ts;
	if (syscall(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The handler's time waiting for a CPU since it went to sleep (schedstat's
 * run-queue wait; 0 unknown), read just before the fault is resolved: the
 * wake-up that brought the fault to it and any preemption while serving it,
 * all of it time the faulting thread waited.  Not after the wake-up: a
 * handler placed on the thread's CPU is preempted by the thread then, and
 * that wait is the program running (handler_main takes the mark before
 * sleeping again).  On a loaded machine this is much of what a fault
 * waits: without it (and without the program's own wait, wait_sample) the
 * 16,384-fault storm of tests/preload/one_storm.c read as thirteen storms
 * holding 11,605 of its faults in CI.
 */
static uint64_t waited_ns(struct hctx *h)
{
	uint64_t run, wait;
	if (h->sfd < 0 || pfs_schedstat_fd(h->sfd, &run, &wait))
		return 0;
	uint64_t d = wait > h->wait_mark ? wait - h->wait_mark : 0;
	h->wait_mark = wait;
	return d;
}

static void mark_wait(struct hctx *h)
{
	uint64_t run;
	if (h->sfd >= 0)
		pfs_schedstat_fd(h->sfd, &run, &h->wait_mark);
}

/*
 * The program's own wait for a CPU, sampled as fast mode's scanner does (at
 * most every 50 ms, SCAN records; docs/analyzer.md, "A loaded machine"):
 * under load a program woken from its fault waits for a CPU as long as the
 * handler did (660 ms of a 2 s storm with three busy loops), and without
 * samples that time read as the program's own.  The time is the fault's:
 * the program is blocked in it then.
 */
static void wait_sample(struct hctx *h, uint64_t now)
{
	uint64_t run, wait;
	if (h->psfd < 0 || !pfs_wait_due(now) || pfs_schedstat_fd(h->psfd, &run, &wait))
		return;
	struct pfs_rec_scan *rec = h->t ? pfs_rec_begin(&h->t->w, sizeof(*rec)) : NULL;
	if (!rec)
		return;
	rec->time_ns = now;
	rec->duration_ns = 0;
	rec->new_pages = 0;
	rec->regions = 0;
	rec->reason = PFS_SCAN_SAMPLE;
	rec->wait_ns = wait;
	pfs_rec_end(rec, PFS_REC_SCAN, PFS_SCAN_WAIT, sizeof(*rec));
}

/*
 * The event's time and site are taken before the fault is resolved: the
 * thread is still blocked then (its /proc state shows the fault), and
 * whatever it does next (a free, say) is logged later than its fault.
 */
static void handle_fault(struct hctx *h, const struct uffd_msg *m)
{
	uint64_t cpu0 = cpu_ns();
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
	uint64_t waited = waited_ns(h);
	int rc, placed = placement_on(h, now);
	if (placed)
		idle_policy(1);
	if (flags & UFFD_PAGEFAULT_FLAG_WP) {
		struct uffdio_writeprotect wp = {.range = {.start = addr, .len = page_size}, .mode = 0};
		rc = pfs_sys_ioctl(h->ufd, UFFDIO_WRITEPROTECT, &wp); /* wakes the thread */
		ev |= PFS_FEV_COW | PFS_FEV_WRITE;
	} else if (flags & UFFD_PAGEFAULT_FLAG_WRITE) {
		struct uffdio_copy c = {.dst = addr, .src = (uint64_t)(uintptr_t)zero_page, .len = page_size};
		rc = pfs_sys_ioctl(h->ufd, UFFDIO_COPY, &c);
		ev |= PFS_FEV_WRITE;
	} else if (read_maps_zero_page) {
		struct uffdio_zeropage z = {.range = {.start = addr, .len = page_size}};
		rc = pfs_sys_ioctl(h->ufd, UFFDIO_ZEROPAGE, &z);
	} else {
		struct uffdio_copy c = {.dst = addr, .src = (uint64_t)(uintptr_t)zero_page, .len = page_size};
		rc = pfs_sys_ioctl(h->ufd, UFFDIO_COPY, &c);
	}
	if (placed) {
		idle_policy(0);
		uint64_t back = pfs_now_ns();
		if (back - now > STARVED_NS || (back - now > CONTENDED_NS && ++h->contended >= CONTENDED_MAX)) {
			h->contended = 0;
			placement_off(h, back);
		}
		if (++h->since_check >= CONTENDED_DECAY) { /* long windows count when they come close together */
			h->since_check = 0;
			h->contended /= 2;
		}
	}
	if (rc) /* EEXIST: another thread's fault or a populate got there first; not a first touch */
		wake(h, addr);
	else
		pfs_fbatch_add(h->hb, h->t, addr, tid, ev, pc, sys, now);
	wait_sample(h, now);
	uint64_t cpu1 = cpu_ns();
	if (cpu0 && cpu1 > cpu0)
		h->hb->handler_ns += cpu1 - cpu0;
	h->hb->handler_ns += waited;
}

/* The program asked for the batch (flush_req moved on): written, and acknowledged. */
static void serve_flush(struct hctx *h)
{
	uint64_t want = __atomic_load_n(&flush_req, __ATOMIC_ACQUIRE);
	if (want == __atomic_load_n(&h->slot->flush_done, __ATOMIC_ACQUIRE))
		return;
	pfs_fbatch_flush(h->hb, h->t);
	__atomic_store_n(&h->slot->flush_done, want, __ATOMIC_RELEASE);
}

/*
 * The program's memory is still ours: it has not exec'd.  Where kcmp
 * cannot tell (a kernel without it, a program that made itself
 * non-dumpable), the program's end of the socket closing means its end.
 */
static int same_memory(const struct hctx *h)
{
	return syscall(SYS_kcmp, h->self, h->program, KCMP_VM, 0, 0) == 0;
}

/* The program says every handler runs: each watches the others (slots read once, now). */
static int watch_siblings(struct hctx *h)
{
	unsigned me = (unsigned)(h->slot - hs), n = __atomic_load_n(&nh, __ATOMIC_ACQUIRE);
	for (unsigned k = 0; k < n && k < HANDLERS_MAX; k++) {
		if (k == me)
			continue;
		int fd = (int)syscall(SYS_pidfd_open, hs[k].args.pid, 0);
		if (fd < 0)
			return ECHILD; /* ended already */
		h->sib[h->nsib++] = fd;
	}
	return 0;
}

/* Bytes on the socket: 'F' write the batch, 'S' the others run.  Returns the errno that ends the handler, 0. */
static int serve_socket(struct hctx *h)
{
	char v[64];
	ssize_t n = read(h->rd, v, sizeof(v));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		/* The program's end closed: it exec'd (or ended), or it closed every descriptor and runs on. */
		if (!same_memory(h))
			return EPIPE;
		close(h->rd);
		h->rd = -1;
		return 0;
	}
	if (memchr(v, 'S', (size_t)n) && !h->nsib) {
		int err = watch_siblings(h);
		if (err)
			return err;
	}
	serve_flush(h);
	return 0;
}

/* Returns the errno that ended it: EPIPE the program ended or exec'd, ECHILD another handler ended. */
static int handler_main(struct hctx *h)
{
	struct uffd_msg msgs[MSGS_PER_READ];
	for (;;) {
		struct pollfd pfd[3 + HANDLERS_MAX] = {{.fd = h->ufd, .events = POLLIN},
						       {.fd = h->prog, .events = POLLIN},
						       {.fd = h->rd, .events = POLLIN}}; /* -1: ignored */
		for (unsigned k = 0; k < h->nsib; k++)
			pfd[3 + k] = (struct pollfd){.fd = h->sib[k], .events = POLLIN};
		int timeout = h->hb->count ? BATCH_IDLE_MS : h->rd < 0 ? ORPHAN_POLL_MS : -1;
		mark_wait(h);
		int n = poll(pfd, 3 + h->nsib, timeout);
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
		if (pfd[1].revents)
			return EPIPE; /* the program has ended */
		for (unsigned k = 0; k < h->nsib; k++)
			if (pfd[3 + k].revents)
				return ECHILD;
		if (h->rd >= 0 && pfd[2].revents) {
			int err = serve_socket(h);
			if (err)
				return err;
		} else if (h->rd < 0) {
			if (!same_memory(h))
				return EPIPE; /* exec'd */
			serve_flush(h);
		}
		if (n == 0)
			pfs_fbatch_flush(h->hb, h->t);
	}
}

/* Closes every descriptor but the `n` (sorted, distinct, >= 0) in keep. */
static void close_all_but(const int *keep, int n)
{
	unsigned from = 0;
	for (int i = 0; i < n; i++) {
		if ((unsigned)keep[i] > from)
			syscall(SYS_close_range, from, (unsigned)keep[i] - 1, 0);
		from = (unsigned)keep[i] + 1;
	}
	syscall(SYS_close_range, from, ~0u, 0);
}

/*
 * The handler: signals blocked, a process group and a name of its own,
 * every descriptor closed but its own three, the program allowed to borrow
 * its descriptor (Yama), then the loop.  At the end its batch is written
 * and the descriptor closed: the kernel releases every registration, and
 * waiting faults complete as if never registered.
 */
static int handler_proc(void *arg)
{
	const struct handler_args *a = arg;
	struct hslot *slot = (struct hslot *)(void *)((char *)arg - offsetof(struct hslot, args));
	struct hctx h = {.t = a->t, .ufd = a->ufd, .rd = a->rd, .prog = -1, .cpu = a->cpu, .slot = slot,
			 .hb = &slot->hb, .program = a->program, .sfd = -1, .psfd = -1};
	sigset_t all;
	sigfillset(&all);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof(uint64_t));
	h.self = (pid_t)syscall(SYS_getpid);
	syscall(SYS_setpgid, 0, 0);
	prctl(PR_SET_NAME, "pfshim-handler", 0, 0, 0);
	int keep[3] = {h.ufd, h.rd, a->logfd}, n = a->logfd >= 0 ? 3 : 2;
	for (int i = 1; i < n; i++) /* sorted, for close_all_but */
		for (int j = i; j > 0 && keep[j] < keep[j - 1]; j--) {
			int x = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = x;
		}
	close_all_but(keep, n);
	pfs_log_other_process(a->logfd);
	h.sfd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	char path[40] = "/proc/", *e = pfs_put_dec(path + 6, (uint64_t)h.program);
	memcpy(e, "/schedstat", sizeof("/schedstat"));
	h.psfd = open(path, O_RDONLY | O_CLOEXEC);
	h.prog = (int)syscall(SYS_pidfd_open, h.program, 0);
	prctl(PR_SET_PTRACER, a->program, 0, 0, 0);
	pin(h.cpu);
	int err = h.prog < 0 ? EPIPE : handler_main(&h);
	pfs_fbatch_flush(h.hb, h.t);
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
 * set to the copy.  The stack-protector canary comes with the copy.  What
 * it relies on is checked first, on the creating thread: glibc's tcbhead_t
 * starts with a pointer to itself and has its `self` pointer two words in.
 * NULL when that does not hold (another C library, another layout).
 */
static void *handler_tls(char *area)
{
#if defined(__x86_64__)
	char *old, *tp = area + HANDLER_TLS - 2 * TCB_COPY;
	__asm__("mov %%fs:0, %0" : "=r"(old));
	if (((void **)old)[0] != old || ((void **)old)[2] != old)
		return NULL;
	memcpy(tp, old, TCB_COPY);
	((void **)tp)[0] = tp; /* tcb */
	((void **)tp)[2] = tp; /* self */
	return tp;
#else
	(void)area;
	return NULL;
#endif
}

/* Starts handler i on `cpu` for descriptor `ufd`; 0 or -errno. */
static int handler_start_one(unsigned i, int cpu, int ufd, const char **why)
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
		pfs_self_note((uint64_t)(uintptr_t)h->mem, HANDLER_STACK + MIDDLE_STACK + HANDLER_TLS);
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
		*why = "the fault handler needs glibc's thread control block on x86-64, which is not what runs here";
		return -ENOSYS;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pfd)) {
		*why = "no socket for the fault handler";
		return -errno;
	}
	h->chan = (struct pfs_fd)PFS_FD_INIT(FD_MIN, NULL, 0);
	h->pidfd = (struct pfs_fd)PFS_FD_INIT(FD_MIN, NULL, 0);
	struct pfs_fd rd = PFS_FD_INIT(FD_MIN, NULL, 0);
	pfs_fd_keep(&h->chan, pfd[1]);
	h->args.rd = pfs_fd_keep(&rd, pfd[0]);
	h->args.ufd = ufd;
	h->args.logfd = pfs_fd_ok(&pfs_log_proc.fd) ? pfs_log_proc.fd.fd : -1;
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
	pfs_fd_drop(&rd); /* the handler's now */
	if (err || h->args.pid <= 0) {
		pfs_fd_drop(&h->chan);
		*why = "the fault handler could not start";
		return -(err ? err : EAGAIN);
	}
	h->args.t->tid = (uint32_t)h->args.pid;
	if (pfs_fd_keep(&h->pidfd, (int)syscall(SYS_pidfd_open, h->args.pid, 0)) < 0) {
		*why = "no pidfd for the fault handler (Linux 5.6 or newer is needed)";
		return -ENOSYS;
	}
	return 0;
}

int pfs_uffd_handlers_start(int ufd, const char **why)
{
	page_size = pfs_proc.page_size ? pfs_proc.page_size : 4096;
	read_maps_zero_page = pfs_probe_read_maps_zero_page() != 0;
	if (!zero_page) {
		zero_page = pfs_sys_mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (zero_page == MAP_FAILED) {
			zero_page = NULL;
			*why = "no memory for the zero page";
			return -ENOMEM;
		}
	}
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
	handler_uffd = ufd;
	nh = 0;
	for (int i = 0; i < ncpu; i++) {
		int err = handler_start_one((unsigned)i, cpus[i], ufd, why);
		if (err) {
			if (!nh)
				return err;
			break; /* fewer handlers: still correct */
		}
		nh++;
	}
	gone = NULL;
	for (unsigned i = 0; i < nh; i++)
		tell(i, 'S'); /* they all run: each watches the others */
	int probe = pfs_uffd_borrow();
	if (probe < 0) {
		*why = "the shim cannot borrow its fault handler's descriptor (pidfd_getfd)";
		return -EPERM;
	}
	close(probe);
	return 0;
}

void pfs_uffd_handlers_forget(void)
{
	for (unsigned i = 0; i < nh; i++) {
		pfs_fd_drop(&hs[i].chan);
		pfs_fd_drop(&hs[i].pidfd);
	}
	nh = 0;
	flush_req = 0; /* a forked child's: the parent's handlers write their own batches */
	gone = NULL;
	pfs_fbatch_reset_counts();
}

void pfs_uffd_counts(uint64_t *first, uint64_t *cow)
{
	pfs_fbatch_counts(first, cow);
}
