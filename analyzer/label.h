/*
 * Which frame of a site is the user's code: the site's label, which every
 * output names it by.  One rule, written here:
 *
 * - the shim's frames (libpfshim.so) are never shown;
 * - the allocator's frames at the top of the stack (libc's malloc family,
 *   jemalloc, tcmalloc, mimalloc, ...) are dropped, unless nothing but a
 *   runtime would be left (an allocator's own thread mapping memory);
 * - the label is the first frame left that is not a language runtime's
 *   allocation path: C++ operator new and the standard library
 *   (libstdc++, std::, __gnu_cxx::), libc, the loader, CPython's object
 *   allocator, well-known allocation wrappers (xmalloc, g_malloc, zmalloc,
 *   ...) and what the user adds (--runtime-frames, PFSHIM_RUNTIME_FRAMES);
 *   those frames stay in the stack below the label.  When every frame is
 *   such, the label is the first frame.
 */
#ifndef PFSHIM_LABEL_H
#define PFSHIM_LABEL_H

#include <stddef.h>

#include "report.h"

/* How one frame counts for the label. */
enum pfs_frame_role {
	PFS_FRAME_USER = 0,
	PFS_FRAME_SHIM,		/* never shown */
	PFS_FRAME_ALLOCATOR,	/* dropped at the top of the stack */
	PFS_FRAME_RUNTIME,	/* shown, never the label */
};

enum pfs_frame_role pfs_label_role(const struct pfs_rframe *f);

/*
 * Drops the shim's frames and the allocator's at the top from frames[0..*n)
 * (in place, *n updated) and returns the index of the label frame, or *n
 * when no frame is left.
 */
size_t pfs_label_site(struct pfs_rframe *frames, size_t *n);

/*
 * Memory accounted by kind (a stack, .data, ...) is named by its kind,
 * "[stack]", "[data of MODULE]", ...: its label, with no call stack shown.
 * Nothing for an allocation's site.
 */
void pfs_label_category(struct pfs_rsite *rs);

/*
 * More runtime frames: `globs`, separated by ',' or ':' (fnmatch patterns
 * against a frame's function, its raw symbol or its module's file name).
 * The environment's PFSHIM_RUNTIME_FRAMES is added on first use.  0 or
 * -ENOMEM.
 */
int pfs_label_add_runtime(const char *globs);
/* Back to the built-in list (tests); the environment is read again. */
void pfs_label_reset(void);

#endif
