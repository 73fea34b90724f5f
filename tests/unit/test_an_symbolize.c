/*
 * Symbolization of this test binary's own code: a static function by name,
 * file and line through the module map dl_iterate_phdr gives (as the shim
 * logs it), the build-id check, an inlined call expanded into two frames,
 * and files that are missing; libc's frames through the cache of
 * uncompressed debug files (debugcache.h), and no debuginfod client
 * loaded when DEBUGINFOD_URLS is not set.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <gelf.h>
#include <libelf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../analyzer/symbolize.h"
#include "test_an_logbuild.h"

/* Kept out of line and alive at -O2: the test looks it up by address. */
static const int target_line = __LINE__ + 1;
static __attribute__((noinline, used)) int pfs_an_target_function(int x)
{
	__asm__ volatile("" : "+r"(x));
	return x + 1;
}

/* Source lines of the two calls below, recorded by the calls themselves. */
static volatile int helper_call_line, outer_call_line;

static __attribute__((noinline)) uintptr_t return_address(void)
{
	return (uintptr_t)__builtin_return_address(0);
}

static inline __attribute__((always_inline)) uintptr_t pfs_an_inlined_helper(void)
{
	uintptr_t r = (helper_call_line = __LINE__, return_address());

	/* the asm after the call keeps it from being a tail call */
	__asm__ volatile("" : "+r"(r));
	return r;
}

static __attribute__((noinline)) uintptr_t pfs_an_outer_function(void)
{
	uintptr_t r = (outer_call_line = __LINE__, pfs_an_inlined_helper());

	__asm__ volatile("" : "+r"(r));
	return r;
}

/* Three levels: inner inlined into middle inlined into the real function. */
static volatile int inner_call_line, middle_call_line, chain_call_line;

static inline __attribute__((always_inline)) uintptr_t pfs_an_chain_inner(void)
{
	uintptr_t r = (inner_call_line = __LINE__, return_address());

	__asm__ volatile("" : "+r"(r));
	return r;
}

static inline __attribute__((always_inline)) uintptr_t pfs_an_chain_middle(void)
{
	uintptr_t r = (middle_call_line = __LINE__, pfs_an_chain_inner());

	__asm__ volatile("" : "+r"(r));
	return r;
}

static __attribute__((noinline)) uintptr_t pfs_an_chain_outer(void)
{
	uintptr_t r = (chain_call_line = __LINE__, pfs_an_chain_middle());

	__asm__ volatile("" : "+r"(r));
	return r;
}

static void test_static_function_of_this_binary(void **state)
{
	const struct pfs_sym_result *res;
	struct pfs_an_warnings warn = {0};
	struct lb_self m;
	struct pfs_sym *sym;
	uint64_t frame;
	const char *base;

	(void)state;
	assert_int_equal(lb_self_module(&m), 0);
	assert_true(m.build_id_len > 0);	/* gcc on Debian links with --build-id */
	assert_int_equal(pfs_sym_new(&sym, &warn, NULL), 0);
	/* a return address just past the function's first byte, as a stack would hold */
	frame = (uintptr_t)&pfs_an_target_function + 1;
	res = pfs_sym_lookup(sym, m.path, m.build_id, m.build_id_len, frame - m.base - 1);
	assert_non_null(res);
	assert_true(res->n >= 1);
	assert_non_null(res->frames[res->n - 1].function);
	assert_string_equal(res->frames[res->n - 1].function, "pfs_an_target_function");
	assert_false(res->frames[res->n - 1].inlined);
	assert_non_null(res->frames[0].file);
	base = strrchr(res->frames[0].file, '/');
	assert_string_equal(base ? base + 1 : res->frames[0].file, "test_an_symbolize.c");
	/*
	 * A line of the function: at -O2 its first instruction may belong to the
	 * opening or to the first statement, so anything from the opening to
	 * the closing brace.
	 */
	assert_in_range(res->frames[0].line, target_line, target_line + 4);
	/* cached: the same result object */
	assert_ptr_equal(pfs_sym_lookup(sym, m.path, m.build_id, m.build_id_len,
					frame - m.base - 1), res);
	assert_int_equal(warn.n, 0);
	assert_int_equal(pfs_an_target_function(1), 2);
	pfs_sym_free(sym);
	pfs_an_warn_free(&warn);
}

/*
 * The frames of this binary's return address `ret` (minus one: the call)
 * are `n` functions at `lines`, innermost first, all inlined but the last.
 */
