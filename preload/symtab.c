/*
 * Symbol tables of the loaded objects, for policies (symtab.h).
 *
 * The table of objects is published whole through one pointer: a sync
 * builds a new table beside the current one and swaps it in with a
 * compare-and-swap, so readers take no lock and a fork never leaves a child
 * with half a table.  No shim lock is held while the loader's lock is taken
 * (dl_iterate_phdr): a thread inside dlopen whose constructors allocate can
 * always come through here.  The ELF files are mapped with the raw system
 * call and parsed by hand (elf.h): libelf would allocate with the program's
 * malloc from inside its hooks.  Their string tables stay mapped (file pages,
 * shared with the page cache); the names point into them.
 */
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <ucontext.h>
#include <unistd.h>

#include <pfshim/demangle.h>

#include "arena.h"
#include "modules.h"
#include "symtab.h"
#include "util.h"

struct sym {
	uint64_t start;
	uint32_t size;
	uint32_t name; /* offset in the object's string table */
};

struct object {
	uint64_t base;	     /* load bias */
	uint64_t start, end; /* its PT_LOAD segments at run time */
	char *path;
	size_t path_len;
	const char *strtab;
	uint64_t strsz;
	struct sym *syms; /* sorted by start */
	uint32_t nsyms;
	void *map;
	size_t map_len;
};

struct table {
	unsigned long long adds, subs; /* the loader's counters when it was built */
	uint32_t epoch;
	uint32_t n;
	struct object *objs[]; /* sorted by start */
};

static struct table *cur;

/* ---- reading one object's symbols --------------------------------------- */

static void sym_swap(struct sym *a, struct sym *b)
{
	struct sym t = *a;
	*a = *b;
	*b = t;
}

/* Heapsort by start: no recursion, no allocation (glibc's qsort may call malloc). */
static void sift(struct sym *s, size_t root, size_t n)
{
	for (;;) {
		size_t c = 2 * root + 1;
		if (c >= n)
			return;
		if (c + 1 < n && s[c + 1].start > s[c].start)
			c++;
		if (s[root].start >= s[c].start)
			return;
		sym_swap(&s[root], &s[c]);
		root = c;
	}
}

static void sort_syms(struct sym *s, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift(s, i, n);
	for (size_t end = n; end-- > 1;) {
		sym_swap(&s[0], &s[end]);
		sift(s, 0, end);
	}
}

static int is_function(const Elf64_Sym *s)
{
	unsigned type = ELF64_ST_TYPE(s->st_info);
	return (type == STT_FUNC || type == STT_GNU_IFUNC) && s->st_shndx != SHN_UNDEF && s->st_value && s->st_name;
}

/* The section of `type` with its string table, both inside the file; NULL if none. */
static const Elf64_Shdr *find_symtab(const uint8_t *map, size_t len, const Elf64_Ehdr *eh, uint32_t type,
				     const Elf64_Shdr **strs)
{
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(map + eh->e_shoff);
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != type || sh[i].sh_link >= eh->e_shnum || sh[i].sh_entsize != sizeof(Elf64_Sym))
			continue;
		const Elf64_Shdr *st = &sh[sh[i].sh_link];
		if (sh[i].sh_offset > len || sh[i].sh_size > len - sh[i].sh_offset || st->sh_type != SHT_STRTAB ||
		    st->sh_offset > len || st->sh_size > len - st->sh_offset)
			continue;
		*strs = st;
		return &sh[i];
	}
	return NULL;
}

/* A regular file mapped read-only with the raw system call; NULL if it cannot be. */
static const uint8_t *map_file(const char *path, size_t *len)
{
	int fd = PFS_NO_EINTR(open(path, O_RDONLY | O_CLOEXEC));
	if (fd < 0)
		return NULL;
	struct stat st;
	void *m = MAP_FAILED;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size >= sizeof(Elf64_Ehdr))
		m = pfs_sys_mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	*len = (size_t)st.st_size;
	return m == MAP_FAILED ? NULL : m;
}

