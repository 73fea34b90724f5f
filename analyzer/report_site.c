/*
 * A resolved site of the report: the frame that names it, its names for
 * one line, its weight, its identity across runs.  See report.h.
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct pfs_rframe *pfs_report_label(const struct pfs_rsite *rs)
{
	if (rs->category.function)
		return &rs->category;
	return rs->label < rs->nframes ? &rs->frames[rs->label] : NULL;
}

size_t pfs_report_label_index(const struct pfs_rsite *rs)
{
	return rs->label < rs->nframes ? rs->label : 0;
}

size_t pfs_report_depth_end(const struct pfs_rsite *rs, unsigned depth)
{
	size_t end = pfs_report_label_index(rs) + depth;

	return depth && end < rs->nframes ? end : rs->nframes;
}

uint64_t pfs_report_site_faults(const struct pfs_rsite *rs)
{
	return rs->site->first_touch_faults + rs->site->cow_faults;
}

uint64_t pfs_report_site_weight(const struct pfs_report *rep, const struct pfs_rsite *rs)
{
	return rep->by_faults ? pfs_report_site_faults(rs) : rs->site->bytes_allocated;
}

void pfs_report_frame_name(const struct pfs_rframe *f, char *buf, size_t len)
{
	if (f->function)
		snprintf(buf, len, "%s", f->function);
	else if (f->python)	/* a Python function never recorded */
		snprintf(buf, len, "?");
	else if (f->module)
		snprintf(buf, len, "%s+0x%" PRIx64, f->module, f->offset);
	else
		snprintf(buf, len, "0x%" PRIx64, f->address);
}

void pfs_report_site_name(const struct pfs_rsite *rs, char *buf, size_t len)
{
	const struct pfs_rframe *f = pfs_report_label(rs);

	if (f)
		pfs_report_frame_name(f, buf, len);
	else
		snprintf(buf, len, "?");
}

void pfs_report_site_label(const struct pfs_rsite *rs, char *buf, size_t len)
{
	const struct pfs_rframe *f = pfs_report_label(rs);
	size_t n;

	pfs_report_site_name(rs, buf, len);
	n = strlen(buf);
	if (f && f->file && n < len)
		snprintf(buf + n, len - n, f->line ? " (%s:%u)" : " (%s)", f->file, f->line);
}

int pfs_report_site_key(const struct pfs_rsite *rs, const struct pfs_proc *p, char **out)
{
	size_t len;
	FILE *f = open_memstream(out, &len);

	if (!f)
		return -ENOMEM;
	fputs(pfs_kind_name(rs->site->key.kind), f);
	if (rs->category.function)	/* memory accounted by kind has no stack: its name ("[data of X]") */
		fprintf(f, "|%s", rs->category.function);
	else if (rs->stack_missing)	/* nothing to match it by */
		fprintf(f, "|missing:%s:%" PRIu32, p->log_path, rs->site->key.stack);
	for (size_t i = 0; i < rs->nframes; i++) {
		const struct pfs_rframe *fr = &rs->frames[i];

		/* the file's base name: a build elsewhere names its sources by other paths */
		if (fr->function)
			fprintf(f, "|%s@%s:%u", fr->function, fr->file ? fr->file : "", fr->line);
		else if (fr->module)
			fprintf(f, "|%s+0x%" PRIx64, fr->module, fr->offset);
		else
			fprintf(f, "|0x%" PRIx64, fr->address);
	}
	if (fclose(f) || !*out)
		return -ENOMEM;
	return 0;
}

void pfs_report_free_rsite(struct pfs_rsite *rs)
{
	free(rs->frames);
	free(rs->touches);
}
