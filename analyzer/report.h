/*
 * The report, ready to print: the model's processes with every site's stack
 * resolved into symbolized frames and a report-wide site id.  Built once,
 * printed by report_text.c or report_json.c.
 */
#ifndef PFSHIM_REPORT_H
#define PFSHIM_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"
#include "evidence.h"
#include "storms.h"
#include "symbolize.h"

struct pfs_rframe {
	const char *function;	/* demangled; NULL: no symbol */
	const char *symbol;	/* the raw (mangled) symbol; NULL: no symbol */
	const char *file;	/* basename of the source file; NULL: unknown */
	const char *source_path; /* the source file as DWARF names it */
	unsigned line;		/* 0: unknown */
	bool inlined;
	const char *module;	/* basename of the object; NULL: in no known module */
	const char *module_path;
	uint64_t address;	/* the return address as logged */
	uint64_t offset;	/* address - load bias (module-relative) */
	bool python;		/* a Python frame (pyframes.h): no module, address or offset */
	bool jit;		/* code a JIT compiled, named by its perf map (jitmap.h): no module */
};

/* Where a site's pages were touched (exact mode, PFSHIM_TOUCH_SITE=1). */
struct pfs_rtouch {
	struct pfs_rframe frame;	/* the faulting instruction, symbolized */
	int32_t sys;			/* system call number of a kernel-side touch, -1 none */
	uint64_t faults;
};

#define PFS_REPORT_TOUCH_SITES 5

struct pfs_rsite {
	const struct pfs_site *site;
	uint32_t id;		/* same stack (module + offsets) and kind: same id */
	size_t rank;		/* in the run-wide ranking, from 1 (report.ranked); 0: not in it */
	struct pfs_rframe *frames;	/* no shim or allocator frame (label.h) */
	size_t nframes;
	size_t label;		/* the frame that names the site (label.h); nframes: none */
	/*
	 * Memory accounted by kind (a stack, .data, ...): named by its kind,
	 * "[stack]", "[data of MODULE]", ...: the label, with no file or line.
	 */
	struct pfs_rframe category;
	char category_name[128];
	bool stack_missing;	/* its stack id was never recorded */
	bool stack_truncated;
	struct pfs_rtouch *touches;	/* the most frequent first, at most PFS_REPORT_TOUCH_SITES */
	size_t ntouches;
	uint64_t touches_other;		/* faults at the touch sites not listed */
};

struct pfs_rproc {
	const struct pfs_proc *proc;
	struct pfs_rsite *sites;	/* in rank order */
	size_t nsites;
	struct pfs_series series;	/* fault rate over time and storms (storms.h) */
	struct pfs_evidence *evidence;	/* per site, in the order of sites[] (evidence.h) */
};

struct pfs_site_id;

/*
 * What `pfshim report` was asked to show (docs/analyzer.md, "Choosing what
 * to see"); zeroed: everything.  Processes by pid or command, sites by a
 * frame's function or the label's module, faults by the time they happened.
 */
struct pfs_report_filter {
	const uint64_t *pids;	/* any of these; npids 0: any pid */
	size_t npids;
	const char *comm;	/* glob: argv[0]'s or the executable's base name, or the command line */
	const char *site;	/* glob: the function of any frame (the label's too) */
	const char *module;	/* glob: the base name of the label's module */
	bool since_set, until_set;
	uint64_t since_ns, until_ns;	/* from each process's start; faults outside are not counted */
};

/* One site of the run-wide ranking. */
struct pfs_rref {
	const struct pfs_rproc *rp;
	size_t index;		/* into rp->sites */
};

struct pfs_report {
	struct pfs_run *run;
	struct pfs_rproc *procs;	/* in run order (start time); those the filter kept */
	size_t nprocs;
	size_t nprocs_run;		/* in the run, before the filter */
	const struct pfs_report_filter *filter;	/* NULL: none */
	const char *mode;		/* of the first process */
	struct pfs_site_id *ids;	/* canonical site key -> id */
	uint32_t next_id;
	struct pfs_rref *ranked;	/* every site shown, most faults first (then bytes) */
	size_t nranked;
	bool by_faults;			/* ranked by faults; false: the run has none, by bytes */
};

#define PFS_REPORT_DEPTH_TEXT 5	/* frames from the label a text report shows by default */

struct pfs_report_opts {
	unsigned top;		/* sites run-wide, and per process; 0 = all */
	unsigned depth;		/* frames shown from the label down; 0 = all */
	bool color;		/* ANSI colour in text */
	const char *source;	/* what was read, for the text header */
	const char *policy;	/* the run's PFSHIM_POLICY when known (record): rules that matched nothing are said */
};

/*
 * 0 or -ENOMEM.  Warnings (missing stacks, unreadable objects) go to
 * run->warnings.  With a filter (NULL: none, kept by pointer) only what it
 * selects is in the report; site ids are the same as without it.
 */
int pfs_report_build(struct pfs_report *rep, struct pfs_run *run, struct pfs_sym *sym,
		     const struct pfs_report_filter *filter);
void pfs_report_free(struct pfs_report *rep);
/*
 * All of it for `paths` (directories or log files): load, finish, symbolize,
 * build.  0 or -ENOMEM; corrupt or unreadable logs count in run->errors.
 * Problems are printed to diag as found (may be NULL).  Undo with
 * pfs_report_unload(), also after a failure.
 */
