/*
 * The policy parser and matcher.  A hand-written scanner over the text with
 * one cursor, so that every error can name the 1-based position where the
 * text stopped making sense.  No allocation anywhere: pfs_policy_match runs
 * inside malloc hooks, and the parsed policy lives in static storage.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "policy.h"
#include "pfshim/log_format.h"

/* In bit order (the log's, pfs_policy_action_name), so format_actions writes them in a stable order. */
#define NACTIONS PFS_POLICY_NACTIONS
_Static_assert(PFS_ACT_ALL == (1u << NACTIONS) - 1, "one action per bit the log names");

#define ACTIONS_EXPECTED \
	"populate, populate_read, hugepage, nohugepage, willneed, sequential, random or mlock"
#define CONDS_EXPECTED "size, site, module or kind"
#define KINDS_EXPECTED "malloc, calloc, realloc, aligned, mmap, mmap-file, shared or brk"

/* Longest token quoted back in a message: enough to recognise it, bounded for err. */
#define QUOTE_MAX 32

struct scan {
	const char *text;
	size_t i;	/* cursor, 0-based; messages print i + 1 */
	char *err;
	size_t errlen;
};

/* snprintf with %s/%u/%.*s only: glibc formats those without allocating. */
__attribute__((format(printf, 3, 4))) static int fail(struct scan *s, size_t at, const char *fmt,
						       ...)
{
	if (s->err && s->errlen) {
		int n = snprintf(s->err, s->errlen, "policy: position %zu: ", at + 1);
		if (n >= 0 && (size_t)n < s->errlen) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(s->err + n, s->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return -EINVAL;
}

/* Whitespace around tokens: blanks and line breaks (a policy may come from a file). */
static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int is_word(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static char peek(const struct scan *s)
{
	return s->text[s->i];
}

static void skip_space(struct scan *s)
{
	while (is_space(peek(s)))
		s->i++;
}

/* A keyword (action, condition key, "if"): letters, digits, '_' and '-'. */
static size_t word(struct scan *s, const char **start)
{
	*start = s->text + s->i;
	size_t n = 0;
	while (is_word(s->text[s->i + n]))
		n++;
	s->i += n;
	return n;
}

/* A value after '=' or a size operator: everything up to blank, ',', ';' or the end. */
static size_t value(struct scan *s, const char **start)
{
	*start = s->text + s->i;
	size_t n = 0;
	for (char c; (c = s->text[s->i + n]) && !is_space(c) && c != ',' && c != ';';)
		n++;
	s->i += n;
	return n;
}

static int word_is(const char *w, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

static int at_rule_end(const struct scan *s)
{
	return peek(s) == 0 || peek(s) == ';';
}

/* What stands at the cursor, for "expected X" messages. */
static const char *what_here(const struct scan *s)
{
	return peek(s) == 0 ? "end of text" : peek(s) == ';' ? "';'" : peek(s) == ',' ? "','" : NULL;
}

/* "expected WHAT, found end of text" (or ';', ',', or the character there), at position `at`. */
static int fail_expected(struct scan *s, size_t at, const char *what)
{
	const char *here = what_here(s);
	if (here)
		return fail(s, at, "expected %s, found %s", what, here);
	return fail(s, at, "expected %s, found '%c'", what, peek(s));
}

static int parse_actions(struct scan *s, struct pfs_rule *r)
{
	for (int first = 1;; first = 0) {
		skip_space(s);
		size_t at = s->i;
		const char *w;
		size_t n = word(s, &w);
		if (n == 0)
			return fail_expected(s, at, "an action (" ACTIONS_EXPECTED ")");
		/* "populate, if ..." is a trailing comma, not an action called "if". */
		if (first == 0 && word_is(w, n, "if"))
			return fail(s, at, "expected an action after ',', found 'if'");
		unsigned k;
		for (k = 0; k < NACTIONS; k++)
			if (word_is(w, n, pfs_policy_action_name(k)))
				break;
		if (k == NACTIONS)
			return fail(s, at, "unknown action '%.*s' (expected " ACTIONS_EXPECTED ")",
				    (int)(n < QUOTE_MAX ? n : QUOTE_MAX), w);
		r->actions |= 1u << k;
		skip_space(s);
		if (peek(s) != ',')
			return 0;
		s->i++;
	}
}

static int parse_size(struct scan *s, struct pfs_rule *r)
{
	skip_space(s);
	int ge;
	if (peek(s) == '>' && s->text[s->i + 1] == '=') {
		ge = 1;
		s->i += 2;
	} else if (peek(s) == '<' && s->text[s->i + 1] != '=') {
		ge = 0;
		s->i += 1;
	} else {
		return fail(s, s->i, "'size' needs >= or <");
	}
	skip_space(s);
	size_t at = s->i;
	const char *v;
	size_t n = value(s, &v);
	if (n == 0)
		return fail(s, at, "'size%s' needs a number (N, NK, NM or NG)", ge ? ">=" : "<");
	/* pfs_parse_size wants a NUL-terminated token; anything longer than this is no size. */
	char num[32];
	uint64_t bytes;
	if (n >= sizeof(num))
		return fail(s, at, "bad size '%.*s' (expected N, NK, NM or NG)", QUOTE_MAX, v);
	memcpy(num, v, n);
	num[n] = 0;
	if (pfs_parse_size(num, &bytes))
		return fail(s, at, "bad size '%s' (expected N, NK, NM or NG)", num);
	/* All conditions must hold: two lower bounds keep the larger, two upper bounds the smaller. */
	if (ge) {
		if (!(r->flags & PFS_RULE_HAS_MIN) || bytes > r->min_size)
			r->min_size = bytes;
		r->flags |= PFS_RULE_HAS_MIN;
	} else {
		if (!(r->flags & PFS_RULE_HAS_MAX) || bytes < r->max_size)
			r->max_size = bytes;
		r->flags |= PFS_RULE_HAS_MAX;
	}
	return 0;
}

static int parse_glob(struct scan *s, const char *key, char (*globs)[PFS_POLICY_GLOB_MAX],
		      unsigned *nglobs, size_t key_at)
{
	const char *v;
	size_t at = s->i;
	size_t n = value(s, &v);
	if (n == 0)
		return fail(s, at, "'%s' needs a glob after '='", key);
	if (*nglobs >= PFS_POLICY_MAX_GLOBS)
		return fail(s, key_at, "more than %u %s globs in one rule", PFS_POLICY_MAX_GLOBS, key);
	if (n >= PFS_POLICY_GLOB_MAX)
		return fail(s, at, "%s glob longer than %u characters", key, PFS_POLICY_GLOB_MAX - 1);
	memcpy(globs[*nglobs], v, n);
	globs[*nglobs][n] = 0;
	(*nglobs)++;
	return 0;
}

static int parse_kind(struct scan *s, struct pfs_rule *r)
{
	const char *v;
	size_t at = s->i;
	size_t n = value(s, &v);
	if (n == 0)
		return fail(s, at, "'kind' needs a kind after '=' (" KINDS_EXPECTED ")");
	/* Names exactly as the log and the analyzer spell them (pfs_kind_name). */
	for (unsigned k = 1; k < PFS_KIND_MAX; k++) {
		if (word_is(v, n, pfs_kind_name(k))) {
			r->kinds |= 1u << k;
			return 0;
		}
	}
	return fail(s, at, "unknown kind '%.*s' (expected " KINDS_EXPECTED ")",
		    (int)(n < QUOTE_MAX ? n : QUOTE_MAX), v);
}

static int parse_condition(struct scan *s, struct pfs_rule *r)
{
	skip_space(s);
	size_t at = s->i;
	const char *w;
	size_t n = word(s, &w);
	if (n == 0)
		return fail_expected(s, at, "a condition (" CONDS_EXPECTED ")");
	if (word_is(w, n, "size"))
		return parse_size(s, r);
	const char *key = word_is(w, n, "site")	  ? "site"
			  : word_is(w, n, "module") ? "module"
			  : word_is(w, n, "kind")   ? "kind"
						    : NULL;
	if (!key)
		return fail(s, at, "unknown condition '%.*s' (expected " CONDS_EXPECTED ")",
			    (int)(n < QUOTE_MAX ? n : QUOTE_MAX), w);
	skip_space(s);
	if (peek(s) != '=')
		return fail(s, s->i, "'%s' needs =", key);
	s->i++;
	skip_space(s);
	if (key[0] == 's')
		return parse_glob(s, key, r->site, &r->nsite, at);
	if (key[0] == 'm')
		return parse_glob(s, key, r->module, &r->nmodule, at);
	return parse_kind(s, r);
}

static int parse_rule(struct scan *s, struct pfs_rule *r)
{
	int rc = parse_actions(s, r);
	if (rc)
		return rc;
	/* parse_actions stopped after blanks at something that is not ','. */
	if (at_rule_end(s))
		return 0;
	size_t at = s->i;
	const char *w;
	size_t n = word(s, &w);
	if (!word_is(w, n, "if")) {
		s->i = at;
		return fail(s, at, "expected ',', 'if', ';' or end of text after an action");
	}
	skip_space(s);
	if (at_rule_end(s))
		return fail(s, s->i, "'if' needs a condition");
	for (;;) {
		rc = parse_condition(s, r);
		if (rc)
			return rc;
		skip_space(s);
		if (at_rule_end(s))
			return 0;
		if (peek(s) != ',')
			return fail(s, s->i, "expected ',', ';' or end of text after a condition");
		s->i++;
	}
}

int pfs_policy_parse(struct pfs_policy *p, const char *text, char *err, size_t errlen)
{
	struct scan s = {.text = text ? text : "", .i = 0, .err = err, .errlen = errlen};
	if (err && errlen)
		err[0] = 0;
	memset(p, 0, sizeof(*p));
	skip_space(&s);
	if (peek(&s) == 0)
		return 0; /* empty text: no rules */
	for (;;) {
		skip_space(&s);
		size_t at = s.i;
		int rc;
		/* "a;;b", ";a" and "a;" all hold a rule with nothing in it: say so, not "expected an action". */
		if (at_rule_end(&s))
			rc = fail(&s, at, "empty rule");
		else if (p->nrules >= PFS_POLICY_MAX_RULES)
			rc = fail(&s, at, "more than %u rules", PFS_POLICY_MAX_RULES);
		else {
			struct pfs_rule *r = &p->rules[p->nrules];
			r->pos = (unsigned)at + 1;
			rc = parse_rule(&s, r);
			/* The rule's text for the log, without the blanks before ';'. */
			size_t end = s.i;
			while (end > at && is_space(s.text[end - 1]))
				end--;
			r->len = (unsigned)(end - at);
			p->nrules++;
		}
		if (rc) {
			/* The contract: a rule that does not parse means no policy at all. */
			memset(p, 0, sizeof(*p));
			return rc;
		}
		if (peek(&s) == 0)
			return 0;
		s.i++; /* the ';' */
	}
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

static int site_holds(const char *glob, const char *const *fns, unsigned nfns)
{
	/* fnmatch with flags 0 works on the strings in place; it does not allocate. */
	for (unsigned i = 0; i < nfns; i++)
		if (fns[i] && fnmatch(glob, fns[i], 0) == 0)
			return 1;
	return 0;
}

static int site_holds_any(const struct pfs_rule *r, const char *name)
{
	for (unsigned g = 0; g < r->nsite; g++)
		if (site_holds(r->site[g], &name, 1))
			return 1;
	return 0;
}

int pfs_policy_wants_site(const struct pfs_policy *p, const char *name)
{
	for (unsigned i = 0; i < p->nrules && i < PFS_POLICY_MAX_RULES; i++)
		if (site_holds_any(&p->rules[i], name))
			return 1;
	return 0;
}

int pfs_rule_alloc_holds(const struct pfs_rule *r, uint64_t size, int kind)
{
	if ((r->flags & PFS_RULE_HAS_MIN) && size < r->min_size)
		return 0;
	if ((r->flags & PFS_RULE_HAS_MAX) && size >= r->max_size)
		return 0;
	if (r->kinds && (kind <= 0 || kind >= PFS_KIND_MAX || !(r->kinds & (1u << kind))))
		return 0;
	return 1;
}

int pfs_rule_stack_holds(const struct pfs_rule *r, const char *const *fns, unsigned nfns, const char *module)
{
	for (unsigned g = 0; g < r->nsite; g++)
		if (!fns || !site_holds(r->site[g], fns, nfns))
			return 0;
	if (r->nmodule) {
		if (!module)
			return 0;
		const char *base = base_name(module);
		for (unsigned g = 0; g < r->nmodule; g++)
			if (fnmatch(r->module[g], base, 0) != 0)
				return 0;
	}
	return 1;
}

static int rule_holds(const struct pfs_rule *r, uint64_t size, int kind, const char *const *fns,
		      unsigned nfns, const char *module)
{
	return pfs_rule_alloc_holds(r, size, kind) && pfs_rule_stack_holds(r, fns, nfns, module);
}

const struct pfs_rule *pfs_policy_match(const struct pfs_policy *p, uint64_t size, int kind,
					const char *const *site_functions, unsigned nsite_functions,
					const char *module_path)
{
	if (!p)
		return NULL;
	for (unsigned i = 0; i < p->nrules && i < PFS_POLICY_MAX_RULES; i++)
		if (rule_holds(&p->rules[i], size, kind, site_functions, nsite_functions,
			       module_path))
			return &p->rules[i];
	return NULL;
}

int pfs_policy_format_actions(unsigned actions, char *buf, size_t len)
{
	if (!buf || len == 0)
		return -ENOSPC;
	buf[0] = 0;
	if (actions & ~PFS_ACT_ALL)
		return -EINVAL;
	/* Plain copies, not snprintf: this may be called from a hook to word a message. */
	size_t used = 0;
	int rc = 0;
	for (unsigned k = 0; k < NACTIONS + 1; k++) {
		const char *name;
		if (k == NACTIONS)
			name = actions ? NULL : "none";
		else
			name = (actions & (1u << k)) ? pfs_policy_action_name(k) : NULL;
		if (!name)
			continue;
		const char *sep = used ? "," : "";
		size_t sl = strlen(sep), nl = strlen(name);
		if (used + sl + nl + 1 > len) {
			rc = -ENOSPC;
			break;
		}
		memcpy(buf + used, sep, sl);
		memcpy(buf + used + sl, name, nl);
		used += sl + nl;
		buf[used] = 0;
	}
	return rc;
}
