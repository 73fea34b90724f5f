/*
 * Running a program under the shim: see launch.h.
 *
 * Exec failure travels through a close-on-exec pipe: the child writes what
 * failed (and errno) only when exec did not happen, so the parent tells "could
 * not run" from "ran and exited 127" without guessing from the status.
 */
#include "launch.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "logdir.h"
#include "model.h"

/* ---- the shim ------------------------------------------------------------ */

int pfs_launch_find_lib(char *buf, size_t len, const char *who)
{
	const char *env = getenv("PFSHIM_LIB");
	char exe[PATH_MAX], cand[PATH_MAX + 32], *slash;
	static const char *const rel[] = {"/libpfshim.so", "/../lib/libpfshim.so"};
	ssize_t n;

	if (len < PATH_MAX)	/* realpath() writes up to PATH_MAX bytes */
		return -EINVAL;
	if (env && *env) {
		if (!realpath(env, buf) || access(buf, R_OK)) {
			fprintf(stderr, "pfshim: %s: PFSHIM_LIB '%s': %s\n", who, env, strerror(errno));
			return -ENOENT;
		}
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0) {
		fprintf(stderr, "pfshim: %s: cannot find myself (/proc/self/exe): %s\n", who,
			strerror(errno));
		return -ENOENT;
	}
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		snprintf(cand, sizeof(cand), "%s%s", exe, rel[i]);
		if (realpath(cand, buf) && !access(buf, R_OK))
			return 0;
	}
	fprintf(stderr, "pfshim: %s: cannot find libpfshim.so in %s or %s/../lib; set PFSHIM_LIB\n",
		who, exe, exe);
	return -ENOENT;
}

/* ---- the log directory --------------------------------------------------- */

/* `dir` made absolute, without resolving links (it may not exist yet). */
static char *absolute(const char *dir)
{
	char cwd[PATH_MAX], *s;

	if (dir[0] == '/')
		return strdup(dir);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (asprintf(&s, "%s/%s", cwd, dir) < 0)
		return NULL;
	return s;
}

/* The logs in `dir`, removed when `remove`: how many (-errno when it cannot be read). */
static int logs_in(const char *dir, bool remove)
{
	char **names, path[PATH_MAX];
	int n = pfs_logdir_list(dir, &names), rc = n;

	for (int i = 0; remove && i < n; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path)) {
			rc = -ENAMETOOLONG;
			break;
		}
		if (unlink(path) < 0) {
			rc = -errno;
			break;
		}
	}
	pfs_logdir_free(names, n);
	return rc;
}

/* mkdir -p, 0700: 0 with *made the components made here (the last ones), else -errno at `bad`. */
static int make_dirs(char *path, int *made, const char **bad)
{
	struct stat st;

	*made = 0;
	for (char *p = path + 1;; p++) {
		bool last = *p == '\0';

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(path, 0700) == 0) {
			++*made;
		} else if (errno != EEXIST || stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
			int err = errno == EEXIST ? ENOTDIR : errno;

			*bad = path;	/* cut at the component that failed */
			return -err;
		}
		if (last)
			return 0;
		*p = '/';
	}
}

static int prepare_outdir(const char *dir, bool force, const char *who, int *made)
{
	char *path = strdup(dir);
	const char *bad = NULL;
	int rc, n;

	*made = 0;
	if (!path) {
		fprintf(stderr, "pfshim: %s: %s\n", who, strerror(ENOMEM));
		return PFS_EXIT_CANNOT_RUN;
	}
	/* "a//b/" and the like: the walk below wants single separators, no trailing one */
	for (char *r = path, *w = path;; r++) {
		if (*r == '/' && r[1] == '/')
			continue;
		*w++ = *r;
		if (!*r)
			break;
	}
	n = (int)strlen(path);
	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
	rc = make_dirs(path, made, &bad);
	if (rc) {
		fprintf(stderr, "pfshim: %s: cannot make the log directory '%s': %s%s%s\n", who, dir,
			bad && strcmp(bad, dir) ? bad : "", bad && strcmp(bad, dir) ? ": " : "",
			strerror(-rc));
		free(path);
		return PFS_EXIT_CANNOT_RUN;
	}
	free(path);
	n = logs_in(dir, false);
	if (n < 0) {
		fprintf(stderr, "pfshim: %s: cannot read the log directory '%s': %s\n", who, dir,
			strerror(-n));
		return PFS_EXIT_CANNOT_RUN;
	}
	if (access(dir, W_OK | X_OK) < 0) {
		fprintf(stderr, "pfshim: %s: cannot write into the log directory '%s': %s\n", who,
			dir, strerror(errno));
		return PFS_EXIT_CANNOT_RUN;
	}
	if (!n)
		return 0;
	if (!force) {
		fprintf(stderr, "pfshim: %s: '%s' already holds the logs of a run (%d file%s): give "
			"another directory, or --force to replace them\n", who, dir, n, n == 1 ? "" : "s");
		return PFS_EXIT_USAGE;
	}
	rc = logs_in(dir, true);
	if (rc < 0) {
		fprintf(stderr, "pfshim: %s: cannot remove the old logs in '%s': %s\n", who, dir,
			strerror(-rc));
		return PFS_EXIT_CANNOT_RUN;
	}
	fprintf(stderr, "pfshim: %s: removed the %d log%s of an earlier run from '%s'\n", who, n,
		n == 1 ? "" : "s", dir);
	return 0;
}

