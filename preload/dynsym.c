/*
 * Whether a loaded object exports a name (dynsym.h), read from the objects'
 * own GNU hash tables.  dlsym answers the same, but a name it does not find
 * costs the loader's error path: the message is allocated with the
 * program's malloc, so a program that never allocates gets malloc's heap
 * set up (two brk calls, a getrandom, fresh pages) at every start.  The
 * Bloom filter of each table turns nearly every absent name away in a few
 * instructions.
 */
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <string.h>

#include "dynsym.h"

struct query {
	const char *name;
	uint32_t hash;
	int found;
};

static uint32_t gnu_hash(const char *s)
{
	uint32_t h = 5381;
	for (; *s; s++)
		h = h * 33 + (unsigned char)*s;
	return h;
}

/*
 * The loader rewrites most objects' dynamic entries to run-time addresses;
 * the vDSO's stay relative to its base.
 */
static uintptr_t dyn_ptr(const struct dl_phdr_info *info, ElfW(Addr) p)
{
	return p < info->dlpi_addr ? info->dlpi_addr + p : p;
}

/* 1: the object's table holds the name, defined; 0: it does not; -1: no GNU hash table to ask. */
static int object_exports(const struct dl_phdr_info *info, const struct query *q)
{
	const ElfW(Dyn) *dyn = NULL;
	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
	if (!dyn)
		return 0; /* nothing exported */
	const uint32_t *table = NULL;
	const ElfW(Sym) *syms = NULL;
	const char *strs = NULL;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		if (dyn->d_tag == DT_GNU_HASH)
			table = (const uint32_t *)dyn_ptr(info, dyn->d_un.d_ptr);
		else if (dyn->d_tag == DT_SYMTAB)
			syms = (const ElfW(Sym) *)dyn_ptr(info, dyn->d_un.d_ptr);
		else if (dyn->d_tag == DT_STRTAB)
			strs = (const char *)dyn_ptr(info, dyn->d_un.d_ptr);
	}
	if (!table || !syms || !strs)
		return -1;
	uint32_t nbuckets = table[0], symoffset = table[1], bloom_size = table[2], bloom_shift = table[3];
	if (!nbuckets || !bloom_size)
		return 0;
	const ElfW(Addr) *bloom = (const ElfW(Addr) *)(table + 4);
	const uint32_t *buckets = (const uint32_t *)(bloom + bloom_size);
	const uint32_t *chain = buckets + nbuckets;
	const unsigned bits = sizeof(ElfW(Addr)) * 8;
	ElfW(Addr) word = bloom[(q->hash / bits) % bloom_size];
	ElfW(Addr) mask = ((ElfW(Addr))1 << (q->hash % bits)) | ((ElfW(Addr))1 << ((q->hash >> bloom_shift) % bits));
	if ((word & mask) != mask)
		return 0;
	uint32_t i = buckets[q->hash % nbuckets];
	if (i < symoffset)
		return 0;
	for (;; i++) {
		uint32_t h = chain[i - symoffset];
		const ElfW(Sym) *s = &syms[i];
		if ((h | 1) == (q->hash | 1) && s->st_shndx != SHN_UNDEF && !strcmp(strs + s->st_name, q->name))
			return 1;
		if (h & 1)
			return 0;
	}
}

static int each_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct query *q = arg;
	(void)size;
	int r = object_exports(info, q);
	if (r) {
		q->found = r;
		return 1;
	}
	return 0;
}

int pfs_dynsym_maybe(const char *name)
{
	struct query q = {name, gnu_hash(name), 0};
	dl_iterate_phdr(each_object, &q);
	return q.found != 0;
}
