/*
 * A site's label: the first frame that is the user's code (label.h).  The
 * lists below are the rule's data; a frame's role is decided once per
 * distinct (function, module, source) and cached.
 */
#include "label.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

/* What a glob is matched against. */
enum on { ON_FUNCTION, ON_MODULE, ON_SOURCE };

struct role_glob {
	enum pfs_frame_role role;
	enum on on;
	const char *glob;
};

/*
 * In order: the first match decides.  Functions are matched by their
 * demangled name (pfshim/demangle.h: no parameters), cut before a GCC clone
 * suffix (".part.0", ".isra.0", " [clone .constprop.0]").
 */
static const struct role_glob builtin[] = {
	{PFS_FRAME_SHIM, ON_MODULE, "libpfshim.so*"},

	/* allocators as libraries */
	{PFS_FRAME_ALLOCATOR, ON_MODULE, "libjemalloc.so*"},
	{PFS_FRAME_ALLOCATOR, ON_MODULE, "libtcmalloc*.so*"},
	{PFS_FRAME_ALLOCATOR, ON_MODULE, "libmimalloc*.so*"},
	{PFS_FRAME_ALLOCATOR, ON_MODULE, "libhoard.so*"},
	{PFS_FRAME_ALLOCATOR, ON_MODULE, "libsnmalloc*.so*"},
	{PFS_FRAME_ALLOCATOR, ON_MODULE, "librpmalloc*.so*"},
	{PFS_FRAME_ALLOCATOR, ON_MODULE, "libscudo*.so*"},
	/* libc's malloc family and what it maps with */
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "malloc"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "calloc"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "realloc"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "reallocarray"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "free"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "posix_memalign"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "aligned_alloc"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "memalign"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "valloc"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "pvalloc"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "__libc_*alloc"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "__libc_free"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "__posix_memalign"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "_int_*"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "_mid_memalign"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "sysmalloc*"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "tcache_*"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "malloc_consolidate"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "arena_get2"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "new_heap"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "alloc_new_heap"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "grow_heap"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "mmap"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "mmap64"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "__mmap"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "mremap"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "__mremap"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "brk"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "__brk"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "sbrk"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "__sbrk"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "__glibc_morecore"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "__default_morecore"},
	/* allocators linked in: their prefixed entries, and their sources */
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "je_*"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "mi_*"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "_mi_*"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "tc_*"},
	{PFS_FRAME_ALLOCATOR, ON_FUNCTION, "tcmalloc::*"},
	{PFS_FRAME_ALLOCATOR, ON_SOURCE, "*/jemalloc*/src/*"},
	{PFS_FRAME_ALLOCATOR, ON_SOURCE, "*/include/jemalloc/*"},
	{PFS_FRAME_ALLOCATOR, ON_SOURCE, "*/mimalloc*/src/*"},
	{PFS_FRAME_ALLOCATOR, ON_SOURCE, "*/mimalloc*/include/*"},
	{PFS_FRAME_ALLOCATOR, ON_SOURCE, "*/gperftools*/src/*"},
	{PFS_FRAME_ALLOCATOR, ON_SOURCE, "*/tcmalloc/*"},

	/* language runtimes: C++ */
	{PFS_FRAME_RUNTIME, ON_MODULE, "libstdc++.so*"},
	{PFS_FRAME_RUNTIME, ON_MODULE, "libc++.so*"},
	{PFS_FRAME_RUNTIME, ON_MODULE, "libc++abi.so*"},
	{PFS_FRAME_RUNTIME, ON_MODULE, "libgcc_s.so*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "operator new*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "operator delete*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "std::*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "__gnu_cxx::*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "__cxxabiv1::*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "__cxa_*"},
	/* Rust: the global allocator's entries and the alloc crate (Vec, Box, String grow there; its std:: is above) */
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "__rust_alloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "__rust_realloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "__rdl_*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "alloc::*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "<alloc::*"},
	/* C: libc (strdup, fopen, printf's buffer, ...) and the loader (dlopen) */
	{PFS_FRAME_RUNTIME, ON_MODULE, "libc.so*"},
	{PFS_FRAME_RUNTIME, ON_MODULE, "libpthread.so*"},
	{PFS_FRAME_RUNTIME, ON_MODULE, "ld-linux*.so*"},
	{PFS_FRAME_RUNTIME, ON_MODULE, "ld64.so*"},
	/* CPython: the interpreter itself (its C functions are the runtime's, whatever they allocate for) */
	{PFS_FRAME_RUNTIME, ON_MODULE, "python[23]*"},
	{PFS_FRAME_RUNTIME, ON_MODULE, "libpython*.so*"},
	/* CPython's object allocator */
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "PyObject_Malloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "PyObject_Calloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "PyObject_Realloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "PyMem_*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "_PyMem_*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "_PyObject_Malloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "_PyObject_Calloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "_PyObject_Realloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "_PyObject_Arena*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "_PyObject_GC_*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "PyObject_GC_*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "_PyObject_New*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "PyType_GenericAlloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "_PyType_AllocNoTrack"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "gc_alloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "new_arena"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "allocate_from_new_pool"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "pymalloc_*"},
	/* Perl's allocator entries (perl, libperl: Perl_safesysmalloc and its kin) */
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "Perl_safesys*"},
	/* OpenSSL's (libcrypto: every allocation of the library goes through them) */
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "CRYPTO_malloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "CRYPTO_zalloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "CRYPTO_realloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "CRYPTO_clear_realloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "CRYPTO_strdup"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "CRYPTO_strndup"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "CRYPTO_memdup"},
	/* HotSpot's (the JVM's C heap and its arenas: os::malloc under AllocateHeap, Arena::grow) */
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "os::malloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "os::realloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "AllocateHeap"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "ReallocateHeap"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "ChunkPool::allocate"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "Arena::grow"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "Arena::Amalloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "CHeapObj<*>::operator new*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "os::pd_map_memory"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "os::map_memory"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "osSupport::map_memory"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "os::pd_commit_memory*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "os::commit_memory*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "os::pd_reserve_memory*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "os::reserve_memory*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "VirtualSpace::expand_by"},
	/* SQLite's (its page cache, parser, VDBE all allocate through them) */
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "sqlite3Malloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "sqlite3DbMalloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "sqlite3Realloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "sqlite3DbRealloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "sqlite3_malloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "sqlite3_realloc*"},
	/* Tcl's (tclsh, libtcl: Tcl_Alloc and ckalloc end there) */
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "Tcl_Alloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "Tcl_Realloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "Tcl_Attempt*alloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "TclpAlloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "TclpRealloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "TclThreadAlloc*"},
	/* GCC's garbage-collected allocator (cc1, cc1plus: most of a compile's memory), binutils' (BFD, libiberty) */
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "ggc_internal_*alloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "ggc_alloc_*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "ggc_realloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "bfd_*alloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "_objalloc_alloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "_obstack_newchunk"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "_obstack_begin*"},
	/* allocation wrappers everyone knows: gnulib and git, GLib, Redis, PHP */
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "xmalloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "xcalloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "xrealloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "xzalloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "xmallocz*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "xstrdup"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "xstrndup"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "xmemdup*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "xnmalloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "xnrealloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "x2realloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "x2nrealloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "xcharalloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "g_malloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "g_realloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "g_try_malloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "g_try_realloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "g_slice_alloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "g_memdup*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "g_strdup*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "g_strndup"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "zmalloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "zcalloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "zrealloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "ztry*alloc*"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "zstrdup"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "emalloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "ecalloc"},
	{PFS_FRAME_RUNTIME, ON_FUNCTION, "erealloc"},
};

