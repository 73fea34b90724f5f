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
	if (fr->function)
		put_frame(f, fr->function, 0);
	else if (fr->module) {
		put_frame(f, fr->module, 0);
		fprintf(f, "+0x%" PRIx64, fr->offset);
	} else
		fprintf(f, "0x%" PRIx64, fr->address);
}

int pfs_report_folded(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o)
{
	bool faults = pfs_report_has_faults(rep);

	(void)o;	/* --top does not apply: a flame graph wants every stack */
	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_rproc *rp = &rep->procs[i];

		for (size_t j = 0; j < rp->nsites; j++) {
			const struct pfs_rsite *rs = &rp->sites[j];
			const struct pfs_site *s = rs->site;
			uint64_t n = faults ? s->first_touch_faults + s->cow_faults : s->allocations;

			if (!n)
				continue;
			put_frame(out, rp->proc->command ? rp->proc->command : "?", 64);
			fprintf(out, " (pid %" PRIu64 ")%s", rp->proc->pid,
				faults ? "" : " [allocations]");
			for (size_t k = rs->nframes; k-- > 0;) {
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
