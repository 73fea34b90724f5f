/*
 * Small malloc/free pairs over S distinct call sites (issue 21: the shim's
 * cost grew with the number of live sites).  Each site is its own call
 * instruction: one case of a switch of 10,000.
 * usage: many_sites S [PAIRS]      PAIRS pairs, round-robin over sites 0..S-1 (default 2000000)
 *        many_sites S triangle     site k allocates k + 1 blocks of 16 + k % 64 bytes, in rounds
 *                                  that each visit every site still allocating (a test of exact
 *                                  counts); prints the number of blocks
 *        many_sites S signals      one block at each site while SIGUSR1 is blocked and pending: the
 *                                  mask the program set stays as it set it, and the signal is
 *                                  delivered once when it unblocks it; prints what it saw
 *        many_sites S fork         one block at each site, then a forked child in which site k
 *                                  allocates k + 1 blocks; prints how the child ended
 */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SITES 10000
/* A distinct asm after each call keeps the compiler from merging the cases' calls into one. */
#define C(n)                                                                                                   \
	case n:                                                                                                \
		p = malloc(16 + (n) % 64);                                                                     \
		__asm__ volatile("# site %0" ::"i"(n), "r"(p));                                                \
		break;
#define C10(n) C((n) + 0) C((n) + 1) C((n) + 2) C((n) + 3) C((n) + 4) C((n) + 5) C((n) + 6) C((n) + 7) C((n) + 8) C((n) + 9)
#define C100(n)                                                                                                \
	C10((n) + 0)                                                                                           \
	C10((n) + 10) C10((n) + 20) C10((n) + 30) C10((n) + 40) C10((n) + 50) C10((n) + 60) C10((n) + 70)     \
		C10((n) + 80) C10((n) + 90)
#define C1000(n)                                                                                               \
	C100((n) + 0)                                                                                          \
	C100((n) + 100) C100((n) + 200) C100((n) + 300) C100((n) + 400) C100((n) + 500) C100((n) + 600)       \
		C100((n) + 700) C100((n) + 800) C100((n) + 900)

__attribute__((noinline)) static void *alloc_at(int site)
{
	void *p = NULL;
	switch (site) {
		C1000(0)
		C1000(1000)
		C1000(2000)
		C1000(3000)
		C1000(4000)
		C1000(5000)
		C1000(6000)
		C1000(7000)
		C1000(8000)
		C1000(9000)
	}
	return p;
}

static volatile sig_atomic_t usr1_seen;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_seen++;
}

int main(int argc, char **argv)
{
	int sites = argc > 1 ? atoi(argv[1]) : 1000;
	if (sites < 1 || sites > MAX_SITES) {
		fprintf(stderr, "many_sites: 1 to %d sites\n", MAX_SITES);
		return 2;
	}
	if (argc > 2 && strcmp(argv[2], "triangle") == 0) {
		long blocks = 0;
		for (int round = 0; round < sites; round++)
			for (int k = round; k < sites; k++) {
				free(alloc_at(k));
				blocks++;
			}
		printf("%ld blocks\n", blocks);
		return 0;
	}
	if (argc > 2 && strcmp(argv[2], "fork") == 0) {
		for (int k = 0; k < sites; k++)
			free(alloc_at(k));
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			for (int round = 0; round < sites; round++)
				for (int k = round; k < sites; k++)
					free(alloc_at(k));
			_exit(0);
		}
		int st = 0;
		if (pid > 0)
			waitpid(pid, &st, 0);
		printf("child %s\n", pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "ended" : "failed");
		return 0;
	}
	if (argc > 2 && strcmp(argv[2], "signals") == 0) {
		sigset_t usr1, old, now, pending;
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		signal(SIGUSR1, on_usr1);
		sigprocmask(SIG_BLOCK, &usr1, &old);
		raise(SIGUSR1);
		for (int k = 0; k < sites; k++)
			free(alloc_at(k));
		sigprocmask(SIG_BLOCK, NULL, &now);
		sigpending(&pending);
		printf("blocked %d, was blocked before %d, pending %d, delivered %d\n", sigismember(&now, SIGUSR1),
		       sigismember(&old, SIGUSR1), sigismember(&pending, SIGUSR1), (int)usr1_seen);
		sigprocmask(SIG_SETMASK, &old, NULL);
		printf("after unblocking: delivered %d\n", (int)usr1_seen);
		return 0;
	}
	long pairs = argc > 2 ? atol(argv[2]) : 2000000;
	for (long i = 0; i < pairs; i++)
		free(alloc_at((int)(i % sites)));
	return 0;
}
