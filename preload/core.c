/*
 * The core of the shim: process start, per-thread state, fork and exec,
 * the end of a process.  Hooks call in here; nothing here exports a libc name.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "addrspace.h"
#include "alloc_glibc.h"
#include "arena.h"
#include "core.h"
#include "fdkeep.h"
#include "heap.h"
#include "kcompat.h"
#include "modules.h"
#include "pagemap.h"
#include "msg.h"
#include "policy_apply.h"
#include "python.h"
#include "real.h"
#include "rundir.h"
#include "sites.h"
#include "thread.h"
#include "track.h"
#include "tracker.h"

#define PFS_CMD_MAX 8192u

static void log_warning(const char *text, size_t len)
{
	struct pfs_thread *t = pfs_proc.enabled ? pfs_tls_thread : NULL;
	uint32_t size = PFS_ALIGN8(sizeof(struct pfs_rec_message) + (uint32_t)len);
	struct pfs_rec_message *r = t ? pfs_rec_begin(&t->w, size) : NULL;
	if (!r)
		return;
	r->seq = pfs_next_seq();
	r->time_ns = pfs_now_ns();
	r->len = (uint32_t)len;
	r->level = 1;
	memcpy(r + 1, text, len);
	pfs_rec_end(r, PFS_REC_MESSAGE, 0, size);
}

static void config_warn(void *ctx, const char *text)
{
	(void)ctx;
	pfs_warn("%s", text);
}

static void write_proc_start(struct pfs_thread *t, uint32_t flags)
{
	uint32_t exe_len = (uint32_t)strlen(pfs_proc.exe);
	uint32_t size = PFS_ALIGN8(sizeof(struct pfs_rec_proc_start) + exe_len + pfs_proc.cmd_len);
	struct pfs_rec_proc_start *r = pfs_rec_begin(&t->w, size);
	if (!r)
		return;
	r->pid = (uint64_t)pfs_proc.pid;
	r->ppid = (uint64_t)pfs_proc.ppid;
	r->root_pid = (uint64_t)pfs_proc.root_pid;
	r->start_mono_ns = pfs_proc.start_mono_ns;
	r->mode = (uint32_t)pfs_proc.mode;
	r->exec_gen = pfs_log_proc.gen;
	r->page_size = pfs_proc.page_size;
	r->argc = pfs_proc.argc;
	r->exe_len = exe_len;
	r->cmd_len = pfs_proc.cmd_len;
	memcpy((char *)(r + 1), pfs_proc.exe, exe_len);
	if (pfs_proc.cmd_len)
		memcpy((char *)(r + 1) + exe_len, pfs_proc.cmd, pfs_proc.cmd_len);
	flags |= pfs_tracker == &pfs_tracker_pevent ? PFS_PROC_FAULT_EVENTS : 0;
	pfs_rec_end(r, PFS_REC_PROC_START, (uint16_t)(flags | (pfs_proc.cmd_truncated ? PFS_PROC_CMD_TRUNCATED : 0)),
		    size);
}

/*
 * Creates this process's log.  Before the tracker starts: exact mode's
 * handlers write the log through copies of its descriptor taken then.
 * PROC_START follows once the mode is known.
 */
static int create_log(uint32_t file_flags)
{
	struct pfs_file_header h;
	pfs_log_header_init(&h, (uint64_t)pfs_proc.pid, pfs_proc.page_size, file_flags, pfs_proc.start_mono_ns,
			    pfs_proc.start_real_ns);
	/*
	 * An image exec'd by a traced image goes on in its file: one file a
	 * process, not one an image (a file's creation is most of a start's
	 * cost on some file systems: ext4 without a journal skips every inode
	 * freed in the last seconds).  The first process of a run has none.
	 */
	if (!(file_flags & PFS_FILE_FORKED) && pfs_proc.cfg.run_pid) {
		h.flags |= PFS_FILE_EXECED;
		if (pfs_log_continue(&pfs_log_proc, &pfs_tls_thread->w, pfs_rundir_fd(), pfs_proc.dir, &h) == 0)
			return 0;
		h.flags = file_flags;
	}
	return pfs_log_open(&pfs_log_proc, &pfs_tls_thread->w, pfs_rundir_fd(), pfs_proc.dir, &h);
}

/* The command line as the kernel keeps it (a start before the constructor has no argv): NUL-separated already. */
static void cmdline_from_proc(void)
{
	long n = pfs_read_file("/proc/self/cmdline", pfs_proc.cmd, PFS_CMD_MAX);
	if (n <= 0)
		return;
	uint32_t end = (uint32_t)n;
	if (end == PFS_CMD_MAX) { /* cut after its last whole argument */
		while (end > 0 && pfs_proc.cmd[end - 1])
			end--;
		pfs_proc.cmd_truncated = 1;
	}
	pfs_proc.cmd_len = end;
	for (uint32_t i = 0; i < end; i++)
		pfs_proc.argc += !pfs_proc.cmd[i];
}

