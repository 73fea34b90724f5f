/*
 * A file mapping read sequentially and randomly: major faults.
 *
 * The program writes a 32 MiB data file, fsyncs it and drops it from the
 * page cache (posix_fadvise POSIX_FADV_DONTNEED), then maps it and reads
 * every page, first front to back (seq_map_site), then, after dropping it
 * again, in a shuffled order (random_map_site).  A page that is not in the
 * page cache is read from disk during the fault: a major fault.  Read front
 * to back, the kernel's read-ahead brings the next pages in ahead of the
 * reader and few faults wait for the disk; in random order most do.
 *
 * pfshim counts first touches per mapping: the pages read (8192 at each
 * site, first_touch_pages) and the faults that mapped them
 * (first_touch_faults): a read fault maps the pages of its 64 KiB window
 * that are in the page cache too (fault-around), so the sequential read
 * takes about one fault a window, 512; the random one more (a page read
 * from disk is mapped alone, its window's others later).  A policy changes
 * the read-ahead without touching the program:
 *     PFSHIM_POLICY='willneed if kind=mmap-file'       read-ahead of the whole file at mmap
 *     PFSHIM_POLICY='sequential if kind=mmap-file'     aggressive read-ahead
 *     PFSHIM_POLICY='populate_read if kind=mmap-file'  read and mapped before mmap returns
 * The major faults of each phase (getrusage) and its time go to stderr:
 * stdout is the same in every run.
 *
 * usage: filemap [FILE]   (default ./filemap.dat, removed at the end; it
 * must be on a disk file system: tmpfs has no page cache to drop)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define FILE_BYTES (32ul << 20)
#define PAGE 4096ul
#define PAGES (FILE_BYTES / PAGE)

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The kernel's count of this process's faults: major ones, and all. */
static void faults(long *major, long *all)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*major = ru.ru_majflt;
	*all = ru.ru_majflt + ru.ru_minflt;
}

/* Each page holds its own number in every word. */
static int write_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	static unsigned long buf[PAGE / sizeof(unsigned long)];
	for (unsigned long pg = 0; pg < PAGES; pg++) {
		for (size_t i = 0; i < PAGE / sizeof(buf[0]); i++)
			buf[i] = pg;
		if (write(fd, buf, PAGE) != (ssize_t)PAGE) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* Out of the page cache: clean pages (fsync first) that no mapping holds. */
static void drop_cache(int fd)
{
	fsync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

/* The mapping read front to back. */
const unsigned long *seq_map_site(int fd)
{
	void *p = mmap(NULL, FILE_BYTES, PROT_READ, MAP_PRIVATE, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* The mapping read in a shuffled order. */
const unsigned long *random_map_site(int fd)
{
	void *p = mmap(NULL, FILE_BYTES, PROT_READ, MAP_PRIVATE, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Reads one word of each page in the given order; the sum of the page numbers found. */
static unsigned long read_pages(const unsigned long *m, const unsigned *order)
{
	unsigned long sum = 0;
	for (unsigned long i = 0; i < PAGES; i++)
		sum += m[order[i] * (PAGE / sizeof(*m)) + 7];
	return sum;
}

static void phase(const char *name, const unsigned long *m, const unsigned *order)
{
	long maj0, all0, maj1, all1;
	faults(&maj0, &all0);
	double t0 = now_ms();
	unsigned long sum = read_pages(m, order);
	double ms = now_ms() - t0;
	faults(&maj1, &all1);
	printf("%s: %lu pages read, sum of page numbers %lu (expected %lu)\n", name, PAGES, sum,
	       PAGES * (PAGES - 1) / 2);
	fprintf(stderr, "%s: %ld major faults, %ld faults in all, %.1f ms\n", name, maj1 - maj0, all1 - all0, ms);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "filemap.dat";
	int fd = write_file(path);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	static unsigned order[PAGES];
	for (unsigned i = 0; i < PAGES; i++)
		order[i] = i;

	drop_cache(fd);
	const unsigned long *m = seq_map_site(fd);
	if (!m)
		return 1;
	phase("seq_map_site", m, order);
	munmap((void *)m, FILE_BYTES);

	/* A fixed shuffle (Fisher-Yates with a fixed linear congruential generator). */
	unsigned long x = 12345;
	for (unsigned i = PAGES - 1; i > 0; i--) {
		x = x * 6364136223846793005ul + 1442695040888963407ul;
		unsigned j = (unsigned)((x >> 33) % (i + 1));
		unsigned tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	drop_cache(fd);
	m = random_map_site(fd);
	if (!m)
		return 1;
	phase("random_map_site", m, order);
	munmap((void *)m, FILE_BYTES);
	close(fd);
	unlink(path);
	return 0;
}
