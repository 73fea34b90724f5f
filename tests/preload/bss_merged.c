/*
 * Memory the kernel merged with an object's .bss: before any library's constructor (so before
 * the shim started: .preinit_array), the program maps 64 pages right where its own memory image
 * ends, after its .bss, and writes them.  The kernel merges that anonymous mapping with the .bss
 * one, as it merges the loader's static TLS with the .bss of the library loaded before it
 * (jemalloc in Redis, libldap in postgres).  Those first touches are the program's memory from
 * before the shim started, not the object's data (which the fault oracle, like docs/fidelity.md,
 * leaves out of private anonymous memory): the .bss ends where the object's image does.
 * Prints how many pages it mapped there (0: the address was taken, the test is skipped).
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGES 64

static char bss[64 << 10]; /* a .bss past the last file page: mapped anonymous */
static char *after;

static int image_end(struct dl_phdr_info *info, size_t size, void *arg)
{
	uintptr_t *end = arg, lo = UINTPTR_MAX, hi = 0;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_LOAD) {
			uintptr_t s = info->dlpi_addr + info->dlpi_phdr[i].p_vaddr;
			if (s < lo)
				lo = s;
			if (s + info->dlpi_phdr[i].p_memsz > hi)
				hi = s + info->dlpi_phdr[i].p_memsz;
		}
	if (lo <= (uintptr_t)bss && (uintptr_t)bss < hi) {
		*end = hi;
		return 1;
	}
	return 0;
}

static void map_after_image(int argc, char **argv, char **envp)
{
	(void)argc, (void)argv, (void)envp;
	uintptr_t end = 0, page = (uintptr_t)getpagesize();
	dl_iterate_phdr(image_end, &end);
	if (!end)
		return;
	end = (end + page - 1) & ~(page - 1);
	void *p = mmap((void *)end, PAGES * page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (p == MAP_FAILED)
		return;
	after = p;
	memset(after, 1, PAGES * page);
	bss[sizeof(bss) - 1] = 1;
}

__attribute__((section(".preinit_array"), used)) static void (*preinit)(int, char **, char **) = map_after_image;

int main(void)
{
	printf("%d pages after the image\n", after && bss[sizeof(bss) - 1] ? PAGES : 0);
	return 0;
}
