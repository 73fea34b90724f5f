/*
 * The module map: every loaded object (dl_iterate_phdr) as a MODULE record
 * with its load bias, run-time range and build-id, so the analyzer can
 * symbolize offline.  Re-synced when dlopen/dlclose change the set.
 *
 * Lock order: mod_lock is only taken inside dl_iterate_phdr callbacks, that
 * is under the loader's lock, or without the loader being called while it is
 * held.  A thread inside dlopen that mallocs then never waits for a thread
 * that waits for the loader.
 */
#include <elf.h>
#include <libunwind.h>
#include <link.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "modules.h"
#include "thread.h"

struct module {
	uint64_t base, start, end;
	uint32_t id;
	uint32_t gen;
	uint8_t bid_len;
	uint8_t bid[PFS_BUILD_ID_MAX];
	char *path;
	uint32_t path_len;
	struct module *next;
};

static pfs_spin_t mod_lock = PFS_SPIN_INIT;
static int sync_busy;
static struct module *mods;
static uint32_t next_id = 1;
static uint32_t cur_gen;
static unsigned long long seen_adds, seen_subs;
static uintptr_t self_start, self_end;

static void emit_module(struct pfs_thread *t, const struct module *m)
{
	uint32_t size = PFS_ALIGN8(sizeof(struct pfs_rec_module) + m->path_len);
	struct pfs_rec_module *r = t ? pfs_rec_begin(&t->w, size) : NULL;
	if (!r)
		return;
	r->seq = pfs_next_seq();
	r->base = m->base;
	r->start = m->start;
	r->end = m->end;
	r->id = m->id;
	r->build_id_len = m->bid_len;
	memcpy(r->build_id, m->bid, m->bid_len);
	r->path_len = m->path_len;
	memcpy(r + 1, m->path, m->path_len);
	pfs_rec_end(r, PFS_REC_MODULE, 0, size);
}

static void emit_unload(struct pfs_thread *t, const struct module *m)
{
	struct pfs_rec_module_unload *r = t ? pfs_rec_begin(&t->w, sizeof(*r)) : NULL;
	if (!r)
		return;
	r->seq = pfs_next_seq();
	r->id = m->id;
	pfs_rec_end(r, PFS_REC_MODULE_UNLOAD, 0, sizeof(*r));
}

static uint8_t read_build_id(const struct dl_phdr_info *info, uint8_t *out)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
		const char *end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
			const char *name = p + sizeof(*n);
			const char *desc = name + ((n->n_namesz + 3) & ~3u);
			const char *next = desc + ((n->n_descsz + 3) & ~3u);
			if (next > end)
				break;
			if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 && !memcmp(name, "GNU", 4)) {
				/* A longer id is not cut short (it would never match): it is left out. */
				if (n->n_descsz > PFS_BUILD_ID_MAX)
					return 0;
				memcpy(out, desc, n->n_descsz);
				return (uint8_t)n->n_descsz;
			}
			p = next;
		}
	}
	return 0;
}

void pfs_module_range(const struct dl_phdr_info *info, uint64_t *start, uint64_t *end)
{
	*start = UINT64_MAX;
	*end = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uint64_t s = info->dlpi_addr + ph->p_vaddr, e = s + ph->p_memsz;
		if (s < *start)
			*start = s;
		if (e > *end)
			*end = e;
	}
	if (*start > *end)
		*start = *end = 0;
}

const char *pfs_module_name(const struct dl_phdr_info *info, char *buf, size_t len)
{
	if (info->dlpi_name && *info->dlpi_name)
		return info->dlpi_name;
	/* The main program: dl gives no name, /proc gives the resolved path (read once at start: core.c). */
	if (pfs_proc.exe[0]) {
		pfs_strlcpy(buf, pfs_proc.exe, len);
		return buf;
	}
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	buf[n > 0 ? n : 0] = 0;
	return buf;
}

struct sync_ctx {
	int force;
	int changed;
	int stop_early;
	struct pfs_thread *t;
};

static int sync_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct sync_ctx *c = arg;
	(void)size;
	if (c->stop_early) {
		c->stop_early = 0;
		if (!c->force && info->dlpi_adds == seen_adds && info->dlpi_subs == seen_subs)
			return 1; /* nothing loaded or unloaded since the last sync */
		seen_adds = info->dlpi_adds;
		seen_subs = info->dlpi_subs;
		c->changed = 1;
	}
	char exe[PATH_MAX];
	const char *name = pfs_module_name(info, exe, sizeof(exe));
	pfs_spin_lock(&mod_lock);
	struct module *m;
	for (m = mods; m; m = m->next)
		if (m->base == (uint64_t)info->dlpi_addr && !strcmp(m->path, name))
			break;
	if (m) {
		m->gen = cur_gen;
		pfs_spin_unlock(&mod_lock);
		return 0;
	}
	m = pfs_arena_alloc(sizeof(*m));
	size_t len = strlen(name);
	char *path = m ? pfs_arena_alloc(len + 1) : NULL;
	if (!path) {
		pfs_spin_unlock(&mod_lock);
		return 0;
	}
	memcpy(path, name, len + 1);
	m->path = path;
	m->path_len = (uint32_t)len;
	m->base = info->dlpi_addr;
	pfs_module_range(info, &m->start, &m->end);
	m->bid_len = read_build_id(info, m->bid);
	m->id = next_id++;
	m->gen = cur_gen;
	m->next = mods;
	mods = m;
	emit_module(c->t, m);
	pfs_spin_unlock(&mod_lock);
	return 0;
}

