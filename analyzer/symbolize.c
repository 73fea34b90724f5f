/*
 * Symbolization with elfutils' libdwfl, offline: the logged path is reported
 * with dwfl_report_elf at bias 0, so module addresses are the file's own
 * virtual addresses and one open file serves every process whatever its
 * load address (ASLR).  Inline expansion follows eu-addr2line -i: the
 * DWARF scopes at the address, innermost first, each
 * DW_TAG_inlined_subroutine giving the call site in the next one out.
 */
#include "symbolize.h"

#include "debugcache.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uthash.h>

#include <pfshim/demangle.h>

struct sym_entry {
	uint64_t vaddr;
	struct pfs_sym_result res;
	UT_hash_handle hh;
};

struct sym_range {
	uint64_t start, end;
};

/* One function symbol; the table is sorted by address. */
struct sym_func {
	uint64_t addr;
	uint64_t size;		/* 0: unknown extent */
	const char *name;	/* in libdwfl's string table, alive with the Dwfl */
	int rank;		/* binding preference among aliases: global > weak > local */
};

struct sym_object {
	char *key;		/* path, NUL, build-id bytes */
	size_t keylen;
	Dwfl *dwfl;
	Dwfl_Module *mod;	/* NULL: missing, unreadable or another build */
	struct sym_func *funcs;
	size_t nfuncs;
	struct sym_range *texts;	/* executable sections, sorted */
	size_t ntexts;
	struct sym_entry *cache;
	bool debug_found;	/* its separate debug file: a lookup after it is for a dwz alt file */
	UT_hash_handle hh;
};

struct pfs_sym {
	Dwfl_Callbacks cb;	/* libdwfl keeps a pointer: it lives here, not on a stack */
	char *debuginfo_path;	/* NULL: the standard search (/usr/lib/debug, .build-id) */
	struct sym_object *objects;
	struct pfs_an_warnings *warn;
	FILE *diag;
};

/* Whether libdw's debuginfod client has anywhere to ask (it answers nothing without a URL). */
static bool debuginfod_set(void)
{
	const char *urls = getenv("DEBUGINFOD_URLS");

	return urls && *urls;
}

/*
 * Whether libdw's search by name could find `link` for `file`: it looks in
 * the file's directory (real or through a symlink), its .debug/ and .dwz/,
 * and /usr/lib/debug/ followed by each tail of that directory (docs of
 * dwfl_standard_find_debuginfo).  A superset of its candidates: a file of one
 * of these names may exist and fail libdw's checks, never the reverse.
 */
static bool debuglink_may_exist(const char *file, const char *link)
{
	static const char *const under[] = {"", "/.debug", "/.dwz"};
	char dirs[2][PATH_MAX], debugname[PATH_MAX], cand[2 * PATH_MAX + 32];
	const char *names[2], *base;
	struct stat main_st, st;
	size_t ndirs = 1, nnames = 1;
	bool have_main;

	if (!file || !(base = strrchr(file, '/')))
		return true;	/* a name relative to here: let libdw search */
	base++;
	names[0] = link;
	if (!link) {	/* no .gnu_debuglink: libdw tries NAME.debug, then NAME */
		snprintf(debugname, sizeof(debugname), "%s.debug", base);
		names[0] = debugname;
		names[nnames++] = base;
	} else if (strchr(link, '/')) {	/* an alt file's path: libdw takes its name */
		names[nnames++] = strrchr(link, '/') + 1;
	}
	have_main = stat(file, &main_st) == 0;
	snprintf(dirs[0], sizeof(dirs[0]), "%.*s", (int)(base - 1 - file), file);
	if (realpath(file, dirs[1]) && strrchr(dirs[1], '/')) {
		*strrchr(dirs[1], '/') = '\0';
		ndirs += strcmp(dirs[1], dirs[0]) != 0;
	}
	for (size_t d = 0; d < ndirs; d++)
		for (size_t n = 0; n < nnames; n++) {
			for (size_t u = 0; u < 3; u++) {
				snprintf(cand, sizeof(cand), "%s%s/%s", dirs[d], under[u], names[n]);
				/* the object itself by another name is not its debug file */
				if (stat(cand, &st) == 0 && !(have_main && st.st_ino == main_st.st_ino &&
							       st.st_dev == main_st.st_dev))
					return true;
				snprintf(cand, sizeof(cand), "/usr/lib/debug%s/%s", under[u], names[n]);
				if (access(cand, F_OK) == 0)
					return true;
			}
			/* /usr/lib/debug/DIR, then with DIR's leading components dropped one by one */
			for (const char *tail = dirs[d]; tail; tail = strchr(tail + 1, '/')) {
				snprintf(cand, sizeof(cand), "/usr/lib/debug%s/%s", tail, names[n]);
				if (access(cand, F_OK) == 0)
					return true;
			}
		}
	return false;
}

