/*
 * `pfshim report --format svg`: one self-contained picture, readable in any
 * browser without other tools: per process (the busiest few) the fault rate
 * over time with its storms shaded and numbered, then the top sites of the
 * run as bars labelled with their function and count (ten, or --top's).
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SVG_W PFS_REPORT_SVG_W
#define PANEL_H PFS_REPORT_SVG_PANEL_H
#define PLOT_X 80
#define PLOT_W (SVG_W - PLOT_X - 20)
#define MAX_PANELS 4
#define MAX_BARS 10
#define BAR_H 22
#define MAX_POINTS 2000		/* polyline points per panel; buckets are merged beyond */

/* Control bytes are not allowed in XML 1.0, nor bytes that are not UTF-8: see report.h. */
void pfs_report_xml(FILE *f, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	while (*p && (!max || n < max)) {
		unsigned c = *p, len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
				       : (c >> 3) == 30 ? 4 : 0;
		bool ok = len > 0;

		for (unsigned i = 1; ok && i < len; i++)
			ok = (p[i] & 0xc0) == 0x80;
		n++;
		if (!ok || (len == 1 && ((c < 0x20 && c != '\t') || c == 0x7f))) {
			fputc('?', f);
			p++;
			continue;
		}
		if (len > 1) {
			fwrite(p, 1, len, f);
			p += len;
			continue;
		}
		switch (c) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		default: fputc((int)c, f);
		}
		p++;
	}
	if (*p)
		fputs("...", f);
}

static uint64_t faults_of(const struct pfs_proc *p)
{
	return p->totals.first_touch_faults + p->totals.cow_faults;
}

static int cmp_busy(const void *a, const void *b)
{
	const struct pfs_rproc *x = *(const struct pfs_rproc *const *)a;
	const struct pfs_rproc *y = *(const struct pfs_rproc *const *)b;

	return faults_of(x->proc) > faults_of(y->proc) ? -1 : faults_of(x->proc) < faults_of(y->proc);
}

void pfs_report_svg_panel(FILE *f, const struct pfs_rproc *rp, int y0)
{
	const struct pfs_series *s = &rp->series;
	double span_ms = (double)s->nbuckets * (double)s->bucket_ns / 1e6, maxr = 0;
	size_t step = s->nbuckets > MAX_POINTS ? (s->nbuckets + MAX_POINTS - 1) / MAX_POINTS : 1;
	int top = y0 + 24, h = PANEL_H - 44;
	char r[32];

	for (size_t i = 0; i < s->nbuckets; i += step) {
		double sum = 0;

		for (size_t j = i; j < i + step && j < s->nbuckets; j++)
			sum += s->faults[j];
		maxr = fmax(maxr, sum * 1e9 / ((double)s->bucket_ns * (double)step));
	}
	fprintf(f, "<g class=\"proc\"><text x=\"10\" y=\"%d\" font-weight=\"bold\">pid %" PRIu64 ": ",
		y0 + 16, rp->proc->pid);
	pfs_report_xml(f, rp->proc->command ? rp->proc->command : "?", 80);
	fprintf(f, " (%" PRIu64 " faults, %zu storm%s)</text>\n", faults_of(rp->proc), s->nstorms,
		s->nstorms == 1 ? "" : "s");
	fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#f8f8f8\" "
		"stroke=\"#999\"/>\n", PLOT_X, top, PLOT_W, h);
	if (!s->nbuckets || span_ms <= 0) {
		fprintf(f, "<text x=\"%d\" y=\"%d\">no faults recorded over time</text></g>\n",
			PLOT_X + 10, top + h / 2);
		return;
	}
	for (size_t i = 0; i < s->nstorms; i++) {
		const struct pfs_storm *st = &s->storms[i];
		double x0 = PLOT_X + PLOT_W * ((double)st->start_ns / 1e6) / span_ms;
		double w = fmax(2.0, PLOT_W * ((double)(st->end_ns - st->start_ns) / 1e6) / span_ms);
		char name[256] = "?";

		if (st->top_index != SIZE_MAX)
			pfs_report_site_label(&rp->sites[st->top_index], name, sizeof(name));
		fprintf(f, "<rect class=\"storm\" x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
			"fill=\"#d62728\" fill-opacity=\"0.2\"><title>storm %zu: %" PRIu64
			" faults, ", x0, top, w, h, i + 1, st->faults);
		pfs_report_xml(f, name, 80);
		fprintf(f, "</title></rect>\n<text x=\"%.1f\" y=\"%d\" fill=\"#d62728\" "
			"font-size=\"11\">%zu</text>\n", x0 + 2, top + 12, i + 1);
	}
	fprintf(f, "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"");
	for (size_t i = 0; i < s->nbuckets; i += step) {
		double sum = 0, rate, x0, x1, y;

		for (size_t j = i; j < i + step && j < s->nbuckets; j++)
			sum += s->faults[j];
		rate = sum * 1e9 / ((double)s->bucket_ns * (double)step);
		x0 = PLOT_X + PLOT_W * (double)i / (double)s->nbuckets;
		x1 = PLOT_X + PLOT_W * (double)(i + step > s->nbuckets ? s->nbuckets : i + step) /
		     (double)s->nbuckets;
		y = top + h - (maxr > 0 ? h * rate / maxr : 0);
		fprintf(f, "%.1f,%.1f %.1f,%.1f ", x0, y, x1, y);
	}
	fputs("\"/>\n", f);
	pfs_an_fmt_rate(r, sizeof(r), maxr);
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\">%s</text>\n",
		PLOT_X - 4, top + 10, r);
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\">0</text>\n",
		PLOT_X - 4, top + h);
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"11\">0 ms</text>\n", PLOT_X, top + h + 14);
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\">%.1f ms</text>\n",
		PLOT_X + PLOT_W, top + h + 14, span_ms);
	fputs("</g>\n", f);
}

