/*
 * `pfshim report --format folded`: Brendan Gregg's folded stacks, which
 * flamegraph.pl, inferno and speedscope read.  One line per site:
 *
 *   COMMAND (pid N);outermost;...;caller;[kind] COUNT
 *
 * COUNT is the site's first-touch + copy-on-write faults, sites with none
 * left out; when the whole run has no faults (off mode, or nothing was
 * touched) it is the site's allocations instead, and every root frame says
 * so ("COMMAND (pid N) [allocations]"): the format has no comment lines.
 * --top keeps the run's top sites, --depth the frames up to that far below
 * the label, a "[...]" frame standing for those cut above them.
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* ';' separates frames and the last ' ' the count: neither may be in a frame's end. */
static void put_frame(FILE *f, const char *s, size_t max)
{
	size_t n = 0;

	for (; *s && (!max || n < max); s++, n++) {
		unsigned char c = (unsigned char)*s;

		fputc(c == ';' || c < 0x20 || c == 0x7f ? '_' : c, f);
	}
}

static void frame_name(FILE *f, const struct pfs_rframe *fr)
{
	char name[4096];

	pfs_report_frame_name(fr, name, sizeof(name));
	put_frame(f, name, 0);
}

int pfs_report_folded(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o)
{
	bool faults = pfs_report_has_faults(rep);
	unsigned top = o ? o->top : 0, depth = o ? o->depth : 0;

	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_rproc *rp = &rep->procs[i];

		for (size_t j = 0; j < rp->nsites; j++) {
			const struct pfs_rsite *rs = &rp->sites[j];
			const struct pfs_site *s = rs->site;
			uint64_t n = faults ? s->first_touch_faults + s->cow_faults : s->allocations;
			size_t end = pfs_report_depth_end(rs, depth);

			if (!n || !pfs_report_in_top(rs, top))
				continue;
			put_frame(out, rp->proc->command ? rp->proc->command : "?", 64);
			fprintf(out, " (pid %" PRIu64 ")%s", rp->proc->pid,
				faults ? "" : " [allocations]");
			if (end < rs->nframes)
				fputs(";[...]", out);
			for (size_t k = end; k-- > 0;) {
				fputc(';', out);
				frame_name(out, &rs->frames[k]);
			}
			fprintf(out, ";[%s] %" PRIu64 "\n", pfs_kind_name(s->key.kind), n);
		}
	}
	if (fflush(out) != 0 || ferror(out))
		return -EIO;
	return 0;
}
