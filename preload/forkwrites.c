/*
 * What fork itself writes in the child (forkwrites.h).  glibc's fork,
 * between the fork system call and the first child handler: the kernel
 * stores the child's thread id at the forking thread's thread-id word
 * (CLONE_CHILD_SETTID, at its descriptor), and glibc marks each other
 * thread's stack free by storing 0 at its descriptor's thread-id word
 * (reclaim_stacks).  Those pages were present at the fork, so each store
 * is a copy the kernel counts in the child; Redis's saving child: 8 of the
 * kernel's 71 copies, 7 threads' descriptors and its own.  The shim's own
 * set-up of the child then stores to its thread-local state and to errno
 * (static TLS: the program's memory, the same pages) before its tracker
 * arms.
 *
 * Nothing of glibc's layout is assumed: where a thread-id word lies is
 * measured at run time.  The kernel tells the calling thread's
 * (PR_GET_TID_ADDRESS); its distance from pthread_self() is the word's
 * place in every descriptor; the distance from a stack's top to the
 * descriptor of the thread that runs on it is measured in a thread the shim
 * saw start.  Before the fork, the word below each thread stack's top that
 * holds the id of a live thread of the process (another thread's id at
 * that very place is taken for its descriptor's) is noted with that id; in
 * the child, a noted word that reads 0 was stored to there, and the
 * forking thread's word that holds the child's own id was too: each proves
 * its page written in the child after the fork.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "forkwrites.h"
#include "proc.h"
#include "util.h"

#define MAX_OTHERS 1024u	/* threads whose descriptors are followed across a fork */
#define MAX_DISTANCE (1u << 16) /* a descriptor lies this close to its stack's top, its id to its start */

static uint64_t below_top; /* a thread's descriptor (pthread_self) lies this far below its stack's top */
static struct {
	uint64_t addr; /* its thread-id word */
	uint32_t tid;  /* what it held before the fork */
} others[MAX_OTHERS];
static unsigned nothers;
static uint32_t forking_tid; /* the forking thread's id in the parent */
static uint64_t forking_self, forking_word; /* its descriptor and thread-id word (the child's thread's too) */

/* A word of this process's memory, read without a signal where it cannot be read: 0 or -errno. */
static int read_u32(uint64_t addr, uint32_t *v)
{
	struct iovec local = {v, sizeof(*v)}, remote = {(void *)(uintptr_t)addr, sizeof(*v)};
	long n = syscall(SYS_process_vm_readv, pfs_sys_getpid(), &local, 1, &remote, 1, 0);
	return n == (long)sizeof(*v) ? 0 : n < 0 ? -errno : -EFAULT;
}

/* The calling thread's thread-id word (the kernel's clear_child_tid), or 0 when the kernel does not say. */
static uint64_t own_tid_word(void)
{
	int *p = NULL;
	if (prctl(PR_GET_TID_ADDRESS, &p, 0, 0, 0) != 0)
		return 0;
	return (uint64_t)(uintptr_t)p;
}

void pfs_forkwrites_thread_started(uint64_t stack_top)
{
	uint64_t self = (uint64_t)(uintptr_t)pthread_self();
	if (stack_top > self && stack_top - self < MAX_DISTANCE && !__atomic_load_n(&below_top, __ATOMIC_RELAXED))
		__atomic_store_n(&below_top, stack_top - self, __ATOMIC_RELAXED);
}

void pfs_forkwrites_prepare(const uint64_t *tops, unsigned n)
{
	nothers = 0;
	forking_tid = (uint32_t)pfs_sys_gettid();
	int saved = errno;
	uint64_t self = (uint64_t)(uintptr_t)pthread_self(), word = own_tid_word();
	uint64_t below = __atomic_load_n(&below_top, __ATOMIC_RELAXED);
	forking_self = self;
	forking_word = word;
	if (word && word >= self && word - self < below) { /* else a thread id's place is not known */
		uint64_t at = below - (word - self); /* a thread's id word lies this far below its stack's top */
		pid_t pid = pfs_sys_getpid();
		for (unsigned i = 0; i < n && nothers < MAX_OTHERS; i++) {
			uint32_t v;
			if (tops[i] < at || read_u32(tops[i] - at, &v) || !v || v == forking_tid ||
			    syscall(SYS_tgkill, pid, (pid_t)v, 0) != 0)
				continue;
			others[nothers].addr = tops[i] - at;
			others[nothers].tid = v;
			nothers++;
		}
	}
	errno = saved;
}

/* pages[0, *n) holds distinct page starts; addr's is added. */
static void add_page(uint64_t *pages, unsigned *n, unsigned max, uint64_t addr)
{
	uint64_t ps = pfs_proc.page_size ? pfs_proc.page_size : 4096, page = addr & ~(ps - 1);
	for (unsigned i = 0; i < *n; i++)
		if (pages[i] == page)
			return;
	if (*n < max)
		pages[(*n)++] = page;
}

unsigned pfs_forkwrites_child(uint64_t *pages, unsigned max)
{
	unsigned n = 0;
	/* The shim's set-up stored to these before its tracker arms; stored again here, so surely. */
	volatile int *busy = &pfs_tls_busy, *err = &errno;
	int saved = *err;
	*busy = *busy;
	*err = saved;
	add_page(pages, &n, max, (uint64_t)(uintptr_t)busy);
	add_page(pages, &n, max, (uint64_t)(uintptr_t)err);
	uint32_t v, me = (uint32_t)pfs_sys_gettid();
	/*
	 * The forking thread's own word, noted before the fork, lies in its live
	 * descriptor: read in place (process_vm_readv and prctl were two system
	 * calls of every forked child's set-up).  A thread other than the one
	 * noted (its fork ran no handlers: _Fork, clone) asks the kernel.
	 */
	uint64_t word = forking_word;
	if (forking_self == (uint64_t)(uintptr_t)pthread_self() && word)
		v = *(volatile uint32_t *)(uintptr_t)word;
	else if (!(word = own_tid_word()) || read_u32(word, &v))
		v = 0;
	if (word && v == me && v != forking_tid)
		add_page(pages, &n, max, word); /* the kernel stored the child's id there */
	for (unsigned i = 0; i < nothers; i++)
		if (!read_u32(others[i].addr, &v) && v == 0)
			add_page(pages, &n, max, others[i].addr); /* libc marked that thread's stack free */
	nothers = 0;
	*err = saved;
	return n;
}

unsigned pfs_forkwrites_bound(void)
{
	return 3 + nothers;
}

void pfs_forkwrites_forget(void)
{
	nothers = 0;
}
