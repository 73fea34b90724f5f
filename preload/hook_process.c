/*
 * Process-level hooks: the shim's start and end, fork and its relatives,
 * the exec family, _exit.  dlopen is deliberately not interposed: glibc
 * resolves a dlopen's RUNPATH from its caller, which would become the shim.
 * New modules are noticed through dl_iterate_phdr's counters instead.
 */
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/syscall.h>

#include "alloc_glibc.h"
#include "arena.h"
#include "forkwrites.h"
#include "hook.h"
#include "pagemap.h"
#include "tracker.h"

__attribute__((constructor(101))) static void pfs_ctor(int argc, char **argv, char **envp)
{
	pfs_tls_busy = 1;
	pfs_core_init(argc, argv, envp);
	pfs_hook_leave();
}

__attribute__((destructor(101))) static void pfs_dtor(void)
{
	pfs_tls_busy = 1;
	pfs_core_fini();
	pfs_hook_leave();
}

/* Logs a new child from a hook: the shim's work is marked busy and errno is kept. */
static void note_fork(pid_t child, int how)
{
	int saved = errno;
	pfs_tls_busy = 1;
	pfs_core_note_fork(child, how);
	pfs_hook_leave();
	errno = saved;
}

/* The forking thread's state must exist before fork: the child continues with it. */
static void ensure_thread_state(void)
{
	pfs_tls_busy = 1;
	pfs_thread_get();
	pfs_hook_leave();
}

PFS_EXPORT pid_t fork(void)
{
	PFS_ENSURE(fork);
	if (!pfs_hook_tracking())
		return real_fork();
	ensure_thread_state();
	pid_t pid = real_fork(); /* pthread_atfork handlers (core.c) do the child's set-up */
	if (pid > 0)
		note_fork(pid, PFS_FORK);
	return pid;
}

/*
 * Fork handlers registered before the shim started run in the child before
 * the shim's, which arms the copy-on-write tracking: jemalloc registers its
 * own at its first malloc, before the shim's constructor, and its child
 * handler re-initialises its mutexes (10 pages of each arena's metadata,
 * written in every forked child: uncounted copies in Redis's saving child).
 * So when another object registers a child handler while the shim has none,
 * a stand-in of the shim's goes ahead of it, and the shim's own registration
 * (core.c) later hands its child handler to the stand-in.  In the child the
 * shim then sets itself up while another allocator's locks are still held
 * (its prepare handler took them, its child handler has not run): what the
 * shim allocates meanwhile comes from the bootstrap pool, and what it frees
 * of the allocator's is left (pfs_fork_window).  glibc's malloc is unlocked
 * before any child handler runs.
 */
extern void *__dso_handle;
static void (*shim_child)(void);
static int child_ahead, own_registered;
int pfs_fork_window;

static void child_first(void)
{
	void (*f)(void) = __atomic_load_n(&shim_child, __ATOMIC_ACQUIRE);
	if (!f)
		return;
	pfs_fork_window = !pfs_alloc_is_glibc;
	f();
	pfs_fork_window = 0;
}

PFS_EXPORT int __register_atfork(void (*prepare)(void), void (*parent)(void), void (*child)(void), void *dso)
{
	PFS_ENSURE(__register_atfork);
	if (!real___register_atfork)
		return ENOSYS;
	if (dso == __dso_handle) { /* the shim's own */
		if (child_ahead) {
			__atomic_store_n(&shim_child, child, __ATOMIC_RELEASE);
			child = NULL;
		}
		own_registered = 1;
	} else if (child && !child_ahead && !own_registered &&
		   real___register_atfork(NULL, NULL, child_first, __dso_handle) == 0) {
		child_ahead = 1;
	}
	return real___register_atfork(prepare, parent, child, dso);
}

PFS_EXPORT pid_t _Fork(void)
{
	PFS_ENSURE(_Fork);
	if (!real__Fork) {
		errno = ENOSYS;
		return -1;
	}
	if (!pfs_hook_tracking())
		return real__Fork();
	ensure_thread_state();
	pid_t pid = real__Fork(); /* no atfork handlers run: the child resets everything itself */
	if (pid == 0) {
		int saved = errno;
		pfs_tls_busy = 1;
		pfs_core_child_after_fork(PFS_UFORK);
		pfs_hook_leave();
		errno = saved;
	} else if (pid > 0) {
		note_fork(pid, PFS_UFORK);
	}
	return pid;
}

/*
 * vfork cannot be wrapped by a C function: the child would return through
 * the wrapper's frame and the parent resume on a clobbered one.  The stub
 * notes the event, then jumps to the real vfork with the caller's frame.
 */
