/*
 * `pfshim report --format html`: one self-contained page, for a browser
 * with no network: a summary, the process tree, a flame graph of the
 * sites' stacks, the fault rate over time with its storms, and the table
 * of sites (every column sortable, each site's frames folded under its
 * label).
 *
 * Everything is drawn here, as HTML and inline SVG, so the page reads the
 * same without JavaScript; the small script at the end only sorts the table
 * (a click on a column, or #sort=COLUMN-asc|desc in the address) and zooms
 * the flame graph (a click on a frame; a click on the root zooms out).  A
 * Content-Security-Policy forbids every load from elsewhere, and the page
 * has nothing to load (no src, href, url()).  Text from the logs is
 * escaped (pfs_report_xml).
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define FLAME_ROW 17		/* px per frame level */
#define FLAME_CHAR 6.6		/* px per character of the frames' text */
#define HTML_PANELS 8		/* fault-rate panels, the busiest processes */

static const char style[] =
	"body{font:14px/1.4 sans-serif;margin:1em 2em;color:#222}\n"
	"h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}\n"
	"dl.sum{display:grid;grid-template-columns:max-content auto;gap:.1em 1em}dl.sum dt{color:#666}\n"
	"dl.sum dd{margin:0}\n"
	"ul.tree{list-style:none;padding-left:1.2em;margin:0}ul.tree li{white-space:nowrap}\n"
	".num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
	"table{border-collapse:collapse}th,td{padding:.15em .5em;border-bottom:1px solid #eee;"
	"vertical-align:top}\n"
	"th{cursor:pointer;background:#f4f4f4;user-select:none;position:sticky;top:0}\n"
	"th[aria-sort=ascending]::after{content:' \\25b2'}th[aria-sort=descending]::after{content:' \\25bc'}\n"
	"details summary{cursor:pointer}details ol{margin:.2em 0 .4em;padding-left:2em;font-size:.9em}\n"
	".label{font-weight:bold}.where{color:#666}.inl{color:#a60}\n"
	"svg text{font:11px sans-serif;pointer-events:none}svg.flame rect{stroke:#fff;stroke-width:.5}\n"
	"svg.flame g{cursor:pointer}.muted{color:#666}\n";

/*
 * Sorting: rows carry their rank; a column's cells their value (data-v)
 * when the text is not it (sizes).  Equal values keep the run's ranking.
 */