static void copy_cmdline(int argc, char **argv)
{
	pfs_proc.cmd = pfs_arena_alloc(PFS_CMD_MAX);
	pfs_proc.cmd_len = 0;
	pfs_proc.argc = argc > 0 ? (uint32_t)argc : 0;
	if (pfs_proc.cmd && !argv)
		cmdline_from_proc();
	if (!pfs_proc.cmd || !argv)
		return;
	for (int i = 0; i < argc && argv[i]; i++) {
		size_t len = strlen(argv[i]) + 1;
		if (pfs_proc.cmd_len + len > PFS_CMD_MAX) {
			pfs_proc.cmd_truncated = 1;
			break;
		}
		memcpy(pfs_proc.cmd + pfs_proc.cmd_len, argv[i], len);
		pfs_proc.cmd_len += (uint32_t)len;
	}
}

/*
 * The fork lock order: no thread inside libunwind first, then the sites'
 * tables, the thread pool, the heaps, the tracker, the arena.  Not the
 * log's lock: the child forgets the parent's log, and exact mode's handler
 * takes that lock to grow the log while this thread may wait for it (a
 * write to protected memory inside fork itself).
 */
/*
 * A fork from a signal handler that interrupted the shim's own work on this
 * thread (the program forked inside its handler): the shim's locks may be
 * this thread's already, and its tables half updated.  Nothing is taken or
 * armed then, and the child is left untraced; the program runs on as it
 * would.
 */
static int fork_inside_shim;

/*
 * Children made without the hooks (issue 19: a raw clone3 child that
 * mallocs wrote into its parent's log, which MADV_DONTFORK left unmapped
 * in it, and died).  Until the page exists, a word that is always 1.
 */
static const int here_always = 1;
volatile const int *pfs_core_here = &here_always;
static volatile int *here_page;

static void here_init(void)
{
	int *p = pfs_sys_mmap(NULL, pfs_proc.page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
			      -1, 0);
	if (p == MAP_FAILED)
		return;
	*p = 1;
	if (pfs_sys_madvise(p, pfs_proc.page_size, MADV_WIPEONFORK)) { /* Linux 4.14 */
		pfs_sys_munmap(p, pfs_proc.page_size);
		return;
	}
	pfs_self_note((uint64_t)(uintptr_t)p, pfs_proc.page_size);
	here_page = p;
	pfs_core_here = p;
	pfs_fd_pid_word(p + 1); /* the same page: zero in a forked child too */
}

int pfs_core_unseen_child(void)
{
	int busy = pfs_tls_busy, saved = errno;
	pfs_tls_busy = 1;
	if (!*pfs_core_here)
		pfs_core_child_after_fork(PFS_CLONE); /* left untraced (pfs_proc.enabled 0) if it cannot be set up */
	pfs_tls_busy = busy;
	errno = saved;
	return pfs_active();
}

/*
 * The shim's small variables (the Makefile's layout: .data, then .bss's
 * objects under 4 KiB) made present by one call, `pages` of them from the
 * end of its read-only part: at a start, the 3 that every start writes (on
 * this machine a first read of a fresh page takes a page of its own, a
 * fault each: /bin/true's start read 2 of them first); at a fork, the 2
 * both sides write.
 */
static void small_variables(unsigned pages)
{
	uintptr_t lo, hi, page = pfs_proc.page_size ? pfs_proc.page_size : (uintptr_t)getpagesize();
	pfs_self_code(&lo, &hi);
	hi = (hi + page - 1) & ~(page - 1);
	pfs_prefault((void *)hi, pages * page, MADV_POPULATE_WRITE);
}

/*
 * The state both sides of a fork write at once (locks, the process's
 * structure, the forking thread's state and site cache, the shim's small
 * variables after its read-only part: .data, where PFS_FORK_WRITTEN puts
 * the locks of other files), copied by one call a range instead of a
 * copy-on-write fault a page (5-10 us a page against 14-23 here).  The
 * log's structure only in the child, which opens its own log: the parent
 * wrote its two pages in none of 200 forks of a bash script (it writes
 * there when its log needs a new block), and each was a copy made for
 * nothing.
 */
static void fork_state_copied(int child)
{
	small_variables(2);
	pfs_prefault(&pfs_proc, offsetof(struct pfs_process, cfg), MADV_POPULATE_WRITE);
	if (child)
		pfs_prefault(&pfs_log_proc, sizeof(pfs_log_proc), MADV_POPULATE_WRITE);
	if (pfs_tls_thread)
		pfs_prefault(pfs_tls_thread, sizeof(*pfs_tls_thread), MADV_POPULATE_WRITE);
}