/* The ELF header if the section headers lie inside the file, else NULL. */
static const Elf64_Ehdr *elf_header(const uint8_t *map, size_t len)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)map;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff >= len ||
	    (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) > len - eh->e_shoff)
		return NULL;
	return eh;
}

/*
 * The separate debug file of a stripped object (Debian's -dbg/-dbgsym
 * packages): /usr/lib/debug/.build-id/xx/yyyy.debug, named by the GNU
 * build-id note; it has the .symtab the analyzer names frames from.
 */
static int debug_file_path(const uint8_t *map, size_t len, const Elf64_Ehdr *eh, char *path, size_t size)
{
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(map + eh->e_shoff);
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_NOTE || sh[i].sh_offset > len || sh[i].sh_size > len - sh[i].sh_offset)
			continue;
		const uint8_t *p = map + sh[i].sh_offset, *end = p + sh[i].sh_size;
		while ((size_t)(end - p) >= sizeof(Elf64_Nhdr)) {
			const Elf64_Nhdr *n = (const Elf64_Nhdr *)p;
			const uint8_t *name = p + sizeof(*n), *desc = name + ((n->n_namesz + 3) & ~3u);
			if (desc > end || (size_t)(end - desc) < n->n_descsz)
				break;
			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && !memcmp(name, "GNU", 4) && n->n_descsz >= 2 &&
			    n->n_descsz <= 64) {
				static const char hex[] = "0123456789abcdef";
				size_t k = (size_t)snprintf(path, size, "/usr/lib/debug/.build-id/%c%c/", hex[desc[0] >> 4],
							    hex[desc[0] & 15]);
				if (k + 2 * n->n_descsz + sizeof(".debug") > size)
					return -1;
				for (unsigned j = 1; j < n->n_descsz; j++) {
					path[k++] = hex[desc[j] >> 4];
					path[k++] = hex[desc[j] & 15];
				}
				memcpy(path + k, ".debug", sizeof(".debug"));
				return 0;
			}
			p = desc + ((n->n_descsz + 3) & ~3u);
		}
	}
	return -1;
}

/* Whether a section of the object is named `name` (its section names inside the file). */
static int has_section(const uint8_t *map, size_t len, const Elf64_Ehdr *eh, const char *name)
{
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(map + eh->e_shoff);
	if (eh->e_shstrndx >= eh->e_shnum || sh[eh->e_shstrndx].sh_offset > len ||
	    sh[eh->e_shstrndx].sh_size > len - sh[eh->e_shstrndx].sh_offset)
		return 0;
	const char *names = (const char *)map + sh[eh->e_shstrndx].sh_offset;
	size_t size = sh[eh->e_shstrndx].sh_size, n = strlen(name);
	for (unsigned i = 0; i < eh->e_shnum; i++)
		if (sh[i].sh_name < size && size - sh[i].sh_name > n && !memcmp(names + sh[i].sh_name, name, n + 1))
			return 1;
	return 0;
}

int pfs_symtab_has_dwarf(const char *path)
{
	size_t len;
	const uint8_t *map = map_file(path, &len);
	if (!map)
		return 0;
	const Elf64_Ehdr *eh = elf_header(map, len);
	char dpath[PATH_MAX];
	int has = eh && (has_section(map, len, eh, ".debug_info") || has_section(map, len, eh, ".zdebug_info") ||
			 (!debug_file_path(map, len, eh, dpath, sizeof(dpath)) && access(dpath, R_OK) == 0));
	pfs_sys_munmap((void *)(uintptr_t)map, len);
	return has;
}