static const char script[] =
	"(function () {\n"
	"  var t = document.getElementById('sites');\n"
	"  if (t) {\n"
	"    var body = t.tBodies[0], heads = t.tHead.rows[0].cells;\n"
	"    var value = function (row, k) {\n"
	"      var c = row.cells[k];\n"
	"      return c.hasAttribute('data-v') ? c.getAttribute('data-v') : c.textContent;\n"
	"    };\n"
	"    var sortBy = function (k, dir) {\n"
	"      var num = heads[k].getAttribute('data-type') === 'num';\n"
	"      var rows = Array.prototype.slice.call(body.rows);\n"
	"      rows.sort(function (x, y) {\n"
	"        var a = value(x, k), b = value(y, k), r;\n"
	"        if (num) { a = Number(a); b = Number(b); }\n"
	"        r = a < b ? -1 : a > b ? 1 : 0;\n"
	"        if (dir === 'desc') r = -r;\n"
	"        return r || x.getAttribute('data-rank') - y.getAttribute('data-rank');\n"
	"      });\n"
	"      rows.forEach(function (r) { body.appendChild(r); });\n"
	"      for (var i = 0; i < heads.length; i++) heads[i].removeAttribute('aria-sort');\n"
	"      heads[k].setAttribute('aria-sort', dir === 'asc' ? 'ascending' : 'descending');\n"
	"    };\n"
	"    var byKey = function (key) {\n"
	"      for (var i = 0; i < heads.length; i++)\n"
	"        if (heads[i].getAttribute('data-key') === key) return i;\n"
	"      return -1;\n"
	"    };\n"
	"    Array.prototype.forEach.call(heads, function (h, k) {\n"
	"      h.addEventListener('click', function () {\n"
	"        var dir = h.getAttribute('aria-sort') === 'descending' ? 'asc' : 'desc';\n"
	"        if (!h.hasAttribute('aria-sort') && h.getAttribute('data-type') !== 'num') dir = 'asc';\n"
	"        sortBy(k, dir);\n"
	"        history.replaceState(null, '', '#sort=' + h.getAttribute('data-key') + '-' + dir);\n"
	"      });\n"
	"    });\n"
	"    var m = /^#sort=([a-z_]+)-(asc|desc)$/.exec(location.hash);\n"
	"    if (m && byKey(m[1]) >= 0) sortBy(byKey(m[1]), m[2]);\n"
	"  }\n"
	"  var f = document.getElementById('flame');\n"
	"  if (f) {\n"
	"    var full = f.getAttribute('viewBox').split(' ').map(Number);\n"
	"    f.addEventListener('click', function (e) {\n"
	"      var g = e.target.closest('g[data-x]');\n"
	"      if (!g) return;\n"
	"      var x = Number(g.getAttribute('data-x')), w = Number(g.getAttribute('data-w'));\n"
	"      if (g.getAttribute('data-d') === '0') { x = 0; w = full[2]; }\n"
	"      f.querySelectorAll('g[data-x]').forEach(function (n) {\n"
	"        var nx = (Number(n.getAttribute('data-x')) - x) * full[2] / w;\n"
	"        var nw = Number(n.getAttribute('data-w')) * full[2] / w;\n"
	"        var r = n.querySelector('rect'), s = n.querySelector('text');\n"
	"        r.setAttribute('x', nx); r.setAttribute('width', Math.max(nw, 0));\n"
	"        s.setAttribute('x', nx + 3);\n"
	"        var name = n.getAttribute('data-n'), fit = Math.floor((nw - 6) / 6.6);\n"
	"        s.textContent = fit >= 3 ? (name.length > fit ? name.slice(0, fit - 2) + '..' : name) : '';\n"
	"      });\n"
	"    });\n"
	"  }\n"
	"})();\n";

/* Text as HTML character data (and attribute values: quotes are escaped too). */
static void esc(FILE *f, const char *s)
{
	pfs_report_xml(f, s ? s : "?", 0);
}

static uint64_t proc_faults(const struct pfs_proc *p)
{
	return p->totals.first_touch_faults + p->totals.cow_faults;
}

/* ---- summary and process tree ------------------------------------------- */

static void summary(FILE *f, const struct pfs_report *rep, const struct pfs_report_opts *o)
{
	uint64_t ft = 0, cow = 0, allocs = 0;

	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_totals *t = &rep->procs[i].proc->totals;

		ft += t->first_touch_faults;
		cow += t->cow_faults;
		allocs += t->allocations;
	}
	fputs("<dl class=\"sum\"><dt>logs</dt><dd>", f);
	esc(f, o->source);
	fprintf(f, "</dd><dt>mode</dt><dd>%s</dd><dt>processes</dt><dd>%zu", rep->mode, rep->nprocs);
	if (rep->nprocs != rep->nprocs_run)
		fprintf(f, " of %zu", rep->nprocs_run);
	fprintf(f, "</dd><dt>faults</dt><dd>%" PRIu64 " first-touch, %" PRIu64 " copy-on-write</dd>"
		"<dt>allocations</dt><dd>%" PRIu64 "</dd>", ft, cow, allocs);
	if (rep->filter) {
		const struct pfs_report_filter *fl = rep->filter;

		fputs("<dt>filter</dt><dd>", f);
		for (size_t i = 0; i < fl->npids; i++)
			fprintf(f, "%s%" PRIu64, i ? "," : "--pid ", fl->pids[i]);
		if (fl->comm)
			fputs(" --comm ", f), esc(f, fl->comm);
		if (fl->site)
			fputs(" --site ", f), esc(f, fl->site);
		if (fl->module)
			fputs(" --module ", f), esc(f, fl->module);
		if (fl->since_set)
			fprintf(f, " --since %gs", (double)fl->since_ns / 1e9);
		if (fl->until_set)
			fprintf(f, " --until %gs", (double)fl->until_ns / 1e9);
		fputs("</dd>", f);
	}
	fputs("</dl>\n", f);
}

static bool shown(const struct pfs_report *rep, const struct pfs_proc *p)
{
	for (size_t i = 0; i < rep->nprocs; i++)
		if (rep->procs[i].proc == p)
			return true;
	return false;
}

