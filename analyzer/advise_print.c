/* `pfshim advise` output, text and JSON; see advise.h and docs/advisor.md. */
#include "advise.h"

#include <errno.h>
#include <inttypes.h>

#include "json.h"

/* ---- output ------------------------------------------------------------- */

static const char *const what_names[] = {
	[PFS_ADVICE_FINE] = "fine", [PFS_ADVICE_POPULATE] = "populate", [PFS_ADVICE_HUGEPAGE] = "hugepage",
	[PFS_ADVICE_FILE] = "file-readahead", [PFS_ADVICE_SPARSE] = "sparse", [PFS_ADVICE_COW] = "fork",
};

/* Names from logs and objects go to a terminal: control bytes become '?'. */
static void put_clean(FILE *f, const char *s)
{
	for (; s && *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

int pfs_adv_print_text(const struct pfs_report *rep, const struct pfs_adv_list *l, FILE *out,
		       const char *source)
{
	fputs("# pfshim advise: ", out);
	put_clean(out, source ? source : "?");
	fprintf(out, "\n# mode %s, %zu process%s; rules and thresholds: docs/advisor.md\n#\n",
		rep->mode, rep->nprocs, rep->nprocs == 1 ? "" : "es");
	for (size_t k = 0; k < l->n; k++) {
		const struct pfs_adv_item *it = &l->items[k];
		char name[256], line[640];

		pfs_report_site_label(&it->rp->sites[it->index], name, sizeof(name));
		pfs_evidence_summary(line, sizeof(line), &it->ev);
		fprintf(out, "site #%" PRIu32 " ", it->id);
		put_clean(out, name);
		fprintf(out, " (%s, pid %" PRIu64 "): %s\n", pfs_kind_name(it->in.kind),
			it->rp->proc->pid, what_names[it->adv.what]);
		if (it->adv.rule[0]) {
			fputs("    rule:     ", out);
			put_clean(out, it->adv.rule);
			fputc('\n', out);
		}
		fputs("    why:      ", out);
		put_clean(out, it->adv.reason);
		fprintf(out, "\n    evidence: %s; %" PRIu64 " first-touch, %" PRIu64
			" copy-on-write faults\n    expect:   ", line, it->in.first_touch_faults,
			it->in.cow_faults);
		put_clean(out, it->adv.expect);
		fputs("\n\n", out);
	}
	if (!l->n)
		fputs("no site has enough faults to matter: nothing to advise\n\n", out);
	if (l->quiet)
		fprintf(out, "%zu more site%s: fine (fewer than %d faults, nothing large left untouched)\n\n",
			l->quiet, l->quiet == 1 ? "" : "s", PFS_ADV_MIN_PAGES);
	if (l->policy[0]) {
		fputs("PFSHIM_POLICY='", out);
		put_clean(out, l->policy);
		fputs("'\n", out);
	} else {
		fputs("# no policy rule to recommend\n", out);
	}
	if (fflush(out) != 0 || ferror(out))
		return -EIO;
	return 0;
}

int pfs_adv_print_json(const struct pfs_report *rep, const struct pfs_adv_list *l, FILE *out,
		       const char *source)
{
	struct pfs_json w;

	pfs_json_init(&w, out, 2);
	pfs_json_begin_object(&w);
	pfs_json_kv_uint(&w, "version", 1);
	pfs_json_kv_string(&w, "source", source);
	pfs_json_kv_string(&w, "mode", rep->mode);
	pfs_json_key(&w, "advice");
	pfs_json_begin_array(&w);
	for (size_t k = 0; k < l->n; k++) {
		const struct pfs_adv_item *it = &l->items[k];

		pfs_json_begin_object(&w);
		pfs_json_kv_uint(&w, "site", it->id);
		pfs_json_kv_string(&w, "function", it->in.function);
		pfs_json_kv_string(&w, "kind", pfs_kind_name(it->in.kind));
		pfs_json_kv_uint(&w, "pid", it->rp->proc->pid);
		pfs_json_kv_string(&w, "advice", what_names[it->adv.what]);
		pfs_json_kv_string(&w, "rule", it->adv.rule[0] ? it->adv.rule : NULL);
		/* its place in the policy: rules are tried in order, none before one it would shadow */
		pfs_json_key(&w, "rule_index");
		if (it->rule_index >= 0)
			pfs_json_int(&w, it->rule_index);
		else
			pfs_json_null(&w);
		pfs_json_kv_string(&w, "reason", it->adv.reason);
		pfs_json_kv_string(&w, "expected", it->adv.expect);
		pfs_json_kv_uint(&w, "waste_if_populated_bytes", it->adv.waste_bytes);
		pfs_json_kv_uint(&w, "faults_avoided", it->adv.faults_avoided);
		pfs_json_kv_uint(&w, "first_touch_faults", it->in.first_touch_faults);
		pfs_json_kv_uint(&w, "cow_faults", it->in.cow_faults);
		pfs_json_key(&w, "evidence");
		pfs_evidence_json(&w, &it->ev);
		pfs_json_end_object(&w);
	}
	pfs_json_end_array(&w);
	pfs_json_kv_uint(&w, "quiet_sites", l->quiet);
	pfs_json_kv_string(&w, "policy", l->policy);
	pfs_json_end_object(&w);
	return pfs_json_finish(&w) ? -EIO : 0;
}