/*
 * Code a JIT compiled (jitmap.h), by the name its perf map gives: the
 * runtime's own pieces (V8's builtins, stubs and bytecode handlers; node's
 * own modules; HotSpot's interpreter and stubs; the JDK's classes) are a
 * runtime for the label, the program's functions are the user's code.
 */
static const char *const jit_runtime[] = {
	"Builtin:*", "BytecodeHandler:*", "Stub:*", "Handler:*", "* node:*", "Interpreter", "StubRoutines*",
};
/* A Java method's class, matched on "package.Class.method" (HotSpot's names: "RET package.Class.method(ARGS)"). */
static const char *const java_runtime[] = {"java.*", "javax.*", "jdk.*", "sun.*", "com.sun.*"};

/* A Java method's qualified name in a JIT name (the word before its "("), into buf; NULL when it has none. */
static const char *java_method(const char *name, char *buf, size_t len)
{
	const char *paren = strchr(name, '('), *start = paren;
	size_t n;

	if (!paren)
		return NULL;
	while (start > name && start[-1] != ' ')
		start--;
	n = (size_t)(paren - start);
	if (!n || n >= len)
		return NULL;
	memcpy(buf, start, n);
	buf[n] = 0;
	return buf;
}

/* The user's additions: runtime frames, matched on function, symbol or module. */
static char **extra;
static size_t nextra, extra_cap;
static bool env_read;

struct role_ent {
	char *key;	/* function NUL symbol NUL module NUL source */
	size_t keylen;
	enum pfs_frame_role role;
	UT_hash_handle hh;
};
static struct role_ent *cache;