/* p's item and its descendants'; those the filter left out skipped, their children moved up. */
static void tree(FILE *f, const struct pfs_report *rep, const struct pfs_proc *p)
{
	bool me = shown(rep, p);
	char bytes[24];

	if (me) {
		pfs_an_fmt_bytes(bytes, sizeof(bytes), p->totals.bytes_allocated);
		fprintf(f, "<li>%" PRIu64 " ", p->pid);
		if (p->via_exec)
			fprintf(f, "[exec %" PRIu32 "] ", p->exec_gen);
		esc(f, p->command);
		fprintf(f, " <span class=\"muted\">(%" PRIu64 " faults, %" PRIu64 " allocations, %s%s)"
			"</span>", proc_faults(p), p->totals.allocations, bytes,
			p->ended ? "" : ", did not end");
		if (p->nkids)
			fputs("<ul class=\"tree\">", f);
	}
	for (size_t i = 0; i < p->nkids; i++)
		tree(f, rep, p->kids[i]);
	if (me)
		fputs(p->nkids ? "</ul></li>\n" : "</li>\n", f);
}

/* ---- the site table ------------------------------------------------------ */

/* " file:line" of a frame, when known. */
static void where(FILE *f, const struct pfs_rframe *fr)
{
	if (!fr->file)
		return;
	fputs(" <span class=\"where\">", f);
	esc(f, fr->file);
	if (fr->line)
		fprintf(f, ":%u", fr->line);
	fputs("</span>", f);
}

static void frame_item(FILE *f, const struct pfs_rframe *fr, bool label)
{
	char name[4096];

	pfs_report_frame_name(fr, name, sizeof(name));
	fprintf(f, "<li><span class=\"%s\">", label ? "label" : "fn");
	esc(f, name);
	fputs("</span>", f);
	where(f, fr);
	fputs(" <span class=\"muted\">[", f);
	esc(f, pfs_report_frame_where(fr));
	fputs("]</span>", f);
	if (fr->inlined)
		fputs(" <span class=\"inl\">(inlined)</span>", f);
	fputs("</li>", f);
}

/* The site's label, unfolding into its frames (a runtime's above the label, the label marked). */
static void site_cell(FILE *f, const struct pfs_rsite *rs, unsigned depth)
{
	const struct pfs_rframe *label = pfs_report_label(rs);
	size_t end = pfs_report_depth_end(rs, depth);
	char name[4096];

	pfs_report_site_name(rs, name, sizeof(name));
	fputs("<td><details><summary><span class=\"label\">", f);
	esc(f, name);
	fputs("</span>", f);
	if (label)
		where(f, label);
	fputs("</summary><ol>", f);
	for (size_t i = 0; i < end; i++)
		frame_item(f, &rs->frames[i], &rs->frames[i] == label);
	if (end < rs->nframes)
		fprintf(f, "<li class=\"muted\">%zu more frames (--depth all)</li>", rs->nframes - end);
	fputs("</ol></details></td>", f);
}

