/*
 * Small helpers shared by the analyzer modules: a list of warnings for the
 * report, growable arrays, path and size formatting.  Named an_common so a
 * unit test's -Ipreload never shadows it with a shim header of the same name.
 */
#ifndef PFSHIM_AN_COMMON_H
#define PFSHIM_AN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#define PFS_AN_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define pfs_an_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* Messages for the end of the report; the order they were added in. */
struct pfs_an_warnings {
	char **msgs;
	size_t n, cap;
};

int pfs_an_warn(struct pfs_an_warnings *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void pfs_an_warn_free(struct pfs_an_warnings *w);

/*
 * Make room for `need` elements of `elem` bytes in *v (capacity *cap);
 * 0 or -ENOMEM, *v untouched on failure.
 */
int pfs_an_reserve(void **v, size_t *cap, size_t need, size_t elem);

/*
 * pfs_an_reserve for the arrays a long run fills with millions of elements
 * (the block events of 5 million malloc/free pairs: 800 MB).  Up to
 * PFS_AN_BIG bytes it is pfs_an_reserve; past that the array moves to an
 * anonymous mapping of its own with room for at least `most` elements (the
 * most its log can hold: virtual room, MAP_NORESERVE, only what is written
 * is memory), 2 MiB aligned and in transparent huge pages where the kernel
 * gives them (MADV_HUGEPAGE), grown by moving its pages (mremap), never
 * copied.  Growing by realloc, a 10-million-event log spent 37% of its
 * report in page faults, 4 KiB at a time.  Freed by pfs_an_release.
 */
#define PFS_AN_BIG (32u << 20)
int pfs_an_reserve_big(void **v, size_t *cap, size_t need, size_t elem, size_t most);
/* `n` zeroed elements of `elem` bytes, in the same way: calloc's up to PFS_AN_BIG bytes, a mapping past it. */
void *pfs_an_zalloc(size_t n, size_t elem);
/* Frees an array of pfs_an_reserve_big, pfs_an_zalloc or pfs_an_reserve of `cap` elements of `elem` bytes. */
void pfs_an_release(void *v, size_t cap, size_t elem);

/* printf onto the end of the string in buf (len bytes in all), cut to fit. */
void pfs_an_append(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The part after the last '/', never NULL ("" for NULL). */
const char *pfs_an_basename(const char *path);

/*
 * A progress line for long logs, on a terminal only: "pfshim: reading
 * FILE: 45%" on stderr, redrawn in place at most ten times a second, shown
 * once the work has taken half a second (at once for a log of 64 MiB or
 * more), erased at the end.  Never in a pipe or a file (fd -1: off).
 */
#define PFS_AN_PROGRESS_BIG (64ull << 20)
struct pfs_an_progress {
	int fd;
	uint64_t start_ns, last_ns;
	int shown;		/* a line is on the screen */
};

/* On when `fd` is a terminal. */
void pfs_an_progress_init(struct pfs_an_progress *p, int fd);
/* `what` (e.g. "reading x.pfslog") is done/total of the way; p may be NULL. */
void pfs_an_progress_update(struct pfs_an_progress *p, const char *what, uint64_t done,
			    uint64_t total);
/* Erase the line; p may be NULL. */
void pfs_an_progress_end(struct pfs_an_progress *p);

/* "512 B", "1.5 KiB", "12.0 MiB", ...: at most 16 bytes with the NUL. */
void pfs_an_fmt_bytes(char *buf, size_t len, uint64_t bytes);
/* "172 k/s", "1.2 M/s", "800 /s": a rate per second, for people. */
void pfs_an_fmt_rate(char *buf, size_t len, double rate);

#endif