int pfs_launch_outdir(const char *dir, bool force, const char *who)
{
	int made;

	return prepare_outdir(dir, force, who, &made);
}

void pfs_launch_unmake(const char *dir, int made)
{
	char *path = strdup(dir), *slash;
	size_t n = path ? strlen(path) : 0;

	while (n > 1 && path[n - 1] == '/')
		path[--n] = '\0';
	for (int i = 0; path && i < made; i++) {
		if (rmdir(path) < 0 || !(slash = strrchr(path, '/')) || slash == path)
			break;
		*slash = '\0';
	}
	free(path);
}

/* ---- running ------------------------------------------------------------- */

/*
 * What the child says through the pipe: STAGE_READY once the directory is
 * there, then, only if exec did not happen, what failed.
 */
enum launch_stage { STAGE_READY, STAGE_DIR, STAGE_ENV, STAGE_FILES, STAGE_EXEC };

struct launch_msg {
	int stage;	/* enum launch_stage */
	int err;	/* errno; STAGE_DIR: the exit status, the reason already said */
	int made;	/* components of the log directory made by this run */
};

/* The one piece of global state: the child that SIGTERM / SIGHUP are passed to. */
static volatile sig_atomic_t launch_child;

static void forward_signal(int sig)
{
	if (launch_child > 0)
		kill((pid_t)launch_child, sig);
}