static void assert_chain(uint64_t ret, const char *const *functions, const volatile int *const *lines,
			 size_t n)
{
	const struct pfs_sym_result *res;
	struct pfs_an_warnings warn = {0};
	struct lb_self m;
	struct pfs_sym *sym;

	assert_int_equal(lb_self_module(&m), 0);
	assert_int_equal(pfs_sym_new(&sym, &warn, NULL), 0);
	res = pfs_sym_lookup(sym, m.path, m.build_id, m.build_id_len, ret - m.base - 1);
	assert_non_null(res);
	assert_int_equal(res->n, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(res->frames[i].function, functions[i]);
		/* C names: the symbol is the function */
		assert_string_equal(res->frames[i].symbol, functions[i]);
		assert_int_equal(res->frames[i].inlined, i + 1 < n);
		assert_int_equal(res->frames[i].line, *lines[i]);
	}
	assert_non_null(strstr(res->frames[n - 1].file, "test_an_symbolize.c"));
	pfs_sym_free(sym);
	pfs_an_warn_free(&warn);
}

/* The inlined helper at its call of return_address(), then its caller at the line that called it. */
static void test_inlined_frames_expanded(void **state)
{
	static const char *const functions[] = {"pfs_an_inlined_helper", "pfs_an_outer_function"};
	static const volatile int *const lines[] = {&helper_call_line, &outer_call_line};

	(void)state;
	assert_chain(pfs_an_outer_function(), functions, lines, 2);
}

/* The whole chain, as eu-addr2line -i gives it, not one level and then the real function. */
static void test_inline_chain_whole(void **state)
{
	static const char *const functions[] = {"pfs_an_chain_inner", "pfs_an_chain_middle",
						"pfs_an_chain_outer"};
	static const volatile int *const lines[] = {&inner_call_line, &middle_call_line,
						    &chain_call_line};

	(void)state;
	assert_chain(pfs_an_chain_outer(), functions, lines, 3);
}

static void test_build_id_mismatch_and_missing_file(void **state)
{
	const struct pfs_sym_result *res;
	struct pfs_an_warnings warn = {0};
	struct lb_self m;
	struct pfs_sym *sym;
	uint64_t vaddr;

	(void)state;
	assert_int_equal(lb_self_module(&m), 0);
	vaddr = (uintptr_t)&pfs_an_target_function - m.base;
	assert_int_equal(pfs_sym_new(&sym, &warn, NULL), 0);
	/* another build of the same path: not trusted, warned once */
	m.build_id[0] ^= 0xff;
	res = pfs_sym_lookup(sym, m.path, m.build_id, m.build_id_len, vaddr);
	assert_non_null(res);
	assert_int_equal(res->n, 1);
	assert_null(res->frames[0].function);
	assert_null(res->frames[0].file);
	res = pfs_sym_lookup(sym, m.path, m.build_id, m.build_id_len, vaddr + 4);
	assert_non_null(res);
	assert_null(res->frames[0].function);
	assert_int_equal(warn.n, 1);
	assert_non_null(strstr(warn.msgs[0], "build-id"));
	/* the right build-id at the same path still works */
	m.build_id[0] ^= 0xff;
	res = pfs_sym_lookup(sym, m.path, m.build_id, m.build_id_len, vaddr);
	assert_string_equal(res->frames[res->n - 1].function, "pfs_an_target_function");
	/* no file at all: no symbol, no crash, one warning */
	res = pfs_sym_lookup(sym, "/nonexistent/libgone.so", NULL, 0, 0x1234);
	assert_non_null(res);
	assert_null(res->frames[0].function);
	assert_int_equal(warn.n, 2);
	/* not a path (the vDSO): quietly nothing */
	res = pfs_sym_lookup(sym, "linux-vdso.so.1", NULL, 0, 0x10);
	assert_non_null(res);
	assert_null(res->frames[0].function);
	/* a file that is not ELF */
	res = pfs_sym_lookup(sym, "/etc/hostname", NULL, 0, 0x10);
	assert_non_null(res);
	assert_null(res->frames[0].function);
	assert_int_equal(warn.n, 3);
	pfs_sym_free(sym);
	pfs_an_warn_free(&warn);
}

/* libc's module as the shim logs it: its path, load bias and build-id. */
static int find_libc(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct lb_self *m = arg;

	(void)size;
	if (!info->dlpi_name || !strstr(info->dlpi_name, "/libc.so"))
		return 0;
	snprintf(m->path, sizeof(m->path), "%s", info->dlpi_name);
	m->base = info->dlpi_addr;
	lb_note_build_id(info, m);
	return 1;
}

/*
 * The frames of libc's `getpid` (an address inside it) with a fresh
 * symbolizer: a function no sanitizer intercepts (under ASan, `malloc` is
 * the sanitizer's own, not libc's).
 */
static struct pfs_sym_result frames_of_libc(const struct lb_self *libc, struct pfs_sym **sym,
					      struct pfs_an_warnings *warn)
{
	const struct pfs_sym_result *res;

	assert_int_equal(pfs_sym_new(sym, warn, NULL), 0);
	res = pfs_sym_lookup(*sym, libc->path, libc->build_id, libc->build_id_len,
			     (uintptr_t)&getpid - libc->base + 4);
	assert_non_null(res);
	return *res;
}

