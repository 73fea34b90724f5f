/* Hostile programs for the shim (issue 7), one per argument; each prints what a plain run prints. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

void hostile_site(int n)
{
	for (int i = 0; i < n; i++) {
		char *p = malloc(5000);
		if (p)
			p[0] = 1;
	}
}

/* Every descriptor taken: the shim cannot open anything more (a child's log, a pagemap). */
static int no_files(void)
{
	struct rlimit rl = {64, 64};
	setrlimit(RLIMIT_NOFILE, &rl);
	int n = 0;
	while (open("/dev/null", O_RDONLY) >= 0)
		n++;
	hostile_site(100);
	pid_t pid = fork();
	if (pid == 0) {
		hostile_site(10);
		_exit(5);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("opened until EMFILE; child exit %d\n", WEXITSTATUS(st));
	return 0;
}

/* Address space limited: malloc fails as it would without the shim. */
static int no_memory(void)
{
	struct rlimit rl = {512ul << 20, 512ul << 20};
	setrlimit(RLIMIT_AS, &rl);
	void *big = malloc(2ul << 30);
	printf("2 GiB malloc %s (errno %s)\n", big ? "succeeded" : "failed", big ? "-" : strerror(errno));
	hostile_site(100);
	return 0;
}

static void on_alarm(int sig)
{
	(void)sig;
	pid_t pid = fork(); /* async-signal-safe by POSIX */
	if (pid == 0)
		_exit(9);
	int st;
	waitpid(pid, &st, 0);
	write(1, "forked from a handler\n", 22);
}

static int fork_in_handler(void)
{
	signal(SIGALRM, on_alarm);
	alarm(1);
	for (int i = 0; i < 3000; i++) { /* allocating when the signal lands */
		hostile_site(10);
		usleep(500);
	}
	return 0;
}

static int fork_tree(int depth)
{
	hostile_site(3);
	if (depth == 0)
		return 0;
	pid_t kids[3];
	for (int i = 0; i < 3; i++) {
		fflush(stdout);
		kids[i] = fork();
		if (kids[i] == 0)
			_exit(fork_tree(depth - 1));
	}
	int bad = 0;
	for (int i = 0; i < 3; i++) {
		int st;
		waitpid(kids[i], &st, 0);
		bad += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
	}
	return bad != 0;
}

/* A library loaded at run time allocates (zlib's deflate state), then is unloaded. */
static int load_library(void)
{
	void *h = dlopen("libz.so.1", RTLD_NOW);
	if (!h)
		return printf("no libz\n"), 0;
	unsigned long (*bound)(unsigned long) = (unsigned long (*)(unsigned long))dlsym(h, "compressBound");
	int (*compress2)(unsigned char *, unsigned long *, const unsigned char *, unsigned long, int) =
		(int (*)(unsigned char *, unsigned long *, const unsigned char *, unsigned long, int))dlsym(h, "compress2");
	static unsigned char in[1 << 20], out[(1 << 20) + 1024];
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 7 % 251);
	unsigned long n = bound(sizeof(in));
	int r = compress2(out, &n, in, sizeof(in), 9);
	dlclose(h);
	printf("compressed to %lu bytes (%d)\n", n, r);
	hostile_site(10); /* allocations after the library is gone */
	return 0;
}

int main(int argc, char **argv)
{
	const char *c = argc > 1 ? argv[1] : "";
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(c, "nofile"))
		return no_files();
	if (!strcmp(c, "nomem"))
		return no_memory();
	if (!strcmp(c, "abort")) {
		hostile_site(50);
		printf("aborting\n");
		abort();
	}
	if (!strcmp(c, "segv")) {
		hostile_site(50);
		printf("crashing\n");
		*(volatile int *)16 = 1;
	}
	if (!strcmp(c, "forksig"))
		return fork_in_handler();
	if (!strcmp(c, "tree"))
		return fork_tree(3);
	if (!strcmp(c, "dlopen"))
		return load_library();
	return 2;
}