void pfs_modules_sync(int force)
{
	/* One syncer at a time; a thread that finds one busy relies on it. */
	if (__atomic_exchange_n(&sync_busy, 1, __ATOMIC_ACQUIRE))
		return;
	struct sync_ctx c = {.force = force, .stop_early = 1, .t = pfs_tls_thread};
	cur_gen++;
	dl_iterate_phdr(sync_cb, &c);
	if (c.changed) {
		pfs_spin_lock(&mod_lock);
		for (struct module **pp = &mods; *pp;) {
			if ((*pp)->gen != cur_gen) {
				emit_unload(c.t, *pp);
				*pp = (*pp)->next; /* arena memory: not reclaimed */
			} else {
				pp = &(*pp)->next;
			}
		}
		pfs_spin_unlock(&mod_lock);
	}
	__atomic_store_n(&sync_busy, 0, __ATOMIC_RELEASE);
}

void pfs_modules_seen(uint64_t *adds, uint64_t *subs)
{
	*adds = seen_adds;
	*subs = seen_subs;
}

void pfs_modules_rewrite(void)
{
	pfs_spin_lock(&mod_lock);
	for (struct module *m = mods; m; m = m->next)
		emit_module(pfs_tls_thread, m);
	pfs_spin_unlock(&mod_lock);
}

void pfs_modules_child_reset(void)
{
	mod_lock = (pfs_spin_t)PFS_SPIN_INIT;
	sync_busy = 0;
}

/*
 * The shim's code and read-only data, from its ELF header (the loader maps
 * it with the first segment) to the end of its read-only segments and of
 * the part of its writable one made read-only after relocation (GNU_RELRO).
 */
extern const ElfW(Ehdr) __ehdr_start; /* defined by the linker, hidden */

/* Beside the constructor (.text.startup, in the code's first 64 KiB): the code that runs before the rest is present. */
__attribute__((section(".text.startup"))) void pfs_self_code(uintptr_t *start, uintptr_t *end)
{
	/* in .data, present from the loader's relocations: the start reads them before it populates .bss (core.c) */
	static uintptr_t lo __attribute__((section(".data"))), hi __attribute__((section(".data")));
	if (!hi) {
		const ElfW(Phdr) *ph = (const void *)((const char *)&__ehdr_start + __ehdr_start.e_phoff);
		uintptr_t bias = (uintptr_t)&__ehdr_start, top = 0;
		for (unsigned i = 0; i < __ehdr_start.e_phnum; i++)
			if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0)
				bias -= ph[i].p_vaddr; /* the segment that holds the header */
		for (unsigned i = 0; i < __ehdr_start.e_phnum; i++)
			if (((ph[i].p_type == PT_LOAD && !(ph[i].p_flags & PF_W)) || ph[i].p_type == PT_GNU_RELRO) &&
			    bias + ph[i].p_vaddr + ph[i].p_memsz > top)
				top = bias + ph[i].p_vaddr + ph[i].p_memsz;
		lo = (uintptr_t)&__ehdr_start;
		hi = top;
	}
	*start = lo;
	*end = hi;
}

struct range_find {
	uintptr_t addr;
	uint64_t *start, *end;
};

static int range_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct range_find *f = arg;
	uint64_t s, e;
	pfs_module_range(info, &s, &e);
	if (f->addr >= s && f->addr < e) {
		*f->start = s;
		*f->end = e;
		return 1;
	}
	return 0;
}

/*
 * The shim's whole image: a return address lies in its code; its .data and
 * .bss (the anonymous tail too) are its own memory at start, not the
 * program's (core.c's adoption: they read as a program site "[data of
 * libpfshim.so]" whose copies after a fork were in the program's totals).
 */
int pfs_addr_in_self(uintptr_t addr)
{
	if (PFS_UNLIKELY(!self_end)) {
		struct range_find f = {(uintptr_t)&pfs_addr_in_self, &self_start, &self_end};
		dl_iterate_phdr(range_cb, &f);
	}
	return addr >= self_start && addr < self_end;
}

/*
 * libunwind works for the shim: its mappings (a per-thread cache, unmapped
 * by a thread-exit destructor outside any hook of ours) are not the
 * program's, so the mmap family lets its calls through untracked; nor is
 * its image's memory (its .data and .bss, which the shim writes through it
 * and makes present before its first unwind: sites.c), the shim's own at
 * start.  The range is all of its segments: a return address lies in its
 * code, its data after.
 */
static uint64_t unwind_start, unwind_end = 1;

int pfs_addr_in_unwinder(uintptr_t addr)
{
	if (PFS_UNLIKELY(unwind_end == 1)) {
		unwind_end = 0;
		struct range_find f = {(uintptr_t)&unw_backtrace, &unwind_start, &unwind_end};
		dl_iterate_phdr(range_cb, &f);
	}
	return addr >= unwind_start && addr < unwind_end;
}