static void fork_prepare(void)
{
	if (pfs_tls_busy) {
		fork_inside_shim = 1;
		return;
	}
	pfs_sites_fork_prepare();
	pfs_thread_lock();
	pfs_heap_lock();
	pfs_tracker->lock();
	pfs_arena_lock();
}

static void fork_parent(void)
{
	if (fork_inside_shim) {
		fork_inside_shim = 0;
		return;
	}
	fork_state_copied(0);
	pfs_arena_unlock();
	pfs_tracker->unlock();
	pfs_heap_unlock();
	pfs_thread_unlock();
	pfs_sites_fork_parent();
	if (pfs_active() && pfs_tls_thread) {
		int busy = pfs_tls_busy;
		pfs_tls_busy = 1;
		pfs_tracker->fork_parent(pfs_tls_thread); /* what the child shares is write-protected now */
		pfs_tls_busy = busy;
	}
}

static void fork_child(void)
{
	if (fork_inside_shim) {
		fork_inside_shim = 0;
		pfs_proc.enabled = 0; /* the parent's log is not the child's (MADV_DONTFORK): nothing is written */
		return;
	}
	int busy = pfs_tls_busy;
	pfs_tls_busy = 1; /* the set-up may allocate (pthread_setspecific): not the program's */
	pfs_core_child_after_fork(PFS_FORK);
	pfs_tls_busy = busy;
}

/*
 * The end of a process that calls exit() or returns from main.  The shim's
 * constructor runs before __libc_start_main registers the loader's
 * destructor pass, so this handler, registered there, runs after every
 * other exit handler and destructor: the true end, with the exit status.
 */
static int on_exit_ok;
static void on_exit_status(int status, void *arg)
{
	(void)arg;
	pfs_proc.exit_status = status;
	pfs_proc.exit_status_known = 1;
	pfs_tls_busy = 1;
	pfs_core_end(PFS_END_EXIT, status);
}

void pfs_core_fini(void)
{
	if (!on_exit_ok)
		pfs_core_end(PFS_END_EXIT, 0);
}

void pfs_core_thread_started(void)
{
	struct pfs_thread *t = pfs_thread_get();
	pthread_attr_t a;
	void *stack = NULL;
	size_t size = 0;
	if (!t || pthread_getattr_np(pthread_self(), &a))
		return;
	if (pthread_attr_getstack(&a, &stack, &size))
		stack = NULL;
	pthread_attr_destroy(&a);
	if (stack && size) {
		t->stack_lo = (uint64_t)(uintptr_t)stack;
		t->stack_hi = t->stack_lo + size;
		pfs_track_category(t, PFS_KIND_THREAD_STACK, t->stack_lo, size);
	}
}

/* A thread ends: its stack is read once more before glibc drops the pages below its last frame. */
static void thread_ended(struct pfs_thread *t)
{
	if (pfs_active())
		pfs_tracker->sync(t, t->stack_lo, t->stack_hi - t->stack_lo, PFS_SCAN_FREE);
}

/*
 * What the address space holds when the shim starts is tracked from then
 * on by its kind (addrspace.c): the main stack, objects' .data/.bss, and
 * memory mapped before the shim (the brk heap so far, another allocator's
 * first regions, the loader's).  The brk heap malloc grows later is carved
 * from the break on (heap.c).
 */
struct adopt {
	struct pfs_thread *t;
	uint64_t brk;
	uint64_t heap_floor; /* the brk heap's used part ends here: malloc's top chunk above is carved */
};

static uint64_t page_up(uint64_t a)
{
	return (a + pfs_proc.page_size - 1) & ~(uint64_t)(pfs_proc.page_size - 1);
}