PFS_HIDDEN void pfs_vfork_prepare(void)
{
	PFS_ENSURE(vfork);
	if (!real_vfork)
		real_vfork = real_fork;
	if (pfs_hook_tracking())
		note_fork(0, PFS_VFORK);
}

#if defined(__x86_64__)
__asm__(".text\n"
	".globl vfork\n"
	".type vfork, @function\n"
	"vfork:\n"
	"	sub $8, %rsp\n"
	"	call pfs_vfork_prepare\n"
	"	add $8, %rsp\n"
	"	jmp *real_vfork(%rip)\n"
	".size vfork, .-vfork\n");
#else
/* Elsewhere vfork is not interposed (the stub is x86-64 assembly): its children log as their parent's. */
#endif

struct clone_tramp {
	int (*fn)(void *);
	void *arg;
};

static int clone_child(void *p)
{
	struct clone_tramp *tr = p;
	pfs_tls_busy = 1;
	pfs_core_child_after_fork(PFS_CLONE);
	pfs_hook_leave();
	return tr->fn(tr->arg);
}

/*
 * clone without CLONE_VM makes a new process with a copy of memory, like
 * fork but without atfork handlers: the child re-initialises through a
 * trampoline.  With CLONE_VM (threads, posix_spawn style) it passes through.
 */
PFS_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	pid_t *ptid = va_arg(ap, pid_t *);
	void *tls = va_arg(ap, void *);
	pid_t *ctid = va_arg(ap, pid_t *);
	va_end(ap);
	PFS_ENSURE(clone);
	if (!real_clone) {
		errno = ENOSYS;
		return -1;
	}
	if (!pfs_hook_tracking() || (flags & CLONE_VM) || !fn)
		return real_clone(fn, stack, flags, arg, ptid, tls, ctid);
	struct clone_tramp tr = {fn, arg}; /* the child sees its own copy of this frame */
	ensure_thread_state();
	int r = real_clone(clone_child, stack, flags, &tr, ptid, tls, ctid);
	if (r > 0)
		note_fork(r, PFS_CLONE);
	return r;
}

typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
			char *const[], char *const[]);

static int spawn_common(spawn_fn fn, pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	if (!fn)
		return ENOSYS;
	if (!pfs_hook_tracking())
		return fn(pid, path, fa, attr, argv, envp);
	pid_t child = 0;
	/* The child shares this memory and thread pointer until it execs: the shim stays out of it. */
	pfs_tls_busy = 1;
	int r = fn(&child, path, fa, attr, argv, envp);
	if (r == 0)
		pfs_core_note_fork(child, PFS_SPAWN);
	pfs_hook_leave();
	if (pid && r == 0)
		*pid = child;
	return r;
}

PFS_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	PFS_ENSURE(posix_spawn);
	return spawn_common(real_posix_spawn, pid, path, fa, attr, argv, envp);
}

PFS_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			    const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	PFS_ENSURE(posix_spawnp);
	return spawn_common(real_posix_spawnp, pid, file, fa, attr, argv, envp);
}

/* The exec family: the old image's log is closed with EXEC and PROC_END; a failed exec reopens it. */
static void exec_enter(const char *path)
{
	int saved = errno;
	pfs_tls_busy = 1;
	pfs_core_before_exec(path);
	pfs_hook_leave();
	errno = saved;
}

static int exec_leave(int r)
{
	int saved = errno;
	pfs_tls_busy = 1;
	pfs_core_exec_failed(saved);
	pfs_hook_leave();
	errno = saved;
	return r;
}

#define PFS_EXEC_MISSING(name)                                                             \
	do {                                                                               \
		PFS_ENSURE(name);                                                          \
		if (!real_##name) {                                                        \
			errno = ENOSYS;                                                    \
			return -1;                                                         \
		}                                                                          \
	} while (0)

PFS_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	PFS_EXEC_MISSING(execve);
	exec_enter(path);
	return exec_leave(real_execve(path, argv, envp));
}

PFS_EXPORT int execv(const char *path, char *const argv[])
{
	PFS_EXEC_MISSING(execv);
	exec_enter(path);
	return exec_leave(real_execv(path, argv));
}

PFS_EXPORT int execvp(const char *file, char *const argv[])
{
	PFS_EXEC_MISSING(execvp);
	exec_enter(file);
	return exec_leave(real_execvp(file, argv));
}

PFS_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	PFS_EXEC_MISSING(execvpe);
	exec_enter(file);
	return exec_leave(real_execvpe(file, argv, envp));
}

