/* mmap and its family, brk/sbrk: every call of the program is logged (they are rare and large). */
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "arena.h"
#include "heap.h"
#include "hook.h"
#include "modules.h"
#include "policy_apply.h"

static void *mmap_common(void *(*fn)(void *, size_t, int, int, int, off_t), void *addr, size_t len, int prot,
			 int flags, int fd, off_t off, uintptr_t ret, uintptr_t sp)
{
	if (PFS_UNLIKELY(!fn))
		return pfs_sys_mmap(addr, len, prot, flags, fd, off);
	if (!pfs_hook_active())
		return fn(addr, len, prot, flags, fd, off);
	/*
	 * Mapped for the shim's own work (libunwind's caches, the loader for
	 * dlsym): the shim's own memory.  But what another allocator maps inside
	 * a malloc the shim made holds the program's blocks too (heap.h).
	 */
	int unwinder = pfs_addr_in_unwinder(ret);
	if (pfs_tls_busy || unwinder) {
		/*
		 * libunwind clears what it maps for itself (a thread's 256 KiB trace
		 * cache: 64 page faults in every thread of a long run): made present
		 * with the mapping.  Not a file's: that would read all of it.
		 */
		if (unwinder && (flags & MAP_ANONYMOUS) && (flags & MAP_PRIVATE) && (prot & PROT_WRITE))
			flags |= MAP_POPULATE;
		void *p = fn(addr, len, prot, flags, fd, off);
		if (p != MAP_FAILED && pfs_tls_in_alloc && pfs_tls_busy && !unwinder)
			pfs_heap_extent_pend((uint64_t)(uintptr_t)p, len);
		else if (p != MAP_FAILED)
			pfs_self_note((uint64_t)(uintptr_t)p, len);
		return p;
	}
	pfs_tls_busy = 1;
	void *p = fn(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED) {
		int saved = errno;
		pfs_track_mmap(p, len, prot, flags, fd, ret, sp);
		errno = saved;
	}
	pfs_hook_leave();
	return p;
}

PFS_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	PFS_ENSURE(mmap);
	return mmap_common(real_mmap, addr, len, prot, flags, fd, off, PFS_RET(), PFS_SP());
}

PFS_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	PFS_ENSURE(mmap64);
	return mmap_common(real_mmap64, addr, len, prot, flags, fd, off, PFS_RET(), PFS_SP());
}

PFS_EXPORT int munmap(void *addr, size_t len)
{
	PFS_ENSURE(munmap);
	if (PFS_UNLIKELY(!real_munmap))
		return pfs_sys_munmap(addr, len);
	if (!pfs_hook_active())
		return real_munmap(addr, len);
	if (pfs_tls_busy || pfs_addr_in_unwinder(PFS_RET())) {
		pfs_self_forget((uint64_t)(uintptr_t)addr);
		return real_munmap(addr, len);
	}
	pfs_tls_busy = 1;
	int saved = errno;
	pfs_track_munmap(addr, len); /* before: the range may be mapped again at once */
	errno = saved;
	int r = real_munmap(addr, len);
	pfs_hook_leave();
	return r;
}

PFS_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	PFS_ENSURE(mremap);
	if (PFS_UNLIKELY(!real_mremap)) {
		errno = ENOSYS;
		return MAP_FAILED;
	}
	if (!pfs_hook_tracking())
		return real_mremap(old, old_len, new_len, flags, new_addr);
	pfs_tls_busy = 1;
	pfs_track_mremap_before(old, old_len);
	void *p = real_mremap(old, old_len, new_len, flags, new_addr);
	if (p != MAP_FAILED) {
		int saved = errno;
		pfs_track_mremap(old, old_len, p, new_len, PFS_RET(), PFS_SP());
		errno = saved;
	}
	pfs_hook_leave();
	return p;
}

PFS_EXPORT int madvise(void *addr, size_t len, int advice)
{
	PFS_ENSURE(madvise);
	if (PFS_UNLIKELY(!real_madvise))
		return pfs_sys_madvise(addr, len, advice);
	if (!pfs_hook_tracking())
		return real_madvise(addr, len, advice);
	pfs_tls_busy = 1;
	pfs_track_madvise_before(addr, len, advice);
	int r = real_madvise(addr, len, advice);
	int saved = errno;
	pfs_track_madvise(addr, len, advice, r ? -saved : 0);
	errno = saved;
	pfs_hook_leave();
	return r;
}

/* Opening a reservation: a policy's populating actions that waited for it (policy_apply.h). */
PFS_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	PFS_ENSURE(mprotect);
	if (PFS_UNLIKELY(!real_mprotect))
		return pfs_sys_mprotect(addr, len, prot);
	int r = real_mprotect(addr, len, prot);
	if (r || !__atomic_load_n(&pfs_policy_waiting, __ATOMIC_RELAXED) || !pfs_hook_tracking())
		return r;
	pfs_tls_busy = 1;
	int saved = errno;
	struct pfs_thread *t = pfs_thread_get();
	if (t)
		pfs_policy_opened(t, (uint64_t)(uintptr_t)addr, len, prot);
	errno = saved;
	pfs_hook_leave();
	return r;
}