static int adopt_one(const struct pfs_mapping *m, const struct pfs_mapping *prev, void *arg)
{
	struct adopt *a = arg;
	if (pfs_tracker->seen)
		pfs_tracker->seen(m, prev);
	uint64_t end;
	int kind = pfs_addrspace_kind(m, prev, 1, &end);
	if (end < m->end) { /* an object's .bss, then what the kernel merged with it: each on its own */
		struct pfs_mapping part = *m, rest = *m;
		part.end = rest.start = end;
		adopt_one(&part, prev, arg);
		return adopt_one(&rest, &part, arg);
	}
	if (kind == PFS_KIND_DATA && (pfs_addr_in_self(m->start) || pfs_addr_in_unwinder(m->start)))
		kind = PFS_KIND_SELF; /* the shim's own .data and .bss, and its unwinder's */
	if (!strcmp(m->name, "[heap]")) {
		/* A heap exists: how much of it malloc uses (asked only then: mallinfo2 sets malloc up). */
		pfs_alloc_heap_mapping(m->start);
		a->heap_floor = page_up(pfs_heap_used_end(a->brk));
		if (a->heap_floor > m->start && a->heap_floor < end)
			end = a->heap_floor;
	}
	/* The kernel merges neighbouring anonymous mappings: the shim's own ranges inside are its own. */
	for (uint64_t at = m->start, lo, hi; kind && at < end; at = hi) {
		int k = kind;
		if (pfs_self_find(at, &lo, &hi))
			k = PFS_KIND_SELF;
		else if ((hi = pfs_self_next(at)) > end)
			hi = end;
		if (hi > end)
			hi = end;
		pfs_track_category(a->t, k, at, hi - at);
	}
	return 0;
}

/* Until a [heap] mapping says otherwise, the break is where the heap starts: nothing of it used. */
static void adopt_address_space(struct pfs_thread *t)
{
	uint64_t brk_now = real_sbrk ? (uint64_t)(uintptr_t)real_sbrk(0) : 0;
	struct adopt a = {t, brk_now, page_up(brk_now)};
	if (pfs_proc.mode != PFS_MODE_OFF)
		pfs_addrspace_each(adopt_one, &a);
	pfs_heap_set_floor(a.heap_floor);
	pfs_tracker->adopted(t, 1); /* what the image touched before the shim started counts */
}

/*
 * A last pass before a fatal signal ends the process.  SIGTERM, SIGINT and
 * SIGHUP left at their default action (terminate) get the shim's handler:
 * it writes what is pending (the touches since the last scan, PROC_END
 * "killed by signal"), the default is back (SA_RESETHAND), and the signal
 * raised again is delivered when the handler returns: the process ends as
 * it would have (its status, its parent's wait).  A pool's workers killed
 * by SIGTERM lost their last touches without it (a third of one worker's,
 * measured).  The program never sees the handler: sigaction reports the
 * default for a signal the shim holds (hook_signal.c), and a disposition
 * the program sets takes the signal back.
 */
static const int final_signals[] = {SIGTERM, SIGINT, SIGHUP};
static unsigned final_held; /* bit i: final_signals[i] has the shim's handler */

int pfs_fatal_pending;

/*
 * A signal that lands inside the shim's own work (this thread busy: its
 * locks or its log writer may be half way) is kept pending: the hook runs
 * the last pass when it leaves (pfs_core_fatal_now), then raises it.
 */
static void final_pass(int sig)
{
	int saved = errno;
	if (pfs_tls_busy && pfs_active()) {
		__atomic_store_n(&pfs_fatal_pending, sig, __ATOMIC_RELEASE);
		errno = saved;
		return;
	}
	if (pfs_active()) {
		pfs_tls_busy = 1;
		pfs_core_end(PFS_END_SIGNAL, sig);
	}
	raise(sig); /* blocked while this runs: delivered, to the default action, on return */
	errno = saved;
}

void pfs_core_fatal_now(void)
{
	int sig = __atomic_exchange_n(&pfs_fatal_pending, 0, __ATOMIC_ACQ_REL);
	if (!sig)
		return;
	pfs_tls_busy = 1;
	pfs_core_end(PFS_END_SIGNAL, sig);
	raise(sig); /* its default action again (SA_RESETHAND): the process ends here */
}

static int final_index(int sig)
{
	for (unsigned i = 0; i < PFS_ARRAY_SIZE(final_signals); i++)
		if (final_signals[i] == sig)
			return (int)i;
	return -1;
}

static void final_pass_install(void)
{
	if (!real_sigaction)
		return;
	for (unsigned i = 0; i < PFS_ARRAY_SIZE(final_signals); i++) {
		struct sigaction old, sa;
		if (real_sigaction(final_signals[i], NULL, &old) || old.sa_handler != SIG_DFL ||
		    (old.sa_flags & SA_SIGINFO))
			continue;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = final_pass;
		sa.sa_flags = SA_RESETHAND | SA_RESTART;
		if (real_sigaction(final_signals[i], &sa, NULL) == 0)
			__atomic_or_fetch(&final_held, 1u << i, __ATOMIC_RELAXED);
	}
}

void pfs_core_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	int i = final_index(sig);
	if (i < 0 || !(__atomic_load_n(&final_held, __ATOMIC_RELAXED) & (1u << i)))
		return;
	if (old && old->sa_handler == final_pass) {
		old->sa_handler = SIG_DFL; /* what the program left there */
		old->sa_flags = 0;
		sigemptyset(&old->sa_mask);
	}
	if (act) /* the program's own disposition now: the signal is the program's */
		__atomic_and_fetch(&final_held, ~(1u << i), __ATOMIC_RELAXED);
}