struct bar {
	const struct pfs_rproc *rp;
	const struct pfs_rsite *rs;
	uint64_t n;
};

static int cmp_bar(const void *a, const void *b)
{
	const struct bar *x = a, *y = b;

	return x->n > y->n ? -1 : x->n < y->n;
}

int pfs_report_svg(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o)
{
	const struct pfs_rproc **busy = NULL;
	struct bar *bars = NULL;
	bool faults = pfs_report_has_faults(rep);
	size_t npanels, nbars = 0, nsites = 0, nb;
	int y, height, rc = 0;

	if (rep->nprocs) {
		busy = malloc(rep->nprocs * sizeof(*busy));
		if (!busy)
			return -ENOMEM;
	}
	for (size_t i = 0; i < rep->nprocs; i++) {
		busy[i] = &rep->procs[i];
		nsites += rep->procs[i].nsites;
	}
	if (rep->nprocs)
		qsort(busy, rep->nprocs, sizeof(*busy), cmp_busy);
	npanels = rep->nprocs < MAX_PANELS ? rep->nprocs : MAX_PANELS;
	if (nsites) {
		bars = malloc(nsites * sizeof(*bars));
		if (!bars) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < rep->nprocs; i++)
		for (size_t j = 0; j < rep->procs[i].nsites; j++) {
			const struct pfs_site *s = rep->procs[i].sites[j].site;
			uint64_t n = faults ? s->first_touch_faults + s->cow_faults : s->allocations;

			if (n && (!o || pfs_report_in_top(&rep->procs[i].sites[j], o->top)))
				bars[nbars++] = (struct bar){&rep->procs[i], &rep->procs[i].sites[j], n};
		}
	if (nbars)
		qsort(bars, nbars, sizeof(*bars), cmp_bar);
	/* --top N: N bars; else the ten first */
	nb = o && o->top ? nbars : nbars < MAX_BARS ? nbars : MAX_BARS;
	height = 40 + (int)npanels * PANEL_H + 30 + (int)(nb ? nb : 1) * BAR_H + 20;

	fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"13\">\n"
		"<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
		"<text x=\"10\" y=\"24\" font-size=\"18\" font-weight=\"bold\">pfshim: page faults "
		"over time (storms shaded red)</text>\n", SVG_W, height, SVG_W, height);
	y = 40;
	for (size_t i = 0; i < npanels; i++, y += PANEL_H)
		pfs_report_svg_panel(out, busy[i], y);
	fprintf(out, "<text x=\"10\" y=\"%d\" font-weight=\"bold\">top sites by %s</text>\n", y + 20,
		faults ? "faults (first-touch + copy-on-write)" : "allocations (no faults recorded)");
	y += 30;
	if (!nb)
		fprintf(out, "<text x=\"10\" y=\"%d\">no sites recorded</text>\n", y + 15);
	for (size_t i = 0; i < nb; i++, y += BAR_H) {
		double w = 400.0 * (double)bars[i].n / (double)bars[0].n;
		char name[256];

		pfs_report_site_label(bars[i].rs, name, sizeof(name));
		fprintf(out, "<g class=\"site\"><rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" "
			"fill=\"#ff7f0e\"/>\n<text x=\"%.1f\" y=\"%d\">", 10, y + 2, fmax(w, 1.0),
			BAR_H - 6, 16 + fmax(w, 1.0), y + BAR_H - 7);
		pfs_report_xml(out, name, 80);
		fprintf(out, " #%" PRIu32 " (pid %" PRIu64 ", %s): %" PRIu64 "</text>",
			bars[i].rs->id, bars[i].rp->proc->pid, pfs_kind_name(bars[i].rs->site->key.kind),
			bars[i].n);
		if (bars[i].rp->evidence) {	/* hover: the site's evidence (docs/advisor.md) */
			char line[640];

			pfs_evidence_summary(line, sizeof(line),
					     &bars[i].rp->evidence[bars[i].rs - bars[i].rp->sites]);
			fputs("<title>", out);
			pfs_report_xml(out, line, 0);
			fputs("</title>", out);
		}
		fputs("</g>\n", out);
	}
	fputs("</svg>\n", out);
	if (fflush(out) != 0 || ferror(out))
		rc = -EIO;
out:
	free(busy);
	free(bars);
	return rc;
}
