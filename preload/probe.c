/*
 * Run-time probes of userfaultfd and PAGEMAP_SCAN (see probe.h).
 *
 * Headers say what a kernel could have; only trying says what this kernel,
 * its sysctls, seccomp policy and our privileges allow.  Every probe works on
 * a few pages of its own, mapped with raw system calls: inside the shim,
 * mmap() binds to the shim's own interposed mmap.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kcompat.h"
#include "probe.h"
#include "util.h"

#define PROBE_PAGES 4

/* Errors that mean "the probe could not run", as opposed to "not available here". */
static int probe_resource_error(int e)
{
	return e == ENOMEM || e == EMFILE || e == ENFILE || e == EAGAIN || e == EINTR;
}

static int probe_fail(int e)
{
	return probe_resource_error(e) ? -e : 0;
}

static char *probe_map(size_t len)
{
	void *p = pfs_sys_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	/* Four pages never become a huge page, but say so: the scans count 4 KiB pages. */
	(void)pfs_sys_madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

static void probe_touch(char *p)
{
	*(volatile char *)p = 1;
}

static int probe_open_pagemap(void)
{
	return open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
}

/* One PAGEMAP_SCAN call; returns the number of regions filled or -errno. */
static int probe_scan(int pm, char *start, size_t len, uint64_t flags, uint64_t categories,
		      struct page_region *vec, size_t vec_len, uint64_t *walk_end)
{
	struct pm_scan_arg a;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.flags = flags;
	a.start = (uint64_t)(uintptr_t)start;
	a.end = (uint64_t)(uintptr_t)(start + len);
	a.vec = (uint64_t)(uintptr_t)vec;
	a.vec_len = vec_len;
	a.category_mask = categories;
	a.return_mask = categories;
	int n = pfs_sys_ioctl(pm, PAGEMAP_SCAN, &a);
	if (n < 0)
		return -errno;
	if (walk_end)
		*walk_end = a.walk_end;
	return n;
}

static int region_is(const struct page_region *r, const char *base, size_t first, size_t npages,
		     size_t psz, uint64_t categories)
{
	return r->start == (uint64_t)(uintptr_t)(base + first * psz) &&
	       r->end == (uint64_t)(uintptr_t)(base + (first + npages) * psz) && r->categories == categories;
}

int pfs_probe_pagemap_scan(void)
{
	return pfs_probe_pagemap_scan_fd(-1);
}

int pfs_probe_pagemap_scan_fd(int kept)
{
	int saved = errno, ret;
	size_t psz = (size_t)getpagesize(), len = PROBE_PAGES * psz;
	char *p = probe_map(len);
	if (!p) {
		ret = -errno;
		goto out;
	}
	pfs_prefault(p + psz, psz, MADV_POPULATE_WRITE); /* at every start: no page fault for it */
	probe_touch(p + psz);

	int pm = kept >= 0 ? kept : probe_open_pagemap();
	if (pm < 0) {
		ret = probe_fail(errno);
		goto out_unmap;
	}
	struct page_region r[PROBE_PAGES];
	uint64_t walk_end = 0;
	int n = probe_scan(pm, p, len, 0, PAGE_IS_PRESENT, r, PROBE_PAGES, &walk_end);
	if (pm != kept)
		close(pm);
	if (n < 0) {
		/* ENOTTY: pagemap has no ioctl before 6.7; EINVAL: a struct or mask it does not know. */
		ret = probe_fail(-n);
		goto out_unmap;
	}
	/* Anything but "page 1 present, the walk complete" is a kernel we do not understand. */
	ret = n == 1 && region_is(&r[0], p, 1, 1, psz, PAGE_IS_PRESENT) &&
	      walk_end == (uint64_t)(uintptr_t)(p + len);
out_unmap:
	pfs_sys_munmap(p, len);
out:
	errno = saved;
	return ret;
}

/*
 * Reads two untouched pages and asks what they became: the shared zero page
 * (PAGE_IS_PFNZERO, or the same page frame twice in the pagemap entries
 * where the ioctl is missing and frame numbers are visible), or a fresh page
 * each.  Machines of our kind differ (KERNEL-FACTS.md).
 */
int pfs_probe_read_maps_zero_page(void)
{
	int saved = errno, ret = 1;
	size_t psz = (size_t)getpagesize(), len = PROBE_PAGES * psz;
	char *p = probe_map(len);
	if (!p) {
		ret = -errno;
		goto out;
	}
	(void)*(volatile char *)p;
	(void)*(volatile char *)(p + psz);
	int pm = probe_open_pagemap();
	if (pm < 0)
		goto out_unmap; /* cannot tell: the kernel's traditional answer */
	struct page_region r[PROBE_PAGES];
	int n = probe_scan(pm, p, 2 * psz, 0, PAGE_IS_PFNZERO, r, PROBE_PAGES, NULL);
	if (n >= 0) {
		ret = n > 0;
	} else {
		uint64_t e[2];
		if (pread(pm, e, sizeof(e), (off_t)((uintptr_t)p / psz * sizeof(uint64_t))) == (ssize_t)sizeof(e)) {
			uint64_t f0 = e[0] & ((1ull << 55) - 1), f1 = e[1] & ((1ull << 55) - 1);
			if (f0 && f1) /* frame numbers are shown (CAP_SYS_ADMIN) */
				ret = f0 == f1;
		}
	}
	close(pm);
out_unmap:
	pfs_sys_munmap(p, len);
out:
	errno = saved;
	return ret;
}

/* ---- userfaultfd ------------------------------------------------------------ */

#define PROBE_UFFD_FLAGS (O_CLOEXEC | O_NONBLOCK)

/* A new, not yet handshaken descriptor of one kind, or -errno. */
static int uffd_open_kind(int kind)
{
	int fd, dev;
	switch (kind) {
	case PFS_UFFD_SYSCALL:
		fd = (int)syscall(SYS_userfaultfd, PROBE_UFFD_FLAGS);
		return fd < 0 ? -errno : fd;
	case PFS_UFFD_DEV:
		/* 6.1+: access is the device node's permission (root-only 0600 on Debian). */
		dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev < 0)
			return -errno;
		fd = pfs_sys_ioctl(dev, USERFAULTFD_IOC_NEW, (const void *)(uintptr_t)(PROBE_UFFD_FLAGS));
		fd = fd < 0 ? -errno : fd;
		close(dev);
		return fd;
	case PFS_UFFD_USER_ONLY:
		/* 5.11+: allowed whatever vm.unprivileged_userfaultfd says. */
		fd = (int)syscall(SYS_userfaultfd, PROBE_UFFD_FLAGS | UFFD_USER_MODE_ONLY);
		return fd < 0 ? -errno : fd;
	}
	return -EINVAL;
}