/*
 * Whose malloc the program calls.  A sanitizer's runtime, or any library
 * the loader binds before the shim, serves every allocation without the
 * hooks seeing one: AddressSanitizer insists on coming first in
 * LD_PRELOAD, and clang links its sanitizers' runtimes (MemorySanitizer,
 * ASan) into the executable, whose symbols come before any preload.  Said
 * once at start, naming the runtime (the report then says why it holds no
 * allocation); the allocator's mappings are still seen, by kind.
 */
static int allocator_named;

static void name_allocator(void)
{
	static const struct {
		const char *sym, *name;
	} runtimes[] = {
		{"__asan_init", "AddressSanitizer"}, {"__hwasan_init", "HWAddressSanitizer"},
		{"__msan_init", "MemorySanitizer"},  {"__tsan_init", "ThreadSanitizer"},
		{"__lsan_init", "LeakSanitizer"},
	};
	Dl_info mine, theirs;
	const ElfW(Sym) *sym = NULL;
	void *m = dlsym(RTLD_DEFAULT, "malloc");
	if (!m || !dladdr((void *)name_allocator, &mine) || !dladdr1(m, &theirs, (void **)&sym, RTLD_DL_SYMENT) ||
	    theirs.dli_fbase == mine.dli_fbase)
		return;
	/*
	 * A non-PIE executable that takes malloc's address (Debian's python3) makes
	 * its PLT stub malloc's canonical address: an undefined symbol there, which
	 * calls the shim's; no allocator of its own.
	 */
	if (sym && sym->st_shndx == SHN_UNDEF)
		return;
	const char *who = NULL;
	for (size_t i = 0; i < PFS_ARRAY_SIZE(runtimes) && !who; i++)
		if (dlsym(RTLD_DEFAULT, runtimes[i].sym))
			who = runtimes[i].name;
	const char *file = theirs.dli_fname && theirs.dli_fname[0] ? theirs.dli_fname : pfs_proc.exe;
	const char *base = strrchr(file, '/');
	pfs_warn("malloc in process %d is %s%s (%s), which the loader binds before the shim's: its allocations are not "
		 "seen, only the memory it maps, counted by kind without call sites%s",
		 (int)pfs_proc.pid, who ? who : "another allocator", who ? "'s runtime" : "", base ? base + 1 : file,
		 who && !strcmp(who, "AddressSanitizer") ? " (ASan must come first in LD_PRELOAD; run without it to see "
							   "the program's allocations)"
							 : "");
	allocator_named = 1;
}

/*
 * The shim's code, mapped by one call: run page by page, it took a fault
 * every 64 KiB at every start, and again in every forked child (fork
 * copies no page table of a file's mapping that holds no private page).
 */
static void code_present(void)
{
	uintptr_t lo, hi;
	pfs_self_code(&lo, &hi);
	pfs_prefault((void *)lo, hi - lo, MADV_POPULATE_READ);
}

/*
 * When the shim starts.  Its constructor runs after those of the program's
 * libraries (the loader initializes an object after the objects it needs,
 * and a preloaded library needs none of the program's), and what those
 * constructors allocate and touch is start-up the program pays for:
 * rust-lld's libLLVM wrote about 60 pages of its heap in its constructors,
 * a library's constructor that filled 4 MiB was 1 first touch of the
 * kernel's 1,022.  So the program's first allocation before the
 * constructor starts the shim there (as heaptrack starts at its first
 * malloc), once libc's own constructor has run (its environ is set), and
 * not when libc or the loader allocates: they may hold a lock the shim's
 * start takes again (libgpg-error's constructor calls bindtextdomain,
 * which mallocs under gettext's lock; the start's strerror took it again
 * and left it broken: postgres hung in its main).  The command line then
 * comes from /proc/self/cmdline.
 */
int pfs_core_start_tried;

int pfs_core_start_early(uintptr_t caller)
{
	extern char **environ;
	if (__atomic_load_n(&pfs_core_start_tried, __ATOMIC_ACQUIRE) || !environ)
		return 0;
	/* libc by a function only glibc has (the next malloc may be another allocator's) */
	Dl_info in, libc;
	if (!dladdr((void *)caller, &in) || !dladdr((void *)(uintptr_t)gnu_get_libc_version, &libc) ||
	    in.dli_fbase == libc.dli_fbase || (uintptr_t)in.dli_fbase == getauxval(AT_BASE))
		return 0;
	int busy = pfs_tls_busy, saved = errno;
	pfs_tls_busy = 1;
	pfs_core_init(0, NULL, environ);
	pfs_tls_busy = busy;
	errno = saved;
	return pfs_active();
}