/*
 * Locking makes the pages present without a fault (unless only on fault):
 * what the range held is counted before, the rest taken as present after
 * (track.c, as for the program's own MADV_POPULATE_*).
 */
static int lock_common(int (*fn)(const void *, size_t, unsigned int), const void *addr, size_t len, unsigned int flags,
		       int populates)
{
	if (!populates || !pfs_hook_tracking())
		return fn(addr, len, flags);
	pfs_tls_busy = 1;
	pfs_track_lock_before(addr, len);
	int r = fn(addr, len, flags);
	int saved = errno;
	if (!r)
		pfs_track_lock(addr, len);
	errno = saved;
	pfs_hook_leave();
	return r;
}

static int call_mlock(const void *addr, size_t len, unsigned int flags)
{
	(void)flags;
	return real_mlock ? real_mlock(addr, len) : (int)syscall(SYS_mlock, addr, len);
}

static int call_mlock2(const void *addr, size_t len, unsigned int flags)
{
	return real_mlock2 ? real_mlock2(addr, len, flags) : (int)syscall(SYS_mlock2, addr, len, flags);
}

static int call_mlockall(const void *addr, size_t len, unsigned int flags)
{
	(void)addr, (void)len;
	return real_mlockall ? real_mlockall((int)flags) : (int)syscall(SYS_mlockall, (int)flags);
}

PFS_EXPORT int mlock(const void *addr, size_t len)
{
	PFS_ENSURE(mlock);
	return lock_common(call_mlock, addr, len, 0, 1);
}

PFS_EXPORT int mlock2(const void *addr, size_t len, unsigned int flags)
{
	PFS_ENSURE(mlock2);
	return lock_common(call_mlock2, addr, len, flags, !(flags & MLOCK_ONFAULT));
}

/* MCL_CURRENT locks (and populates) every mapping there is: the whole address space counted, then taken as present. */
PFS_EXPORT int mlockall(int flags)
{
	PFS_ENSURE(mlockall);
	return lock_common(call_mlockall, NULL, PFS_ADDRESS_SPACE, (unsigned int)flags,
			   (flags & MCL_CURRENT) && !(flags & MCL_ONFAULT));
}

PFS_EXPORT int brk(void *end)
{
	PFS_ENSURE(brk);
	if (PFS_UNLIKELY(!real_brk || !real_sbrk)) {
		errno = ENOMEM;
		return -1;
	}
	if (!pfs_hook_tracking())
		return real_brk(end);
	pfs_tls_busy = 1;
	char *old = real_sbrk(0);
	int r = real_brk(end);
	if (r == 0 && (char *)end > old) {
		int saved = errno;
		pfs_track_brk(old, (size_t)((char *)end - old), PFS_RET(), PFS_SP());
		errno = saved;
	}
	pfs_hook_leave();
	return r;
}

PFS_EXPORT void *sbrk(intptr_t inc)
{
	PFS_ENSURE(sbrk);
	if (PFS_UNLIKELY(!real_sbrk)) {
		errno = ENOMEM;
		return (void *)-1;
	}
	if (!pfs_hook_tracking() || inc <= 0)
		return real_sbrk(inc);
	pfs_tls_busy = 1;
	void *p = real_sbrk(inc);
	if (p != (void *)-1) {
		int saved = errno;
		pfs_track_brk(p, (size_t)inc, PFS_RET(), PFS_SP());
		errno = saved;
	}
	pfs_hook_leave();
	return p;
}

/* SysV shared memory: an attached segment is shared memory of its size; a detach ends it. */
PFS_EXPORT void *shmat(int id, const void *addr, int flags)
{
	PFS_ENSURE(shmat);
	if (!real_shmat) {
		errno = ENOSYS;
		return (void *)-1;
	}
	if (!pfs_hook_tracking())
		return real_shmat(id, addr, flags);
	void *p = real_shmat(id, addr, flags);
	if (p != (void *)-1) {
		int saved = errno;
		struct shmid_ds ds;
		pfs_tls_busy = 1;
		if (shmctl(id, IPC_STAT, &ds) == 0)
			pfs_track_shm(p, ds.shm_segsz, PFS_RET(), PFS_SP());
		pfs_hook_leave();
		errno = saved;
	}
	return p;
}

PFS_EXPORT int shmdt(const void *addr)
{
	PFS_ENSURE(shmdt);
	if (!real_shmdt) {
		errno = ENOSYS;
		return -1;
	}
	if (!pfs_hook_tracking())
		return real_shmdt(addr);
	int saved = errno;
	pfs_tls_busy = 1;
	pfs_track_shmdt((void *)(uintptr_t)addr); /* before: the address may be attached again at once */
	pfs_hook_leave();
	errno = saved;
	return real_shmdt(addr);
}
