/*
 * Offline symbolization with libdw: (object file, build-id, file address)
 * -> function, source file and line, expanded into inlined frames.  Each
 * object is opened once, each address resolved once; both are cached for
 * the life of the struct pfs_sym.
 */
#ifndef PFSHIM_SYMBOLIZE_H
#define PFSHIM_SYMBOLIZE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "an_common.h"

struct pfs_sym_frame {
	char *function;		/* demangled (pfshim/demangle.h); NULL: no symbol covers the address */
	char *symbol;		/* as the symbol table or DWARF spells it (mangled); NULL with function */
	char *file;		/* as DWARF names it; NULL: no line information */
	unsigned line;		/* 0: unknown */
	bool inlined;		/* code of this function inlined into the next frame */
};

/* At least one frame; innermost (inlined) first, the real function last. */
struct pfs_sym_result {
	size_t n;
	struct pfs_sym_frame *frames;
};

struct pfs_sym;

/* Warnings (a file missing, a build-id mismatch) go to `warn`, once per object, and to diag. */
int pfs_sym_new(struct pfs_sym **out, struct pfs_an_warnings *warn, FILE *diag);
void pfs_sym_free(struct pfs_sym *sym);

/*
 * Resolve `vaddr`, an address of the object at `path` as the file numbers it
 * (run-time address minus the load bias).  A return address should be passed
 * minus one, to land inside the call.  build_id_len 0 skips the build-id
 * check.  The result lives as long as `sym`; NULL only when out of memory.
 */
const struct pfs_sym_result *pfs_sym_lookup(struct pfs_sym *sym, const char *path,
					    const uint8_t *build_id, unsigned build_id_len,
					    uint64_t vaddr);

/* An object whose frames in a report lack names (no symbol at all) or only source lines. */
struct pfs_sym_missing {
	const char *path;
	bool no_names;
};

/*
 * One warning for them all, in the report (not on diag): which objects
 * lack symbols, and how to get them on Debian (the package's -dbgsym, from
 * the debian-debug archive; DEBUGINFOD_URLS, which libdw follows when it is
 * set).  0 or -ENOMEM.
 */
int pfs_sym_explain_missing(struct pfs_sym *sym, const struct pfs_sym_missing *m, size_t n);

#endif