/*
 * libdw's standard search for a separate debug file (by build-id under
 * /usr/lib/debug/.build-id, then by .gnu_debuglink), except that it asks
 * debuginfod only when DEBUGINFOD_URLS is set: when it is not, libdw
 * would still load its debuginfod client (libcurl, gnutls: 15 ms) for no
 * answer, once per report that has an object without debug info.
 */
static int find_debuginfo_file(Dwfl_Module *mod, void **userdata, const char *modname,
			       GElf_Addr base, const char *file, const char *link, GElf_Word crc,
			       char **debuginfo_file)
{
	int fd;

	if (debuginfod_set())
		return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file, link, crc,
						    debuginfo_file);
	errno = 0;
	fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file, link, crc,
					  debuginfo_file);
	if (fd >= 0 || !debuglink_may_exist(file, link)) {
		if (fd < 0)
			errno = 0;	/* nothing found: libdw tells that from a failure by errno */
		return fd;
	}
	return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file, link, crc,
					    debuginfo_file);
}

/*
 * The module's debug file: its uncompressed copy when one was kept
 * (debugcache.h), else the file found, of which a copy is then kept for
 * the next reports.  A dwz alt file, asked for after, is only searched.
 */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
			  GElf_Addr base, const char *file, const char *link, GElf_Word crc,
			  char **debuginfo_file)
{
	struct sym_object *o = *userdata;
	const unsigned char *id = NULL;
	bool main_file = o && !o->debug_found;
	GElf_Addr id_vaddr;
	int idlen = dwfl_module_build_id(mod, &id, &id_vaddr), fd = -1;

	if (main_file && idlen > 0)
		fd = pfs_debugcache_open(id, (size_t)idlen, debuginfo_file);
	if (fd < 0) {
		fd = find_debuginfo_file(mod, userdata, modname, base, file, link, crc,
					 debuginfo_file);
		if (main_file && fd >= 0 && idlen > 0 && *debuginfo_file)
			pfs_debugcache_add(id, (size_t)idlen, *debuginfo_file);
	}
	if (main_file && fd >= 0)
		o->debug_found = true;
	return fd;
}

int pfs_sym_new(struct pfs_sym **out, struct pfs_an_warnings *warn, FILE *diag)
{
	struct pfs_sym *sym = calloc(1, sizeof(*sym));

	if (!sym)
		return -ENOMEM;
	/*
	 * Offline callbacks: the main file is given by path, separate debug
	 * info is found by build-id or .gnu_debuglink the standard way
	 * (find_debuginfo: debuginfod only when asked for, compressed files
	 * through the cache).
	 */
	sym->cb.find_elf = dwfl_build_id_find_elf;
	sym->cb.find_debuginfo = find_debuginfo;
	sym->cb.section_address = dwfl_offline_section_address;
	sym->cb.debuginfo_path = &sym->debuginfo_path;
	sym->warn = warn;
	sym->diag = diag;
	*out = sym;
	return 0;
}

static void result_free(struct pfs_sym_result *res)
{
	for (size_t i = 0; i < res->n; i++) {
		free(res->frames[i].function);
		free(res->frames[i].symbol);
		free(res->frames[i].file);
	}
	free(res->frames);
	res->frames = NULL;
	res->n = 0;
}

void pfs_sym_free(struct pfs_sym *sym)
{
	struct sym_object *o, *otmp;
	struct sym_entry *e, *etmp;

	if (!sym)
		return;
	HASH_ITER(hh, sym->objects, o, otmp) {
		HASH_ITER(hh, o->cache, e, etmp) {
			HASH_DEL(o->cache, e);
			result_free(&e->res);
			free(e);
		}
		HASH_DEL(sym->objects, o);
		free(o->funcs);
		free(o->texts);
		if (o->dwfl)
			dwfl_end(o->dwfl);
		free(o->key);
		free(o);
	}
	free(sym);
}

