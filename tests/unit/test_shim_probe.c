/*
 * The run-time probes against what the test measures by hand, as root and as
 * an unprivileged user (fork + setuid(65534)), and the kcompat.h layouts
 * against the kernel's uapi.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kcompat.h"
#include "probe.h"

#define NOBODY 65534

static size_t psz;

/* ---- helpers that measure by hand ------------------------------------------ */

static int kernel_at_least(int maj, int min)
{
	struct utsname u;
	int a = 0, b = 0;
	if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &a, &b) != 2)
		return 0;
	return a > maj || (a == maj && b >= min);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int read_sysctl(const char *path)
{
	FILE *f = fopen(path, "r");
	int v = -1;
	if (!f)
		return -1;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static char *map_pages(size_t n)
{
	char *p = mmap(NULL, n * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Keep THP from turning a 2 MiB-aligned stretch into one huge page. */
	madvise(p, n * psz, MADV_NOHUGEPAGE);
	return p;
}

/* PAGEMAP_SCAN over [p, p + n pages) for one category; regions or -errno. */
static long scan(char *p, size_t n, uint64_t flags, uint64_t cat, struct page_region *v, size_t vlen,
		 uint64_t *walk_end)
{
	int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm < 0)
		return -errno;
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.flags = flags,
		.start = (uintptr_t)p,
		.end = (uintptr_t)(p + n * psz),
		.vec = (uintptr_t)v,
		.vec_len = vlen,
		.category_mask = cat,
		.return_mask = cat,
	};
	long r = ioctl(pm, PAGEMAP_SCAN, &a);
	r = r < 0 ? -errno : r;
	close(pm);
	if (walk_end)
		*walk_end = a.walk_end;
	return r;
}

static uint64_t pages_in(const struct page_region *v, long n)
{
	uint64_t total = 0;
	for (long i = 0; i < n; i++)
		total += (v[i].end - v[i].start) / psz;
	return total;
}

static int hand_pagemap_scan(void)
{
	char *p = map_pages(2);
	assert_non_null(p);
	p[0] = 1;
	struct page_region v[2];
	long n = scan(p, 2, 0, PAGE_IS_PRESENT, v, 2, NULL);
	munmap(p, 2 * psz);
	if (n == -ENOTTY || n == -EINVAL || n == -EACCES || n == -ENOENT)
		return 0;
	assert_true(n >= 0);
	return n == 1 && v[0].start == (uintptr_t)p && v[0].end == (uintptr_t)p + psz;
}

static int hand_uffd_api(int fd, uint64_t want, uint64_t *features)
{
	struct uffdio_api api = {.api = UFFD_API, .features = want};
	if (ioctl(fd, UFFDIO_API, &api) != 0)
		return -errno;
	if (features)
		*features = api.features;
	return 0;
}

/* Async write-protect done by hand: 1 works, 0 refused somewhere. */
static int hand_wp_async(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return 0;
	int ok = 0;
	char *p = NULL;
	if (hand_uffd_api(fd, UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, NULL) != 0)
		goto out;
	p = map_pages(8);
	assert_non_null(p);
	struct uffdio_register reg = {.range = {(uintptr_t)p, 8 * psz}, .mode = UFFDIO_REGISTER_MODE_WP};
	if (ioctl(fd, UFFDIO_REGISTER, &reg) != 0)
		goto out;
	struct uffdio_writeprotect wp = {.range = reg.range, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
	if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp) != 0)
		goto out;
	p[3 * psz] = 1;
	p[5 * psz] = 1;
	struct page_region v[8];
	long n = scan(p, 8, 0, PAGE_IS_WRITTEN, v, 8, NULL);
	ok = n == 2 && pages_in(v, n) == 2 && v[0].start == (uintptr_t)(p + 3 * psz);
out:
	if (p)
		munmap(p, 8 * psz);
	close(fd);
	return ok;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_kcompat_layout(void **state)
{
	(void)state;
	/* Sizes and numbers from the kernel's include/uapi/linux/{fs,userfaultfd}.h. */
	assert_int_equal(sizeof(struct pm_scan_arg), 96);
	assert_int_equal(sizeof(struct page_region), 24);
	assert_int_equal(offsetof(struct pm_scan_arg, walk_end), 32);
	assert_int_equal(offsetof(struct pm_scan_arg, return_mask), 88);
	assert_int_equal((unsigned long)PAGEMAP_SCAN, 0xc0606610ul);
	assert_int_equal(PAGE_IS_PRESENT, 8);
	assert_int_equal(PAGE_IS_HUGE, 64);
	assert_int_equal(PAGE_IS_SOFT_DIRTY, 128);
	assert_int_equal(UFFD_FEATURE_WP_UNPOPULATED, 1 << 13);
	assert_int_equal(UFFD_FEATURE_WP_ASYNC, 1 << 15);
	assert_int_equal(UFFD_FEATURE_MOVE, 1 << 16);
	assert_int_equal((unsigned long)UFFDIO_WRITEPROTECT, 0xc018aa06ul);
	assert_int_equal((unsigned long)USERFAULTFD_IOC_NEW, 0xaa00ul);
	assert_int_equal(MADV_POPULATE_READ, 22);
	assert_int_equal(MADV_POPULATE_WRITE, 23);
	assert_int_equal(MADV_COLLAPSE, 25);
}