PFS_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	PFS_EXEC_MISSING(fexecve);
	exec_enter("(fexecve)");
	return exec_leave(real_fexecve(fd, argv, envp));
}

PFS_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	PFS_EXEC_MISSING(execveat);
	exec_enter(path);
	return exec_leave(real_execveat(dirfd, path, argv, envp, flags));
}

/* execl and friends: gather the variadic arguments into an array (glibc does the same). */
#define PFS_GATHER_ARGS(arg0, argv)                                                        \
	size_t argc_ = 1;                                                                  \
	va_list ap_;                                                                       \
	va_start(ap_, arg0);                                                               \
	while (va_arg(ap_, const char *))                                                  \
		argc_++;                                                                   \
	va_end(ap_);                                                                       \
	const char *argv[argc_ + 1];                                                       \
	argv[0] = arg0;                                                                    \
	va_start(ap_, arg0);                                                               \
	for (size_t i_ = 1; i_ <= argc_; i_++)                                             \
		argv[i_] = va_arg(ap_, const char *);

PFS_EXPORT int execl(const char *path, const char *arg, ...)
{
	PFS_GATHER_ARGS(arg, argv);
	va_end(ap_);
	return execv(path, (char *const *)argv);
}

PFS_EXPORT int execlp(const char *file, const char *arg, ...)
{
	PFS_GATHER_ARGS(arg, argv);
	va_end(ap_);
	return execvp(file, (char *const *)argv);
}

PFS_EXPORT int execle(const char *path, const char *arg, ...)
{
	PFS_GATHER_ARGS(arg, argv);
	char *const *envp = va_arg(ap_, char *const *);
	va_end(ap_);
	return execve(path, (char *const *)argv, envp);
}

/*
 * pthread_create: the new thread starts in a trampoline that tracks its own
 * stack before the program's code touches it (a parent that looked after
 * pthread_create returned would find the first pages touched already);
 * once the program has a second thread, the tracker may start a helper
 * thread of its own (fast mode's scanner, see periodic.c: not before).
 */
struct thread_tramp {
	void *(*fn)(void *);
	void *arg;
	int user_stack; /* the program gave the thread its stack: its own allocation */
};

static void *thread_start(void *p)
{
	struct thread_tramp tr = *(struct thread_tramp *)p;
	int saved = errno;
	pfs_tls_busy = 1;
	pfs_pool_free(p, sizeof(tr));
	if (!tr.user_stack) {
		pfs_core_thread_started();
		if (pfs_tls_thread && pfs_tls_thread->stack_hi)
			pfs_forkwrites_thread_started(pfs_tls_thread->stack_hi); /* where its descriptor lies */
	}
	pfs_hook_leave();
	errno = saved;
	return tr.fn(tr.arg);
}

/* glibc's attribute without a stack reports its address as 0 less the size: not a user address. */
static int gives_stack(const pthread_attr_t *attr)
{
	void *stack = NULL;
	size_t size = 0;
	return attr && pthread_attr_getstack(attr, &stack, &size) == 0 && stack &&
	       (uint64_t)(uintptr_t)stack < PFS_USER_END;
}

PFS_EXPORT int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	PFS_ENSURE(pthread_create);
	if (!real_pthread_create)
		return EAGAIN;
	if (!pfs_hook_tracking())
		return real_pthread_create(th, attr, fn, arg);
	pfs_tls_busy = 1;
	struct thread_tramp *tr = pfs_pool_alloc(sizeof(*tr));
	if (tr)
		*tr = (struct thread_tramp){fn, arg, gives_stack(attr)};
	pfs_tracker->thread_coming(pfs_thread_get());
	pfs_hook_leave();
	int r = tr ? real_pthread_create(th, attr, thread_start, tr) : real_pthread_create(th, attr, fn, arg);
	if (r != 0 && tr)
		pfs_pool_free(tr, sizeof(*tr));
	if (r == 0) {
		int saved = errno;
		pfs_tls_busy = 1;
		pfs_tracker->tick(pfs_thread_get());
		pfs_hook_leave();
		errno = saved;
	}
	return r;
}

static __attribute__((noreturn)) void exit_common(void (*fn)(int), int status)
{
	pfs_tls_busy = 1;
	pfs_core_end(PFS_END_UEXIT, status);
	if (fn)
		fn(status);
	for (;;)
		syscall(SYS_exit_group, status);
}

PFS_EXPORT void _exit(int status)
{
	PFS_ENSURE(_exit);
	exit_common(real__exit, status);
}

PFS_EXPORT void _Exit(int status)
{
	PFS_ENSURE(_Exit);
	exit_common(real__Exit, status);
}
