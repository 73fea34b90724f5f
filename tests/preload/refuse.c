/*
 * Runs a command where the kernel refuses something, by a seccomp filter:
 *   refuse perf_event_open CMD ARGS...  perf_event_open fails with EACCES (a
 *       container, or kernel.perf_event_paranoid): exact mode must fall back
 *       to userfaultfd there;
 *   refuse populate CMD ARGS...  madvise(MADV_POPULATE_READ / _WRITE) fails
 *       with EINVAL, as before Linux 5.14: the shim, which makes its own
 *       memory present with them, must take its page faults as before, and
 *       the program must not notice.
 * The filter is checked to hold before the exec where the check is cheap.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define POPULATE_READ 22 /* MADV_POPULATE_READ, Linux 5.14 */
#define POPULATE_WRITE 23

#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define FAIL(e) BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (e))

static struct sock_filter perf_event_open[] = {
	LOAD_NR,
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_perf_event_open, 0, 1),
	FAIL(EACCES),
	ALLOW,
};

static struct sock_filter populate[] = {
	LOAD_NR,
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_madvise, 0, 4),
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])), /* its low half */
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, POPULATE_READ, 1, 0),
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, POPULATE_WRITE, 0, 1),
	FAIL(EINVAL),
	ALLOW,
};

static int populate_refused(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p != MAP_FAILED && syscall(SYS_madvise, p, 4096, POPULATE_WRITE) == -1 && errno == EINVAL &&
	       syscall(SYS_madvise, p, 4096, MADV_DONTNEED) == 0;
}

static const struct {
	const char *name;
	struct sock_filter *filter;
	unsigned short len;
	int (*holds)(void);
} what[] = {
	{"perf_event_open", perf_event_open, sizeof(perf_event_open) / sizeof(perf_event_open[0]), NULL},
	{"populate", populate, sizeof(populate) / sizeof(populate[0]), populate_refused},
};

int main(int argc, char **argv)
{
	unsigned i = 0;
	while (argc >= 3 && i < sizeof(what) / sizeof(what[0]) && strcmp(argv[1], what[i].name))
		i++;
	if (argc < 3 || i == sizeof(what) / sizeof(what[0])) {
		fprintf(stderr, "usage: refuse perf_event_open|populate CMD ARGS...\n");
		return 2;
	}
	struct sock_fprog prog = {.len = what[i].len, .filter = what[i].filter};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
		perror("refuse: seccomp");
		return 2;
	}
	if (what[i].holds && !what[i].holds()) {
		fprintf(stderr, "refuse: the %s filter does not hold\n", what[i].name);
		return 2;
	}
	execvp(argv[2], argv + 2);
	perror("refuse: exec");
	return 127;
}
