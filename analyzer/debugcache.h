/*
 * Separate debug files with their DWARF uncompressed, kept between runs.
 *
 * Debian's debug files (libc6-dbg, the -dbgsym packages) hold their DWARF
 * sections zlib-compressed, and libdw (0.188) inflates every one of them
 * when it opens a file, however few addresses are looked up: libc's 3.7 MB
 * become 10 MB, half of the CPU time of a small report.  An uncompressed
 * copy, written once in the user's cache directory and named by build-id,
 * is read in place (mapped) by every report after.
 *
 * The directory: $XDG_CACHE_HOME/pfshim/debuginfo, else
 * $HOME/.cache/pfshim/debuginfo (where libdw's debuginfod client keeps its
 * own downloads too).  Removing it at any time is safe.
 */
#ifndef PFSHIM_DEBUGCACHE_H
#define PFSHIM_DEBUGCACHE_H

#include <stddef.h>

/*
 * The cached copy for this build-id: an open descriptor, and its path
 * (malloc'd) in *path; -1 when there is none (or it is not an ELF file of
 * that build-id).
 */
int pfs_debugcache_open(const unsigned char *build_id, size_t len, char **path);

/*
 * Keep an uncompressed copy of the debug file at `debug_path` (of that
 * build-id) when its DWARF is compressed and refers to no dwz alt file;
 * nothing otherwise, or when the cache cannot be written (read-only home:
 * every report then inflates).
 */
void pfs_debugcache_add(const unsigned char *build_id, size_t len, const char *debug_path);

#endif