/* The functions of one symbol table as sorted ranges in `o`; 0, or -1 (nothing taken, the caller unmaps). */
static int take_symbols(struct object *o, const uint8_t *map, size_t len, const Elf64_Shdr *sh, const Elf64_Shdr *strs)
{
	/* The string table must end in a NUL for the names to be strings. */
	const char *strtab = (const char *)map + strs->sh_offset;
	if (!strs->sh_size || strtab[strs->sh_size - 1])
		return -1;
	const Elf64_Sym *es = (const Elf64_Sym *)(map + sh->sh_offset);
	size_t nes = sh->sh_size / sizeof(Elf64_Sym), n = 0;
	for (size_t i = 0; i < nes; i++)
		n += is_function(&es[i]) && es[i].st_name < strs->sh_size;
	struct sym *syms = n ? pfs_pool_alloc(n * sizeof(*syms)) : NULL;
	if (!syms)
		return -1;
	n = 0;
	for (size_t i = 0; i < nes; i++)
		if (is_function(&es[i]) && es[i].st_name < strs->sh_size)
			syms[n++] = (struct sym){.start = es[i].st_value + o->base,
						 .size = es[i].st_size > UINT32_MAX ? UINT32_MAX : (uint32_t)es[i].st_size,
						 .name = es[i].st_name};
	sort_syms(syms, n);
	/* Functions written in assembly may have no size: they reach to the next symbol. */
	for (size_t i = 0; i + 1 < n; i++)
		if (!syms[i].size) {
			uint64_t gap = syms[i + 1].start - syms[i].start;
			syms[i].size = gap > UINT32_MAX ? UINT32_MAX : (uint32_t)gap;
		}
	o->strtab = strtab;
	o->strsz = strs->sh_size;
	o->syms = syms;
	o->nsyms = (uint32_t)n;
	o->map = (void *)(uintptr_t)map;
	o->map_len = len;
	return 0;
}

/* .symtab (it names static functions), from the object or its debug file; else .dynsym. */
static void read_symbols(struct object *o)
{
	size_t len;
	const uint8_t *map = map_file(o->path, &len);
	if (!map)
		return; /* the vdso, a deleted file: no names, the object still counts for module= */
	const Elf64_Ehdr *eh = elf_header(map, len);
	const Elf64_Shdr *sh = NULL, *strs = NULL;
	if (eh && (sh = find_symtab(map, len, eh, SHT_SYMTAB, &strs)) && !take_symbols(o, map, len, sh, strs))
		return;
	char dpath[PATH_MAX];
	size_t dlen;
	const uint8_t *dmap = eh && !debug_file_path(map, len, eh, dpath, sizeof(dpath)) ? map_file(dpath, &dlen) : NULL;
	const Elf64_Ehdr *deh = dmap ? elf_header(dmap, dlen) : NULL;
	if (deh && (sh = find_symtab(dmap, dlen, deh, SHT_SYMTAB, &strs)) && !take_symbols(o, dmap, dlen, sh, strs)) {
		pfs_sys_munmap((void *)(uintptr_t)map, len);
		return;
	}
	if (dmap)
		pfs_sys_munmap((void *)(uintptr_t)dmap, dlen);
	if (eh && (sh = find_symtab(map, len, eh, SHT_DYNSYM, &strs)) && !take_symbols(o, map, len, sh, strs))
		return;
	pfs_sys_munmap((void *)(uintptr_t)map, len);
}

static void object_free(struct object *o)
{
	if (o->map)
		pfs_sys_munmap(o->map, o->map_len);
	pfs_pool_free(o->syms, o->nsyms * sizeof(*o->syms));
	pfs_pool_free(o->path, o->path_len + 1);
	pfs_pool_free(o, sizeof(*o));
}

/* ---- the table ----------------------------------------------------------- */

struct collect {
	const struct table *old;
	int first;
	int unchanged;
	unsigned long long adds, subs;
	struct object **objs; /* pool memory, `cap` entries */
	uint8_t *fresh;	      /* made by this sync (freed if it loses the race) */
	uint32_t n, cap;
	int oom;
};

