/* Per-thread state (thread.h). */
#include <errno.h>
#include <pthread.h>

#include "arena.h"
#include "thread.h"

__thread struct pfs_thread *pfs_tls_thread __attribute__((tls_model("initial-exec")));

static pfs_spin_t threads_lock PFS_FORK_WRITTEN = PFS_SPIN_INIT;
static struct pfs_thread *threads_all PFS_FORK_WRITTEN, *threads_free PFS_FORK_WRITTEN;
static pthread_key_t thread_key;
static int thread_key_ok;
static void (*exit_fn)(struct pfs_thread *t);

/* A thread's state goes back to the pool when the thread ends; its log block and counters stay valid. */
static void thread_release(void *p)
{
	struct pfs_thread *t = p;
	if (!t)
		return;
	if (exit_fn && t->stack_hi && pfs_tls_thread == t) {
		int busy = pfs_tls_busy, saved = errno;
		pfs_tls_busy = 1;
		exit_fn(t);
		pfs_tls_busy = busy;
		errno = saved;
	}
	t->stack_lo = t->stack_hi = 0;
	if (pfs_tls_thread == t)
		pfs_tls_thread = NULL;
	pfs_spin_lock(&threads_lock);
	t->in_use = 0;
	t->next_free = threads_free;
	threads_free = t;
	pfs_spin_unlock(&threads_lock);
}

struct pfs_thread *pfs_thread_get_slow(void)
{
	if (!pfs_proc.enabled)
		return NULL;
	pfs_spin_lock(&threads_lock);
	struct pfs_thread *t = threads_free;
	if (t) {
		threads_free = t->next_free;
	} else {
		t = pfs_arena_alloc(sizeof(*t));
		if (t) {
			t->cache = t->cache0;
			t->cache_shift = 64 - PFS_CACHE_BITS;
			t->next_all = threads_all;
			threads_all = t;
		}
	}
	if (t)
		t->in_use = 1;
	pfs_spin_unlock(&threads_lock);
	if (!t)
		return NULL;
	int saved = errno;
	t->tid = (uint32_t)pfs_sys_gettid();
	pfs_tls_thread = t;
	/* May allocate (keys past the first 32): the caller holds the busy flag. */
	if (thread_key_ok)
		pthread_setspecific(thread_key, t);
	/*
	 * Not the place to start a helper thread: a thread's first call may
	 * come from inside a runtime's thread start (ThreadSanitizer's calls
	 * pthread_getattr_np, which reallocs), where creating a thread crashes
	 * it.  The pthread_create hook starts it, in the creating thread.
	 */
	errno = saved;
	return t;
}

void pfs_thread_key_init(void (*at_exit)(struct pfs_thread *t))
{
	exit_fn = at_exit;
	thread_key_ok = pthread_key_create(&thread_key, thread_release) == 0;
	if (thread_key_ok && pfs_tls_thread)
		pthread_setspecific(thread_key, pfs_tls_thread);
}

struct pfs_thread *pfs_thread_all(void)
{
	return threads_all;
}

void pfs_thread_lock(void)
{
	pfs_spin_lock(&threads_lock);
}

void pfs_thread_unlock(void)
{
	pfs_spin_unlock(&threads_lock);
}

/* Other threads are gone: their states go back to the pool, their writers forget the parent's log. */
void pfs_thread_child(void)
{
	threads_lock = (pfs_spin_t)PFS_SPIN_INIT;
	struct pfs_thread *self = pfs_tls_thread;
	threads_free = NULL;
	for (struct pfs_thread *t = threads_all; t; t = t->next_all) {
		t->w.cur = t->w.end = NULL;
		if (t != self) {
			t->in_use = 0;
			t->next_free = threads_free;
			threads_free = t;
		}
	}
	if (self)
		self->tid = (uint32_t)pfs_sys_gettid();
}
