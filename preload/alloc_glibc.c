#include <dlfcn.h>
#include <string.h>

#include "pfs.h"
#include "alloc_glibc.h"

int pfs_alloc_is_glibc;
static uint64_t main_heap_lo; /* the program break when the shim started */

void pfs_alloc_detect(void)
{
	Dl_info info;
	pfs_alloc_is_glibc = real_malloc && dladdr((void *)real_malloc, &info) && info.dli_fname &&
			     strstr(info.dli_fname, "/libc.so") != NULL;
	main_heap_lo = real_sbrk ? (uint64_t)(uintptr_t)real_sbrk(0) : 0;
}

uint64_t pfs_heap_key(uint64_t p, uint64_t *brk_now)
{
	*brk_now = real_sbrk ? (uint64_t)(uintptr_t)real_sbrk(0) : 0;
	return p >= main_heap_lo && p < *brk_now ? PFS_HEAP_MAIN : p & ~(PFS_HEAP_MAX - 1);
}
