/*
 * The configuration table (in the manner of mimalloc's options): every
 * PFSHIM_ variable is declared here once; a bad value is warned about once
 * and the default kept.  No getenv() anywhere else in the shim.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "pfshim/log_format.h"
#include "util.h"

enum opt_type { OPT_MODE, OPT_PATH, OPT_STR, OPT_BOOL, OPT_MS, OPT_PID, OPT_PAGEMAP, OPT_SIZE, OPT_NOT_MINE };

struct opt {
	const char *name;
	enum opt_type type;
	size_t offset;
};

#define OPT(n, t, field) {n, t, offsetof(struct pfs_config, field)}
static const struct opt opts[] = {
	OPT("PFSHIM_MODE", OPT_MODE, mode),
	OPT("PFSHIM_OUT", OPT_PATH, out),
	OPT("PFSHIM_POLICY", OPT_STR, policy),
	OPT("PFSHIM_QUIET", OPT_BOOL, quiet),
	OPT("PFSHIM_SCAN_MS", OPT_MS, scan_ms),
	OPT("PFSHIM_TOUCH_SITE", OPT_BOOL, touch_site),
	OPT("PFSHIM_RUN", OPT_PID, run_pid),
	OPT("PFSHIM_PAGEMAP", OPT_PAGEMAP, pagemap),
	OPT("PFSHIM_LOG_MAX", OPT_SIZE, log_max),
	/* the analyzer's (pfshim record's libpfshim.so, a report's fault costs and runtime frames):
	 * known, so not "unknown", and not the shim's. */
	{"PFSHIM_LIB", OPT_NOT_MINE, 0},
	{"PFSHIM_FAULT_COST", OPT_NOT_MINE, 0},
	{"PFSHIM_RUNTIME_FRAMES", OPT_NOT_MINE, 0},
};

/* ASCII letters alike in either case: libc's strcasecmp reads the locale's tables (two fresh pages a start). */
static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int same_word(const char *a, const char *b)
{
	for (; lower(*a) == lower(*b); a++, b++)
		if (!*a)
			return 1;
	return 0;
}

int pfs_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = {"1", "yes", "on", "true"};
	static const char *const no[] = {"0", "no", "off", "false", ""};
	for (size_t i = 0; i < PFS_ARRAY_SIZE(yes); i++)
		if (same_word(s, yes[i]))
			return *out = 1, 0;
	for (size_t i = 0; i < PFS_ARRAY_SIZE(no); i++)
		if (same_word(s, no[i]))
			return *out = 0, 0;
	return -1;
}

int pfs_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int pfs_parse_size(const char *s, uint64_t *out)
{
	char num[32];
	size_t n = strlen(s);
	uint64_t mul = 1;
	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 'k': case 'K': mul = 1ull << 10; break;
	case 'm': case 'M': mul = 1ull << 20; break;
	case 'g': case 'G': mul = 1ull << 30; break;
	default: break;
	}
	if (mul != 1)
		num[--n] = 0;
	unsigned long v;
	if (pfs_parse_uint(num, ~0ul / mul, &v))
		return -1;
	*out = (uint64_t)v * mul;
	return 0;
}

static void warnf(pfs_config_warn_fn warn, void *ctx, int *count, const char *fmt, const char *a,
		  const char *b)
{
	char buf[256];
	snprintf(buf, sizeof(buf), fmt, a, b);
	if (warn)
		warn(ctx, buf);
	(*count)++;
}

static int set_opt(struct pfs_config *c, const struct opt *o, const char *v, pfs_config_warn_fn warn,
		   void *ctx)
{
	char *field = (char *)c + o->offset;
	int count = 0;
	unsigned long ul;
	int b;
	switch (o->type) {
	case OPT_MODE:
		if (!strcmp(v, "off"))
			*(int *)field = PFS_MODE_OFF;
		else if (!strcmp(v, "fast"))
			*(int *)field = PFS_MODE_FAST;
		else if (!strcmp(v, "exact"))
			*(int *)field = PFS_MODE_EXACT;
		else if (!strcmp(v, "uffd"))
			*(int *)field = PFS_MODE_UFFD;
		else if (*v)
			warnf(warn, ctx, &count, "%s='%s' is not fast, exact, uffd or off; choosing the mode",
			      o->name, v);
		break;
	case OPT_PATH:
	case OPT_STR: {
		size_t cap = o->type == OPT_PATH ? PATH_MAX : PFS_CONFIG_STR_MAX;
		if (strlen(v) >= cap)
			warnf(warn, ctx, &count, "%s is too long; ignored%s", o->name, "");
		else
			memcpy(field, v, strlen(v) + 1);
		break;
	}
	case OPT_BOOL:
		if (pfs_parse_bool(v, &b))
			warnf(warn, ctx, &count, "%s='%s' is not 1/0, yes/no, on/off or true/false; ignored",
			      o->name, v);
		else
			*(int *)field = b;
		break;
	case OPT_MS:
		if (pfs_parse_uint(v, 600000, &ul) || ul == 0)
			warnf(warn, ctx, &count, "%s='%s' is not a number of milliseconds (1-600000); using the default",
			      o->name, v);
		else
			*(unsigned *)field = (unsigned)ul;
		break;
	case OPT_SIZE: {
		uint64_t bytes;
		if (pfs_parse_size(v, &bytes) || bytes < PFS_LOG_MAX_MIN)
			warnf(warn, ctx, &count, "%s='%s' is not a size of 1M or more (N, NK, NM, NG); no limit",
			      o->name, v);
		else
			*(uint64_t *)field = bytes;
		break;
	}
	case OPT_NOT_MINE:
		break;
	case OPT_PAGEMAP:
		if (!strcmp(v, "scan"))
			*(int *)field = PFS_PAGEMAP_SCAN;
		else if (!strcmp(v, "read"))
			*(int *)field = PFS_PAGEMAP_READ;
		else if (*v)
			warnf(warn, ctx, &count, "%s='%s' is not scan or read; choosing", o->name, v);
		break;
	case OPT_PID:
		if (pfs_parse_uint(v, 1ul << 30, &ul))
			warnf(warn, ctx, &count, "%s='%s' is not a process id; ignored", o->name, v);
		else
			*(long *)field = (long)ul;
		break;
	}
	return count;
}

int pfs_config_parse(struct pfs_config *c, char *const *envp, pfs_config_warn_fn warn, void *ctx)
{
	int count = 0;
	memset(c, 0, sizeof(*c));
	c->mode = -1;
	c->scan_ms = PFS_SCAN_MS_DEFAULT;
	for (char *const *e = envp; e && *e; e++) {
		if (strncmp(*e, "PFSHIM_", 7))
			continue;
		const char *eq = strchr(*e, '=');
		if (!eq)
			continue;
		size_t nlen = (size_t)(eq - *e);
		const struct opt *o = NULL;
		for (size_t i = 0; i < PFS_ARRAY_SIZE(opts); i++)
			if (strlen(opts[i].name) == nlen && !strncmp(opts[i].name, *e, nlen))
				o = &opts[i];
		if (!o) {
			char name[64];
			snprintf(name, sizeof(name), "%.*s", (int)(nlen < 60 ? nlen : 60), *e);
			warnf(warn, ctx, &count, "unknown variable %s ignored%s", name, "");
			continue;
		}
		count += set_opt(c, o, eq + 1, warn, ctx);
	}
	return count;
}
