/*
 * The core of the shim: process start, per-thread state, fork and exec,
 * the end of a process.  Hooks call in here; nothing here exports a libc name.
 */
#include <errno.h>
#include <fcntl.h>
#include <libunwind.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>

#include "alloc_glibc.h"
#include "arena.h"
#include "exact.h"
#include "pfs.h"
#include "policy_apply.h"
#include "probe.h"
#include "real.h"
#include "regions.h"

struct pfs_process pfs_proc;
__thread int pfs_tls_busy __attribute__((tls_model("initial-exec")));
__thread struct pfs_thread *pfs_tls_thread __attribute__((tls_model("initial-exec")));

static pfs_spin_t threads_lock = PFS_SPIN_INIT;
static struct pfs_thread *threads_all, *threads_free;
static pthread_key_t thread_key;
static int thread_key_ok;

#define PFS_CMD_MAX 8192u

void *pfs_rec_begin(struct pfs_thread *t, uint32_t size)
{
	return pfs_log_reserve(&pfs_proc.log, &t->w, size);
}

/* A thread's state goes back to the pool when the thread ends; its log block and counters stay valid. */
static void thread_release(void *p)
{
	struct pfs_thread *t = p;
	if (!t)
		return;
	if (pfs_tls_thread == t)
		pfs_tls_thread = NULL;
	pfs_spin_lock(&threads_lock);
	t->in_use = 0;
	t->next_free = threads_free;
	threads_free = t;
	pfs_spin_unlock(&threads_lock);
}

struct pfs_thread *pfs_thread_get_slow(void)
{
	if (!pfs_proc.enabled)
		return NULL;
	pfs_spin_lock(&threads_lock);
	struct pfs_thread *t = threads_free;
	if (t) {
		threads_free = t->next_free;
	} else {
		t = pfs_arena_alloc(sizeof(*t));
		if (t) {
			t->next_all = threads_all;
			threads_all = t;
		}
	}
	if (t)
		t->in_use = 1;
	pfs_spin_unlock(&threads_lock);
	if (!t)
		return NULL;
	int saved = errno;
	t->tid = (uint32_t)pfs_sys_gettid();
	pfs_tls_thread = t;
	/* May allocate (keys past the first 32): the caller holds the busy flag. */
	if (thread_key_ok)
		pthread_setspecific(thread_key, t);
	/*
	 * Not the place to start the scanner thread: a thread's first call may
	 * come from inside a runtime's thread start (ThreadSanitizer's calls
	 * pthread_getattr_np, which reallocs), where creating a thread crashes
	 * it.  The pthread_create hook starts it, in the creating thread.
	 */
	errno = saved;
	return t;
}

