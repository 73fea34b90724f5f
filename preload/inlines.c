/*
 * Inlined functions for site= (inlines.h).
 *
 * libdw is opened with dlopen at start, only when a policy has site= rules,
 * in a child process forked for the purpose (pfs_inlines_load): the
 * program never loads it, and its heap stays as it was.  Only the ranges whose
 * names a rule wants are kept, in the shim's arena, sorted by start with the
 * running maximum of their ends, so that a lookup stops as soon as nothing
 * before could still hold the address.  The table is written once, before
 * any hook reads it, and never changes.
 */
#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <libelf.h>
#include <limits.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "inlines.h"
#include "modules.h"
#include "msg.h"
#include "proc.h"
#include "symtab.h"
#include "util.h"

/* The libdw and libelf functions used, resolved from the dlopen'ed libdw (libelf is its dependency). */
#define DW_FUNCS(X)                                                                                    \
	X(elf_version) X(elf_begin) X(elf_end) X(dwelf_elf_gnu_build_id) X(dwarf_begin_elf) X(dwarf_end) \
	X(dwarf_nextcu) X(dwarf_offdie) X(dwarf_child) X(dwarf_siblingof) X(dwarf_tag) X(dwarf_diename) \
	X(dwarf_attr_integrate) X(dwarf_formstring) X(dwarf_ranges)

struct dw {
#define X(f) __typeof__(f) *f;
	DW_FUNCS(X)
#undef X
};

struct inl {
	uint64_t start, end; /* run-time addresses */
	uint64_t max_end;    /* the largest end of this and every range before it */
	const char *name;
};

static struct inl *table;
static unsigned ntable;

/* ---- collecting ----------------------------------------------------------- */

#define MAX_OBJECTS 512
#define MAX_DEPTH 128

struct obj {
	char path[PATH_MAX];
	uint64_t bias;
};

struct objs {
	struct obj *v;
	unsigned n;
};

/*
 * The distribution's libraries are not read: their DWARF, where installed
 * (libc6-dbg), is large (libc's takes about 0.2 s, in every process), and
 * a rule names the program's own functions.  The program itself is read
 * wherever it lives.
 */
static int distribution_library(const char *path)
{
	static const char *const dirs[] = {"/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/"};
	for (size_t i = 0; i < PFS_ARRAY_SIZE(dirs); i++)
		if (!strncmp(path, dirs[i], strlen(dirs[i])))
			return 1;
	return 0;
}

/* The object holds the shim's own code: its frames are never a site's, its DWARF never read (5-8 ms of every start). */
static int is_self(const struct dl_phdr_info *info)
{
	uint64_t start, end, here = (uintptr_t)&is_self;
	pfs_module_range(info, &start, &end);
	return here >= start && here < end;
}

/* The path of an object whose DWARF is read, maybe in buf; NULL for the others. */
static const char *candidate(struct dl_phdr_info *info, char *buf, size_t len)
{
	int program = !info->dlpi_name || !info->dlpi_name[0];
	if (!program && is_self(info)) /* the preloaded library; linked into a program (a unit test), it is the program's */
		return NULL;
	const char *name = pfs_module_name(info, buf, len);
	if (name[0] != '/' || (!program && distribution_library(name)))
		return NULL; /* the vdso (no file); the distribution's libraries */
	return name;
}

/* Stops at the first object to read that has DWARF (pfs_symtab_has_dwarf): *(int *)arg = 1. */
static int dwarf_somewhere(struct dl_phdr_info *info, size_t size, void *arg)
{
	char buf[PATH_MAX];
	(void)size;
	const char *name = candidate(info, buf, sizeof(buf));
	return name && pfs_symtab_has_dwarf(name) ? (*(int *)arg = 1) : 0;
}

static int note_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct objs *o = arg;
	(void)size;
	if (o->n == MAX_OBJECTS)
		return 1;
	const char *name = candidate(info, o->v[o->n].path, sizeof(o->v[o->n].path));
	if (!name)
		return 0;
	if (name != o->v[o->n].path)
		snprintf(o->v[o->n].path, sizeof(o->v[o->n].path), "%s", name);
	o->v[o->n++].bias = info->dlpi_addr;
	return 0;
}

