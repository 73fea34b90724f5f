/* The real libc functions behind the hooks, resolved once with dlsym(RTLD_NEXT). */
#ifndef PFS_REAL_H
#define PFS_REAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>

/* X(name, return type, parameter list, required) */
#define PFS_REAL_FUNCS(X)                                                                  \
	X(malloc, void *, (size_t), 1)                                                     \
	X(calloc, void *, (size_t, size_t), 1)                                             \
	X(realloc, void *, (void *, size_t), 1)                                            \
	X(reallocarray, void *, (void *, size_t, size_t), 0)                               \
	X(free, void, (void *), 1)                                                         \
	X(posix_memalign, int, (void **, size_t, size_t), 0)                               \
	X(aligned_alloc, void *, (size_t, size_t), 0)                                      \
	X(memalign, void *, (size_t, size_t), 0)                                           \
	X(valloc, void *, (size_t), 0)                                                     \
	X(pvalloc, void *, (size_t), 0)                                                    \
	X(malloc_usable_size, size_t, (void *), 0)                                         \
	X(malloc_trim, int, (size_t), 0)                                                   \
	X(mmap, void *, (void *, size_t, int, int, int, off_t), 1)                         \
	X(mmap64, void *, (void *, size_t, int, int, int, off_t), 0)                       \
	X(munmap, int, (void *, size_t), 1)                                                \
	X(mremap, void *, (void *, size_t, size_t, int, ...), 0)                           \
	X(madvise, int, (void *, size_t, int), 0)                                          \
	X(mprotect, int, (void *, size_t, int), 0)                                         \
	X(mlock, int, (const void *, size_t), 0)                                           \
	X(mlock2, int, (const void *, size_t, unsigned int), 0)                            \
	X(mlockall, int, (int), 0)                                                         \
	X(shmat, void *, (int, const void *, int), 0)                                      \
	X(shmdt, int, (const void *), 0)                                                   \
	X(brk, int, (void *), 0)                                                           \
	X(sbrk, void *, (intptr_t), 0)                                                     \
	X(fork, pid_t, (void), 1)                                                          \
	X(vfork, pid_t, (void), 0)                                                         \
	X(_Fork, pid_t, (void), 0)                                                         \
	X(clone, int, (int (*)(void *), void *, int, void *, ...), 0)                      \
	X(posix_spawn, int,                                                                \
	  (pid_t *, const char *, const posix_spawn_file_actions_t *,                      \
	   const posix_spawnattr_t *, char *const[], char *const[]),                       \
	  0)                                                                               \
	X(posix_spawnp, int,                                                               \
	  (pid_t *, const char *, const posix_spawn_file_actions_t *,                      \
	   const posix_spawnattr_t *, char *const[], char *const[]),                       \
	  0)                                                                               \
	X(execve, int, (const char *, char *const[], char *const[]), 1)                    \
	X(execv, int, (const char *, char *const[]), 0)                                    \
	X(execvp, int, (const char *, char *const[]), 0)                                   \
	X(execvpe, int, (const char *, char *const[], char *const[]), 0)                   \
	X(fexecve, int, (int, char *const[], char *const[]), 0)                            \
	X(execveat, int, (int, const char *, char *const[], char *const[], int), 0)        \
	X(_exit, void, (int), 0)                                                           \
	X(sigaction, int, (int, const struct sigaction *, struct sigaction *), 0)          \
	X(signal, __sighandler_t, (int, __sighandler_t), 0)                                \
	X(sysv_signal, __sighandler_t, (int, __sighandler_t), 0)                           \
	X(__sysv_signal, __sighandler_t, (int, __sighandler_t), 0)                         \
	X(bsd_signal, __sighandler_t, (int, __sighandler_t), 0)                            \
	X(ssignal, __sighandler_t, (int, __sighandler_t), 0)                               \
	X(sigset, __sighandler_t, (int, __sighandler_t), 0)                                \
	X(_Exit, void, (int), 0)                                                           \
	X(pthread_create, int, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *), 0) \
	X(ioctl, int, (int, unsigned long, ...), 0)                                        \
	X(__register_atfork, int, (void (*)(void), void (*)(void), void (*)(void), void *), 0)

#define PFS_REAL_DECL(name, ret, args, req) extern ret(*real_##name) args;
PFS_REAL_FUNCS(PFS_REAL_DECL)
#undef PFS_REAL_DECL

/* Resolves every entry once; safe to call from any hook, any number of times. */
void pfs_real_resolve(void);

/*
 * dlsym may allocate (glibc's dlerror buffer, calloc): while resolving, the
 * malloc hooks serve from a small static pool that free() recognises.
 */
int pfs_real_resolving(void);
void *pfs_boot_alloc(size_t size, size_t align);
size_t pfs_boot_size(const void *p);

#define PFS_BOOT_POOL_SIZE (64 * 1024)
extern unsigned char pfs_boot_pool[PFS_BOOT_POOL_SIZE];

/* Inline: every free() asks. */
static inline int pfs_boot_owns(const void *p)
{
	return (const unsigned char *)p >= pfs_boot_pool &&
	       (const unsigned char *)p < pfs_boot_pool + PFS_BOOT_POOL_SIZE;
}

#endif