static int redirect(int fd, const char *path, int flags)
{
	int f = open(path, flags | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (f < 0 || dup2(f, fd) < 0)
		return -1;
	close(f);
	return 0;
}

/* In the child, between fork and exec: the directory, the environment, the exec. */
static void child(const struct pfs_launch *l, const char *outdir, int errfd, int gofd)
{
	const char *old = getenv("LD_PRELOAD");
	struct launch_msg msg = {0};
	char *preload = NULL;
	int made = 0;
	ssize_t n;
	int rc;

	rc = prepare_outdir(outdir, l->force, l->who, &made);
	if (rc) {
		msg = (struct launch_msg){STAGE_DIR, rc, 0};
		goto fail;
	}
	/* the directory made: what the parent removes should nothing be logged */
	msg.made = made;
	n = write(errfd, &msg, sizeof(msg));
	msg.stage = STAGE_ENV;
	if (old && *old ? asprintf(&preload, "%s:%s", l->lib, old) < 0 : !(preload = strdup(l->lib))) {
		msg.err = ENOMEM;
		goto fail;
	}
	if (setenv("LD_PRELOAD", preload, 1) || setenv("PFSHIM_OUT", outdir, 1) ||
	    setenv("PFSHIM_QUIET", "1", 1) || (l->mode && setenv("PFSHIM_MODE", l->mode, 1)) ||
	    (l->policy && setenv("PFSHIM_POLICY", l->policy, 1)) ||
	    (!l->policy && l->no_policy && unsetenv("PFSHIM_POLICY"))) {
		msg.err = errno;
		goto fail;
	}
	/* pfshim's own setting: the shim checks the PFSHIM_* names it knows and would warn */
	unsetenv("PFSHIM_LIB");
	msg.stage = STAGE_FILES;
	if ((l->null_stdin && redirect(STDIN_FILENO, "/dev/null", O_RDONLY)) ||
	    (l->stdout_path && redirect(STDOUT_FILENO, l->stdout_path, O_WRONLY | O_CREAT | O_TRUNC)) ||
	    (l->stderr_path && redirect(STDERR_FILENO, l->stderr_path, O_WRONLY | O_CREAT | O_TRUNC))) {
		msg.err = errno;
		goto fail;
	}
	msg.stage = STAGE_EXEC;
	if (gofd >= 0) { /* the parent's l->started first: it closes its end when done */
		char c;
		while (read(gofd, &c, 1) < 0 && errno == EINTR)
			;
		close(gofd);
	}
	execvp(l->argv[0], l->argv);
	msg.err = errno;
fail:
	/* should this write fail, the parent sees the status 127 and no message */
	n = write(errfd, &msg, sizeof(msg));
	(void)n;
	_exit(PFS_EXIT_CANNOT_RUN);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int pfs_launch_run(const struct pfs_launch *l, struct pfs_launch_result *r)
{
	struct sigaction ign = {.sa_handler = SIG_IGN}, fwd = {.sa_handler = forward_signal};
	struct sigaction old_int, old_quit, old_term, old_hup;
	struct launch_msg msg = {0};
	char name[32], *outdir = NULL;
	int pfd[2], gfd[2] = {-1, -1}, wst = 0, made = 0;
	bool failed = false;
	uint64_t t0;
	pid_t pid;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	if (l->outdir && !(outdir = absolute(l->outdir))) {
		fprintf(stderr, "pfshim: %s: cannot resolve '%s': %s\n", l->who, l->outdir,
			strerror(errno));
		return PFS_EXIT_CANNOT_RUN;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		fprintf(stderr, "pfshim: %s: pipe: %s\n", l->who, strerror(errno));
		free(outdir);
		return PFS_EXIT_CANNOT_RUN;
	}
	if (l->started && pipe2(gfd, O_CLOEXEC) < 0) {
		fprintf(stderr, "pfshim: %s: pipe: %s\n", l->who, strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		free(outdir);
		return PFS_EXIT_CANNOT_RUN;
	}
	fflush(NULL);	/* nothing buffered may be written twice */
	t0 = now_ns();
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "pfshim: %s: fork: %s\n", l->who, strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		if (gfd[0] >= 0)
			close(gfd[0]), close(gfd[1]);
		free(outdir);
		return PFS_EXIT_CANNOT_RUN;
	}
	if (!outdir) {
		/* ./pfshim.<pid of the first traced process>, which is the child */
		snprintf(name, sizeof(name), "pfshim.%d", (int)(pid ? pid : getpid()));
		outdir = absolute(name);
	}
	if (pid == 0) {
		close(pfd[0]);
		if (gfd[1] >= 0)
			close(gfd[1]);
		if (!outdir)
			_exit(PFS_EXIT_CANNOT_RUN);
		child(l, outdir, pfd[1], gfd[0]);
	}
	close(pfd[1]);
	if (gfd[0] >= 0) {
		close(gfd[0]);
		l->started(pid, outdir, l->started_arg);
		close(gfd[1]); /* the child may exec now */
	}
	if (l->like_system) {
		/* like system(): the terminal's ^C and ^\ are the program's to handle */
		launch_child = pid;
		sigaction(SIGINT, &ign, &old_int);
		sigaction(SIGQUIT, &ign, &old_quit);
		sigaction(SIGTERM, &fwd, &old_term);
		sigaction(SIGHUP, &fwd, &old_hup);
	}
	for (;;) {
		struct launch_msg m;

		n = read(pfd[0], &m, sizeof(m));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(m))
			break;
		if (m.stage == STAGE_READY)
			made = m.made;
		else
			msg = m, failed = true;
	}
	close(pfd[0]);
	while (wait4(pid, &wst, 0, &r->ru) < 0 && errno == EINTR)
		;
	r->wall_ns = now_ns() - t0;
	if (l->like_system) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGHUP, &old_hup, NULL);
		launch_child = 0;
	}
	if (failed || !outdir) {
		int status = PFS_EXIT_CANNOT_RUN;

		if (!outdir)
			fprintf(stderr, "pfshim: %s: %s\n", l->who, strerror(ENOMEM));
		else if (msg.stage == STAGE_DIR)
			status = msg.err;	/* the child said why */
		else if (msg.stage == STAGE_EXEC)
			fprintf(stderr, "pfshim: %s: cannot run '%s': %s\n", l->who, l->argv[0],
				strerror(msg.err));
		else
			fprintf(stderr, "pfshim: %s: cannot prepare to run '%s': %s\n", l->who,
				l->argv[0], strerror(msg.err));
		if (outdir)	/* nothing ran: leave no empty directory of ours */
			pfs_launch_unmake(outdir, made);
		free(outdir);
		return status;
	}
	r->wst = wst;
	if (WIFEXITED(wst))
		r->status = WEXITSTATUS(wst);
	else if (WIFSIGNALED(wst))
		r->status = 128 + WTERMSIG(wst);
	else
		r->status = PFS_EXIT_CANNOT_RUN;
	r->outdir = outdir;
	r->made_dirs = made;
	return 0;
}