static void cache_clear(void)
{
	struct role_ent *e, *tmp;

	HASH_ITER(hh, cache, e, tmp) {
		HASH_DEL(cache, e);
		free(e->key);
		free(e);
	}
}

static int add_globs(const char *globs)
{
	const char *p = globs;

	cache_clear();	/* roles change */
	while (p && *p) {
		size_t n = strcspn(p, ",:");

		if (n) {
			char *g = strndup(p, n);

			if (!g || pfs_an_reserve((void **)&extra, &extra_cap, nextra + 1, sizeof(*extra))) {
				free(g);
				return -ENOMEM;
			}
			extra[nextra++] = g;
		}
		p += n;
		if (*p)
			p++;
	}
	return 0;
}

static int read_env(void)
{
	const char *env;

	if (env_read)
		return 0;
	env_read = true;
	env = getenv("PFSHIM_RUNTIME_FRAMES");
	return env ? add_globs(env) : 0;
}

int pfs_label_add_runtime(const char *globs)
{
	int rc = read_env();

	return rc ? rc : add_globs(globs);
}

void pfs_label_reset(void)
{
	cache_clear();
	for (size_t i = 0; i < nextra; i++)
		free(extra[i]);
	free(extra);
	extra = NULL;
	nextra = extra_cap = 0;
	env_read = false;
}

/* The function's name without a GCC clone suffix, into buf (cut when longer). */
static const char *unclone(const char *fn, char *buf, size_t len)
{
	const char *cut = strstr(fn, " [clone ");
	size_t n;

	if (!cut && !strpbrk(fn, ":<("))	/* a C name: "xmalloc.constprop.0" */
		cut = strchr(fn, '.');
	if (!cut || cut == fn)
		return fn;
	n = (size_t)(cut - fn) < len - 1 ? (size_t)(cut - fn) : len - 1;
	memcpy(buf, fn, n);
	buf[n] = 0;
	return buf;
}

static bool glob_hits(const char *glob, const char *s)
{
	return s && fnmatch(glob, s, 0) == 0;
}

/*
 * A Python frame: the interpreter's own library (the standard library, the
 * frozen import machinery) is a runtime, what the user adds too; the
 * program's files and installed packages are the user's code.
 */
static enum pfs_frame_role decide_python(const struct pfs_rframe *f)
{
	const char *src = f->source_path;

	for (size_t k = 0; k < nextra; k++)
		if (glob_hits(extra[k], f->function) || glob_hits(extra[k], src))
			return PFS_FRAME_RUNTIME;
	if (glob_hits("<frozen *>", src))
		return PFS_FRAME_RUNTIME;
	if (glob_hits("*/lib/python3.*/*", src) && !strstr(src, "/site-packages/") &&
	    !strstr(src, "/dist-packages/"))
		return PFS_FRAME_RUNTIME;
	return PFS_FRAME_USER;
}

/* A JIT frame: the user's list, then the runtimes' pieces. */
static enum pfs_frame_role decide_jit(const struct pfs_rframe *f)
{
	for (size_t k = 0; k < nextra; k++)
		if (glob_hits(extra[k], f->function))
			return PFS_FRAME_RUNTIME;
	for (size_t i = 0; i < PFS_AN_ARRAY_SIZE(jit_runtime); i++)
		if (glob_hits(jit_runtime[i], f->function))
			return PFS_FRAME_RUNTIME;
	char buf[1024];
	const char *method = f->function ? java_method(f->function, buf, sizeof(buf)) : NULL;
	for (size_t i = 0; method && i < PFS_AN_ARRAY_SIZE(java_runtime); i++)
		if (glob_hits(java_runtime[i], method))
			return PFS_FRAME_RUNTIME;
	return PFS_FRAME_USER;
}

/* The shim's and the allocators' entries first, then the user's list, then the runtimes'. */
static enum pfs_frame_role decide(const struct pfs_rframe *f)
{
	char buf[1024];
	const char *fn = f->function ? unclone(f->function, buf, sizeof(buf)) : NULL;
	const char *module = f->module_path ? pfs_an_basename(f->module_path) : f->module;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < PFS_AN_ARRAY_SIZE(builtin); i++) {
			const struct role_glob *g = &builtin[i];
			const char *s = g->on == ON_FUNCTION ? fn : g->on == ON_MODULE ? module
											 : f->source_path;

			if ((g->role == PFS_FRAME_RUNTIME) == (pass == 1) && glob_hits(g->glob, s))
				return g->role;
		}
		for (size_t k = 0; pass == 0 && k < nextra; k++)
			if (glob_hits(extra[k], fn) || glob_hits(extra[k], f->symbol) ||
			    glob_hits(extra[k], module))
				return PFS_FRAME_RUNTIME;
	}
	return PFS_FRAME_USER;
}