static void sym_warn(struct pfs_sym *sym, const char *path, const char *what)
{
	if (sym->diag)
		fprintf(sym->diag, "pfshim: %s: %s\n", path, what);
	if (sym->warn)
		pfs_an_warn(sym->warn, "%s: %s", path, what);
}

static bool build_id_matches(Dwfl_Module *mod, const uint8_t *id, unsigned len)
{
	const unsigned char *bits;
	GElf_Addr vaddr;
	int n;

	if (len == 0)
		return true;
	n = dwfl_module_build_id(mod, &bits, &vaddr);
	return n == (int)len && !memcmp(bits, id, len);
}

static int cmp_func(const void *a, const void *b)
{
	const struct sym_func *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)		/* the preferred alias first */
		return x->rank > y->rank ? -1 : 1;
	return (x->size < y->size) - (x->size > y->size);
}

/*
 * The object's function symbols, sorted once.  dwfl_module_addrinfo() scans
 * the whole symbol table on every call; a program with many distinct frames
 * makes that quadratic, a binary search keeps it n log n.  libdwfl picks the
 * table (.symtab of the file or its debug file, else .dynsym, plus
 * .gnu_debugdata), so static functions are found as it would find them.
 */
static int funcs_load(struct sym_object *o)
{
	int n = dwfl_module_getsymtab(o->mod);

	if (n <= 1)
		return 0;
	o->funcs = calloc((size_t)n, sizeof(*o->funcs));
	if (!o->funcs)
		return -ENOMEM;
	for (int i = 1; i < n; i++) {
		GElf_Word shndx;
		GElf_Addr addr;
		GElf_Sym es;
		const char *name = dwfl_module_getsym_info(o->mod, i, &es, &addr, &shndx, NULL, NULL);
		int type = GELF_ST_TYPE(es.st_info), bind = GELF_ST_BIND(es.st_info);
		struct sym_func *f;

		if (!name || !*name || shndx == SHN_UNDEF || shndx == (GElf_Word)-1 ||
		    (type != STT_FUNC && type != STT_GNU_IFUNC))
			continue;
		f = &o->funcs[o->nfuncs++];
		f->addr = addr;
		f->size = es.st_size;
		f->name = name;
		f->rank = bind == STB_GLOBAL ? 2 : bind == STB_WEAK ? 1 : 0;
	}
	if (o->nfuncs)
		qsort(o->funcs, o->nfuncs, sizeof(*o->funcs), cmp_func);
	return 0;
}

static int cmp_range(const void *a, const void *b)
{
	const struct sym_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* The executable sections: a symbol without a size extends at most to its section's end. */
static int texts_load(struct sym_object *o)
{
	Elf_Scn *scn = NULL;
	size_t cap = 0;
	GElf_Addr bias;
	Elf *elf = dwfl_module_getelf(o->mod, &bias);

	if (!elf)
		return 0;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);

		if (!sh || !(sh->sh_flags & SHF_ALLOC) || !(sh->sh_flags & SHF_EXECINSTR) ||
		    sh->sh_size == 0)
			continue;
		if (pfs_an_reserve((void **)&o->texts, &cap, o->ntexts + 1, sizeof(*o->texts)))
			return -ENOMEM;
		o->texts[o->ntexts].start = sh->sh_addr + bias;
		o->texts[o->ntexts].end = sh->sh_addr + bias + sh->sh_size;
		o->ntexts++;
	}
	if (o->ntexts)	/* qsort's base must not be NULL, even for 0 elements */
		qsort(o->texts, o->ntexts, sizeof(*o->texts), cmp_range);
	return 0;
}

static const struct sym_range *text_of(const struct sym_object *o, uint64_t a)
{
	for (size_t i = 0; i < o->ntexts; i++)	/* a few dozen sections at most */
		if (a >= o->texts[i].start && a < o->texts[i].end)
			return &o->texts[i];
	return NULL;
}