/* ---- finding programs ---------------------------------------------------- */

/* argv0 as execvp finds it: with a '/' as is, else the first executable in PATH. */
static char *which(const char *argv0)
{
	const char *path = getenv("PATH");
	char *dirs, *save = NULL, *cand = NULL;

	if (strchr(argv0, '/'))
		return strdup(argv0);
	dirs = strdup(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (char *d = dirs ? strtok_r(dirs, ":", &save) : NULL; d; d = strtok_r(NULL, ":", &save)) {
		if (asprintf(&cand, "%s/%s", *d ? d : ".", argv0) < 0) {
			cand = NULL;
			break;
		}
		if (!access(cand, X_OK))
			break;
		free(cand);
		cand = NULL;
	}
	free(dirs);
	return cand;
}

/* ---- the pager ---------------------------------------------------------- */

FILE *pfs_launch_pager(struct pfs_launch_pager *pg)
{
	const char *pager = getenv("PAGER");
	struct sigaction ign = {.sa_handler = SIG_IGN};
	char *found = NULL;
	int pfd[2];

	memset(pg, 0, sizeof(*pg));
	if (!isatty(STDOUT_FILENO))
		return stdout;
	if (!pager && (found = which("less")) == NULL)
		found = which("more");
	if (!pager)
		pager = found;
	if (!pager || !*pager || !strcmp(pager, "cat") || pipe2(pfd, O_CLOEXEC) < 0) {
		free(found);
		return stdout;
	}
	fflush(stdout);
	pg->pid = fork();
	if (pg->pid == 0) {
		dup2(pfd[0], STDIN_FILENO);
		/* git's defaults: quit if one screen, raw colours, no init; lv's colours */
		setenv("LESS", "FRX", 0);
		setenv("LV", "-c", 0);
		execl("/bin/sh", "sh", "-c", pager, (char *)NULL);
		_exit(PFS_EXIT_CANNOT_RUN);
	}
	free(found);
	close(pfd[0]);
	if (pg->pid < 0 || !(pg->f = fdopen(pfd[1], "w"))) {
		if (pg->pid > 0)
			waitpid(pg->pid, NULL, 0);
		close(pfd[1]);
		pg->pid = 0;
		return stdout;
	}
	/* the user may quit before the end: the writes then fail, quietly */
	sigaction(SIGPIPE, &ign, &pg->old_pipe);
	return pg->f;
}

void pfs_launch_pager_end(struct pfs_launch_pager *pg)
{
	if (pg->pid <= 0)
		return;
	fclose(pg->f);
	while (waitpid(pg->pid, NULL, 0) < 0 && errno == EINTR)
		;
	sigaction(SIGPIPE, &pg->old_pipe, NULL);
	pg->pid = 0;
}

/* ---- who was not traced -------------------------------------------------- */

/* What an ELF file says: a dynamic linker wanted, a sanitizer's runtime, Go's build notes. */
struct elf_facts {
	bool elf, interp, go;
	const char *sanitizer;	/* the runtime's library name, static storage */
};

static void elf_facts(int fd, struct elf_facts *f)
{
	static const char *const sans[] = {"libasan.so*", "libtsan.so*", "libmsan.so*",
					   "libhwasan.so*", "liblsan.so*"};
	Elf *e;
	size_t n = 0, shstr = 0;
	Elf_Scn *scn = NULL;

	memset(f, 0, sizeof(*f));
	elf_version(EV_CURRENT);
	e = elf_begin(fd, ELF_C_READ, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF) {
		elf_end(e);
		return;
	}
	f->elf = true;
	if (!elf_getphdrnum(e, &n))
		for (size_t i = 0; i < n; i++) {
			GElf_Phdr ph;

			if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_INTERP)
				f->interp = true;
		}
	elf_getshdrstrndx(e, &shstr);
	while ((scn = elf_nextscn(e, scn)) != NULL) {
		GElf_Shdr sh;
		const char *name;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(e, shstr, sh.sh_name);
		if (name && (!strcmp(name, ".go.buildinfo") || !strcmp(name, ".note.go.buildid")))
			f->go = true;
		if (sh.sh_type != SHT_DYNAMIC || !(d = elf_getdata(scn, NULL)))
			continue;
		for (size_t i = 0; sh.sh_entsize && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Dyn dyn;
			const char *lib;

			if (!gelf_getdyn(d, (int)i, &dyn) || dyn.d_tag != DT_NEEDED)
				continue;
			lib = elf_strptr(e, sh.sh_link, dyn.d_un.d_val);
			for (size_t k = 0; lib && k < sizeof(sans) / sizeof(sans[0]); k++)
				if (!fnmatch(sans[k], lib, 0))
					f->sanitizer = sans[k];
		}
	}
	elf_end(e);
}

