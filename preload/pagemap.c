/* This process's page map (pagemap.h). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "fdkeep.h"
#include "pagemap.h"
#include "proc.h"

static struct pfs_fd pm = PFS_FD_INIT(520, "/proc/self/pagemap", O_RDONLY);
static int use_read; /* PAGEMAP_SCAN is not used: pagemap entries are read */

int pfs_pagemap_init(int read_entries)
{
	use_read = read_entries;
	int fd = pfs_fd_get(&pm);
	return fd < 0 ? (errno ? -errno : -EBADF) : 0;
}

int pfs_pagemap_space_walks(void)
{
	return !use_read;
}

int pfs_pagemap_fd(void)
{
	return pfs_fd_get(&pm);
}

/*
 * The entries, for kernels without PAGEMAP_SCAN (before 6.7), or when asked
 * (PFSHIM_PAGEMAP=read): 8 bytes per page, read through the file, turned
 * into the same category runs the ioctl reports.  Bit 63: present, bit 62:
 * swapped, bit 57: write-protected by userfaultfd (so "written" is its
 * absence, as PAGEMAP_SCAN reports it).  Slower, counts the same.
 */
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_UFFD_WP (1ull << 57)

static uint64_t entry_cats(uint64_t e)
{
	uint64_t c = 0;
	if (e & PM_PRESENT)
		c |= PAGE_IS_PRESENT;
	if (e & PM_SWAPPED)
		c |= PAGE_IS_SWAPPED;
	if (!(e & PM_UFFD_WP))
		c |= PAGE_IS_WRITTEN;
	return c;
}

static int walk_read(int fd, uint64_t start, uint64_t end, uint64_t anyof, uint64_t ret, pfs_pagemap_fn fn,
		     void *arg)
{
	uint64_t page = pfs_proc.page_size, buf[512];
	uint64_t run_from = 0, run_cats = 0, addr = start;
	int in_run = 0;
	while (addr < end) {
		uint64_t n = (end - addr) / page < 512 ? (end - addr) / page : 512;
		ssize_t got = PFS_NO_EINTR(pread(fd, buf, n * sizeof(uint64_t), (off_t)(addr / page * sizeof(uint64_t))));
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		n = (uint64_t)got / sizeof(uint64_t);
		for (uint64_t k = 0; k < n; k++, addr += page) {
			uint64_t c = entry_cats(buf[k]);
			int match = (c & anyof) != 0;
			c &= ret;
			if (in_run && (!match || c != run_cats)) {
				fn(run_from, addr, run_cats, arg);
				in_run = 0;
			}
			if (match && !in_run) {
				in_run = 1;
				run_from = addr;
				run_cats = c;
			}
		}
	}
	if (in_run)
		fn(run_from, addr, run_cats, arg);
	return 0;
}

int pfs_pagemap_walk(int fd, uint64_t start, uint64_t end, uint64_t anyof, uint64_t ret, struct page_region *vec,
		     size_t n, pfs_pagemap_fn fn, void *arg)
{
	if (fd < 0)
		fd = pfs_fd_get(&pm);
	if (fd < 0)
		return -EBADF;
	if (use_read)
		return walk_read(fd, start, end, anyof, ret, fn, arg);
	uint64_t addr = start;
	while (addr < end) {
		struct pm_scan_arg a;
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.start = addr;
		a.end = end;
		a.vec = (uint64_t)(uintptr_t)vec;
		a.vec_len = n;
		a.category_anyof_mask = anyof;
		a.return_mask = ret;
		long got = PFS_NO_EINTR(pfs_sys_ioctl(fd, PAGEMAP_SCAN, &a));
		if (got < 0)
			return -errno;
		for (long i = 0; i < got; i++)
			fn(vec[i].start, vec[i].end, vec[i].categories, arg);
		/*
		 * A call that did not fill the vector walked to the end.  Its
		 * walk_end says nothing then: the kernel fills a buffer of its
		 * own (512 ranges) and empties it into the vector again and
		 * again, and walk_end stays where the first full buffer stopped
		 * (Linux 6.18: 555 ranges up to the stack came with a walk_end
		 * at the 513th; walking on from there handed the rest over
		 * twice, out of order, and fast mode took each for memory no
		 * hook saw).
		 */
		if ((size_t)got < n)
			break;
		uint64_t next = a.walk_end > vec[got - 1].end ? a.walk_end : vec[got - 1].end;
		if (next <= addr || next >= end)
			break;
		addr = next;
	}
	return 0;
}

static void count_run(uint64_t from, uint64_t to, uint64_t cats, void *arg)
{
	(void)cats;
	*(int64_t *)arg += (int64_t)((to - from) / pfs_proc.page_size);
}

/* mincore tells page-cache residency for files, not this mapping's: second best, where pagemap cannot be read. */
static int64_t present_mincore(uint64_t start, uint64_t npages, uint64_t page)
{
	unsigned char vec[4096];
	int64_t n = 0;
	for (uint64_t i = 0; i < npages;) {
		uint64_t k = npages - i < sizeof(vec) ? npages - i : sizeof(vec);
		if (mincore((void *)(uintptr_t)(start + i * page), k * page, vec))
			return -1;
		for (uint64_t j = 0; j < k; j++)
			n += vec[j] & 1;
		i += k;
	}
	return n;
}

int64_t pfs_pagemap_present(uint64_t start, uint64_t len)
{
	struct page_region vec[64];
	int64_t n = 0;
	if (pfs_pagemap_walk(-1, start, start + len, PAGE_IS_PRESENT, PAGE_IS_PRESENT, vec, 64, count_run, &n) == 0)
		return n;
	return present_mincore(start, len / pfs_proc.page_size, pfs_proc.page_size);
}