int pfs_report_load(struct pfs_report *rep, struct pfs_run *run, struct pfs_sym **sym,
		    char *const *paths, int npaths, FILE *diag, struct pfs_an_progress *progress,
		    const struct pfs_report_filter *filter);
void pfs_report_unload(struct pfs_report *rep, struct pfs_run *run, struct pfs_sym *sym);

/* 0, or -EIO when the output failed. */
int pfs_report_json(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o);
int pfs_report_text(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o);
/* FlameGraph's folded stacks; Chrome trace event JSON (Perfetto); a self-contained SVG. */
int pfs_report_folded(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o);
int pfs_report_perfetto(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o);
int pfs_report_svg(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o);
/* One page with the process tree, a sortable site table, a flame graph and the storms (report_html.c). */
int pfs_report_html(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o);
/* pprof's profile.proto, gzipped (binary); -ENOMEM or -EIO on failure. */
int pfs_report_pprof(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o);

/*
 * Text from logs and objects as XML (and HTML) character data: markup
 * escaped, control bytes and bytes that are not UTF-8 as '?', at most `max`
 * characters (0: all), "..." marking a cut.
 */
void pfs_report_xml(FILE *f, const char *s, size_t max);
/* One process's fault rate over time with its storms, an SVG group at y0, 1000 x 150 (report_svg.c). */
void pfs_report_svg_panel(FILE *f, const struct pfs_rproc *rp, int y0);
#define PFS_REPORT_SVG_W 1000
#define PFS_REPORT_SVG_PANEL_H 150

struct pfs_json;
/* One frame as the JSON report writes it (function, file, line, module, address, ...). */
void pfs_report_json_frame(struct pfs_json *w, const struct pfs_rframe *f);

/* The frame that names the site (label.h), or NULL when it has none. */
const struct pfs_rframe *pfs_report_label(const struct pfs_rsite *rs);
/* Its index in rs->frames (0 when it has none): where the text's frames start. */
size_t pfs_report_label_index(const struct pfs_rsite *rs);
/* A frame's name: its function, else module+0xoff, else 0xaddr. */
void pfs_report_frame_name(const struct pfs_rframe *f, char *buf, size_t len);
/* What a frame's "[...]" says: its module's name, "python" for a Python frame, "jit" for JIT code; NULL when none. */
static inline const char *pfs_report_frame_where(const struct pfs_rframe *f)
{
	return f->python ? "python" : f->jit ? "jit" : f->module;
}
/* A site's name for one-line use: its label's function, module+0xoff, 0xaddr, or "?". */
void pfs_report_site_name(const struct pfs_rsite *rs, char *buf, size_t len);
/* The same with the label's place: "load_records (names.cpp:44)". */
void pfs_report_site_label(const struct pfs_rsite *rs, char *buf, size_t len);
/*
 * A site's identity across runs (diff, advise --verify): its kind and its
 * symbolized frames (function@file:line with the file's base name, else
 * module+0xoffset), never addresses.  *out malloc'd; 0 or -ENOMEM.
 */
int pfs_report_site_key(const struct pfs_rsite *rs, const struct pfs_proc *p, char **out);
/*
 * The rules of `policy` (PFSHIM_POLICY's text) that no site of the run
 * applied (POLICY records), "; "-joined into *out (malloc'd, "" when every
 * rule applied somewhere); 0 or -ENOMEM.
 */
int pfs_report_unmatched_rules(const struct pfs_report *rep, const char *policy, char **out);
/* The same as one warning of the run's ("policy: no allocation matched ..."), when there are such rules. */
int pfs_report_warn_unmatched(struct pfs_report *rep, const char *policy);
/*
 * One past the deepest frame shown at `depth` (0: all): the label and at
 * most depth - 1 frames below it.  Text shows frames from the label to it,
 * the exports from frames[0] (the allocator's caller); the rest is cut.
 */
size_t pfs_report_depth_end(const struct pfs_rsite *rs, unsigned depth);
/* The site is among the run's `top` (0: all) sites with the most faults (the shim's own never). */
static inline bool pfs_report_in_top(const struct pfs_rsite *rs, unsigned top)
{
	return !top || (rs->rank && rs->rank <= top);
}

/* Frees what a site holds (its frames and touch sites), not the site. */
void pfs_report_free_rsite(struct pfs_rsite *rs);
/* A site's faults: first-touch + copy-on-write (in the filter's time window). */
uint64_t pfs_report_site_faults(const struct pfs_rsite *rs);
/* What the per-process and run-wide shares count: faults, else bytes. */
uint64_t pfs_report_site_weight(const struct pfs_report *rep, const struct pfs_rsite *rs);
/* Faults anywhere in what the report shows (else the exports count allocations, the text bytes). */
bool pfs_report_has_faults(const struct pfs_report *rep);

/* A system call's name (x86-64 numbers, the ones that touch user memory), or NULL. */
const char *pfs_report_syscall_name(int32_t nr);

/* "exit", "_exit", "exec", or NULL. */
const char *pfs_report_end_reason(uint32_t reason);

#endif