/*
 * Why the executable at `path` would not be traced (or, `traced`, why it
 * shows no allocations), as a phrase into buf; false when nothing explains it.
 * A script is judged by its interpreter.
 */
static bool why_not(const char *path, bool traced, char *buf, size_t len, int depth)
{
	struct elf_facts f;
	struct stat st;
	char line[256];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	if (!traced && (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) ||
			((st.st_mode & S_ISGID) && st.st_gid != getegid()))) {
		close(fd);
		snprintf(buf, len, "set-user-ID or set-group-ID: the dynamic linker ignores LD_PRELOAD "
			 "for it");
		return true;
	}
	elf_facts(fd, &f);
	if (!f.elf) {
		char *end, *interp;

		n = pread(fd, line, sizeof(line) - 1, 0);
		close(fd);
		if (n < 3 || line[0] != '#' || line[1] != '!' || depth > 0)
			return false;
		line[n] = '\0';
		end = strchr(line, '\n');
		if (end)
			*end = '\0';
		interp = line + 2 + strspn(line + 2, " \t");
		interp[strcspn(interp, " \t")] = '\0';
		return *interp && why_not(interp, traced, buf, len, depth + 1);
	}
	close(fd);
	if (!f.interp && !traced)
		snprintf(buf, len, "a static executable%s: no dynamic linker loads the shim into it",
			 f.go ? " (Go)" : "");
	else if (f.go)
		snprintf(buf, len, "a Go program: its runtime maps memory with system calls of its own, "
			 "not through libc");
	else if (f.sanitizer)
		snprintf(buf, len, "built with a sanitizer (%.*s): its runtime must be the first "
			 "library loaded, and has an allocator of its own", (int)strcspn(f.sanitizer, "*"),
			 f.sanitizer);
	else
		return false;
	return true;
}

