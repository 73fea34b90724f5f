/*
 * Memory that is no allocation, touched a known number of pages each: the
 * .bss of the program, a mapping made with the raw system call (no hook
 * sees it), a thread's stack and the main stack.  The report accounts each
 * by its kind.  The program prints the kernel's own count of the faults of
 * each phase (getrusage), for the test to compare.
 */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096
#define BSS_PAGES 300
#define RAW_PAGES 200
#define THREAD_PAGES 100
#define STACK_PAGES 120

static char bss[BSS_PAGES * PAGE] __attribute__((aligned(4096)));

__attribute__((noinline)) static void touch(volatile char *p, int pages)
{
	for (int i = 0; i < pages; i++)
		p[(size_t)i * PAGE] = 1;
}

__attribute__((noinline)) static void deep(void)
{
	char frame[STACK_PAGES * PAGE];
	touch(frame, STACK_PAGES);
	__asm__ volatile("" ::"r"(frame) : "memory");
}

/*
 * The calling thread's own faults: the process's would take in the shim's
 * scanner thread too, whose pass after the thread's start can fall inside a
 * phase on a loaded machine (the main stack's 120 pages read 134 once).
 */
static long faults(int who)
{
	struct rusage u;
	getrusage(who, &u);
	return u.ru_minflt;
}

static long thread_faults;

static void *thread_main(void *arg)
{
	(void)arg;
	long before = faults(RUSAGE_THREAD);
	char frame[THREAD_PAGES * PAGE];
	touch(frame, THREAD_PAGES);
	__asm__ volatile("" ::"r"(frame) : "memory");
	thread_faults = faults(RUSAGE_THREAD) - before;
	return NULL;
}

int main(void)
{
	long f0 = faults(RUSAGE_THREAD);
	touch(bss, BSS_PAGES);
	long f1 = faults(RUSAGE_THREAD);
	char *raw = (char *)syscall(SYS_mmap, NULL, (size_t)RAW_PAGES * PAGE, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		return 1;
	syscall(SYS_madvise, raw, (size_t)RAW_PAGES * PAGE, MADV_NOHUGEPAGE);
	long f2 = faults(RUSAGE_THREAD);
	touch(raw, RAW_PAGES);
	long f3 = faults(RUSAGE_THREAD);
	pthread_t th;
	if (pthread_create(&th, NULL, thread_main, NULL) || pthread_join(th, NULL))
		return 1;
	long f4 = faults(RUSAGE_THREAD);
	deep();
	long f5 = faults(RUSAGE_THREAD);
	/* The kernel's counts vary a little with the machine: printed on stderr, the test reads them. */
	fprintf(stderr, "faults bss %ld raw %ld thread %ld stack %ld\n", f1 - f0, f3 - f2, thread_faults, f5 - f4);
	printf("touched %d bss, %d raw, %d thread stack, %d stack pages\n", BSS_PAGES, RAW_PAGES, THREAD_PAGES,
	       STACK_PAGES);
	return 0;
}
