/*
 * Runs a command where madvise(MADV_POPULATE_READ / _WRITE) fails with
 * EINVAL, as on a kernel before 5.14 (a seccomp filter): the shim, which
 * makes its own memory present with them, must take its page faults as
 * before there, and the program must not notice.  Checks that the filter
 * holds before it execs.  usage: no_populate CMD ARGS...
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define POPULATE_READ 22 /* MADV_POPULATE_READ, Linux 5.14 */
#define POPULATE_WRITE 23

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: no_populate CMD ARGS...\n");
		return 2;
	}
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_madvise, 0, 4),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])), /* its low half */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, POPULATE_READ, 1, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, POPULATE_WRITE, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
		perror("no_populate: seccomp");
		return 2;
	}
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || syscall(SYS_madvise, p, 4096, POPULATE_WRITE) != -1 || errno != EINVAL ||
	    syscall(SYS_madvise, p, 4096, MADV_DONTNEED) != 0) {
		fprintf(stderr, "no_populate: the filter does not hold\n");
		return 2;
	}
	execvp(argv[1], argv + 1);
	perror("no_populate: exec");
	return 127;
}