/* Whether the file's DWARF is zlib-compressed (Debian's debug files are; the cache is for them). */
static bool compressed_dwarf(const char *path)
{
	int fd = open(path, O_RDONLY);
	Elf_Scn *scn = NULL;
	bool yes = false;
	Elf *elf;

	if (fd < 0)
		return false;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	while (elf && (scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);

		yes |= sh && (sh->sh_flags & SHF_COMPRESSED);
	}
	elf_end(elf);
	close(fd);
	return yes;
}

/*
 * libc's frames (libc6-dbg: tools/deps.sh) are the same from its debug
 * file, from the uncompressed copy the first lookup kept, and when that
 * copy is not an ELF file of the build-id.
 */
static void test_debug_file_cache(void **state)
{
	char cache[] = "/tmp/pfs_symcache.XXXXXX", copy[PATH_MAX], debug[PATH_MAX], hex[2 * PFS_BUILD_ID_MAX + 1];
	struct pfs_an_warnings warn = {0};
	struct pfs_sym_result first, again;
	struct pfs_sym *sym1, *sym2, *sym3;
	struct lb_self libc = {0};
	struct stat st;
	FILE *f;

	(void)state;
	assert_int_equal(dl_iterate_phdr(find_libc, &libc), 1);
	assert_true(libc.build_id_len > 1);
	for (unsigned i = 0; i < libc.build_id_len; i++)
		sprintf(hex + 2 * i, "%02x", libc.build_id[i]);
	snprintf(debug, sizeof(debug), "/usr/lib/debug/.build-id/%.2s/%s.debug", hex, hex + 2);
	assert_int_equal(access(debug, R_OK), 0);
	assert_non_null(mkdtemp(cache));
	assert_int_equal(setenv("XDG_CACHE_HOME", cache, 1), 0);
	snprintf(copy, sizeof(copy), "%s/pfshim/debuginfo/%s.debug", cache, hex);

	first = frames_of_libc(&libc, &sym1, &warn);
	assert_non_null(first.frames[first.n - 1].function);
	assert_non_null(first.frames[0].file);
	assert_true(first.frames[0].line > 0);
	/* a copy kept only of a compressed debug file */
	print_message("libc's debug file %s: DWARF %scompressed\n", debug, compressed_dwarf(debug) ? "" : "not ");
	assert_int_equal(stat(copy, &st) == 0, compressed_dwarf(debug));
	if (stat(copy, &st) == 0)
		assert_false(compressed_dwarf(copy));

	again = frames_of_libc(&libc, &sym2, &warn);
	assert_int_equal(again.n, first.n);
	for (size_t i = 0; i < first.n; i++) {
		assert_string_equal(again.frames[i].function, first.frames[i].function);
		assert_string_equal(again.frames[i].file, first.frames[i].file);
		assert_int_equal(again.frames[i].line, first.frames[i].line);
	}
	pfs_sym_free(sym2);

	/* a copy that is no ELF file of that build-id is passed over */
	f = fopen(copy, "w");
	assert_non_null(f);
	fputs("not an ELF file\n", f);
	assert_int_equal(fclose(f), 0);
	again = frames_of_libc(&libc, &sym3, &warn);
	assert_int_equal(again.n, first.n);
	assert_string_equal(again.frames[again.n - 1].function, first.frames[first.n - 1].function);
	assert_int_equal(again.frames[0].line, first.frames[0].line);
	pfs_sym_free(sym3);
	pfs_sym_free(sym1);
	assert_int_equal(warn.n, 0);
	pfs_an_warn_free(&warn);
	unlink(copy);
	snprintf(copy, sizeof(copy), "%s/pfshim/debuginfo", cache);
	rmdir(copy);
	snprintf(copy, sizeof(copy), "%s/pfshim", cache);
	rmdir(copy);
	rmdir(cache);
	unsetenv("XDG_CACHE_HOME");
}

/*
 * An object without debug info, DEBUGINFOD_URLS not set: libdw's debuginfod
 * client (libcurl, gnutls) is not loaded, it would have nowhere to ask.
 */
static void test_no_debuginfod_without_urls(void **state)
{
	struct pfs_an_warnings warn = {0};
	const struct pfs_sym_result *res;
	struct pfs_sym *sym;

	(void)state;
	unsetenv("DEBUGINFOD_URLS");
	assert_int_equal(pfs_sym_new(&sym, &warn, NULL), 0);
	/* /bin/true: stripped, from coreutils, whose -dbgsym the tools do not install */
	res = pfs_sym_lookup(sym, "/bin/true", NULL, 0, 0x10);
	assert_non_null(res);
	assert_null(dlopen("libdebuginfod.so.1", RTLD_NOW | RTLD_NOLOAD));
	pfs_sym_free(sym);
	pfs_an_warn_free(&warn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_static_function_of_this_binary),
		cmocka_unit_test(test_inlined_frames_expanded),
		cmocka_unit_test(test_inline_chain_whole),
		cmocka_unit_test(test_build_id_mismatch_and_missing_file),
		cmocka_unit_test(test_debug_file_cache),
		cmocka_unit_test(test_no_debuginfod_without_urls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
