/*
 * The one way C++ and Rust names are demangled, by the analyzer (the names reports
 * show) and by the shim (the names policies' site= matches), so that a glob
 * written from a report matches.  GNU libiberty's demangler (Debian's
 * libiberty-dev, the one binutils and GDB use), through its callback entry
 * point, which never allocates: the shim calls it inside malloc hooks.
 * The form is the qualified name with template arguments and without the
 * parameter list or return type ("app::Loader::load", "make_table<long>",
 * "operator new"): what a user types in site=, and short enough for a
 * label; overloads differ by file and line, and the raw symbol is kept.
 *
 * Its stack use grows with the name: up to 425 bytes per character of the
 * mangled name measured (a pack of 1000 template arguments: 420 KiB), and
 * libiberty gives up on names much over 1000 characters.  Names longer
 * than PFS_DEMANGLE_MAX_MANGLED are left mangled, by both sides alike; the
 * shim demangles on a stack of PFS_DEMANGLE_STACK bytes of its own.
 */
#ifndef PFSHIM_DEMANGLE_H
#define PFSHIM_DEMANGLE_H

#include <stddef.h>
#include <string.h>

#include <libiberty/demangle.h>

#define PFS_DEMANGLE_MAX_MANGLED 1024
/* Stack for the longest name it is given: 1 KiB per character, more than twice the worst measured. */
#define PFS_DEMANGLE_STACK (PFS_DEMANGLE_MAX_MANGLED * 1024)

struct pfs_demangle_out {
	char *buf;
	size_t len, used;
	int overflow;
};

static inline void pfs_demangle_put(const char *s, size_t n, void *opaque)
{
	struct pfs_demangle_out *o = opaque;

	if (o->overflow || n >= o->len - o->used) {
		o->overflow = 1;
		return;
	}
	memcpy(o->buf + o->used, s, n);
	o->used += n;
	o->buf[o->used] = 0;
}

/*
 * The demangled form of `sym` into buf (NUL-terminated): 1, or 0 when `sym`
 * is no C++ (Itanium ABI) or Rust name, too long, or does not fit in `len`.
 * Rust's are asked first, by libiberty's Rust demangler (no allocation
 * either): its legacy names are C++ ones whose last part is a hash
 * ("r::main::h086b0cfd890a8ea9"), which it drops ("r::main"), and "_R" is
 * its own scheme (v0: "<mycrate::Foo>::bar").
 */
static inline int pfs_demangle(const char *sym, char *buf, size_t len)
{
	struct pfs_demangle_out o = {.buf = buf, .len = len};
	size_t n = 0;

	if (!sym || sym[0] != '_' || (sym[1] != 'Z' && sym[1] != 'R') || len < 2)
		return 0;
	/* a loop, not strnlen: gcc -O1 with the sanitizers takes a literal's size for the bound */
	while (n <= PFS_DEMANGLE_MAX_MANGLED && sym[n])
		n++;
	if (n > PFS_DEMANGLE_MAX_MANGLED)
		return 0;
	buf[0] = 0;
	/* no DMGL_PARAMS: no parameter list, no return type; DMGL_ANSI: const and volatile kept */
	if (rust_demangle_callback(sym, DMGL_ANSI, pfs_demangle_put, &o) && !o.overflow && o.used > 0)
		return 1;
	if (sym[1] != 'Z')
		return 0;
	o.used = 0;
	o.overflow = 0;
	buf[0] = 0;
	return cplus_demangle_v3_callback(sym, DMGL_ANSI, pfs_demangle_put, &o) && !o.overflow &&
	       o.used > 0;
}

#endif