/* A name's verdict, by the name's address (one pointer per string of an object's .debug_str; forgotten between objects). */
struct seen {
	const char *name;
	int wanted;
};
#define SEEN_SLOTS 8192u /* a power of two; full, names are matched again */

struct collect {
	const struct dw *dw;
	int (*want)(const char *name, void *arg);
	void *want_arg;
	uint64_t bias;
	struct inl *v;
	unsigned n, cap;
	struct seen *seen; /* SEEN_SLOTS, or NULL */
	unsigned nseen;
};

/*
 * Whether a rule wants the function `name` (mangled or plain), demangled as
 * the analyzer shows it if need be.  Once per name: a C++ program's DWARF
 * holds the same inlined templates thousands of times, and each demangling
 * switches stacks (two system calls): cc1-sized programs spent most of a
 * policy's start here.
 */
static int wanted(struct collect *c, const char *name)
{
	uintptr_t h = ((uintptr_t)name >> 3) * 0x9e3779b97f4a7c15ull;
	struct seen *e = NULL;
	if (c->seen)
		for (unsigned i = 0; i < 16; i++) {
			e = &c->seen[(h + i) & (SEEN_SLOTS - 1)];
			if (e->name == name)
				return e->wanted;
			if (!e->name)
				break;
			e = NULL;
		}
	char dem[1024];
	int w = c->want(name, c->want_arg) || (pfs_symtab_demangle(name, dem, sizeof(dem)) && c->want(dem, c->want_arg));
	if (e && c->nseen < SEEN_SLOTS / 2) {
		*e = (struct seen){.name = name, .wanted = w};
		c->nseen++;
	}
	return w;
}