static int uffd_api(int fd, uint64_t want, uint64_t *features, uint64_t *ioctls)
{
	struct uffdio_api api;
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	api.features = want;
	if (pfs_sys_ioctl(fd, UFFDIO_API, &api) != 0)
		return -errno;
	if (features)
		*features = api.features;
	if (ioctls)
		*ioctls = api.ioctls;
	return 0;
}

/*
 * Learns what a descriptor of this kind offers and is given.  The kernel
 * takes one UFFDIO_API per descriptor (a second fails with EINVAL) but a
 * refused one leaves the descriptor untouched, so the "ask for everything"
 * handshake can be retried on the same descriptor without EVENT_FORK.
 */
static int uffd_learn(int kind, struct pfs_uffd_probe *out)
{
	int fd = uffd_open_kind(kind);
	if (fd < 0)
		return fd;
	/* With features = 0 the kernel answers with every feature it has. */
	int r = uffd_api(fd, 0, &out->available, NULL);
	close(fd);
	if (r < 0)
		return r;

	fd = uffd_open_kind(kind);
	if (fd < 0)
		return fd;
	uint64_t want = out->available;
	r = uffd_api(fd, want, NULL, &out->ioctls);
	if (r == -EPERM && (want & UFFD_FEATURE_EVENT_FORK)) {
		/* fs/userfaultfd.c: EVENT_FORK needs CAP_SYS_PTRACE, whatever the descriptor kind. */
		want &= ~(uint64_t)UFFD_FEATURE_EVENT_FORK;
		r = uffd_api(fd, want, NULL, &out->ioctls);
	}
	close(fd);
	if (r < 0)
		return r;
	out->granted = want;
	return 0;
}

