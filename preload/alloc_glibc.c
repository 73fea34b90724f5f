#include <dlfcn.h>
#include <string.h>

#include "pfs.h"
#include "alloc_glibc.h"

int pfs_alloc_is_glibc;

void pfs_alloc_detect(void)
{
	Dl_info info;
	pfs_alloc_is_glibc = real_malloc && dladdr((void *)real_malloc, &info) && info.dli_fname &&
			     strstr(info.dli_fname, "/libc.so") != NULL;
}
