/*
 * A program that allocates without the C library: 2000 pages of a mapping
 * made with the raw system call, touched, and no malloc anywhere.  The
 * shim says it saw no allocation, and still counts the faults by memory.
 */
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(void)
{
	char *p = (char *)syscall(SYS_mmap, NULL, 2000ul * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				  -1, 0);
	if (p == MAP_FAILED)
		return 1;
	syscall(SYS_madvise, p, 2000ul * 4096, MADV_NOHUGEPAGE);
	for (int i = 0; i < 2000; i++)
		p[(long)i * 4096] = 1;
	static const char done[] = "touched 2000 pages\n";
	return syscall(SYS_write, 1, done, sizeof(done) - 1) == sizeof(done) - 1 ? 0 : 1;
}