/* The function whose [addr, addr+size) holds a; a sizeless one only within its section. */
static const char *funcs_find(const struct sym_object *o, uint64_t a)
{
	size_t lo = 0, hi = o->nfuncs;
	bool passed_sized = false;

	/* hi: the first symbol starting after a */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (o->funcs[mid].addr <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	/*
	 * Walk back over aliases and symbols nested in a larger one, a few
	 * steps at most.  A sizeless symbol reaches up to the next symbol (so
	 * only if no sized one was passed) and not past its section.
	 */
	for (size_t i = hi, steps = 0; i-- > 0 && steps < 64; steps++) {
		const struct sym_func *f = &o->funcs[i];

		/* the first of equal addresses is the preferred alias: go to it */
		while (i > 0 && o->funcs[i - 1].addr == f->addr)
			f = &o->funcs[--i];
		if (f->size && a - f->addr < f->size)
			return f->name;
		if (f->size == 0) {
			const struct sym_range *t = text_of(o, f->addr);

			return !passed_sized && t && a < t->end ? f->name : NULL;
		}
		passed_sized = true;
	}
	return NULL;
}

static void object_open(struct pfs_sym *sym, struct sym_object *o, const char *path,
			const uint8_t *build_id, unsigned build_id_len)
{
	char what[256];
	void **userdata;

	o->dwfl = dwfl_begin(&sym->cb);
	if (!o->dwfl) {
		snprintf(what, sizeof(what), "cannot start libdwfl: %s", dwfl_errmsg(-1));
		sym_warn(sym, path, what);
		return;
	}
	dwfl_report_begin(o->dwfl);
	/* base 0 with add_p_vaddr: bias 0, addresses are file addresses */
	o->mod = dwfl_report_elf(o->dwfl, path, path, -1, 0, true);
	if (!o->mod) {
		/*
		 * Names that are not paths ("linux-vdso.so.1") have no file to
		 * read: not worth a warning.
		 */
		if (path[0] == '/') {
			snprintf(what, sizeof(what), "cannot read (%s): its frames are not symbolized",
				 dwfl_errmsg(-1));
			sym_warn(sym, path, what);
		}
		dwfl_report_end(o->dwfl, NULL, NULL);
		return;
	}
	dwfl_report_end(o->dwfl, NULL, NULL);
	dwfl_module_info(o->mod, &userdata, NULL, NULL, NULL, NULL, NULL, NULL);
	*userdata = o;	/* for find_debuginfo */
	if (!build_id_matches(o->mod, build_id, build_id_len)) {
		sym_warn(sym, path, "build-id differs from the logged one (the file changed since "
			 "the run?): its frames are not symbolized");
		o->mod = NULL;
		return;
	}
	if (funcs_load(o) || texts_load(o))
		o->mod = NULL;	/* out of memory: unnamed frames rather than none */
}

/*
 * One frame: `name` as the symbol table or DWARF spells it; the frame keeps
 * it as `symbol` and its demangled form (pfshim/demangle.h) as `function`.
 */
static int push_frame(struct pfs_sym_result *res, size_t *cap, const char *name,
		      const char *file, int line, bool inlined)
{
	struct pfs_sym_frame *f;
	char demangled[8192];
	const char *at;

	if (pfs_an_reserve((void **)&res->frames, cap, res->n + 1, sizeof(*res->frames)))
		return -ENOMEM;
	f = &res->frames[res->n];
	memset(f, 0, sizeof(*f));
	if (name && !*name)
		name = NULL;
	/*
	 * Symbol tables name versioned symbols "printf@@GLIBC_2.2.5": the
	 * version says nothing about the call site, drop it.
	 */
	at = name ? strchr(name + 1, '@') : NULL;
	if (at)
		f->symbol = strndup(name, (size_t)(at - name));
	else
		f->symbol = name ? strdup(name) : NULL;
	if (f->symbol)
		f->function = strdup(pfs_demangle(f->symbol, demangled, sizeof(demangled))
				     ? demangled : f->symbol);
	f->file = file ? strdup(file) : NULL;
	f->line = line > 0 ? (unsigned)line : 0;
	f->inlined = inlined;
	res->n++;	/* counted now so result_free() releases what was copied */
	if ((name && (!f->symbol || !f->function)) || (file && !f->file))
		return -ENOMEM;
	return 0;
}

/*
 * A function's name from its DIE (an inlined instance's through its
 * abstract origin): a C++ linkage name, which demangles to the qualified
 * name, else the plain name (C, whose linkage names are only aliases like
 * glibc's "__GI_" ones).
 */
static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));

	if (!name)
		name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
	if (name && name[0] == '_' && name[1] == 'Z')
		return name;
	name = dwarf_diename(die);	/* follows abstract_origin */
	return name;
}

