/* Helpers shared by the analyzer modules; see an_common.h. */
#include "an_common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* realloc's growth, doubling from *cap, to at most `limit` elements (need <= limit). */
static int grow(void **v, size_t *cap, size_t need, size_t elem, size_t limit)
{
	size_t ncap;
	void *p;

	ncap = *cap ? *cap : 8;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	if (ncap > limit)
		ncap = limit;
	if (elem && ncap > SIZE_MAX / elem)
		return -ENOMEM;
	p = realloc(*v, ncap * elem);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = ncap;
	return 0;
}

int pfs_an_reserve(void **v, size_t *cap, size_t need, size_t elem)
{
	return need <= *cap ? 0 : grow(v, cap, need, elem, SIZE_MAX);
}

#define BIG_ALIGN (2u << 20)

static size_t big_len(size_t cap, size_t elem)
{
	return (cap * elem + BIG_ALIGN - 1) & ~(size_t)(BIG_ALIGN - 1);
}

/* `len` bytes (a multiple of BIG_ALIGN) of fresh memory at a BIG_ALIGN boundary, or NULL. */
static void *big_map(size_t len)
{
	char *m = mmap(NULL, len + BIG_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	char *a = (char *)(((uintptr_t)m + BIG_ALIGN - 1) & ~(uintptr_t)(BIG_ALIGN - 1));
	if (a > m)
		munmap(m, (size_t)(a - m));
	munmap(a + len, BIG_ALIGN - (size_t)(a - m));
	madvise(a, len, MADV_HUGEPAGE); /* advice: a kernel without it keeps small pages */
	return a;
}

int pfs_an_reserve_big(void **v, size_t *cap, size_t need, size_t elem, size_t most)
{
	if (need <= *cap)
		return 0;
	if (!elem || need > SIZE_MAX / 2 / elem)
		return -ENOMEM;
	if (need * elem <= PFS_AN_BIG) /* malloc's, as pfs_an_reserve, never past PFS_AN_BIG bytes */
		return grow(v, cap, need, elem, PFS_AN_BIG / elem);
	size_t ncap = *cap * 2 > need ? *cap * 2 : need, least = ncap;
	if (most > ncap && most <= SIZE_MAX / 2 / elem)
		ncap = most;
	void *p = big_map(big_len(ncap, elem));
	if (!p && ncap > least) /* strict overcommit (vm.overcommit_memory=2) charges the room reserved */
		p = big_map(big_len(ncap = least, elem));
	if (!p)
		return -ENOMEM;
	if (*cap * elem > PFS_AN_BIG) {
		/* its pages move to the new place, aligned: nothing is copied */
		if (mremap(*v, big_len(*cap, elem), big_len(*cap, elem), MREMAP_MAYMOVE | MREMAP_FIXED, p) == MAP_FAILED) {
			munmap(p, big_len(ncap, elem));
			return -ENOMEM;
		}
	} else {
		memcpy(p, *v, *cap * elem);
		free(*v);
	}
	*v = p;
	*cap = ncap;
	return 0;
}

void *pfs_an_zalloc(size_t n, size_t elem)
{
	if (!elem || n > SIZE_MAX / 2 / elem)
		return NULL;
	if (n * elem <= PFS_AN_BIG)
		return calloc(n, elem);
	return big_map(big_len(n, elem)); /* fresh anonymous memory is zero */
}

void pfs_an_release(void *v, size_t cap, size_t elem)
{
	if (v && cap * elem > PFS_AN_BIG)
		munmap(v, big_len(cap, elem));
	else
		free(v);
}

void pfs_an_append(char *buf, size_t len, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, len - n, fmt, ap);
	va_end(ap);
}

int pfs_an_warn(struct pfs_an_warnings *w, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	int n;

	if (pfs_an_reserve((void **)&w->msgs, &w->cap, w->n + 1, sizeof(*w->msgs)))
		return -ENOMEM;
	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	w->msgs[w->n++] = msg;
	return 0;
}

void pfs_an_warn_free(struct pfs_an_warnings *w)
{
	for (size_t i = 0; i < w->n; i++)
		free(w->msgs[i]);
	free(w->msgs);
	memset(w, 0, sizeof(*w));
}

const char *pfs_an_basename(const char *path)
{
	const char *s;

	if (!path)
		return "";
	s = strrchr(path, '/');
	return s ? s + 1 : path;
}

void pfs_an_fmt_bytes(char *buf, size_t len, uint64_t bytes)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	unsigned u = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
		return;
	}
	v /= 1024.0;
	while (v >= 1024.0 && u + 1 < PFS_AN_ARRAY_SIZE(units)) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
}

void pfs_an_fmt_rate(char *buf, size_t len, double r)
{
	if (r >= 1e6)
		snprintf(buf, len, "%.1f M/s", r / 1e6);
	else if (r >= 1e3)
		snprintf(buf, len, "%.0f k/s", r / 1e3);
	else
		snprintf(buf, len, "%.0f /s", r);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void pfs_an_progress_init(struct pfs_an_progress *p, int fd)
{
	memset(p, 0, sizeof(*p));
	p->fd = isatty(fd) ? fd : -1;
	p->start_ns = mono_ns();
}

void pfs_an_progress_update(struct pfs_an_progress *p, const char *what, uint64_t done,
			    uint64_t total)
{
	char line[160];
	uint64_t now;
	int n;

	if (!p || p->fd < 0)
		return;
	now = mono_ns();
	if ((now - p->start_ns < 500000000ull && total < PFS_AN_PROGRESS_BIG) ||
	    now - p->last_ns < 100000000ull)
		return;
	p->last_ns = now;
	/* "\r" back to the start, "\033[K" erases what a longer line left */
	n = snprintf(line, sizeof(line), "\rpfshim: %.100s: %3u%%\033[K", what,
		     total ? (unsigned)(done * 100 / total) : 0);
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	if (write(p->fd, line, (size_t)n) == n)
		p->shown = 1;
}

void pfs_an_progress_end(struct pfs_an_progress *p)
{
	if (!p || p->fd < 0 || !p->shown)
		return;
	if (write(p->fd, "\r\033[K", 4) == 4)
		p->shown = 0;
}