static int collect_grow(struct collect *c)
{
	uint32_t cap = c->cap ? c->cap * 2 : 64;
	struct object **objs = pfs_pool_alloc(cap * sizeof(*objs));
	uint8_t *fresh = pfs_pool_alloc(cap);
	if (!objs || !fresh) {
		pfs_pool_free(objs, cap * sizeof(*objs));
		pfs_pool_free(fresh, cap);
		return -1;
	}
	if (c->n) {
		memcpy(objs, c->objs, c->n * sizeof(*objs));
		memcpy(fresh, c->fresh, c->n);
	}
	pfs_pool_free(c->objs, c->cap * sizeof(*objs));
	pfs_pool_free(c->fresh, c->cap);
	c->objs = objs;
	c->fresh = fresh;
	c->cap = cap;
	return 0;
}

/* Under the loader's lock: notes each object, reusing what the current table knows. */
static int collect_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct collect *c = arg;
	(void)size;
	if (c->first) {
		c->first = 0;
		c->adds = info->dlpi_adds;
		c->subs = info->dlpi_subs;
		if (c->old && c->old->adds == c->adds && c->old->subs == c->subs) {
			c->unchanged = 1;
			return 1;
		}
	}
	if (c->oom || (c->n == c->cap && collect_grow(c))) {
		c->oom = 1;
		return 1;
	}
	char exe[PATH_MAX];
	const char *name = pfs_module_name(info, exe, sizeof(exe));
	for (uint32_t i = 0; c->old && i < c->old->n; i++) {
		struct object *o = c->old->objs[i];
		if (o->base == (uint64_t)info->dlpi_addr && !strcmp(o->path, name)) {
			c->fresh[c->n] = 0;
			c->objs[c->n++] = o;
			return 0;
		}
	}
	struct object *o = pfs_pool_alloc(sizeof(*o));
	size_t len = strlen(name);
	char *path = o ? pfs_pool_alloc(len + 1) : NULL;
	if (!path) {
		pfs_pool_free(o, sizeof(*o));
		c->oom = 1;
		return 1;
	}
	memcpy(path, name, len + 1);
	o->path = path;
	o->path_len = len;
	o->base = info->dlpi_addr;
	pfs_module_range(info, &o->start, &o->end);
	c->fresh[c->n] = 1;
	c->objs[c->n++] = o;
	return 0;
}

static void collect_free(struct collect *c, int fresh_too)
{
	for (uint32_t i = 0; fresh_too && i < c->n; i++)
		if (c->fresh[i])
			object_free(c->objs[i]);
	pfs_pool_free(c->objs, c->cap * sizeof(*c->objs));
	pfs_pool_free(c->fresh, c->cap);
}

static size_t table_bytes(uint32_t n)
{
	return sizeof(struct table) + n * sizeof(struct object *);
}