int pfs_core_init(int argc, char **argv, char **envp)
{
	if (__atomic_exchange_n(&pfs_core_start_tried, 1, __ATOMIC_ACQ_REL))
		return pfs_active() ? 0 : -EALREADY; /* started early, or under way in another thread */
	/* The process's state is written all through the start (its strings each on a page of their own). */
	pfs_prefault(&pfs_proc, sizeof(pfs_proc), MADV_POPULATE_WRITE);
	pfs_prefault(&pfs_log_proc, sizeof(pfs_log_proc), MADV_POPULATE_WRITE);
	code_present();
	small_variables(3);
	pfs_real_resolve();
	if (!real_malloc || !real_free || !real_mmap)
		return -ENOSYS;
	/*
	 * A setuid or setgid program (secure execution): the loader ignores
	 * LD_PRELOAD for it, but an administrator's /etc/ld.so.preload would
	 * still load us.  Such a program is left alone: no log, no userfaultfd,
	 * nothing written where its privileges reach.
	 */
	if (getauxval(AT_SECURE))
		return -EPERM;
	pfs_alloc_detect();
	pfs_msg_fd_init();
	pfs_proc.pid = pfs_sys_getpid();
	pfs_proc.ppid = pfs_sys_getppid();
	pfs_proc.page_size = (uint32_t)getpagesize(); /* libc's sysconf: a page of its own at every start */
	pfs_proc.start_mono_ns = pfs_now_ns();
	pfs_proc.start_real_ns = pfs_real_now_ns();
	pfs_config_parse(&pfs_proc.cfg, envp, config_warn, NULL);
	here_init();
	pfs_proc.is_root = pfs_proc.cfg.run_pid == 0 || pfs_proc.cfg.run_pid == pfs_proc.pid;
	pfs_proc.root_pid = pfs_proc.cfg.run_pid ? (pid_t)pfs_proc.cfg.run_pid : pfs_proc.pid;

	pfs_tracker_choose();

	const char *why = NULL;
	int err = pfs_rundir_choose(pfs_proc.dir, sizeof(pfs_proc.dir));
	if (!err)
		err = pfs_rundir_open(&why);
	if (err) {
		pfs_warn("cannot use log directory %s (%s); not tracing this process",
			 pfs_proc.dir[0] ? pfs_proc.dir : "(none)", why ? why : strerror(-err));
		return err;
	}
	ssize_t n = readlink("/proc/self/exe", pfs_proc.exe, sizeof(pfs_proc.exe) - 1);
	pfs_proc.exe[n > 0 ? n : 0] = 0;
	copy_cmdline(argc, argv);

	/* Children of this run log into the same directory and know who the first process was. */
	if (pfs_proc.cfg.run_pid == 0) {
		/*
		 * libc's setenv: a program may define its own (bash does, and before
		 * its main it adds a variable but leaves a replaced one as it was).
		 */
		int (*libc_setenv)(const char *, const char *, int);
		void *sym = dlsym(RTLD_NEXT, "setenv");
		memcpy(&libc_setenv, &sym, sizeof(sym));
		if (!libc_setenv)
			libc_setenv = setenv;
		char pid[24];
		snprintf(pid, sizeof(pid), "%d", (int)pfs_proc.pid);
		libc_setenv("PFSHIM_RUN", pid, 1);
		libc_setenv("PFSHIM_OUT", pfs_proc.dir, 1);
	}

	pfs_proc.enabled = 1; /* from here on the main thread can get its state */
	if (!pfs_thread_get()) {
		pfs_proc.enabled = 0;
		pfs_warn("out of memory at start; not tracing this process");
		return -ENOMEM;
	}
	err = create_log(0);
	if (!err)
		pfs_log_proc.max_blocks = pfs_proc.cfg.log_max / PFS_LOG_BLOCK_SIZE;
	if (err) {
		pfs_proc.enabled = 0;
		pfs_warn("cannot create a log in %s (%s); not tracing this process", pfs_proc.dir,
			 strerror(-err));
		return err;
	}
	pfs_tracker_start();
	/* Carving knows glibc's heaps; another allocator's mappings are tracked as mmaps (alloc_glibc.h). */
	pfs_heap_on = pfs_proc.mode != PFS_MODE_OFF && pfs_alloc_is_glibc;
	write_proc_start(pfs_tls_thread, 0);
	pfs_set_warn_sink(log_warning);
	name_allocator();
	pfs_policy_init(); /* in every mode; a bad rule is said in the log too */
	pfs_stacks_unknown(pfs_tls_thread);
	/*
	 * libunwind's caching policy stays its default, one global cache under
	 * a lock: UNW_CACHE_PER_THREAD needs a libunwind built with
	 * --enable-per-thread-cache (Debian's is not), and without it every
	 * thread used the global cache with no lock.  Set up at the first
	 * unwind, not here (0.4 ms of each process's start).
	 */
	pfs_modules_sync(1);
	pfs_python_init();
	adopt_address_space(pfs_tls_thread);
	pfs_thread_key_init(thread_ended);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	on_exit_ok = on_exit(on_exit_status, NULL) == 0;
	if (pfs_proc.mode != PFS_MODE_OFF)
		final_pass_install();
	return 0;
}

