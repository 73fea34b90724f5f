/*
 * A program that serves its own page faults with userfaultfd (issue 19):
 * registers 16 pages of a mapping for missing pages, fills each from a
 * thread of its own with a pattern (UFFDIO_COPY) as the main thread reads
 * it, and checks what it read.  It also touches 20 pages of another
 * mapping, as programs do.  In exact mode the shim had registered the same
 * memory: the program's UFFDIO_REGISTER failed with EBUSY.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096
#define SERVED 16

static int uffd;
static char *area;

static void *server(void *arg)
{
	(void)arg;
	static char page[PAGE];
	for (int served = 0; served < SERVED;) {
		struct pollfd p = {.fd = uffd, .events = POLLIN};
		if (poll(&p, 1, 10000) != 1)
			return NULL;
		struct uffd_msg m;
		if (read(uffd, &m, sizeof(m)) != sizeof(m) || m.event != UFFD_EVENT_PAGEFAULT)
			continue;
		unsigned long addr = m.arg.pagefault.address & ~(unsigned long)(PAGE - 1);
		memset(page, (int)('a' + (addr - (unsigned long)area) / PAGE), PAGE);
		struct uffdio_copy c = {.dst = addr, .src = (unsigned long)page, .len = PAGE};
		if (ioctl(uffd, UFFDIO_COPY, &c) == 0)
			served++;
	}
	return NULL;
}

char *served_site(void)
{
	return mmap(NULL, SERVED * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

char *other_site(void)
{
	char *m = mmap(NULL, 20 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m != MAP_FAILED)
		for (int i = 0; i < 20; i++)
			m[i * PAGE] = 1;
	return m;
}

int main(void)
{
	uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (uffd < 0) {
		printf("no userfaultfd here\n");
		return 0;
	}
	struct uffdio_api api = {.api = UFFD_API};
	if (ioctl(uffd, UFFDIO_API, &api)) {
		perror("UFFDIO_API");
		return 1;
	}
	other_site();
	area = served_site();
	struct uffdio_register reg = {.range = {.start = (unsigned long)area, .len = SERVED * PAGE},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		printf("UFFDIO_REGISTER: %s\n", strerror(errno));
		return 1;
	}
	pthread_t th;
	pthread_create(&th, NULL, server, NULL);
	int ok = 1;
	for (int i = 0; i < SERVED; i++)
		ok &= area[i * PAGE + 7] == 'a' + i;
	pthread_join(th, NULL);
	printf("served %d faults, contents %s\n", SERVED, ok ? "ok" : "WRONG");
	return ok ? 0 : 1;
}