static void site_table(FILE *f, const struct pfs_report *rep, const struct pfs_report_opts *o)
{
	static const struct {
		const char *key, *title;
		bool num;
	} cols[] = {
		{"rank", "Rank", true}, {"faults", "Faults", true}, {"first_touch", "1st-touch", true},
		{"cow", "CoW", true}, {"allocs", "Allocs", true}, {"bytes", "Bytes", true},
		{"kind", "Kind", false}, {"site", "Site", false}, {"pid", "Pid", true},
		{"command", "Command", false}, {"id", "Id", true},
	};
	size_t n = o->top && o->top < rep->nranked ? o->top : rep->nranked;

	fputs("<table id=\"sites\"><thead><tr>", f);
	for (size_t i = 0; i < PFS_AN_ARRAY_SIZE(cols); i++)
		fprintf(f, "<th data-key=\"%s\" data-type=\"%s\"%s>%s</th>", cols[i].key,
			cols[i].num ? "num" : "text", i == 0 ? " aria-sort=\"ascending\"" : "",
			cols[i].title);
	fputs("</tr></thead><tbody>\n", f);
	for (size_t i = 0; i < n; i++) {
		const struct pfs_rproc *rp = rep->ranked[i].rp;
		const struct pfs_rsite *rs = &rp->sites[rep->ranked[i].index];
		const struct pfs_site *s = rs->site;
		char bytes[24];

		pfs_an_fmt_bytes(bytes, sizeof(bytes), s->bytes_allocated);
		fprintf(f, "<tr data-rank=\"%zu\"><td class=\"num\">%zu</td><td class=\"num\">%" PRIu64
			"</td><td class=\"num\">%" PRIu64 "</td><td class=\"num\">%" PRIu64 "</td>"
			"<td class=\"num\">%" PRIu64 "</td><td class=\"num\" data-v=\"%" PRIu64 "\">%s</td>"
			"<td>%s</td>", i + 1, i + 1, pfs_report_site_faults(rs), s->first_touch_faults,
			s->cow_faults, s->allocations, s->bytes_allocated, bytes, pfs_kind_name(s->key.kind));
		site_cell(f, rs, o->depth);
		fprintf(f, "<td class=\"num\">%" PRIu64 "</td><td>", rp->proc->pid);
		pfs_report_xml(f, rp->proc->command ? rp->proc->command : "?", 60);
		fprintf(f, "</td><td class=\"num\">%" PRIu32 "</td></tr>\n", rs->id);
	}
	fputs("</tbody></table>\n", f);
	if (n < rep->nranked)
		fprintf(f, "<p class=\"muted\">%zu more sites (--top 0 lists all)</p>\n", rep->nranked - n);
}

/* ---- the flame graph ----------------------------------------------------- */

/* One stack, root first: the process, the frames outermost first, the kind. */
struct stack {
	char **names;
	size_t n;
	uint64_t weight;
};

static int cmp_stack(const void *a, const void *b)
{
	const struct stack *x = a, *y = b;

	for (size_t i = 0; i < x->n && i < y->n; i++) {
		int c = strcmp(x->names[i], y->names[i]);

		if (c)
			return c;
	}
	return x->n < y->n ? -1 : x->n > y->n;
}

static void free_stacks(struct stack *st, size_t n)
{
	for (size_t i = 0; st && i < n; i++) {
		for (size_t j = 0; j < st[i].n; j++)
			free(st[i].names[j]);
		free(st[i].names);
	}
	free(st);
}

/* The stack of rs as names, as report_folded.c writes it; 0 or -ENOMEM. */
static int make_stack(struct stack *st, const struct pfs_rproc *rp, const struct pfs_rsite *rs,
		      unsigned depth, uint64_t weight)
{
	size_t end = pfs_report_depth_end(rs, depth), k = 0;
	char name[4096];

	st->weight = weight;
	st->n = end + 2 + (end < rs->nframes);
	st->names = calloc(st->n, sizeof(*st->names));
	if (!st->names)
		return -ENOMEM;
	snprintf(name, sizeof(name), "%.200s (pid %" PRIu64 ")",
		 rp->proc->command ? rp->proc->command : "?", rp->proc->pid);
	st->names[k++] = strdup(name);
	if (end < rs->nframes)
		st->names[k++] = strdup("[...]");
	for (size_t i = end; i-- > 0;) {
		pfs_report_frame_name(&rs->frames[i], name, sizeof(name));
		st->names[k++] = strdup(name);
	}
	snprintf(name, sizeof(name), "[%s]", pfs_kind_name(rs->site->key.kind));
	st->names[k++] = strdup(name);
	for (size_t i = 0; i < k; i++)
		if (!st->names[i])
			return -ENOMEM;
	return 0;
}

/* A warm colour from the name, as flamegraph.pl's: the same frame, the same colour. */
static void colour(const char *name, char *buf, size_t len)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	snprintf(buf, len, "#%02x%02x%02x", 205 + (h & 0x31), 80 + ((h >> 8) % 150),
		 40 + ((h >> 16) % 50));
}