void pfs_core_child_after_fork(int how)
{
	if (here_page) { /* zeroed by the kernel in the child: this process is set up now */
		pfs_prefault((void *)here_page, sizeof(*here_page), MADV_POPULATE_WRITE);
		*here_page = 1;
	}
	if (!pfs_proc.enabled)
		return;
	code_present();
	fork_state_copied(1);
	/* Other threads are gone: their locks and states are reset, not waited for. */
	pfs_fatal_pending = 0; /* the parent's signal, not the child's */
	pfs_log_proc.lock = (pfs_spin_t)PFS_SPIN_INIT;
	pfs_arena_child_reset();
	pfs_sites_fork_child();
	pfs_modules_child_reset();
	pfs_thread_child();
	pfs_heap_child();
	pfs_policy_child();
	pfs_log_forget(&pfs_log_proc);
	pfs_proc.ppid = pfs_proc.pid;
	pfs_proc.pid = pfs_sys_getpid();
	pfs_proc.is_root = 0;
	pfs_proc.exit_status_known = 0;
	pfs_proc.big_allocs = pfs_proc.big_bytes = 0;
	pfs_proc.start_mono_ns = pfs_now_ns();
	pfs_proc.start_real_ns = pfs_real_now_ns();
	struct pfs_thread *self = pfs_thread_get();
	if (!self) {
		pfs_proc.enabled = 0;
		return;
	}
	/* Its seqs go on from its parent's (pfs_proc.seq): the blocks it inherited keep theirs (pfs_announce_fn). */
	int err = create_log(PFS_FILE_FORKED);
	if (!err) {
		pfs_log_proc.max_blocks = pfs_proc.cfg.log_max / PFS_LOG_BLOCK_SIZE;
		write_proc_start(self, PFS_FILE_FORKED);
	}
	if (err) {
		pfs_proc.enabled = 0;
		pfs_warn("fork: cannot create the child's log in %s (%s); not tracing process %d",
			 pfs_proc.dir, strerror(-err), (int)pfs_proc.pid);
		return;
	}
	/* The child's log stands alone: the modules and stacks it inherited are written again. */
	pfs_modules_rewrite();
	pfs_sites_rewrite(self);
	pfs_tracker->fork_child(self, pfs_track_announce);
	(void)how;
}