/* A command from a log, to a terminal: control bytes as '?', at most 60 bytes. */
/* s, control characters as '?', cut after `max` characters ("..."). */
static void put_text(FILE *out, const char *s, size_t max)
{
	size_t n = 0;

	for (; s && *s && n < max; s++, n++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
	if (!s || n == 0)
		fputc('?', out);
	else if (*s)
		fputs("...", out);
}

/* A command line: its first 60 characters.  A path is written whole (put_text). */
static void put_command(FILE *out, const char *s)
{
	put_text(out, s, 60);
}

#define UNLOGGED_WHY "a static or set-user-ID program, or one run without LD_PRELOAD"

static const struct pfs_proc *image_after(const struct pfs_run *run, const struct pfs_proc *p)
{
	for (size_t i = 0; i < run->nprocs; i++)
		if (run->procs[i]->pid == p->pid && run->procs[i]->exec_gen == p->exec_gen + 1)
			return run->procs[i];
	return NULL;
}

static bool has_pid(const struct pfs_run *run, uint64_t pid)
{
	for (size_t i = 0; i < run->nprocs; i++)
		if (run->procs[i]->pid == pid)
			return true;
	return false;
}

static bool in_children(const struct pfs_proc *p, uint64_t pid)
{
	for (size_t k = 0; k < p->nchildren; k++)
		if (p->children[k].pid == pid)
			return true;
	return false;
}

/*
 * Children of p that left no log: a posix_spawn child's pid is logged, a
 * vfork child's is not (the shim stays out of it until it execs), so those
 * are counted: vforks against the logged children no fork record names.
 */
static int unlogged_children(const struct pfs_run *run, const struct pfs_proc *p, const char *who,
			     FILE *out)
{
	size_t vforks = 0, logged = 0;
	int lines = 0;

	for (size_t k = 0; k < p->nchildren; k++) {
		const struct pfs_child *c = &p->children[k];

		if (c->how == PFS_VFORK && !c->pid)
			vforks++;
		else if (c->how == PFS_SPAWN && c->pid && !has_pid(run, c->pid)) {
			fprintf(out, "pfshim: %s: not traced: pid %" PRIu64 ", started by pid %" PRIu64
				" with posix_spawn, left no log (%s)\n", who, c->pid, p->pid, UNLOGGED_WHY);
			lines++;
		}
	}
	for (size_t k = 0; vforks && k < p->nkids; k++)
		logged += (!p->kids[k]->via_exec || (p->kids[k]->start_flags & PFS_PROC_OUTSIDE)) &&
			  !in_children(p, p->kids[k]->pid); /* record's outside log of what it exec'd counts */
	if (vforks > logged) {
		fprintf(out, "pfshim: %s: not traced: %zu process%s started by pid %" PRIu64 " (",
			who, vforks - logged, vforks - logged == 1 ? "" : "es", p->pid);
		put_command(out, p->command);
		fprintf(out, ") with vfork left no log (%s)\n", UNLOGGED_WHY);
		lines++;
	}
	return lines;
}

int pfs_launch_untraced(const struct pfs_run *run, const char *argv0, const char *who, FILE *out)
{
	char why[256];
	int lines = 0;

	if (!run->nprocs) {
		char *path = which(argv0);

		if (path && why_not(path, false, why, sizeof(why), 0))
			fprintf(out, "pfshim: %s: no logs were written: '%s' was not traced: %s\n", who,
				argv0, why);
		else
			fprintf(out, "pfshim: %s: no logs were written: '%s' was not traced (it removed "
				"LD_PRELOAD from its environment, or ended before the shim started)\n",
				who, argv0);
		free(path);
		return 1;
	}
	for (size_t i = 0; i < run->nprocs; i++) {
		const struct pfs_proc *p = run->procs[i];

		if (p->start_flags & PFS_PROC_OUTSIDE) {
			/* record saw it from outside (kevents.c): why no shim, and what is counted instead */
			if ((p->file_flags & PFS_FILE_FORKED) && p->ended && p->end_reason == PFS_END_EXEC)
				snprintf(why, sizeof(why), "a child between its fork and its exec (the shim "
					 "stays out of a vfork child)");
			else if (!p->exe || !why_not(p->exe, false, why, sizeof(why), 0))
				snprintf(why, sizeof(why), "LD_PRELOAD was not in its environment");
			fprintf(out, "pfshim: %s: not traced: pid %" PRIu64 " ('", who, p->pid);
			put_text(out, p->exe ? p->exe : "?", PATH_MAX);
			fprintf(out, "'): %s; its faults are counted by mapping, from the kernel's fault events\n",
				why);
			lines++;
			continue;
		}
		if (p->ended && p->end_reason == PFS_END_EXEC && p->exec_path && !image_after(run, p)) {
			if (!why_not(p->exec_path, false, why, sizeof(why), 0))
				snprintf(why, sizeof(why), "LD_PRELOAD was not in its environment");
			fprintf(out, "pfshim: %s: not traced: pid %" PRIu64 " after exec of '", who,
				p->pid);
			put_text(out, p->exec_path, PATH_MAX);
			fprintf(out, "': %s\n", why);
			lines++;
		}
		lines += unlogged_children(run, p, who, out);
		if (!p->totals.allocations && p->exe && why_not(p->exe, true, why, sizeof(why), 0)) {
			fprintf(out, "pfshim: %s: pid %" PRIu64 " (", who, p->pid);
			put_command(out, p->command);
			fprintf(out, ") was traced but shows no allocation: %s\n", why);
			lines++;
		}
	}
	return lines;
}
