#include <link.h>
#include <malloc.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "proc.h"
#include "alloc_glibc.h"

int pfs_alloc_is_glibc;
/*
 * The start of the brk heap: the kernel's start_brk, not the break when the
 * shim starts: a program or a library may have grown the heap before the
 * shim's constructor ran.  The kernel names the mapping that holds it
 * [heap] (core.c hands it over from its walk at start); while there is
 * none the break has not moved from it.  (Field 47 of /proc/self/stat says
 * the same at the price of a file opened at every start.)
 */
static uint64_t main_heap_lo;

/* The object that holds the address is libc (dladdr would also look for its symbol among libc's thousands). */
static int in_libc_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	uint64_t a = *(const uint64_t *)arg;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uint64_t s = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && a >= s && a < s + ph->p_memsz)
			return info->dlpi_name && strstr(info->dlpi_name, "/libc.so") ? 1 : -1;
	}
	return 0;
}

void pfs_alloc_detect(void)
{
	uint64_t a = (uint64_t)(uintptr_t)real_malloc;
	pfs_alloc_is_glibc = real_malloc && dl_iterate_phdr(in_libc_cb, &a) == 1;
	main_heap_lo = real_sbrk ? (uint64_t)(uintptr_t)real_sbrk(0) : 0;
}

const uint16_t *pfs_alloc_tcache;
static int tcache_absent;

const uint16_t *pfs_alloc_tcache_find(void)
{
	if (tcache_absent || !pfs_alloc_is_glibc || !main_heap_lo || !real_sbrk)
		return NULL;
	uint64_t chunk = (main_heap_lo + 15) & ~(uint64_t)15, brk = (uint64_t)(uintptr_t)real_sbrk(0);
	if (brk < chunk + 0x290)
		return NULL; /* no chunk there yet */
	if ((((const size_t *)(uintptr_t)chunk)[1] & ~(size_t)7) != 0x290) {
		tcache_absent = 1; /* another layout (an older glibc, a first chunk of another kind) */
		return NULL;
	}
	pfs_alloc_tcache = (const uint16_t *)(uintptr_t)(chunk + 2 * sizeof(size_t));
	return pfs_alloc_tcache;
}

void pfs_alloc_heap_mapping(uint64_t start)
{
	if (start < main_heap_lo)
		main_heap_lo = start;
}

/*
 * glibc's own rule, read from the chunk: NON_MAIN_ARENA (bit 2 of the size
 * word) set means the chunk lies in a thread arena's heap, whose heap_info
 * glibc itself finds at the 64 MiB boundary below it; clear means the main
 * arena, which is the brk heap unless brk failed and the arena fell back to
 * mmap (then no heap the shim knows: 0, nothing is carved).  Nothing is
 * guessed from an address's alignment alone.
 */
uint64_t pfs_heap_brk(void)
{
	return real_sbrk ? (uint64_t)(uintptr_t)real_sbrk(0) : 0;
}

uint64_t pfs_heap_key(uint64_t p, uint64_t *brk_now)
{
	*brk_now = pfs_heap_brk();
	size_t sz = ((const size_t *)(uintptr_t)p)[-1];
	if (sz & 4)
		return p & ~(PFS_HEAP_MAX - 1);
	return p >= main_heap_lo && p < *brk_now ? PFS_HEAP_MAIN : 0;
}

uint64_t pfs_heap_top(uint64_t key, uint64_t brk_now)
{
	uint64_t page = pfs_proc.page_size;
	if (key == PFS_HEAP_MAIN)
		return (brk_now + page - 1) & ~(page - 1);
	/* A thread heap's heap_info (ar_ptr, prev, size, ...), found by glibc's own rule (pfs_heap_key). */
	uint64_t size = ((const uint64_t *)(uintptr_t)key)[2];
	return size > PFS_HEAP_MAX ? 0 : key + size;
}

uint64_t pfs_heap_used_end(uint64_t brk_now)
{
	if (!pfs_alloc_is_glibc)
		return brk_now;
	struct mallinfo2 mi = mallinfo2();
	return mi.keepcost && mi.keepcost < brk_now ? brk_now - mi.keepcost + 2 * sizeof(size_t) : brk_now;
}