/* One frame of the graph: a group the script can zoom (data-x, data-w, data-n: its name). */
static void flame_box(FILE *f, const char *name, size_t depth, double x, double w,
		      uint64_t count, uint64_t total, const char *unit)
{
	char fill[8];
	size_t fit = w > 6 ? (size_t)((w - 6) / FLAME_CHAR) : 0, len = strlen(name);

	colour(name, fill, sizeof(fill));
	fprintf(f, "<g data-x=\"%.2f\" data-w=\"%.2f\" data-d=\"%zu\" data-n=\"", x, w, depth);
	esc(f, name);
	fputs("\"><title>", f);
	esc(f, name);
	fprintf(f, " (%" PRIu64 " %s, %.2f%%)</title><rect x=\"%.2f\" y=\"%zu\" width=\"%.2f\" "
		"height=\"%d\" fill=\"%s\"/><text x=\"%.2f\" y=\"%zu\">", count, unit,
		100.0 * (double)count / (double)total, x, depth * FLAME_ROW, w, FLAME_ROW - 1,
		depth ? fill : "#d9d9d9", x + 3, depth * FLAME_ROW + 12);
	if (fit >= 3) {
		if (len > fit) {
			pfs_report_xml(f, name, fit - 2);
		} else {
			esc(f, name);
		}
	}
	fputs("</text></g>\n", f);
}

/*
 * An icicle, the root on top: stacks sorted by their names, so that each
 * frame's callees come together, then one pass opening and closing frames
 * as flamegraph.pl merges its folded lines.
 */
static int flame(FILE *f, const struct pfs_report *rep, const struct pfs_report_opts *o)
{
	size_t n = 0, maxd = 0, *open_at;
	bool faults = pfs_report_has_faults(rep);
	const char *unit = faults ? "faults" : "allocations";
	struct stack *st = calloc(rep->nranked + 1, sizeof(*st));
	uint64_t total = 0, pos = 0, *start;
	double scale;
	int rc = 0;

	if (!st)
		return -ENOMEM;
	for (size_t i = 0; i < rep->nranked && !rc; i++) {
		const struct pfs_rproc *rp = rep->ranked[i].rp;
		const struct pfs_rsite *rs = &rp->sites[rep->ranked[i].index];
		uint64_t w = faults ? pfs_report_site_faults(rs) : rs->site->allocations;

		if (!w || !pfs_report_in_top(rs, o->top))
			continue;
		rc = make_stack(&st[n++], rp, rs, o->depth, w);
		total += w;
		if (!rc && st[n - 1].n > maxd)
			maxd = st[n - 1].n;
	}
	if (rc || !total) {
		if (!rc)
			fputs("<p class=\"muted\">no faults or allocations to draw</p>\n", f);
		free_stacks(st, n);
		return rc;
	}
	qsort(st, n, sizeof(*st), cmp_stack);
	start = calloc(maxd + 1, sizeof(*start));
	open_at = calloc(maxd + 1, sizeof(*open_at));
	if (!start || !open_at) {
		free(start);
		free(open_at);
		free_stacks(st, n);
		return -ENOMEM;
	}
	scale = (double)PFS_REPORT_SVG_W / (double)total;
	fprintf(f, "<svg id=\"flame\" class=\"flame\" viewBox=\"0 0 %d %zu\" width=\"100%%\">\n",
		PFS_REPORT_SVG_W, (maxd + 1) * FLAME_ROW);
	flame_box(f, "all", 0, 0, PFS_REPORT_SVG_W, total, total, unit);
	/* open[d]: the frame at depth d + 1 (stack index, name index d) that is open since start[d] */
	for (size_t i = 0, depth = 0; i <= n; i++) {
		size_t common = 0;

		if (i < n && i > 0)
			while (common < depth && common < st[i].n &&
			       !strcmp(st[open_at[common]].names[common], st[i].names[common]))
				common++;
		/* close the frames the new stack does not share, deepest first */
		while (depth > common) {
			depth--;
			flame_box(f, st[open_at[depth]].names[depth], depth + 1, (double)start[depth] * scale,
				  (double)(pos - start[depth]) * scale, pos - start[depth], total, unit);
		}
		if (i == n)
			break;
		for (; depth < st[i].n; depth++) {
			open_at[depth] = i;
			start[depth] = pos;
		}
		pos += st[i].weight;
	}
	fputs("</svg>\n<p class=\"muted\">Width: a frame's share of the ", f);
	fputs(faults ? "faults (first-touch + copy-on-write)" : "allocations (the run has no faults)", f);
	fputs(" below it. A click zooms into a frame; a click on \"all\" zooms out.</p>\n", f);
	free(start);
	free(open_at);
	free_stacks(st, n);
	return 0;
}