void pfs_symtab_sync(int symbols)
{
	/* Two syncs racing: the loser builds again from the winner's table. */
	for (int tries = 0; tries < 4; tries++) {
		struct table *old = __atomic_load_n(&cur, __ATOMIC_ACQUIRE);
		struct collect c = {.old = old, .first = 1};
		dl_iterate_phdr(collect_cb, &c);
		if (c.unchanged || c.oom || !c.n) {
			collect_free(&c, 1);
			return;
		}
		/* The files are read outside the loader's lock. */
		for (uint32_t i = 0; symbols && i < c.n; i++)
			if (c.fresh[i])
				read_symbols(c.objs[i]);
		struct table *t = pfs_pool_alloc(table_bytes(c.n));
		if (!t) {
			collect_free(&c, 1);
			return;
		}
		t->adds = c.adds;
		t->subs = c.subs;
		t->epoch = old ? old->epoch + (old->subs != c.subs) : 0;
		t->n = c.n;
		/* Insertion sort by start: a few dozen objects, nearly sorted. */
		for (uint32_t i = 0; i < c.n; i++) {
			uint32_t j = i;
			while (j > 0 && t->objs[j - 1]->start > c.objs[i]->start) {
				t->objs[j] = t->objs[j - 1];
				j--;
			}
			t->objs[j] = c.objs[i];
		}
		if (__atomic_compare_exchange_n(&cur, &old, t, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
			/*
			 * The old table is not freed: a reader may still hold it.  Objects
			 * unloaded since stay too (a dlclose-heavy program keeps a little).
			 */
			collect_free(&c, 0);
			return;
		}
		collect_free(&c, 1);
		pfs_pool_free(t, table_bytes(t->n));
	}
}

static const struct object *object_at(uint64_t addr)
{
	const struct table *t = __atomic_load_n(&cur, __ATOMIC_ACQUIRE);
	if (!t)
		return NULL;
	/* The last object starting at or below addr. */
	uint32_t lo = 0, hi = t->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (t->objs[mid]->start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || addr >= t->objs[lo - 1]->end)
		return NULL;
	return t->objs[lo - 1];
}

unsigned pfs_symtab_names(uint64_t addr, const char **names, unsigned max)
{
	const struct object *o = object_at(addr);
	if (!o || !o->nsyms)
		return 0;
	uint32_t lo = 0, hi = o->nsyms;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (o->syms[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return 0;
	/* Aliases share a start: every one whose range holds addr. */
	uint64_t start = o->syms[lo - 1].start;
	uint32_t first = lo - 1;
	while (first > 0 && o->syms[first - 1].start == start)
		first--;
	unsigned n = 0;
	for (uint32_t i = first; i < o->nsyms && o->syms[i].start == start && n < max; i++)
		if (addr - start < o->syms[i].size)
			names[n++] = o->strtab + o->syms[i].name;
	return n;
}

const char *pfs_symtab_object(uint64_t addr)
{
	const struct object *o = object_at(addr);
	return o ? o->path : NULL;
}

uint32_t pfs_symtab_epoch(void)
{
	const struct table *t = __atomic_load_n(&cur, __ATOMIC_ACQUIRE);
	return t ? t->epoch : 0;
}

/* ---- demangling on the shim's own stack ---------------------------------- */

/*
 * One stack for the demangler, taken by one thread at a time.  The lock
 * word holds the taker's pid: a child forked while another thread held it
 * finds its parent's pid there, and takes it (that thread is not in the
 * child).
 */
static pid_t dm_owner;
static void *dm_stack;
static ucontext_t dm_caller, dm_callee;
static struct dm_job {
	const char *sym;
	char *buf;
	size_t len;
	int ok;
} dm_job;

static void dm_run(void)
{
	dm_job.ok = pfs_demangle(dm_job.sym, dm_job.buf, dm_job.len);
	/* uc_link returns to dm_caller */
}

static int dm_lock(void)
{
	pid_t me = pfs_sys_getpid();
	for (unsigned spins = 0;; spins++) {
		pid_t o = __atomic_load_n(&dm_owner, __ATOMIC_ACQUIRE);
		if ((o == 0 || o != me) && __atomic_compare_exchange_n(&dm_owner, &o, me, 0, __ATOMIC_ACQ_REL,
								      __ATOMIC_ACQUIRE))
			return 0;
		if (spins > 64)
			sched_yield();
	}
}

int pfs_symtab_demangle(const char *sym, char *buf, size_t len)
{
	if (!sym || sym[0] != '_' || sym[1] != 'Z')
		return 0; /* C names: the common case, no switch */
	dm_lock();
	if (!dm_stack) {
		/* a big arena block is a mapping of its own: its lowest page is the guard */
		dm_stack = pfs_arena_alloc(PFS_DEMANGLE_STACK + 4096);
		if (dm_stack)
			pfs_sys_mprotect(dm_stack, 4096, PROT_NONE);
	}
	int ok = 0;
	if (dm_stack && getcontext(&dm_callee) == 0) {
		dm_callee.uc_stack.ss_sp = (char *)dm_stack + 4096;
		dm_callee.uc_stack.ss_size = PFS_DEMANGLE_STACK;
		dm_callee.uc_link = &dm_caller;
		makecontext(&dm_callee, dm_run, 0);
		dm_job = (struct dm_job){.sym = sym, .buf = buf, .len = len};
		if (swapcontext(&dm_caller, &dm_callee) == 0)
			ok = dm_job.ok;
	}
	__atomic_store_n(&dm_owner, 0, __ATOMIC_RELEASE);
	return ok;
}
