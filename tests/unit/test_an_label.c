/*
 * A site's label (analyzer/label.c) on made-up stacks: the shim's frames
 * never shown, the allocator's dropped at the top, runtime frames kept but
 * passed over, the user's own list from --runtime-frames and the
 * environment; and the demangled form both sides use (pfshim/demangle.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pfshim/demangle.h>

#include "../../analyzer/label.h"

#define FR(fn, mod) {.function = fn, .symbol = fn, .module = mod, .module_path = "/x/" mod}
#define FRS(fn, mod, src) \
	{.function = fn, .symbol = fn, .module = mod, .module_path = "/x/" mod, .source_path = src}

/* The label's index among `frames` (their count taken from the array). */
static size_t label_at(struct pfs_rframe *frames, size_t n)
{
	return pfs_label_site(frames, &n);
}
#define LABEL_AT(...) label_at((struct pfs_rframe[]){__VA_ARGS__}, \
			       sizeof((struct pfs_rframe[]){__VA_ARGS__}) / sizeof(struct pfs_rframe))

static int setup(void **state)
{
	(void)state;
	unsetenv("PFSHIM_RUNTIME_FRAMES");
	pfs_label_reset();
	return 0;
}

/* jemalloc under the shim: its frames, the shim's hook between them and the program */
static void test_jemalloc_and_shim_dropped(void **state)
{
	struct pfs_rframe f[] = {
		FR(NULL, "libjemalloc.so.2"), FR("je_malloc_default", "libjemalloc.so.2"),
		FR("malloc", "libjemalloc.so.2"), FR("malloc", "libpfshim.so"),
		FRS("fill_buffer", "opt_jemalloc", "/src/opt_jemalloc.c"),
		FRS("main", "opt_jemalloc", "/src/opt_jemalloc.c"),
		FR("__libc_start_call_main", "libc.so.6"),
	};
	size_t n = 7, label;

	(void)state;
	label = pfs_label_site(f, &n);
	assert_int_equal(n, 3);
	assert_int_equal(label, 0);
	/* a source file named after the allocator is still the user's */
	assert_string_equal(f[0].function, "fill_buffer");
	assert_string_equal(f[1].function, "main");
}

/* C++: operator new and the containers stay in the stack; the label is the user's function */
static void test_cpp_runtime_passed_over(void **state)
{
	struct pfs_rframe f[] = {
		FR("operator new", "libstdc++.so.6"),
		FR("std::__new_allocator<Record>::allocate", "names"),
		FR("std::vector<Record, std::allocator<Record> >::_M_realloc_insert<Record const&>", "names"),
		FR("load_records", "names"), FR("main", "names"),
	};
	size_t n = 5, label;

	(void)state;
	f[1].inlined = true;
	label = pfs_label_site(f, &n);
	assert_int_equal(n, 5);
	assert_int_equal(label, 3);
	assert_int_equal(pfs_label_role(&f[0]), PFS_FRAME_RUNTIME);
}

/* libc's own allocations (printf's buffer) are named by the program's call */
static void test_libc_then_user(void **state)
{
	struct pfs_rframe f[] = {
		FR("_IO_file_doallocate", "libc.so.6"), FR("printf", "libc.so.6"),
		FR("main", "prog"),
	};
	size_t n = 3;

	(void)state;
	assert_int_equal(pfs_label_site(f, &n), 2);
	assert_int_equal(n, 3);
}

/* an allocator's own thread: nothing of the program below, its frames are the story */
static void test_allocator_alone_kept(void **state)
{
	struct pfs_rframe f[] = {
		FR(NULL, "libjemalloc.so.2"), FR(NULL, "libjemalloc.so.2"),
		FR("start_thread", "libc.so.6"), FR("clone3", "libc.so.6"),
	};
	size_t n = 4;

	(void)state;
	assert_int_equal(pfs_label_site(f, &n), 0);
	assert_int_equal(n, 4);
	assert_null(f[0].function);
	/* and a stack of the shim only: nothing left */
	struct pfs_rframe g[] = {FR("malloc", "libpfshim.so")};
	n = 1;
	assert_int_equal(pfs_label_site(g, &n), 0);
	assert_int_equal(n, 0);
}