/* ---- storms over time ---------------------------------------------------- */

static int cmp_busy(const void *a, const void *b)
{
	uint64_t x = proc_faults((*(const struct pfs_rproc *const *)a)->proc);
	uint64_t y = proc_faults((*(const struct pfs_rproc *const *)b)->proc);

	return x > y ? -1 : x < y;
}

static int timeline(FILE *f, const struct pfs_report *rep)
{
	const struct pfs_rproc **busy = calloc(rep->nprocs + 1, sizeof(*busy));
	size_t n = 0;

	if (!busy)
		return -ENOMEM;
	for (size_t i = 0; i < rep->nprocs; i++)
		if (proc_faults(rep->procs[i].proc))
			busy[n++] = &rep->procs[i];
	qsort(busy, n, sizeof(*busy), cmp_busy);
	if (!n)
		fputs("<p class=\"muted\">no faults recorded over time</p>\n", f);
	for (size_t i = 0; i < n && i < HTML_PANELS; i++) {
		fprintf(f, "<svg class=\"rate\" viewBox=\"0 0 %d %d\" width=\"100%%\">\n",
			PFS_REPORT_SVG_W, PFS_REPORT_SVG_PANEL_H);
		pfs_report_svg_panel(f, busy[i], 0);
		fputs("</svg>\n", f);
		for (size_t k = 0; k < busy[i]->series.nstorms && k < 5; k++) {
			const struct pfs_storm *s = &busy[i]->series.storms[k];
			char name[256] = "?";

			if (s->top_index != SIZE_MAX)
				pfs_report_site_name(&busy[i]->sites[s->top_index], name, sizeof(name));
			fprintf(f, "%s%zu. %.1f-%.1f ms, %" PRIu64 " faults, site #%" PRIu32 " ",
				k ? "<br>" : "<p class=\"storms\">", k + 1, (double)s->start_ns / 1e6,
				(double)s->end_ns / 1e6, s->faults, s->top_id);
			esc(f, name);
		}
		if (busy[i]->series.nstorms)
			fputs("</p>\n", f);
	}
	if (n > HTML_PANELS)
		fprintf(f, "<p class=\"muted\">%zu more processes with faults (--pid or --comm "
			"chooses)</p>\n", n - HTML_PANELS);
	free(busy);
	return 0;
}

int pfs_report_html(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o)
{
	static const struct pfs_report_opts none;
	const struct pfs_an_warnings *w = &rep->run->warnings;
	int rc;

	if (!o)
		o = &none;
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	      "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width\">\n<title>pfshim report: ", out);
	esc(out, o->source);
	fprintf(out, "</title>\n<style>\n%s</style></head>\n<body>\n<h1>pfshim report</h1>\n", style);
	summary(out, rep, o);
	fputs("<h2>Processes</h2>\n<ul class=\"tree\" id=\"tree\">\n", out);
	for (size_t i = 0; i < rep->run->nprocs; i++)
		if (!rep->run->procs[i]->parent)
			tree(out, rep, rep->run->procs[i]);
	/* the pictures first: the table is the long part */
	fputs("</ul>\n<h2>Flame graph</h2>\n", out);
	rc = flame(out, rep, o);
	fputs("<h2>Faults over time, storms shaded</h2>\n", out);
	if (!rc)
		rc = timeline(out, rep);
	fprintf(out, "<h2>Sites, by %s</h2>\n", rep->by_faults ? "faults" : "bytes");
	if (rep->nranked)
		site_table(out, rep, o);
	else
		fputs("<p class=\"muted\">no sites</p>\n", out);
	if (w->n) {
		fprintf(out, "<h2>Warnings (%zu)</h2>\n<ul>\n", w->n);
		for (size_t i = 0; i < w->n; i++) {
			fputs("<li>", out);
			esc(out, w->msgs[i]);
			fputs("</li>\n", out);
		}
		fputs("</ul>\n", out);
	}
	fprintf(out, "<script>\n%s</script>\n</body></html>\n", script);
	if (rc)
		return rc;
	return fflush(out) != 0 || ferror(out) ? -EIO : 0;
}
