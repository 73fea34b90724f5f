/*
 * A tracker's periodic work (periodic.h).  Counts stay exact whichever way
 * it runs (free, munmap, exec and exit do the work for what they end);
 * only the time resolution of a single-threaded program's events is
 * coarser.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arena.h"
#include "msg.h"
#include "periodic.h"
#include "real.h"
#include "thread.h"

static void (*work)(struct pfs_thread *t);
static unsigned interval_ms = PFS_SCAN_MS_DEFAULT;
static uint64_t last_run;
static int thread_started;
static int thread_running, stop_asked, thread_gone; /* atomic: the scanner thread's end at exit (periodic_stop) */
static int stop_registered;

void pfs_periodic_set(void (*fn)(struct pfs_thread *t), unsigned ms)
{
	work = fn;
	interval_ms = ms ? ms : PFS_SCAN_MS_DEFAULT;
}

static void *periodic_main(void *arg)
{
	(void)arg;
	pfs_tls_busy = 1; /* for life: nothing this thread does is the program's */
	for (;;) {
		/* an interval's sleep, or less when the exit asks the thread to end (periodic_stop wakes it) */
		struct timespec ts = {(time_t)(interval_ms / 1000), (long)(interval_ms % 1000) * 1000000L};
		if (!__atomic_load_n(&stop_asked, __ATOMIC_ACQUIRE))
			syscall(SYS_futex, &stop_asked, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
		if (__atomic_load_n(&stop_asked, __ATOMIC_ACQUIRE))
			break;
		if (!pfs_active())
			continue;
		struct pfs_thread *t = pfs_thread_get();
		if (t)
			work(t);
	}
	__atomic_store_n(&thread_gone, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * At exit, before the exit handlers registered earlier: the scanner thread
 * ends (the end's own pass counts what it would have).  ThreadSanitizer's
 * exit handler, registered before, sleeps a second (atexit_sleep_ms) while
 * a thread it knows is alive: every TSan program took a second longer.
 * The thread is woken from its sleep; the wait is the pass it may be in.
 */
static void periodic_stop(void)
{
	if (!__atomic_load_n(&thread_running, __ATOMIC_ACQUIRE))
		return;
	__atomic_store_n(&stop_asked, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, &stop_asked, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	for (int i = 0; i < 1000 && !__atomic_load_n(&thread_gone, __ATOMIC_ACQUIRE); i++) {
		struct timespec ts = {0, 1000000L};
		nanosleep(&ts, NULL);
	}
}

static void thread_start(void)
{
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;
	thread_started = 1; /* also on failure: one attempt, one message */
	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	/* The thread starts with every signal blocked: the program's handlers never run on it. */
	pthread_sigmask(SIG_BLOCK, &all, &old);
	/* The real one: inside the library, pthread_create would bind to the shim's own hook. */
	int err = real_pthread_create ? real_pthread_create(&th, &attr, periodic_main, NULL) : ENOSYS;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (!err) {
		__atomic_store_n(&thread_running, 1, __ATOMIC_RELEASE);
		if (!stop_registered) /* once: a forked child inherits the handler */
			stop_registered = atexit(periodic_stop) == 0;
	}
	pthread_attr_t a;
	if (!err && pthread_getattr_np(th, &a) == 0) { /* its stack is the shim's own memory */
		void *stack;
		size_t size;
		if (pthread_attr_getstack(&a, &stack, &size) == 0)
			pfs_self_note((uint64_t)(uintptr_t)stack, size);
		pthread_attr_destroy(&a);
	}
	if (err)
		pfs_warn("cannot start the scanner thread (%s); first touches are counted when the program calls "
			 "the allocator and at exit",
			 strerror(err));
}

void pfs_periodic_tick(struct pfs_thread *t)
{
	if (!work || thread_started || !t)
		return;
	if (!__libc_single_threaded) {
		thread_start();
		return;
	}
	uint64_t now = pfs_now_ns();
	if (now - last_run < (uint64_t)interval_ms * 1000000u)
		return;
	last_run = now;
	work(t);
}

void pfs_periodic_child(void)
{
	thread_started = 0;
	last_run = 0;
	thread_running = stop_asked = thread_gone = 0;
}