static void log_warning(const char *text, size_t len)
{
	struct pfs_thread *t = pfs_proc.enabled ? pfs_tls_thread : NULL;
	uint32_t size = PFS_ALIGN8(sizeof(struct pfs_rec_message) + (uint32_t)len);
	struct pfs_rec_message *r = t ? pfs_rec_begin(t, size) : NULL;
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

/* The run's directory: 0700, ours, not a symlink. */
int pfs_make_dir(const char *dir)
{
	struct stat st;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	if (lstat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != geteuid())
		return -EPERM;
	return 0;
}

static int choose_dir(char *out, size_t size)
{
	if (pfs_proc.cfg.out[0] == '/') {
		pfs_strlcpy(out, pfs_proc.cfg.out, size);
		return 0;
	}
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		return -errno;
	int n;
	if (pfs_proc.cfg.out[0])
		n = snprintf(out, size, "%s/%s", cwd, pfs_proc.cfg.out);
	else
		n = snprintf(out, size, "%s/pfshim.%d", cwd, (int)pfs_proc.pid);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static void write_proc_start(struct pfs_thread *t, uint32_t flags)
{
	uint32_t exe_len = (uint32_t)strlen(pfs_proc.exe);
	uint32_t size = PFS_ALIGN8(sizeof(struct pfs_rec_proc_start) + exe_len + pfs_proc.cmd_len);
	struct pfs_rec_proc_start *r = pfs_rec_begin(t, size);
	if (!r)
		return;
	r->pid = (uint64_t)pfs_proc.pid;
	r->ppid = (uint64_t)pfs_proc.ppid;
	r->root_pid = (uint64_t)pfs_proc.root_pid;
	r->start_mono_ns = pfs_proc.start_mono_ns;
	r->mode = (uint32_t)pfs_proc.mode;
	r->exec_gen = pfs_proc.log.gen;
	r->page_size = pfs_proc.page_size;
	r->argc = pfs_proc.argc;
	r->exe_len = exe_len;
	r->cmd_len = pfs_proc.cmd_len;
	memcpy((char *)(r + 1), pfs_proc.exe, exe_len);
	if (pfs_proc.cmd_len)
		memcpy((char *)(r + 1) + exe_len, pfs_proc.cmd, pfs_proc.cmd_len);
	pfs_rec_end(r, PFS_REC_PROC_START, (uint16_t)(flags | (pfs_proc.cmd_truncated ? PFS_PROC_CMD_TRUNCATED : 0)),
		    size);
}

/* Opens this process's log and writes what a reader needs first. */
static int open_log(uint32_t file_flags)
{
	struct pfs_file_header h;
	pfs_log_header_init(&h, (uint64_t)pfs_proc.pid, pfs_proc.page_size, file_flags, pfs_proc.start_mono_ns,
			    pfs_proc.start_real_ns);
	struct pfs_thread *t = pfs_tls_thread;
	int err = pfs_log_open(&pfs_proc.log, &t->w, pfs_proc.dir, &h);
	if (err)
		return err;
	write_proc_start(t, file_flags);
	return 0;
}

static void copy_cmdline(int argc, char **argv)
{
	pfs_proc.cmd = pfs_arena_alloc(PFS_CMD_MAX);
	pfs_proc.cmd_len = 0;
	pfs_proc.argc = argc > 0 ? (uint32_t)argc : 0;
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

static void fork_prepare(void)
{
	pfs_unwind_fork_prepare(); /* first: no thread may be inside libunwind at the fork */
	pfs_stacks_lock();
	pfs_spin_lock(&threads_lock);
	pfs_regions_lock();
	pfs_exact_lock();
	/*
	 * Not the log's lock: the child forgets the parent's log, and exact
	 * mode's handler takes that lock to grow the log while this thread may
	 * wait for it (a write to protected memory inside fork itself).
	 */
	pfs_arena_lock();
}

static void fork_parent(void)
{
	pfs_arena_unlock();
	pfs_exact_unlock();
	pfs_regions_unlock();
	pfs_spin_unlock(&threads_lock);
	pfs_stacks_unlock();
	pfs_unwind_fork_parent();
	if (pfs_active() && pfs_tls_thread) {
		int busy = pfs_tls_busy;
		pfs_tls_busy = 1;
		pfs_regions_after_fork_parent(pfs_tls_thread); /* what the child shares is write-protected now */
		pfs_exact_after_fork_parent();
		pfs_tls_busy = busy;
	}
}

static void fork_child(void)
{
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

/*
 * The mode chain: PFSHIM_MODE unset means fast where the page map can be
 * read (PAGEMAP_SCAN on Linux 6.7 and newer, else its entries, slower),
 * else off.  exact needs a full userfaultfd; without one it falls back to
 * fast (then off).  A fallback is said once, by the run's first process.
 */
static void choose_mode(void)
{
	int want = pfs_proc.cfg.mode;
	int first = pfs_proc.cfg.run_pid == 0;
	pfs_proc.mode = PFS_MODE_OFF;
	if (want == PFS_MODE_OFF)
		return;
	if (want == PFS_MODE_EXACT) {
		const char *why = "";
		int err = pfs_exact_init(&why);
		if (!err) {
			pfs_proc.mode = PFS_MODE_EXACT;
			return;
		}
		if (first)
			pfs_warn("PFSHIM_MODE=exact: %s (%s); running in fast mode", why, strerror(-err));
	}
	int how = pfs_proc.cfg.pagemap;
	int scan_ok = how != PFS_PAGEMAP_READ && pfs_probe_pagemap_scan() == 1;
	if (how == PFS_PAGEMAP_SCAN && !scan_ok) {
		if (first)
			pfs_warn("PFSHIM_PAGEMAP=scan: PAGEMAP_SCAN on /proc/self/pagemap is not usable here (it needs "
				 "Linux 6.7 or newer); reading page map entries instead");
	} else if (how == PFS_PAGEMAP_AUTO && !scan_ok && first) {
		pfs_warn("PAGEMAP_SCAN is not usable here (it needs Linux 6.7 or newer): fast mode reads page map "
			 "entries, slower, same counts");
	}
	int err = pfs_regions_init(!scan_ok);
	if (!err) {
		pfs_proc.mode = PFS_MODE_FAST;
		return;
	}
	if (first)
		pfs_warn("%s needs /proc/self/pagemap, which cannot be opened here (%s); running in mode off",
			 want == PFS_MODE_FAST ? "PFSHIM_MODE=fast" : "fast mode", strerror(-err));
}

int pfs_core_init(int argc, char **argv, char **envp)
{
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
	pfs_proc.ppid = getppid();
	pfs_proc.page_size = (uint32_t)sysconf(_SC_PAGESIZE);
	pfs_proc.start_mono_ns = pfs_now_ns();
	pfs_proc.start_real_ns = pfs_real_now_ns();
	pfs_config_parse(&pfs_proc.cfg, envp, config_warn, NULL);
	pfs_proc.is_root = pfs_proc.cfg.run_pid == 0 || pfs_proc.cfg.run_pid == pfs_proc.pid;
	pfs_proc.root_pid = pfs_proc.cfg.run_pid ? (pid_t)pfs_proc.cfg.run_pid : pfs_proc.pid;

	choose_mode();

	int err = choose_dir(pfs_proc.dir, sizeof(pfs_proc.dir));
	if (!err)
		err = pfs_make_dir(pfs_proc.dir);
	if (err) {
		pfs_warn("cannot use log directory %s (%s); not tracing this process",
			 pfs_proc.dir[0] ? pfs_proc.dir : "(none)", strerror(-err));
		return err;
	}
	ssize_t n = readlink("/proc/self/exe", pfs_proc.exe, sizeof(pfs_proc.exe) - 1);
	pfs_proc.exe[n > 0 ? n : 0] = 0;
	copy_cmdline(argc, argv);

	/* Children of this run log into the same directory and know who the first process was. */
	if (pfs_proc.cfg.run_pid == 0) {
		char pid[24];
		snprintf(pid, sizeof(pid), "%d", (int)pfs_proc.pid);
		setenv("PFSHIM_RUN", pid, 1);
		setenv("PFSHIM_OUT", pfs_proc.dir, 1);
	}

	pfs_proc.enabled = 1; /* from here on the main thread can get its state */
	if (!pfs_thread_get()) {
		pfs_proc.enabled = 0;
		pfs_warn("out of memory at start; not tracing this process");
		return -ENOMEM;
	}
	if (pfs_proc.mode == PFS_MODE_EXACT) {
		const char *why = "";
		err = pfs_exact_start(&why);
		if (err) {
			pfs_warn("PFSHIM_MODE=exact: %s (%s); running in fast mode", why, strerror(-err));
			pfs_proc.cfg.mode = PFS_MODE_FAST;
			choose_mode();
		}
	}
	err = open_log(0);
	if (err) {
		pfs_proc.enabled = 0;
		pfs_warn("cannot create a log in %s (%s); not tracing this process", pfs_proc.dir,
			 strerror(-err));
		return err;
	}
	pfs_set_warn_sink(log_warning);
	pfs_policy_init(); /* in every mode; a bad rule is said in the log too */
	pfs_stacks_unknown(pfs_tls_thread);
	/*
	 * Per-thread unwind caches, except under ThreadSanitizer: libunwind's
	 * thread-exit destructor for them locks a mutex after TSan has finished
	 * the thread, and TSan crashes (measured).  One global cache then.
	 */
	unw_set_caching_policy(unw_local_addr_space, __tsan_acquire ? UNW_CACHE_GLOBAL : UNW_CACHE_PER_THREAD);
	pfs_modules_sync(1);
	thread_key_ok = pthread_key_create(&thread_key, thread_release) == 0;
	if (thread_key_ok)
		pthread_setspecific(thread_key, pfs_tls_thread);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	on_exit_ok = on_exit(on_exit_status, NULL) == 0;
	pfs_regions_set_interval(pfs_proc.cfg.scan_ms);
	return 0;
}

void pfs_core_child_after_fork(int how)
{
	if (!pfs_proc.enabled)
		return;
	/* Other threads are gone: their locks and states are reset, not waited for. */
	threads_lock = (pfs_spin_t)PFS_SPIN_INIT;
	pfs_proc.log.lock = (pfs_spin_t)PFS_SPIN_INIT;
	pfs_arena_child_reset();
	pfs_stacks_child_reset();
	pfs_modules_child_reset();
	pfs_unwind_fork_child();

	struct pfs_thread *self = pfs_tls_thread;
	threads_free = NULL;
	for (struct pfs_thread *t = threads_all; t; t = t->next_all) {
		t->w.cur = t->w.end = NULL;
		pfs_thread_reset_sites(t);
		if (t != self) {
			t->in_use = 0;
			t->next_free = threads_free;
			threads_free = t;
		}
	}
	pfs_log_forget(&pfs_proc.log);
	pfs_proc.ppid = pfs_proc.pid;
	pfs_proc.pid = pfs_sys_getpid();
	pfs_proc.is_root = 0;
	pfs_proc.exit_status_known = 0;
	pfs_proc.seq = 0;
	pfs_proc.big_allocs = pfs_proc.big_bytes = 0;
	pfs_proc.start_mono_ns = pfs_now_ns();
	pfs_proc.start_real_ns = pfs_real_now_ns();
	if (!self)
		self = pfs_thread_get_slow();
	if (!self) {
		pfs_proc.enabled = 0;
		return;
	}
	self->tid = (uint32_t)pfs_sys_gettid();
	int err = open_log(PFS_FILE_FORKED);
	if (err) {
		pfs_proc.enabled = 0;
		pfs_warn("fork: cannot create the child's log in %s (%s); not tracing process %d",
			 pfs_proc.dir, strerror(-err), (int)pfs_proc.pid);
		return;
	}
	/* The child's log stands alone: the modules and stacks it inherited are written again. */
	pfs_modules_rewrite();
	pfs_stacks_rewrite(self);
	pfs_regions_child(self);
	pfs_exact_child(self);
	(void)how;
}

void pfs_core_note_fork(pid_t child, int how)
{
	struct pfs_thread *t = pfs_active() ? pfs_thread_get() : NULL;
	struct pfs_rec_fork *r = t ? pfs_rec_begin(t, sizeof(*r)) : NULL;
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
	struct pfs_rec_exec *r = t ? pfs_rec_begin(t, size) : NULL;
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
	struct pfs_rec_proc_end *r = t ? pfs_rec_begin(t, sizeof(*r)) : NULL;
	if (!r)
		return;
	r->seq = pfs_next_seq();
	r->time_ns = pfs_now_ns();
	r->status = status;
	r->reason = (uint32_t)reason;
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
		pfs_regions_scan_all(t, PFS_SCAN_END);
	pfs_exact_flush(t);
	write_exec(path, 0);
	write_end(PFS_END_EXEC, 0);
	pfs_proc.ended = 1;
}

void pfs_core_exec_failed(int err)
{
	if (!pfs_proc.enabled || !pfs_proc.ended || !in_own_process())
		return;
	pfs_proc.ended = 0;
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
		pfs_regions_scan_all(t, PFS_SCAN_END); /* touches since the last scan */
	pfs_exact_flush(t);
	write_end(reason, status);
	pfs_proc.ended = 1;
	if (!pfs_proc.is_root || pfs_proc.cfg.quiet)
		return;
	uint64_t count, bytes;
	pfs_counters_total(&count, &bytes);
	count += __atomic_load_n(&pfs_proc.big_allocs, __ATOMIC_RELAXED);
	bytes += __atomic_load_n(&pfs_proc.big_bytes, __ATOMIC_RELAXED);
	char hb[32];
	human_bytes(hb, sizeof(hb), bytes);
	char line[2 * PATH_MAX + 256];
	snprintf(line, sizeof(line),
		 "pfshim: mode %s, logs in %s: %llu allocations (%s), %llu first-touch and %llu copy-on-write "
		 "faults in process %d; see: pfshim report %s\n",
		 pfs_mode_name((unsigned)pfs_proc.mode), pfs_proc.dir, (unsigned long long)count, hb,
		 (unsigned long long)(pfs_regions_first_touches() + pfs_exact_first_touches()),
		 (unsigned long long)(pfs_regions_cow_faults() + pfs_exact_cow_faults()),
		 (int)pfs_proc.pid, pfs_proc.dir);
	pfs_raw_msg(line);
}
