/*
 * For the advisor: 16 MiB mapped and filled in a burst, then kept for more
 * than a second (large, dense, long-lived: hugepage, and populate).  On
 * stderr: what the kernel counted as this thread's wait for a CPU during
 * the sleep (schedstat's run_delay), which the advisor's rates subtract.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define HUGE_BYTES (16u << 20)

char *huge_site(void)
{
	char *p = mmap(NULL, HUGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	for (size_t off = 0; off < HUGE_BYTES; off += 4096)
		p[off] = 3;
	return p;
}

/*
 * The thread's wait for a CPU so far (ns), -1 if unknown.  Read without
 * stdio: its malloc would be an allocator call, where this single-threaded
 * program's pages are scanned (the test wants them found only at the munmap).
 */
static long long run_delay(void)
{
	char buf[96];
	int fd = open("/proc/thread-self/schedstat", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	unsigned long long run, wait;

	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return sscanf(buf, "%llu %llu", &run, &wait) == 2 ? (long long)wait : -1;
}

int main(void)
{
	struct timespec life = {1, 200000000};
	char *p = huge_site();
	unsigned long sum = 0;

	if (!p)
		return 1;
	long long w0 = run_delay();
	nanosleep(&life, NULL);
	long long w1 = run_delay();
	if (w0 >= 0 && w1 >= 0)
		fprintf(stderr, "sleep_wait_ms %lld\n", (w1 - w0) / 1000000);
	for (size_t off = 0; off < HUGE_BYTES; off += 4096)
		sum += (unsigned char)p[off];
	printf("kept %u MiB for 1.2 s, checksum %lu\n", HUGE_BYTES >> 20, sum);
	munmap(p, HUGE_BYTES);
	return 0;
}