/* Where an inlined instance was called from: its DW_AT_call_file / _line. */
static void call_site(Dwarf_Die *inl, const char **file, int *line)
{
	Dwarf_Attribute attr;
	Dwarf_Files *files;
	Dwarf_Word val;
	Dwarf_Die cu;

	*file = NULL;
	*line = 0;
	/* the file index refers to the line table of the unit holding the DIE */
	if (dwarf_diecu(inl, &cu, NULL, NULL) && dwarf_getsrcfiles(&cu, &files, NULL) == 0 &&
	    dwarf_formudata(dwarf_attr(inl, DW_AT_call_file, &attr), &val) == 0)
		*file = dwarf_filesrc(files, val, NULL, NULL);
	if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_line, &attr), &val) == 0 && val <= INT32_MAX)
		*line = (int)val;
}

/*
 * The scopes around `addr`, innermost first, down to the function it is in.
 * dwarf_getscopes() goes on, past the innermost inlined instance, into that
 * instance's abstract definition (where its own code is written), not into
 * the function it was inlined into; eu-addr2line -i therefore asks again
 * from the innermost scope's DIE, whose parents are the concrete chain:
 * inlined instance in inlined instance ... in the real function.
 */
static int scopes_at(Dwarf_Die *cudie, Dwarf_Addr bias, uint64_t addr, Dwarf_Die **scopes)
{
	Dwarf_Die innermost;
	int n;

	*scopes = NULL;
	if (!cudie)
		return 0;
	n = dwarf_getscopes(cudie, addr - bias, scopes);
	if (n <= 0)
		return 0;
	innermost = (*scopes)[0];
	free(*scopes);
	*scopes = NULL;
	n = dwarf_getscopes_die(&innermost, scopes);
	return n > 0 ? n : 0;
}

static int resolve(struct sym_object *o, uint64_t addr, struct pfs_sym_result *res)
{
	const char *symname = NULL, *file = NULL;
	Dwarf_Die *scopes = NULL;
	size_t cap = 0;
	bool done = false;
	int line = 0, nscopes, rc = 0;
	Dwfl_Line *dl;

	if (!o->mod)
		return push_frame(res, &cap, NULL, NULL, 0, false);
	/* the symbol table, so static functions are named too */
	symname = funcs_find(o, addr);
	/*
	 * A line only inside a compile unit's ranges: libdw answers an address
	 * outside all of them (crt1's _start, the program's only unit a C++
	 * one) with that unit's nearest line (basic_string.h:795), as
	 * eu-addr2line does; binutils' addr2line says ??.
	 */
	Dwarf_Addr bias = 0;
	Dwarf_Die *cudie = dwfl_module_addrdie(o->mod, addr, &bias);
	if (cudie && dwarf_haspc(cudie, addr - bias) <= 0)
		cudie = NULL;
	dl = cudie ? dwfl_module_getsrc(o->mod, addr) : NULL;
	if (dl) {
		Dwarf_Addr la;

		file = dwfl_lineinfo(dl, &la, &line, NULL, NULL, NULL);
	}
	/*
	 * Innermost first: each inlined instance has the current file:line,
	 * then its call site is the file:line of the frame it was inlined into.
	 */
	nscopes = scopes_at(cudie, bias, addr, &scopes);
	for (int i = 0; i < nscopes && !done && !rc; i++) {
		switch (dwarf_tag(&scopes[i])) {
		case DW_TAG_inlined_subroutine:
			rc = push_frame(res, &cap, die_name(&scopes[i]), file, line, true);
			call_site(&scopes[i], &file, &line);
			break;
		case DW_TAG_subprogram:
		case DW_TAG_entry_point:
			/* the symbol's name: what a policy's site= matches */
			rc = push_frame(res, &cap, symname ? symname : die_name(&scopes[i]), file,
					line, false);
			done = true;
			break;
		default:	/* lexical blocks, the CU */
			break;
		}
	}
	free(scopes);
	if (!done && !rc)	/* no DWARF, or no function scope around the address */
		rc = push_frame(res, &cap, symname, file, line, false);
	return rc;
}

static struct sym_object *object_get(struct pfs_sym *sym, const char *path,
				     const uint8_t *build_id, unsigned build_id_len)
{
	size_t plen = strlen(path), keylen = plen + 1 + build_id_len;
	struct sym_object *o;
	char *key;

	key = malloc(keylen);
	if (!key)
		return NULL;
	memcpy(key, path, plen + 1);
	if (build_id_len)
		memcpy(key + plen + 1, build_id, build_id_len);
	HASH_FIND(hh, sym->objects, key, keylen, o);
	if (o) {
		free(key);
		return o;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		free(key);
		return NULL;
	}
	o->key = key;
	o->keylen = keylen;
	object_open(sym, o, path, build_id, build_id_len);
	HASH_ADD_KEYPTR(hh, sym->objects, o->key, o->keylen, o);
	return o;
}