static int push(struct collect *c, uint64_t start, uint64_t end, const char *name)
{
	if (c->n == c->cap) {
		unsigned cap = c->cap ? c->cap * 2 : 256;
		struct inl *v = pfs_pool_alloc(cap * sizeof(*v));
		if (!v)
			return -1;
		if (c->n)
			memcpy(v, c->v, c->n * sizeof(*v));
		pfs_pool_free(c->v, c->cap * sizeof(*v));
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = (struct inl){.start = start, .end = end, .name = name};
	return 0;
}

/* An inlined instance: its function's name as the analyzer gives it, its ranges if a rule wants it. */
static void consider(struct collect *c, Dwarf_Die *die)
{
	const struct dw *dw = c->dw;
	Dwarf_Attribute attr;
	const char *name = dw->dwarf_formstring(dw->dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
	if (!name || name[0] != '_' || name[1] != 'Z')
		name = dw->dwarf_diename(die);
	if (!name || !wanted(c, name))
		return;
	size_t len = strlen(name);
	char *copy = NULL;
	Dwarf_Addr base, start, end;
	ptrdiff_t off = 0;
	while ((off = dw->dwarf_ranges(die, off, &base, &start, &end)) > 0) {
		if (end <= start)
			continue;
		if (!copy && !(copy = pfs_arena_alloc(len + 1)))
			return;
		memcpy(copy, name, len + 1);
		if (push(c, start + c->bias, end + c->bias, copy))
			return;
	}
}

/* Every DIE that can hold code: functions, blocks, namespaces, classes (their local functions). */
static void walk(struct collect *c, Dwarf_Die *parent, int depth)
{
	const struct dw *dw = c->dw;
	Dwarf_Die die;
	if (depth > MAX_DEPTH || dw->dwarf_child(parent, &die) != 0)
		return;
	do {
		switch (dw->dwarf_tag(&die)) {
		case DW_TAG_inlined_subroutine:
			consider(c, &die);
			walk(c, &die, depth + 1);
			break;
		case DW_TAG_subprogram:
		case DW_TAG_lexical_block:
		case DW_TAG_namespace:
		case DW_TAG_class_type:
		case DW_TAG_structure_type:
		case DW_TAG_union_type:
		case DW_TAG_try_block:
		case DW_TAG_catch_block:
		case DW_TAG_entry_point:
			walk(c, &die, depth + 1);
			break;
		default:
			break;
		}
	} while (dw->dwarf_siblingof(&die, &die) == 0);
}

static void read_dwarf(struct collect *c, Dwarf *dbg)
{
	const struct dw *dw = c->dw;
	Dwarf_Off off = 0, next;
	size_t hsize;
	while (dw->dwarf_nextcu(dbg, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu;
		if (dw->dwarf_offdie(dbg, off + hsize, &cu))
			walk(c, &cu, 0);
		off = next;
	}
}

/* The object's DWARF, from the file or its /usr/lib/debug/.build-id file (Debian's -dbgsym packages). */
static void read_object(struct collect *c, const struct obj *o)
{
	const struct dw *dw = c->dw;
	int fd = PFS_NO_EINTR(open(o->path, O_RDONLY | O_CLOEXEC));
	if (fd < 0)
		return;
	Elf *elf = dw->elf_begin(fd, ELF_C_READ_MMAP, NULL);
	Dwarf *dbg = elf ? dw->dwarf_begin_elf(elf, DWARF_C_READ, NULL) : NULL;
	int dfd = -1;
	Elf *delf = NULL;
	if (!dbg && elf) {
		const void *id;
		ssize_t n = dw->dwelf_elf_gnu_build_id(elf, &id);
		char path[PATH_MAX];
		if (n >= 2 && n <= 64) {
			const uint8_t *b = id;
			int k = snprintf(path, sizeof(path), "/usr/lib/debug/.build-id/%02x/", b[0]);
			for (ssize_t i = 1; i < n; i++)
				k += snprintf(path + k, sizeof(path) - (size_t)k, "%02x", b[i]);
			snprintf(path + k, sizeof(path) - (size_t)k, ".debug");
			dfd = PFS_NO_EINTR(open(path, O_RDONLY | O_CLOEXEC));
		}
		delf = dfd >= 0 ? dw->elf_begin(dfd, ELF_C_READ_MMAP, NULL) : NULL;
		dbg = delf ? dw->dwarf_begin_elf(delf, DWARF_C_READ, NULL) : NULL;
	}
	if (dbg) {
		c->bias = o->bias;
		read_dwarf(c, dbg);
		dw->dwarf_end(dbg);
	}
	if (delf)
		dw->elf_end(delf);
	if (dfd >= 0)
		close(dfd);
	if (elf)
		dw->elf_end(elf);
	close(fd);
}

/* By start: in the child, whose heap qsort may use. */
static int by_start(const void *a, const void *b)
{
	const struct inl *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * What the reading child hands back, in a shared mapping: the ranges, sorted
 * by start, then their names (offsets into the text after them).
 */
#define RESULT_BYTES (16u << 20)
struct result {
	uint32_t done;	/* the child finished: 1, or 2 without libdw */
	uint32_t n;
	uint64_t text; /* bytes of names */
	struct {
		uint64_t start, end, name;
	} e[];
};

/* In the child: libdw, the objects' DWARF, the wanted ranges into `r`; -1 without libdw. */
static int read_all(struct result *r, int (*want)(const char *name, void *arg), void *arg)
{
	void *h = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
	struct dw dw;
	int ok = h != NULL;
#define X(f) ok = ok && (dw.f = (__typeof__(f) *)dlsym(h, #f)) != NULL;
	DW_FUNCS(X)
#undef X
	struct objs objs = {.v = ok ? pfs_pool_alloc(MAX_OBJECTS * sizeof(struct obj)) : NULL};
	struct collect c = {.dw = &dw, .want = want, .want_arg = arg, .seen = ok ? pfs_pool_alloc(SEEN_SLOTS * sizeof(struct seen)) : NULL};
	if (!objs.v || dw.elf_version(EV_CURRENT) == EV_NONE)
		return -1;
	dl_iterate_phdr(note_object, &objs);
	for (unsigned i = 0; i < objs.n; i++) {
		/* names point into the object's mapping: the next object may be mapped at the same place */
		if (c.seen)
			memset(c.seen, 0, SEEN_SLOTS * sizeof(struct seen));
		c.nseen = 0;
		read_object(&c, &objs.v[i]);
	}
	if (c.n)
		qsort(c.v, c.n, sizeof(*c.v), by_start);
	size_t room = RESULT_BYTES - sizeof(*r);
	char *text = (char *)&r->e[c.n];
	for (unsigned i = 0; i < c.n && (i + 1) * sizeof(r->e[0]) < room; i++) {
		size_t len = strlen(c.v[i].name) + 1;
		if ((i + 1) * sizeof(r->e[0]) + r->text + len > room)
			break;
		memcpy(text + r->text, c.v[i].name, len);
		r->e[i].start = c.v[i].start;
		r->e[i].end = c.v[i].end;
		r->e[i].name = r->text;
		r->text += len;
		r->n = i + 1;
	}
	return 0;
}

/*
 * The reading happens in a child (a raw fork: no atfork handler runs, no
 * hook sees it) that hands the ranges back through a shared mapping and
 * exits: libdw's allocations would otherwise warm the program's heap (the
 * pages a later allocation would have first-touched), and its mappings
 * stay out of the program's address space.  The parent waits for it, at
 * most WAIT_MS.
 */
#define WAIT_MS 30000

unsigned pfs_inlines_load(int (*want)(const char *name, void *arg), void *arg)
{
	int first = pfs_proc.cfg.run_pid == 0;
	/*
	 * No object to read has DWARF (a stripped program of the distribution,
	 * its debug package not installed: most processes of a build): no
	 * child, no libdw (about 4 ms of such a process's start).
	 */
	int any = 0;
	dl_iterate_phdr(dwarf_somewhere, &any);
	if (!any)
		return 0;
	struct result *r = pfs_sys_mmap(NULL, RESULT_BYTES, PROT_READ | PROT_WRITE,
					MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return 0;
	pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
	if (pid == 0) {
		__atomic_store_n(&r->done, read_all(r, want, arg) ? 2 : 1, __ATOMIC_RELEASE);
		syscall(SYS_exit_group, 0);
	}
	unsigned waited = 0;
	for (; pid > 0 && waited < WAIT_MS; waited++) {
		int st;
		pid_t w = (pid_t)syscall(SYS_wait4, pid, &st, WNOHANG, NULL);
		if (w == pid || (w < 0 && errno == ECHILD)) /* ECHILD: SIGCHLD ignored, reaped already */
			break;
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
	}
	if (pid > 0 && waited == WAIT_MS) {
		syscall(SYS_kill, pid, SIGKILL);
		syscall(SYS_wait4, pid, NULL, 0, NULL);
	}
	uint32_t done = __atomic_load_n(&r->done, __ATOMIC_ACQUIRE);
	unsigned n = done == 1 ? r->n : 0;
	struct inl *v = n ? pfs_pool_alloc(n * sizeof(*v)) : NULL;
	char *text = v ? pfs_arena_alloc(r->text) : NULL;
	if (text) {
		memcpy(text, &r->e[n], r->text);
		for (unsigned i = 0; i < n; i++)
			v[i] = (struct inl){.start = r->e[i].start, .end = r->e[i].end, .name = text + r->e[i].name};
	}
	if (first && done != 1)
		pfs_warn("policy: site= cannot see inlined functions: %s; symbol tables only",
			 pid < 0		? "no process to read DWARF in"
			 : waited == WAIT_MS ? "reading DWARF took over 30 s"
			 : done == 2	? "libdw.so.1 (Debian's libdw1) cannot be loaded"
					: "the process reading DWARF failed");
	pfs_sys_munmap(r, RESULT_BYTES);
	if (!text)
		return 0;
	for (unsigned i = 0; i < n; i++)
		v[i].max_end = i && v[i - 1].max_end > v[i].end ? v[i - 1].max_end : v[i].end;
	table = v;
	__atomic_store_n(&ntable, n, __ATOMIC_RELEASE);
	return n;
}

unsigned pfs_inlines_names(uint64_t addr, const char **names, unsigned max)
{
	unsigned n = __atomic_load_n(&ntable, __ATOMIC_ACQUIRE), lo = 0, hi = n, k = 0;
	/* the last range starting at or below addr */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (table[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (unsigned i = lo; i-- > 0 && table[i].max_end > addr && k < max;)
		if (addr < table[i].end && (!k || names[k - 1] != table[i].name))
			names[k++] = table[i].name;
	return k;
}
