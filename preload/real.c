/* Resolution of the real libc functions, and the bootstrap pool dlsym allocates from. */
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "real.h"
#include "msg.h"
#include "util.h"

#define PFS_REAL_DEF(name, ret, args, req) ret(*real_##name) args;
PFS_REAL_FUNCS(PFS_REAL_DEF)
#undef PFS_REAL_DEF

static int resolving;
static int resolved;

int pfs_real_resolving(void)
{
	return __atomic_load_n(&resolving, __ATOMIC_ACQUIRE);
}

void pfs_real_resolve(void)
{
	if (__atomic_load_n(&resolved, __ATOMIC_ACQUIRE))
		return;
	/* Constructors run single-threaded; a second thread racing here just resolves twice. */
	__atomic_store_n(&resolving, 1, __ATOMIC_RELEASE);
#define PFS_REAL_RESOLVE(name, ret, args, req)                                               \
	if (!real_##name) {                                                                  \
		void *sym_ = dlsym(RTLD_NEXT, #name);                                        \
		memcpy(&real_##name, &sym_, sizeof(sym_));                                   \
		if (!sym_ && (req))                                                          \
			pfs_raw_msg("pfshim: cannot find the real " #name "; the shim stays off\n"); \
	}
	PFS_REAL_FUNCS(PFS_REAL_RESOLVE)
#undef PFS_REAL_RESOLVE
	/* mmap64 is an alias of mmap on 64-bit glibc; one pointer serves both. */
	if (!real_mmap64)
		real_mmap64 = real_mmap;
	__atomic_store_n(&resolving, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&resolved, 1, __ATOMIC_RELEASE);
}

/* Bootstrap pool: a bump allocator, never freed; each block has an 16-byte header with its size. */
#define BOOT_POOL_SIZE PFS_BOOT_POOL_SIZE
_Alignas(64) unsigned char pfs_boot_pool[PFS_BOOT_POOL_SIZE];
#define boot_pool pfs_boot_pool
static size_t boot_used;

void *pfs_boot_alloc(size_t size, size_t align)
{
	if (align < 16)
		align = 16;
	for (;;) {
		size_t used = __atomic_load_n(&boot_used, __ATOMIC_RELAXED);
		size_t start = (used + 16 + align - 1) & ~(align - 1);
		if (size > BOOT_POOL_SIZE || start + size > BOOT_POOL_SIZE)
			return NULL;
		if (__atomic_compare_exchange_n(&boot_used, &used, start + size, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			memcpy(boot_pool + start - sizeof(size_t), &size, sizeof(size));
			return boot_pool + start; /* static storage: already zero */
		}
	}
}

size_t pfs_boot_size(const void *p)
{
	size_t size;
	memcpy(&size, (const unsigned char *)p - sizeof(size_t), sizeof(size));
	return size;
}