/* `fd` is a userfaultfd (its /proc/self/fd link reads "anon_inode:[userfaultfd]"). */
static int is_userfaultfd(int fd)
{
	char path[48], link[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return 0;
	link[n] = 0;
	return !strcmp(link, "anon_inode:[userfaultfd]");
}

void pfs_core_uffd_register(int fd, const void *arg)
{
	/* The program's argument is read the way the kernel would: a bad pointer is its EFAULT, not our crash. */
	struct uffdio_register reg;
	struct iovec local = {&reg, sizeof(reg)}, remote = {(void *)(uintptr_t)arg, sizeof(reg)};
	if (!arg || syscall(SYS_process_vm_readv, pfs_sys_getpid(), &local, 1, &remote, 1, 0) != (long)sizeof(reg))
		return;
	struct pfs_thread *t = pfs_thread_get();
	if (t && reg.range.len && is_userfaultfd(fd))
		pfs_tracker->release(t, reg.range.start, reg.range.len, fd);
}

void pfs_core_note_fork(pid_t child, int how)
{
	struct pfs_thread *t = pfs_active() ? pfs_thread_get() : NULL;
	struct pfs_rec_fork *r = t ? pfs_rec_begin(&t->w, sizeof(*r)) : NULL;
	if (!r)
		return;
	r->seq = pfs_next_seq();
	r->time_ns = pfs_now_ns();
	r->child_pid = child > 0 ? (uint64_t)child : 0;
	r->tid = t->tid;
	r->how = (uint32_t)how;
	pfs_rec_end(r, PFS_REC_FORK, 0, sizeof(*r));
}

static void write_exec(const char *path, int result)
{
	struct pfs_thread *t = pfs_thread_get();
	uint32_t len = path ? (uint32_t)strnlen(path, PATH_MAX) : 0;
	uint32_t size = PFS_ALIGN8(sizeof(struct pfs_rec_exec) + len);
	struct pfs_rec_exec *r = t ? pfs_rec_begin(&t->w, size) : NULL;
	if (!r)
		return;
	r->seq = pfs_next_seq();
	r->time_ns = pfs_now_ns();
	r->result = result;
	r->tid = t->tid;
	r->path_len = len;
	memcpy(r + 1, path, len);
	pfs_rec_end(r, PFS_REC_EXEC, 0, size);
}

static void write_end(int reason, int status)
{
	struct pfs_thread *t = pfs_thread_get();
	struct pfs_rec_proc_end *r = t ? pfs_rec_begin(&t->w, sizeof(*r)) : NULL;
	if (!r)
		return;
	r->seq = pfs_next_seq();
	r->time_ns = pfs_now_ns();
	r->status = status;
	r->reason = (uint32_t)reason;
	struct rusage u;
	if (getrusage(RUSAGE_SELF, &u) == 0) {
		r->minflt = (uint64_t)u.ru_minflt;
		r->majflt = (uint64_t)u.ru_majflt;
	}
	r->run_ns = r->wait_ns = 0;
	pfs_schedstat(&r->run_ns, &r->wait_ns);
	pfs_rec_end(r, PFS_REC_PROC_END, 0, sizeof(*r));
}

/* In a vfork child the memory is the parent's: it must not write the parent's log. */
static int in_own_process(void)
{
	return pfs_sys_getpid() == pfs_proc.pid;
}

void pfs_core_before_exec(const char *path)
{
	if (!pfs_active() || !in_own_process())
		return;
	struct pfs_thread *t = pfs_thread_get();
	if (t)
		pfs_tracker->end(t);
	pfs_log_ending(&pfs_log_proc);
	write_exec(path, 0);
	write_end(PFS_END_EXEC, 0);
	pfs_log_hand_over(&pfs_log_proc, (uint32_t)pfs_proc.pid, pfs_log_proc.gen + 1);
	pfs_proc.ended = 1;
}

void pfs_core_exec_failed(int err)
{
	if (!pfs_proc.enabled || !pfs_proc.ended || !in_own_process())
		return;
	pfs_proc.ended = 0;
	pfs_log_hand_over(&pfs_log_proc, 0, 0);
	write_exec(NULL, -err);
}

static void human_bytes(char *buf, size_t size, uint64_t b)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	unsigned u = 0;
	while (v >= 1024 && u + 1 < PFS_ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void pfs_core_end(int reason, int status)
{
	if (!pfs_active() || !in_own_process())
		return;
	struct pfs_thread *t = pfs_thread_get();
	if (t)
		pfs_tracker->end(t); /* touches since the last scan, events still in batches */
	pfs_log_ending(&pfs_log_proc); /* says what a handler could not */
	write_end(reason, status);
	pfs_proc.ended = 1;
	if (!pfs_proc.is_root || pfs_proc.cfg.quiet)
		return;
	uint64_t count, bytes;
	pfs_counters_total(&count, &bytes);
	count += __atomic_load_n(&pfs_proc.big_allocs, __ATOMIC_RELAXED);
	bytes += __atomic_load_n(&pfs_proc.big_bytes, __ATOMIC_RELAXED);
	uint64_t first, cow;
	pfs_tracker->counts(&first, &cow);
	char hb[32];
	human_bytes(hb, sizeof(hb), bytes);
	char line[2 * PATH_MAX + 256];
	snprintf(line, sizeof(line),
		 "pfshim: mode %s, logs in %s: %llu allocations (%s), %llu first-touch and %llu copy-on-write "
		 "faults in process %d; see: pfshim report %s\n",
		 pfs_mode_name((unsigned)pfs_proc.mode), pfs_proc.dir, (unsigned long long)count, hb,
		 (unsigned long long)first, (unsigned long long)cow,
		 (int)pfs_proc.pid, pfs_proc.dir);
	pfs_raw_msg(line);
	/* Many faults and no allocation at all: the program's allocator is not the one the hooks see. */
	struct rusage u;
	if (!count && !allocator_named && getrusage(RUSAGE_SELF, &u) == 0 && u.ru_minflt >= 1000)
		pfs_warn("process %d took %ld page faults but made no allocation through the shim's hooks: its "
			 "allocator was found before the shim's (another preloaded library, a sanitizer, a runtime "
			 "of its own); its faults are counted by the memory they hit, without call sites",
			 (int)pfs_proc.pid, u.ru_minflt);
}
