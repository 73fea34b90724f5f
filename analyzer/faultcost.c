/*
 * What a page fault costs here; see faultcost.h.
 *
 * The analyzer takes a few thousand faults of its own and times them with
 * its thread's CPU clock (a descheduled moment is not a fault's cost): a
 * 4 KiB first touch (anonymous memory, huge pages refused), a copy-on-write
 * fault (pages shared with a child that waits, then written), and a 2 MiB
 * huge page's first touch where the machine grants one.  The median
 * of three trials each; the fault counts come from getrusage, so a trial the
 * kernel served otherwise (no huge page granted) is seen and left out.
 */
#include "faultcost.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TRIALS 3
#define SMALL_PAGES 512		/* 2 MiB of 4 KiB first touches per trial */
#define COW_PAGES 256
#define HUGE_PAGES 2		/* 2 MiB pages per trial */
#define PAGE 4096ul
#define HUGE (2ul << 20)

/* "1.5us" -> 1500; -1 when it is no time. */
static double parse_time(const char *s, const char **end)
{
	char *e;
	double v = strtod(s, &e), mul = 1;

	if (e == s || !(v > 0) || v > 1e12)
		return -1;
	if (!strncmp(e, "ns", 2))
		e += 2;
	else if (!strncmp(e, "us", 2))
		e += 2, mul = 1e3;
	else if (!strncmp(e, "ms", 2))
		e += 2, mul = 1e6;
	*end = e;
	return v * mul;
}

int pfs_faultcost_parse(const char *s, struct pfs_fault_cost *c)
{
	struct pfs_fault_cost n = *c;

	while (s && *s) {
		static const struct {
			const char *key;
			size_t off;
		} keys[] = {
			{"first=", offsetof(struct pfs_fault_cost, first_touch_ns)},
			{"cow=", offsetof(struct pfs_fault_cost, cow_ns)},
			{"huge=", offsetof(struct pfs_fault_cost, huge_ns)},
		};
		size_t k;
		double v;

		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (!strncmp(s, keys[k].key, strlen(keys[k].key)))
				break;
		if (k == sizeof(keys) / sizeof(keys[0]))
			return -1;
		v = parse_time(s + strlen(keys[k].key), &s);
		if (v < 0 || (*s && *s != ','))
			return -1;
		*(double *)((char *)&n + keys[k].off) = v;
		if (*s)
			s++;
	}
	snprintf(n.source, sizeof(n.source), "PFSHIM_FAULT_COST");
	*c = n;
	return 0;
}

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long faults_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_minflt;
}

/*
 * Writes one byte every `step` bytes of [p, p + len) and returns the CPU
 * time per fault taken, or -1 when the kernel took fewer than `want`.
 */
static double touch(char *p, size_t len, size_t step, long want, long most)
{
	long f0 = faults_now(), n;
	uint64_t t0 = cpu_ns(), t;

	for (size_t off = 0; off < len; off += step)
		((volatile char *)p)[off] = 1;
	t = cpu_ns() - t0;
	n = faults_now() - f0;
	return n >= want && n <= most ? (double)t / (double)n : -1;
}

static double small_trial(void)
{
	char *p = mmap(NULL, SMALL_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double v;

	if (p == MAP_FAILED)
		return -1;
	madvise(p, SMALL_PAGES * PAGE, MADV_NOHUGEPAGE);	/* one fault per 4 KiB page, whatever THP says */
	v = touch(p, SMALL_PAGES * PAGE, PAGE, SMALL_PAGES / 2, SMALL_PAGES * 2);
	munmap(p, SMALL_PAGES * PAGE);
	return v;
}

static double huge_trial(void)
{
	size_t len = (HUGE_PAGES + 1) * HUGE;
	char *raw = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *p;
	double v = -1;

	if (raw == MAP_FAILED)
		return -1;
	p = (char *)(((uintptr_t)raw + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
	/*
	 * Every 4 KiB page written: one fault per 2 MiB when huge pages came,
	 * 512 when not (THP "never", none free), and then the trial is left out.
	 */
	if (!madvise(p, HUGE_PAGES * HUGE, MADV_HUGEPAGE))
		v = touch(p, HUGE_PAGES * HUGE, PAGE, 1, HUGE_PAGES * 4);
	munmap(raw, len);
	return v;
}

/*
 * Copy-on-write as a fork leaves it: anonymous pages written, shared with a
 * child that waits, then written again by the analyzer; all trials under one
 * fork (a child that only waits on a pipe and exits).
 */
static double cow_trials[TRIALS];
static int cow_next;

static void cow_measure(void)
{
	size_t len = (size_t)TRIALS * COW_PAGES * PAGE;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fds[2];
	pid_t pid;

	for (int i = 0; i < TRIALS; i++)
		cow_trials[i] = -1;
	if (p == MAP_FAILED)
		return;
	madvise(p, len, MADV_NOHUGEPAGE);
	for (size_t off = 0; off < len; off += PAGE)
		((volatile char *)p)[off] = 1;
	if (pipe2(fds, O_CLOEXEC) == 0) {
		pid = fork();
		if (pid == 0) {
			char c;

			close(fds[1]);
			while (read(fds[0], &c, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		close(fds[0]);
		for (int i = 0; pid > 0 && i < TRIALS; i++)
			cow_trials[i] = touch(p + (size_t)i * COW_PAGES * PAGE, COW_PAGES * PAGE, PAGE,
					      COW_PAGES / 2, COW_PAGES * 2);
		close(fds[1]);	/* the child reads end of file and exits */
		while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	munmap(p, len);
}

static double cow_trial(void)
{
	if (!cow_next)
		cow_measure();
	return cow_trials[cow_next++ % TRIALS];
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The median of the trials that worked; -1 when none did. */
static double median_of(double (*trial)(void))
{
	double v[TRIALS];
	int n = 0;

	for (int i = 0; i < TRIALS; i++) {
		double x = trial();

		if (x > 0)
			v[n++] = x;
	}
	if (!n)
		return -1;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

void pfs_faultcost_measure(struct pfs_fault_cost *c)
{
	double first, cow, huge;
	int saved = errno;

	pfs_faultcost_defaults(c);
	if (sysconf(_SC_PAGESIZE) != (long)PAGE) {
		errno = saved;
		return;	/* the defaults are 4 KiB figures; other machines say so through the variable */
	}
	first = median_of(small_trial);
	cow = median_of(cow_trial);
	huge = median_of(huge_trial);
	if (first > 0) {
		c->first_touch_ns = first;
		c->cow_ns = cow > 0 ? cow : first * PFS_COST_COW_NS / PFS_COST_FIRST_TOUCH_NS;
		c->huge_ns = huge > 0 ? huge : first * PFS_COST_HUGE_PER_FIRST;
		snprintf(c->source, sizeof(c->source), "measured%s", huge > 0 ? "" : " (huge pages: estimated)");
	}
	errno = saved;
}

const struct pfs_fault_cost *pfs_faultcost_get(void)
{
	static struct pfs_fault_cost cost;
	static int done;
	const char *env;

	if (done)
		return &cost;
	done = 1;
	env = getenv("PFSHIM_FAULT_COST");
	if (env && *env) {
		pfs_faultcost_defaults(&cost);
		if (!pfs_faultcost_parse(env, &cost))
			return &cost;
		fprintf(stderr, "pfshim: PFSHIM_FAULT_COST='%s' does not parse (want first=1.5us,cow=2us,huge=300us):"
			" measuring instead\n", env);
	}
	pfs_faultcost_measure(&cost);
	return &cost;
}
