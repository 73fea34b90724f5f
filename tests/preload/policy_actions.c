/*
 * One allocation site per policy action, each reporting what the kernel
 * says about its memory right after the allocation returned, before the
 * program touches it: pages present (/proc/self/pagemap) and the VMA's flags
 * (/proc/self/smaps: hg MADV_HUGEPAGE, nh MADV_NOHUGEPAGE, sr sequential,
 * rr random, lo locked).  Natively nothing is present and no flag is set;
 * under a policy the lines say what the policy did.  argv[1]: a file to map.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096ul

static long present(const void *p, size_t len)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	long n = 0;
	for (size_t i = 0; fd >= 0 && i < len / PAGE; i++) {
		unsigned long long e = 0;
		if (pread(fd, &e, sizeof(e), (off_t)(((unsigned long)p / PAGE + i) * 8)) == sizeof(e) && (e >> 63))
			n++;
	}
	if (fd >= 0)
		close(fd);
	return n;
}

/* The flags of interest of the VMA holding p, its Locked: kB, THPeligible and AnonHugePages: kB. */
static void vma(const void *p, char *flags, size_t len, long *locked_kb, long *thp, long *huge_kb)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	int in = 0;
	flags[0] = 0;
	*locked_kb = *thp = *huge_kb = 0;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = (unsigned long)p >= lo && (unsigned long)p < hi;
			continue;
		}
		if (!in)
			continue;
		sscanf(line, "Locked: %ld kB", locked_kb);
		sscanf(line, "THPeligible: %ld", thp);
		sscanf(line, "AnonHugePages: %ld kB", huge_kb);
		if (!strncmp(line, "VmFlags:", 8)) {
			static const char *const want[] = {"hg", "nh", "sr", "rr", "lo"};
			for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
				if (strstr(line, want[i])) {
					strncat(flags, flags[0] ? "," : "", len - strlen(flags) - 1);
					strncat(flags, want[i], len - strlen(flags) - 1);
				}
		}
	}
	if (f)
		fclose(f);
	if (!flags[0])
		strcpy(flags, "-");
}

/*
 * Each site calls mmap itself: the shim's site cache keys on the caller of
 * mmap and its stack pointer, so one helper called from several sites at the
 * same depth would be one site to it.
 */
#define ANON(len) mmap(NULL, (len), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)

static void report(const char *name, const void *p, size_t len)
{
	char flags[64];
	long locked, thp, huge;
	long n = present(p, len);
	vma(p, flags, sizeof(flags), &locked, &thp, &huge);
	printf("%s present %ld/%lu flags %s locked %ld thp %ld huge %s\n", name, n, len / PAGE, flags, locked, thp,
	       huge ? "yes" : "no");
}

char *populate_site(void) { return ANON(1 << 20); }
char *populate_read_site(void) { return ANON(1 << 20); }
char *hugepage_site(void) { return ANON(4 << 20); }
char *dense_site(void) { return ANON(64 << 20); }
char *nohugepage_site(void) { return ANON(4 << 20); }
char *sequential_site(void) { return ANON(1 << 20); }
char *random_site(void) { return ANON(1 << 20); }
char *mlock_site(void) { return ANON(16 << 20); }
char *malloc_site(void) { return malloc(3 << 20); }
char *size_site(size_t len) { return ANON(len); }

char *file_site(int fd, size_t len)
{
	return mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	report("populate", populate_site(), 1 << 20);
	report("populate_read", populate_read_site(), 1 << 20);
	report("hugepage", hugepage_site(), 4 << 20);
	report("nohugepage", nohugepage_site(), 4 << 20);
	/* 2 MiB aligned inside, so that huge pages can back it */
	char *d = dense_site();
	char *d2 = (char *)(((unsigned long)d + (2 << 20) - 1) & ~((2ul << 20) - 1));
	report("dense", d2, 32 << 20);
	report("sequential", sequential_site(), 1 << 20);
	report("random", random_site(), 1 << 20);
	report("mlock", mlock_site(), 16 << 20);
	/* The block's whole pages: the chunk header's page is malloc's, present either way. */
	char *m = malloc_site();
	char *first = (char *)(((unsigned long)m + PAGE - 1) & ~(PAGE - 1));
	report("malloc", first, ((unsigned long)m + (3 << 20) - (unsigned long)first) & ~(PAGE - 1));
	report("size24M", size_site(24 << 20), 24 << 20);
	report("size20M", size_site(20 << 20), 20 << 20);
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0)
		return 3;
	size_t flen = (size_t)lseek(fd, 0, SEEK_END);
	report("file", file_site(fd, flen), flen);
	close(fd);
	return 0;
}