/* wrappers: built-in names (GCC clone suffixes too), the user's list, the environment */
static void test_wrappers(void **state)
{
	struct pfs_rframe f[] = {
		FR("xmalloc.constprop.0", "prog"), FR("pool_grab", "prog"), FR("load_index", "prog"),
		FR("main", "prog"),
	};
	size_t n = 4;

	(void)state;
	assert_int_equal(pfs_label_site(f, &n), 1);
	assert_int_equal(pfs_label_add_runtime("arena_*,pool_*"), 0);
	n = 4;
	assert_int_equal(pfs_label_site(f, &n), 2);
	/* the environment, read once, on top of the options */
	pfs_label_reset();
	setenv("PFSHIM_RUNTIME_FRAMES", "pool_grab:load_*", 1);
	n = 4;
	assert_int_equal(pfs_label_site(f, &n), 3);
	/* a module's file name is a glob target too */
	pfs_label_reset();
	unsetenv("PFSHIM_RUNTIME_FRAMES");
	assert_int_equal(pfs_label_add_runtime("prog"), 0);
	n = 4;
	assert_int_equal(pfs_label_site(f, &n), 0);	/* nothing is the user's: the first frame */
}

/* Known programs' allocation wrappers and runtimes: the code that asked names the site. */
static void test_runtime_wrappers(void **state)
{
	(void)state;
	/* the allocation entries of Perl and OpenSSL are their runtimes' */
	assert_int_equal(LABEL_AT(
		FR("Perl_safesysmalloc", "perl"), FR("Perl_hv_common", "perl"), FR("main", "perl")), 1);
	assert_int_equal(LABEL_AT(
		FR("CRYPTO_zalloc", "libcrypto.so.3"), FR("EVP_MD_CTX_new", "libcrypto.so.3"),
		FR("main", "openssl")), 1);
	/* GCC's collected memory and binutils' pools: the code that asked names the site */
	assert_int_equal(LABEL_AT(
		FR("ggc_internal_alloc", "cc1"), FR("ggc_internal_cleared_alloc", "cc1"),
		FR("make_node", "cc1"), FR("main", "cc1")), 2);
	assert_int_equal(LABEL_AT(
		FR("_objalloc_alloc", "libbfd-2.40-system.so"), FR("bfd_hash_allocate", "libbfd-2.40-system.so"),
		FR("_bfd_x86_elf_link_hash_newfunc", "libbfd-2.40-system.so"), FR("main", "ld")), 2);
	/* Rust: the allocator's entries and the alloc crate's growth */
	assert_int_equal(LABEL_AT(
		FR("__rust_alloc", "prog"), FR("alloc::raw_vec::finish_grow", "prog"),
		FR("<alloc::vec::Vec<u64>>::push", "prog"), FR("prog::load", "prog"), FR("main", "prog")), 3);
	/* a runtime's unnamed helper under its allocation entry (stripped libtcl): the runtime's too */
	assert_int_equal(LABEL_AT(
		FR(NULL, "libtcl8.6.so"), FR("TclpAlloc", "libtcl8.6.so"), FR("Tcl_Alloc", "libtcl8.6.so"),
		FR("Tcl_NewStringObj", "libtcl8.6.so"), FR("main", "tclsh")), 3);
	/* SQLite's allocator and its unnamed helper under it (mallocWithAlarm in a stripped libsqlite3) */
	assert_int_equal(LABEL_AT(
		FR(NULL, "libsqlite3.so.0"), FR("sqlite3Malloc", "libsqlite3.so.0"),
		FR("sqlite3ParserAlloc", "libsqlite3.so.0"), FR("main", "sqlite3")), 2);
	/* HotSpot: its C heap and arenas */
	assert_int_equal(LABEL_AT(
		FR("os::malloc", "libjvm.so"), FR("ChunkPool::allocate", "libjvm.so"), FR("Arena::grow", "libjvm.so"),
		FR("ciObjectFactory::ciObjectFactory", "libjvm.so"), FR("main", "java")), 3);
	assert_int_equal(LABEL_AT(
		FR("os::pd_commit_memory", "libjvm.so"), FR("os::commit_memory", "libjvm.so"),
		FR("VirtualSpace::expand_by", "libjvm.so"), FR("CodeHeap::reserve", "libjvm.so")), 3);
	/* but an unnamed caller of the runtime's entry is the code that asked */
	assert_int_equal(LABEL_AT(
		FR("Perl_safesysmalloc", "perl"), FR(NULL, "perl"), FR("Perl_hv_common", "perl")), 1);
}