static void test_pagemap_scan_probe_agrees(void **state)
{
	(void)state;
	int before = count_fds();
	int probe = pfs_probe_pagemap_scan();
	assert_int_equal(count_fds(), before);
	assert_int_equal(probe, hand_pagemap_scan());
	if (kernel_at_least(6, 7))
		assert_int_equal(probe, 1);
}

static void test_uffd_probe_privileged(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("needs root (a full userfaultfd)\n");
		skip();
	}
	int hand = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	assert_true(hand >= 0);
	uint64_t avail = 0;
	assert_int_equal(hand_uffd_api(hand, 0, &avail), 0);
	close(hand);

	int before = count_fds();
	int umo = -1;
	uint64_t features = 0;
	int fd = pfs_probe_uffd(&umo, &features);
	assert_true(fd >= 0);
	assert_int_equal(count_fds(), before + 1);
	assert_int_equal(umo, 0);
	/* Root has CAP_SYS_PTRACE: every feature offered is granted, EVENT_FORK included. */
	assert_int_equal(features, avail);
	print_message("uffd as root: full descriptor, features 0x%llx\n", (unsigned long long)features);

	/* The descriptor comes back as asked and not yet handshaken. */
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(hand_uffd_api(fd, UFFD_FEATURE_THREAD_ID, NULL), 0);
	/* One UFFDIO_API per descriptor: the reason the probe hands back a fresh one. */
	assert_int_equal(hand_uffd_api(fd, 0, NULL), -EINVAL);
	close(fd);

	struct pfs_uffd_probe d;
	fd = pfs_probe_uffd_detail(&d);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(d.kind, PFS_UFFD_SYSCALL);
	assert_int_equal(d.available, avail);
	assert_int_equal(d.granted, avail);
	assert_int_equal(d.err_syscall, 0);
	assert_true(d.ioctls & ((uint64_t)1 << _UFFDIO_REGISTER));
}

static void test_wp_async_probe_agrees(void **state)
{
	(void)state;
	int before = count_fds();
	int probe = pfs_probe_wp_async();
	assert_int_equal(count_fds(), before);
	assert_int_equal(probe, hand_wp_async());
	if (kernel_at_least(6, 7) && geteuid() == 0)
		assert_int_equal(probe, 1);
}

/* What the unprivileged child measured, in a shared mapping. */
struct child_result {
	int done;
	uid_t uid;
	int hand_full_err;	/* userfaultfd(O_CLOEXEC|O_NONBLOCK) */
	int hand_dev_err;	/* open("/dev/userfaultfd") */
	int hand_umo_err;	/* userfaultfd(UFFD_USER_MODE_ONLY) */
	struct pfs_uffd_probe d;
	int probe_fd_ok;
	int umo_out;
	uint64_t features_out;
	int pagemap;
	int wp_async;
	int pagemap_nondumpable;
};

static int errno_of(int fd)
{
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return errno;
}