static enum pfs_frame_role decide_any(const struct pfs_rframe *f)
{
	return f->python ? decide_python(f) : f->jit ? decide_jit(f) : decide(f);
}

enum pfs_frame_role pfs_label_role(const struct pfs_rframe *f)
{
	const char *parts[4] = {f->function, f->symbol,
				f->python ? "[python]" : f->jit ? "[jit]" : f->module_path ? f->module_path : f->module,
				f->source_path};
	size_t len[4], keylen = 0;
	struct role_ent *e;
	char *key;

	if (read_env())
		return decide_any(f);	/* out of memory: decided each time */
	for (int i = 0; i < 4; i++)
		keylen += (len[i] = parts[i] ? strlen(parts[i]) : 0) + 1;
	key = malloc(keylen);
	if (!key)
		return decide_any(f);
	for (int i = 0, at = 0; i < 4; at += (int)len[i] + 1, i++) {
		if (len[i])
			memcpy(key + at, parts[i], len[i]);
		key[at + len[i]] = 0;
	}
	HASH_FIND(hh, cache, key, keylen, e);
	if (e) {
		free(key);
		return e->role;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		free(key);
		return decide_any(f);
	}
	e->key = key;
	e->keylen = keylen;
	e->role = decide_any(f);
	HASH_ADD_KEYPTR(hh, cache, e->key, e->keylen, e);
	return e->role;
}

/*
 * Frames without a name from frames[i] on, called by a runtime frame of
 * their own object: that runtime's static helpers (Tcl's allocator under
 * TclpAlloc in a stripped libtcl), not the code that asked for memory.
 */
static bool runtime_helper(const struct pfs_rframe *frames, size_t k, size_t i)
{
	const char *module = frames[i].module;

	for (; i < k && !frames[i].function && !frames[i].python && !frames[i].jit; i++)
		if (!module || !frames[i].module || strcmp(frames[i].module, module))
			return false;
	return i < k && frames[i].module && module && !strcmp(frames[i].module, module) &&
	       pfs_label_role(&frames[i]) == PFS_FRAME_RUNTIME;
}

size_t pfs_label_site(struct pfs_rframe *frames, size_t *n)
{
	size_t k = 0, top = 0, label, py;
	bool user_below = false;

	for (size_t i = 0; i < *n; i++)
		if (pfs_label_role(&frames[i]) != PFS_FRAME_SHIM)
			frames[k++] = frames[i];
	*n = k;
	while (top < k && pfs_label_role(&frames[top]) == PFS_FRAME_ALLOCATOR)
		top++;
	for (size_t i = top; i < k && !user_below; i++)
		user_below = pfs_label_role(&frames[i]) == PFS_FRAME_USER;
	/* an allocator's own work (its thread, its start-up): keep its frames, the only story */
	if (top && top < k && user_below) {
		memmove(frames, frames + top, (k - top) * sizeof(*frames));
		*n = k -= top;
	}
	/*
	 * A Python program's site: the script's line, whatever C (the
	 * interpreter, an extension) lies above it; a JIT's: its program's
	 * function, whatever the runtime's C++ (V8's heap, HotSpot's) above.
	 */
	py = k;
	for (size_t i = 0; i < k; i++) {
		if (!frames[i].python && !frames[i].jit)
			continue;
		if (pfs_label_role(&frames[i]) == PFS_FRAME_USER)
			return i;
		if (py == k)
			py = i;
	}
	if (py < k)
		return py;
	for (label = 0; label < k; label++)
		if (pfs_label_role(&frames[label]) == PFS_FRAME_USER && !runtime_helper(frames, k, label))
			return label;
	return 0 < k ? 0 : k;
}

/* The name of memory accounted by kind: "[stack]", "[data of MODULE]" (its one frame's object), ... */
void pfs_label_category(struct pfs_rsite *rs)
{
	unsigned k = rs->site->key.kind;
	if (!pfs_kind_is_category(k))
		return;
	const char *module = k == PFS_KIND_DATA && rs->nframes ? rs->frames[0].module : NULL;
	if (module)
		snprintf(rs->category_name, sizeof(rs->category_name), "[data of %s]", module);
	else
		snprintf(rs->category_name, sizeof(rs->category_name), "[%s]",
			 k == PFS_KIND_THREAD_STACK ? "thread stack"
			 : k == PFS_KIND_PRESTART  ? "before pfshim started"
			 : k == PFS_KIND_UNHOOKED  ? "mapped without libc"
						   : pfs_kind_name(k));
	rs->category = (struct pfs_rframe){.function = rs->category_name, .module = module};
	rs->nframes = 0; /* no call stack: the label says what the memory is */
}