#define JIT(name) {.function = name, .jit = true}

/* JIT code named by a perf map: the program's innermost function labels the site, past the runtime's C++ and its own JIT pieces */
static void test_jit_frames(void **state)
{
	(void)state;
	/* V8: the heap's C++ above, a builtin and node's own module below the allocation, the script's function further down */
	assert_int_equal(LABEL_AT(
		FR("v8::base::OS::Allocate", "node"), FR("v8::internal::Runtime_GrowArrayElements", "node"),
		JIT("Builtin:CEntry_Return1_ArgvOnStack_NoBuiltinExit"),
		JIT("JS:~Module._compile node:internal/modules/cjs/loader:1100:37"),
		JIT("JS:*load /srv/app/load.js:3:20"), FR("node::Start", "node")), 4);
	/* HotSpot: the JDK's classes and the interpreter are the runtime's, whatever a method returns */
	assert_int_equal(LABEL_AT(
		FR("os::malloc", "libjvm.so"), FR("Unsafe_AllocateMemory0", "libjvm.so"),
		JIT("void java.nio.DirectByteBuffer.<init>(int)"), JIT("java.nio.ByteBuffer java.nio.ByteBuffer.allocateDirect(int)"),
		JIT("Interpreter"), JIT("java.util.List com.example.Cache.fill(int)"), FR("JavaMain", "libjli.so")), 5);
	/* only the runtime's JIT code: its innermost piece (what the program did: a builtin), as a Python site in the standard library alone */
	assert_int_equal(LABEL_AT(
		FR("v8::base::OS::Allocate", "node"), JIT("Builtin:ArrayPrototypePush"), FR("main", "node")), 1);
	/* the user's list names JIT code too */
	assert_int_equal(pfs_label_add_runtime("JS:*vendor/*"), 0);
	assert_int_equal(LABEL_AT(
		FR("malloc", "libc.so.6"), JIT("JS:*grow /srv/app/vendor/lib.js:9:1"),
		JIT("JS:*main /srv/app/main.js:1:1")), 1);
}

static void test_demangle(void **state)
{
	char buf[256];

	(void)state;
	assert_true(pfs_demangle("_ZN3app6Loader4loadEm", buf, sizeof(buf)));
	assert_string_equal(buf, "app::Loader::load");
	assert_true(pfs_demangle("_Z10make_tableIlEPT_m", buf, sizeof(buf)));
	assert_string_equal(buf, "make_table<long>");
	assert_true(pfs_demangle("_Znwm", buf, sizeof(buf)));
	assert_string_equal(buf, "operator new");
	/* Rust: a legacy name's hash dropped, and its own scheme (v0) */
	assert_true(pfs_demangle("_ZN1r4main17h086b0cfd890a8ea9E", buf, sizeof(buf)));
	assert_string_equal(buf, "r::main");
	assert_true(pfs_demangle("_RNvMs_Cs4Cv8Wi1oAIB_7mycrateNtB4_3Foo3bar", buf, sizeof(buf)));
	assert_string_equal(buf, "<mycrate::Foo>::bar");
	assert_false(pfs_demangle("_Rjunk", buf, sizeof(buf)));
	/* C names, garbage, a buffer too small: not demangled */
	assert_false(pfs_demangle("load_records", buf, sizeof(buf)));
	assert_false(pfs_demangle("_Zjunk", buf, sizeof(buf)));
	assert_false(pfs_demangle("_ZN3app6Loader4loadEm", buf, 8));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_jemalloc_and_shim_dropped, setup),
		cmocka_unit_test_setup(test_cpp_runtime_passed_over, setup),
		cmocka_unit_test_setup(test_libc_then_user, setup),
		cmocka_unit_test_setup(test_allocator_alone_kept, setup),
		cmocka_unit_test_setup(test_wrappers, setup),
		cmocka_unit_test_setup(test_runtime_wrappers, setup),
		cmocka_unit_test_setup(test_jit_frames, setup),
		cmocka_unit_test_setup(test_demangle, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