static void run_child(struct child_result *r)
{
	if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
		_exit(2);
	r->uid = getuid();
	/*
	 * Changing uid made us non-dumpable (fs.suid_dumpable = 0): /proc/self
	 * files then belong to root and open("/proc/self/pagemap") fails.
	 * Measure that once, then be an ordinary process, as one started by
	 * exec (setpriv, su) is.
	 */
	r->pagemap_nondumpable = pfs_probe_pagemap_scan();
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);

	r->hand_full_err = errno_of((int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
	r->hand_dev_err = errno_of(open("/dev/userfaultfd", O_RDWR | O_CLOEXEC));
	r->hand_umo_err = errno_of((int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));

	int fd = pfs_probe_uffd_detail(&r->d);
	r->probe_fd_ok = fd >= 0;
	if (fd >= 0)
		close(fd);
	fd = pfs_probe_uffd(&r->umo_out, &r->features_out);
	if (fd >= 0)
		close(fd);
	r->pagemap = pfs_probe_pagemap_scan();
	r->wp_async = pfs_probe_wp_async();
	r->done = 1;
	_exit(0);
}

static void test_uffd_probe_unprivileged(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("needs root (compares root with a user it becomes)\n");
		skip();
	}
	int sysctl = read_sysctl("/proc/sys/vm/unprivileged_userfaultfd");
	struct stat st;
	int dev_exists = stat("/dev/userfaultfd", &st) == 0;
	int dev_world_rw = dev_exists && (st.st_mode & (S_IROTH | S_IWOTH)) == (S_IROTH | S_IWOTH);

	struct pfs_uffd_probe root;
	int fd = pfs_probe_uffd_detail(&root);
	assert_true(fd >= 0);
	close(fd);
	int root_wp = pfs_probe_wp_async(), root_pm = pfs_probe_pagemap_scan();

	struct child_result *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(r != MAP_FAILED);
	memset(r, 0, sizeof(*r));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		run_child(r);
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(r->done, 1);
	assert_int_equal(r->uid, NOBODY);

	print_message("as uid %d (vm.unprivileged_userfaultfd=%d): full %s, /dev %s, user-mode-only %s; "
		      "probe kind %d, granted 0x%llx; pagemap %d (non-dumpable %d), wp_async %d\n",
		      NOBODY, sysctl, strerror(r->hand_full_err), strerror(r->hand_dev_err),
		      strerror(r->hand_umo_err), r->d.kind, (unsigned long long)r->d.granted, r->pagemap,
		      r->pagemap_nondumpable, r->wp_async);

	/* The probe tried what the test tried, and failed the same way. */
	if (sysctl == 0) {
		/* fs/userfaultfd.c userfaultfd_syscall_allowed(): no CAP_SYS_PTRACE, no sysctl. */
		assert_int_equal(r->hand_full_err, EPERM);
		assert_int_equal(r->d.err_syscall, EPERM);
		if (!dev_exists)
			assert_int_equal(r->d.err_dev, ENOENT);
		else if (!dev_world_rw)
			assert_int_equal(r->d.err_dev, EACCES);
	}
	if (r->hand_full_err == 0) {
		assert_int_equal(r->d.kind, PFS_UFFD_SYSCALL);
	} else if (r->hand_dev_err == 0) {
		assert_int_equal(r->d.kind, PFS_UFFD_DEV);
	} else if (r->hand_umo_err == 0) {
		assert_int_equal(r->d.kind, PFS_UFFD_USER_ONLY);
		assert_int_equal(r->d.err_user_only, 0);
	} else {
		assert_int_equal(r->d.kind, PFS_UFFD_NONE);
		assert_false(r->probe_fd_ok);
	}
	assert_int_equal(r->probe_fd_ok, r->d.kind != PFS_UFFD_NONE);
	assert_int_equal(r->umo_out, r->d.kind == PFS_UFFD_USER_ONLY);
	assert_int_equal(r->features_out, r->d.granted);
	if (r->d.kind != PFS_UFFD_NONE) {
		/* Same kernel, same offer; only CAP_SYS_PTRACE's EVENT_FORK is withheld. */
		assert_int_equal(r->d.available, root.available);
		assert_int_equal(r->d.granted, root.available & ~(uint64_t)UFFD_FEATURE_EVENT_FORK);
	}
	/* Neither needs privilege: async WP never hands a fault to user space. */
	assert_int_equal(r->pagemap, root_pm);
	if (r->d.kind != PFS_UFFD_NONE)
		assert_int_equal(r->wp_async, root_wp);
	/* A process that changed uid cannot open its own pagemap until it is dumpable again. */
	if (read_sysctl("/proc/sys/fs/suid_dumpable") == 0)
		assert_int_equal(r->pagemap_nondumpable, 0);
	munmap(r, sizeof(*r));
}

static void test_present_scan_counts_touched_pages(void **state)
{
	(void)state;
	if (pfs_probe_pagemap_scan() != 1) {
		print_message("this kernel has no PAGEMAP_SCAN\n");
		skip();
	}
	enum { N = 64 };
	char *p = map_pages(N);
	assert_non_null(p);
	/* 9 and 10 are neighbours: one region of two pages. */
	static const int touched[] = {0, 9, 10, 33, 63};
	for (size_t i = 0; i < sizeof(touched) / sizeof(touched[0]); i++)
		p[(size_t)touched[i] * psz] = 1;
	struct page_region v[N];
	uint64_t walk_end = 0;
	long n = scan(p, N, 0, PAGE_IS_PRESENT, v, N, &walk_end);
	assert_int_equal(n, 4);
	assert_int_equal(pages_in(v, n), 5);
	assert_int_equal(walk_end, (uintptr_t)(p + N * psz));
	for (long i = 0; i < n; i++)
		assert_int_equal(v[i].categories, PAGE_IS_PRESENT);
	assert_int_equal(v[1].start, (uintptr_t)(p + 9 * psz));
	assert_int_equal(v[1].end, (uintptr_t)(p + 11 * psz));
	/*
	 * A read of an untouched page makes it present, whether this kernel maps
	 * the zero page or a fresh one (machines of our kind differ): fast mode
	 * counts it as one first touch either way.  Which one it was is printed,
	 * never asserted.
	 */
	(void)*(volatile char *)(p + 20 * psz);
	n = scan(p, N, 0, PAGE_IS_PRESENT, v, N, NULL);
	assert_int_equal(pages_in(v, n), 6);
	n = scan(p, N, 0, PAGE_IS_PFNZERO, v, N, NULL);
	printf("# a read fault here maps %s\n", n == 1 ? "the zero page" : "a fresh page");
	munmap(p, N * psz);
}

int main(void)
{
	psz = (size_t)getpagesize();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kcompat_layout),
		cmocka_unit_test(test_pagemap_scan_probe_agrees),
		cmocka_unit_test(test_uffd_probe_privileged),
		cmocka_unit_test(test_wp_async_probe_agrees),
		cmocka_unit_test(test_uffd_probe_unprivileged),
		cmocka_unit_test(test_present_scan_counts_touched_pages),
	};
	return cmocka_run_group_tests_name("shim_probe", tests, NULL, NULL);
}
