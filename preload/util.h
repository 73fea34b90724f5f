/* Small helpers of the shim: raw system calls, messages, clocks, a spinlock. */
#ifndef PFS_UTIL_H
#define PFS_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define PFS_LIKELY(x) __builtin_expect(!!(x), 1)
#define PFS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PFS_HIDDEN __attribute__((visibility("hidden")))
/*
 * A variable both sides of a fork write at every fork (a lock the fork
 * handlers take): kept in .data, the page after the shim's read-only part
 * that core.c's fork_state_copied copies by one call, rather than on a page
 * of .bss of its own, a copy-on-write fault in the parent and the child.
 */
#define PFS_FORK_WRITTEN __attribute__((section(".data.pfs_fork")))
#define PFS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The shim's own mappings go straight to the kernel: calling mmap() from
 * inside the library would bind to the library's own interposed mmap.
 */
static inline void *pfs_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	return (void *)r;
}

static inline int pfs_sys_munmap(void *addr, size_t len)
{
	return (int)syscall(SYS_munmap, addr, len);
}

static inline int pfs_sys_madvise(void *addr, size_t len, int advice)
{
	return (int)syscall(SYS_madvise, addr, len, advice);
}

static inline int pfs_sys_mprotect(void *addr, size_t len, int prot)
{
	return (int)syscall(SYS_mprotect, addr, len, prot);
}

/*
 * The shim's own memory that is about to be used, made present by one call
 * instead of a page fault per page (MADV_POPULATE_READ or _WRITE, Linux
 * 5.14): in process starts on a virtual machine, a page fault cost 11 us,
 * and 50 pages populated 10 us in all.  [p, p + len) widened to whole
 * pages.  A kernel without the advice is not asked again (its pages fault
 * in as before); errno is kept.
 */
static inline void pfs_prefault(const void *p, size_t len, int advice)
{
	static int unsupported;
	uintptr_t page = (uintptr_t)getpagesize(), lo = (uintptr_t)p & ~(page - 1);
	uintptr_t hi = ((uintptr_t)p + len + page - 1) & ~(page - 1);
	int saved = errno;
	if (hi > lo && !unsupported && pfs_sys_madvise((void *)lo, hi - lo, advice) && errno == EINVAL)
		unsupported = 1;
	errno = saved;
}

/*
 * ioctl without libc's name, which the shim exports itself (hook_ioctl.c): the
 * shim's own requests (userfaultfd, PAGEMAP_SCAN) never pass through its hook,
 * and a fault handler calls nothing that could take a lock.
 */
static inline int pfs_sys_ioctl(int fd, unsigned long request, const void *arg)
{
	return (int)syscall(SYS_ioctl, fd, request, arg);
}

static inline pid_t pfs_sys_getpid(void)
{
	return (pid_t)syscall(SYS_getpid);
}

static inline pid_t pfs_sys_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* These two through syscall() too: libc's own code for them is one more fresh page at every start. */
static inline pid_t pfs_sys_getppid(void)
{
	return (pid_t)syscall(SYS_getppid);
}

/* A copy of fd at `min` or above, close-on-exec; -1 with errno. */
static inline int pfs_sys_dupfd(int fd, int min)
{
	return (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, min);
}

static inline uint64_t pfs_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t pfs_real_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * ThreadSanitizer, when the program is built with it: the shim is not
 * instrumented, so its own locks are invisible to TSan, which then takes
 * the accesses the shim makes through intercepted functions (memcpy,
 * memcmp) under one lock for races.  These weak references are bound only
 * when the program brings TSan's runtime; the locks tell it then.
 */
extern void __tsan_acquire(void *addr) __attribute__((weak));
extern void __tsan_release(void *addr) __attribute__((weak));

/* A spinlock: no allocation, usable in fork handlers, reset by assignment in a child. */
typedef struct {
	int v;
} pfs_spin_t;
#define PFS_SPIN_INIT {0}

static inline void pfs_spin_lock(pfs_spin_t *l)
{
	while (__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(&l->v, __ATOMIC_RELAXED))
			sched_yield();
	}
	if (PFS_UNLIKELY(__tsan_acquire != NULL))
		__tsan_acquire(l);
}

static inline void pfs_spin_unlock(pfs_spin_t *l)
{
	if (PFS_UNLIKELY(__tsan_release != NULL))
		__tsan_release(l);
	__atomic_store_n(&l->v, 0, __ATOMIC_RELEASE);
}

/*
 * The shim's own system calls run in the program's threads, where the
 * program's signal handlers may interrupt them (a 200 us timer, say): a
 * call that fails with EINTR is made again.
 */
#define PFS_NO_EINTR(expr)                                                                 \
	({                                                                                 \
		__typeof__(expr) r_;                                                       \
		do                                                                         \
			r_ = (expr);                                                       \
		while (r_ == -1 && errno == EINTR);                                        \
		r_;                                                                        \
	})

/* The whole pages that [addr, addr + len) touches, for a page size `ps` (a power of two). */
static inline void pfs_page_span(uint64_t addr, uint64_t len, uint64_t ps, uint64_t *start, uint64_t *end)
{
	*start = addr & ~(ps - 1);
	*end = (addr + len + ps - 1) & ~(ps - 1);
}

size_t pfs_strlcpy(char *dst, const char *src, size_t size);

/* The decimal digits at *p as a number (0 when none), *p moved past them: for the kernel's own text. */
static inline uint64_t pfs_dec(const char **p)
{
	uint64_t v = 0;
	for (; **p >= '0' && **p <= '9'; (*p)++)
		v = v * 10 + (uint64_t)(**p - '0');
	return v;
}

/* Up to `size` bytes of a kernel file (/proc, /sys, debugfs) by raw system calls: how many, or -1 when it cannot be opened. */
static inline long pfs_read_file(const char *path, char *buf, size_t size)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t got = 0;
	long n;
	while (got < size && (n = syscall(SYS_read, fd, buf + got, size - got)) > 0)
		got += (size_t)n;
	syscall(SYS_close, fd);
	return (long)got;
}

/* The decimal number a small kernel file holds (/proc/sys, debugfs): 0, or -1 when it cannot be read. */
static inline int pfs_read_decimal(const char *path, int64_t *v)
{
	char buf[32];
	long n = pfs_read_file(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	const char *p = buf + (buf[0] == '-');
	*v = (buf[0] == '-' ? -1 : 1) * (int64_t)pfs_dec(&p);
	return 0;
}

/* Writes v in decimal at p (at most 20 digits, no NUL); returns the end. */
static inline char *pfs_put_dec(char *p, uint64_t v)
{
	char tmp[20];
	unsigned n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/*
 * The main thread's time on a CPU and its time runnable but waiting for one
 * (/proc/self/schedstat, since its fork): 0, or -errno with both left as
 * they were.  For the analyzer's reading of a loaded machine.
 */
int pfs_schedstat(uint64_t *run_ns, uint64_t *wait_ns);

/*
 * Whether a sample of the wait is due at `now` (at most one every 50 ms,
 * across the threads and the handlers sharing this memory): 1 once per
 * period, to the caller that takes it.
 */
int pfs_wait_due(uint64_t now);

/* The same from a schedstat file kept open (`fd`, read from its start): a thread's own. */
int pfs_schedstat_fd(int fd, uint64_t *run_ns, uint64_t *wait_ns);

#endif