const struct pfs_sym_result *pfs_sym_lookup(struct pfs_sym *sym, const char *path,
					    const uint8_t *build_id, unsigned build_id_len,
					    uint64_t vaddr)
{
	struct sym_object *o;
	struct sym_entry *e;

	if (!path)
		path = "";
	o = object_get(sym, path, build_id, build_id_len);
	if (!o)
		return NULL;
	HASH_FIND(hh, o->cache, &vaddr, sizeof(vaddr), e);
	if (e)
		return &e->res;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->vaddr = vaddr;
	if (resolve(o, vaddr, &e->res)) {
		result_free(&e->res);
		free(e);
		return NULL;
	}
	HASH_ADD(hh, o->cache, vaddr, sizeof(e->vaddr), e);
	return &e->res;
}

/* ---- objects without symbols ----------------------------------------------- */

extern char **environ;

/*
 * The Debian packages that installed `paths` (system paths only: a program
 * of the user's is no package's), with one dpkg-query -S for all of them
 * (it reads the whole package database: one process, not one per object);
 * pkgs[i] "" where none.
 */
#define PKG_LEN 256
#define PKG_PATHS 128
static void debian_packages(const char *const *paths, size_t n, char (*pkgs)[PKG_LEN])
{
	const char *argv[2 + PKG_PATHS + 1] = {"dpkg-query", "-S"};
	size_t argc = 2;
	posix_spawn_file_actions_t fa;
	char out[16384];
	int fds[2], st = 0;
	size_t got = 0;
	pid_t pid;

	for (size_t i = 0; i < n; i++) {
		pkgs[i][0] = '\0';
		if (argc < 2 + PKG_PATHS && (!strncmp(paths[i], "/usr/", 5) || !strncmp(paths[i], "/lib", 4) ||
					     !strncmp(paths[i], "/bin/", 5) || !strncmp(paths[i], "/sbin/", 6)))
			argv[argc++] = paths[i];
	}
	if (argc == 2 || pipe2(fds, O_CLOEXEC))
		return;
	if (posix_spawn_file_actions_init(&fa)) {
		close(fds[0]);
		close(fds[1]);
		return;
	}
	posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	if (posix_spawnp(&pid, "dpkg-query", &fa, NULL, (char *const *)argv, environ) == 0) {
		close(fds[1]);
		fds[1] = -1;
		for (ssize_t r; got < sizeof(out) - 1 &&
		     ((r = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0 || (r < 0 && errno == EINTR));)
			got += r > 0 ? (size_t)r : 0;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		out[got] = '\0';
		/* one line a path: "libjemalloc2:amd64: /usr/lib/x86_64-linux-gnu/libjemalloc.so.2" */
		for (char *line = out, *nl; *line; line = nl) {
			nl = line + strcspn(line, "\n");
			if (*nl)
				*nl++ = '\0';
			char *sep = strstr(line, ": /");
			size_t plen = strcspn(line, ":,");
			if (!sep || !plen || plen >= PKG_LEN)
				continue;
			for (size_t i = 0; i < n; i++)
				if (!pkgs[i][0] && !strcmp(sep + 2, paths[i])) {
					memcpy(pkgs[i], line, plen);
					pkgs[i][plen] = '\0';
				}
		}
	}
	posix_spawn_file_actions_destroy(&fa);
	close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
}

/* Whether the object at `path` was read and has no DWARF (its own or a separate debug file). */
static bool lacks_dwarf(struct pfs_sym *sym, const char *path)
{
	struct sym_object *o, *tmp;
	Dwarf_Addr bias;

	HASH_ITER(hh, sym->objects, o, tmp)
		if (!strcmp(o->key, path))
			return !o->mod || !dwfl_module_getdwarf(o->mod, &bias);
	return false;
}

/*
 * The names dpkg may list the object at `path` by, `path` first: the file
 * it links to, and on a merged /usr its other name (the loader and
 * /proc/PID/exe say /usr/bin/dash, dash's package lists /bin/dash; /lib*,
 * /bin, /sbin are links into /usr there).  Returns how many, each in its
 * own names[i].
 */
#define PKG_NAMES 3
static size_t package_names(const char *path, char names[PKG_NAMES][PATH_MAX])
{
	static const char *const merged[] = {"/bin/", "/sbin/", "/lib"};
	struct stat a, b;
	size_t k = 0;

	snprintf(names[k++], PATH_MAX, "%s", path);
	if (realpath(path, names[k]) && strcmp(names[k], path))
		k++;
	for (size_t i = 0; i < sizeof(merged) / sizeof(merged[0]); i++) {
		size_t dl = strlen(merged[i]);
		int in_usr = !strncmp(path, "/usr", 4) && !strncmp(path + 4, merged[i], dl);
		if (!in_usr && strncmp(path, merged[i], dl))
			continue;
		if (in_usr)
			snprintf(names[k], PATH_MAX, "%s", path + 4);
		else if (snprintf(names[k], PATH_MAX, "/usr%s", path) >= PATH_MAX)
			break;
		/* the same file under both names: a merged /usr, not two files */
		if (!stat(path, &a) && !stat(names[k], &b) && a.st_dev == b.st_dev && a.st_ino == b.st_ino &&
		    strcmp(names[k], names[k - 1]))
			k++;
		break;
	}
	return k;
}

int pfs_sym_explain_missing(struct pfs_sym *sym, const struct pfs_sym_missing *m, size_t n)
{
	const char *urls = getenv("DEBUGINFOD_URLS");
	char *text = NULL;
	size_t len = 0, k = 0;
	FILE *f;
	int rc;

	f = open_memstream(&text, &len);
	if (!f)
		return -ENOMEM;
	/*
	 * The objects without DWARF, and the packages of those, asked in one
	 * query under every name of each (package_names): object i's are
	 * queries[first[i]] to queries[first[i + 1] - 1], its own path first.
	 */
	enum { MAX_OBJ = PKG_PATHS / PKG_NAMES };
	const char *queries[PKG_PATHS] = {0};
	char (*names)[PKG_NAMES][PATH_MAX] = calloc(MAX_OBJ, sizeof(*names));
	char (*pkg)[PKG_LEN] = calloc(PKG_PATHS, PKG_LEN);
	size_t np = 0, nq = 0, first[MAX_OBJ + 1];
	bool unnamed[MAX_OBJ];
	if (!pkg || !names) {
		free(pkg);
		free(names);
		fclose(f);
		free(text);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n && np < MAX_OBJ; i++) {
		/* frames of an object with DWARF lack names or lines only in its assembly (_start) */
		if (!lacks_dwarf(sym, m[i].path))
			continue;
		first[np] = nq;
		for (size_t j = 0, c = package_names(m[i].path, names[np]); j < c; j++)
			queries[nq++] = names[np][j];
		unnamed[np++] = m[i].no_names;
	}
	first[np] = nq;
	debian_packages(queries, nq, pkg);
	for (size_t i = 0; i < np; i++) {
		const char *p = "";
		for (size_t q = first[i]; q < first[i + 1] && !p[0]; q++)
			p = pkg[q];
		fprintf(f, "%s %s (%s; ", k++ ? ";" : "", queries[first[i]], unnamed[i] ? "frames unnamed" : "no source lines");
		if (p[0])
			fprintf(f, "package %s: its %s-dbgsym)", p, p);
		else
			fputs("not from a Debian package: build it with -g)", f);
	}
	free(names);
	free(pkg);
	if (!k) {
		fclose(f);
		free(text);
		return 0;
	}
	fputs(". Debian's -dbgsym packages come from the debian-debug archive (deb "
	      "http://deb.debian.org/debian-debug bookworm-debug main; a few packages ship -dbg "
	      "ones instead, libc6-dbg)", f);
	if (urls && *urls)
		fprintf(f, "; DEBUGINFOD_URLS is set (%s) and libdw asked there: no answer for these", urls);
	else
		fputs("; or set DEBUGINFOD_URLS=https://debuginfod.debian.net and pfshim fetches "
		      "them through libdw", f);
	if (fclose(f) || !text) {
		free(text);
		return -ENOMEM;
	}
	/* a note for the report's end, not a problem to print as found */
	rc = sym->warn ? pfs_an_warn(sym->warn, "no debugging symbols for %zu object%s:%s", k,
				     k == 1 ? "" : "s", text) : 0;
	free(text);
	return rc;
}