int pfs_probe_uffd_detail(struct pfs_uffd_probe *out)
{
	static const int kinds[] = {PFS_UFFD_SYSCALL, PFS_UFFD_DEV, PFS_UFFD_USER_ONLY};
	int saved = errno, ret = -ENOSYS;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < PFS_ARRAY_SIZE(kinds); i++) {
		int *err = kinds[i] == PFS_UFFD_SYSCALL ? &out->err_syscall
			   : kinds[i] == PFS_UFFD_DEV	 ? &out->err_dev
							 : &out->err_user_only;
		int r = uffd_learn(kinds[i], out);
		if (r == 0)
			r = uffd_open_kind(kinds[i]);
		if (r >= 0) {
			out->kind = kinds[i];
			ret = r;
			break;
		}
		*err = -r;
		out->available = out->granted = out->ioctls = 0;
		/*
		 * The most telling error: EPERM/EACCES over the ENOENT of a missing
		 * /dev node, and over the EINVAL of a kernel older than
		 * UFFD_USER_MODE_ONLY (5.11).
		 */
		if (ret == -ENOSYS || (r != -ENOENT && r != -EINVAL))
			ret = r;
	}
	errno = saved;
	return ret;
}

int pfs_probe_uffd(int *user_mode_only_out, uint64_t *features_out)
{
	struct pfs_uffd_probe d;
	int fd = pfs_probe_uffd_detail(&d);
	if (user_mode_only_out)
		*user_mode_only_out = d.kind == PFS_UFFD_USER_ONLY;
	if (features_out)
		*features_out = d.granted;
	return fd;
}

/* ---- asynchronous write-protect --------------------------------------------- */

int pfs_probe_wp_async(void)
{
	int saved = errno, ret = 0;
	const uint64_t need = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
	size_t psz = (size_t)getpagesize(), len = PROBE_PAGES * psz;
	char *p = NULL;
	int pm = -1;
	uint64_t features = 0;

	/* Any kind will do: async write-protect never hands a fault to user space. */
	int uffd = pfs_probe_uffd(NULL, &features);
	if (uffd < 0) {
		ret = probe_fail(-uffd);
		goto out;
	}
	if ((features & need) != need)
		goto out;
	int r = uffd_api(uffd, need, NULL, NULL);
	if (r < 0) {
		ret = probe_fail(-r);
		goto out;
	}
	p = probe_map(len);
	if (!p) {
		ret = -errno;
		goto out;
	}
	/* Page 0 is populated before protection, page 2 only after: both paths of the kernel. */
	probe_touch(p);

	struct uffdio_register reg;
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uint64_t)(uintptr_t)p;
	reg.range.len = len;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (pfs_sys_ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) {
		ret = probe_fail(errno);
		goto out;
	}
	if (!(reg.ioctls & ((uint64_t)1 << _UFFDIO_WRITEPROTECT)))
		goto out;
	struct uffdio_writeprotect wp;
	memset(&wp, 0, sizeof(wp));
	wp.range = reg.range;
	wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	if (pfs_sys_ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) != 0) {
		ret = probe_fail(errno);
		goto out;
	}
	/*
	 * Cannot block: with WP_ASYNC accepted, mm/memory.c resolves the write
	 * fault itself (userfaultfd_wp_async()) instead of calling handle_userfault().
	 */
	probe_touch(p);
	probe_touch(p + 2 * psz);

	pm = probe_open_pagemap();
	if (pm < 0) {
		ret = probe_fail(errno);
		goto out;
	}
	struct page_region v[PROBE_PAGES];
	/* Report the written pages and protect them again in the same call, as fast mode does. */
	int n = probe_scan(pm, p, len, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, PAGE_IS_WRITTEN, v,
			   PROBE_PAGES, NULL);
	if (n < 0) {
		ret = probe_fail(-n);
		goto out;
	}
	if (n != 2 || !region_is(&v[0], p, 0, 1, psz, PAGE_IS_WRITTEN) ||
	    !region_is(&v[1], p, 2, 1, psz, PAGE_IS_WRITTEN))
		goto out;
	/* Re-protected: nothing written since. */
	n = probe_scan(pm, p, len, 0, PAGE_IS_WRITTEN, v, PROBE_PAGES, NULL);
	if (n < 0) {
		ret = probe_fail(-n);
		goto out;
	}
	ret = n == 0;
out:
	if (pm >= 0)
		close(pm);
	if (p)
		pfs_sys_munmap(p, len); /* also ends the registration */
	if (uffd >= 0)
		close(uffd);
	errno = saved;
	return ret;
}
