/*
 * The pfshim command line.  Commands and their options are declared as data
 * (the tables below); getopt_long's tables and the help text are made from
 * them, so the help cannot drift from what is parsed.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pfshim/log_format.h>

#include "advise_run.h"
#include "diff.h"
#include "jitmap.h"
#include "kevents.h"
#include "label.h"
#include "model.h"
#include "report.h"
#include "symbolize.h"

struct cli_opt {
	const char *name;	/* long name */
	int key;		/* short letter, also what getopt returns; >= LONG_ONLY: none */
	const char *arg;	/* argument name; NULL: a flag */
	const char *help;
};

struct cli_cmd {
	const char *name;
	const char *synopsis;
	const char *summary;
	const struct cli_opt *opts;
	int (*run)(const struct cli_cmd *cmd, int argc, char **argv);
	bool coming;		/* in the contract, not implemented yet */
};

#define MAX_OPTS 16
#define LONG_ONLY 256

enum { OPT_MODULE = LONG_ONLY, OPT_SINCE, OPT_UNTIL, OPT_PID, OPT_FOR };

static const struct cli_opt report_opts[] = {
	{"format", 'f', "FMT", "text (default), json, folded, pprof, perfetto, svg, html"},
	{"top", 'n', "N", "the N sites with the most faults in the run (text: 10, html: 1000; 0: all)"},
	{"pid", 'p', "PID,...", "only these processes"},
	{"comm", 'c', "GLOB", "only processes whose command matches"},
	{"site", 's', "GLOB", "only sites with a frame whose function matches"},
	{"module", OPT_MODULE, "GLOB", "only sites whose label lies in a matching module"},
	{"since", OPT_SINCE, "TIME", "only faults from TIME after each process's start (2s, 150ms)"},
	{"until", OPT_UNTIL, "TIME", "only faults until TIME after each process's start"},
	{"depth", 'd', "N|all", "frames shown per site from the label (text: 5; others: all)"},
	{"output", 'o', "FILE", "write the report to FILE instead of standard output"},
	{"runtime-frames", 'R', "GLOB", "never a site's label, like operator new (label rules: docs/analyzer.md)"},
	{"help", 'h', NULL, "this help"},
	{0},
};

static const struct cli_opt record_opts[] = {
	{"output", 'o', "DIR", "log directory, made with its parents (default ./pfshim.<pid>)"},
	{"force", 'F', NULL, "replace the logs of an earlier run in the directory"},
	{"mode", 'm', "MODE", "fast, exact or off (PFSHIM_MODE; default: the shim's)"},
	{"policy", 'p', "RULES", "policy rules (PFSHIM_POLICY), see policy.md"},
	{"top", 'n', "N", "sites listed per process in the summary (default 10; 0: all)"},
	{"runtime-frames", 'R', "GLOB", "never a site's label, like operator new (label rules: docs/analyzer.md)"},
	{"pid", OPT_PID, "PID", "no CMD: attach to a running process, its faults by mapping (the kernel's fault events)"},
	{"for", OPT_FOR, "TIME", "--pid: watch for TIME (\"10s\"; default: until it ends, or ^C)"},
	{"help", 'h', NULL, "this help"},
	{0},
};

static const struct cli_opt advise_opts[] = {
	{"format", 'f', "FMT", "text (default) or json"},
	{"verify", 'v', NULL, "run CMD without and with the advice, print the measured change"},
	{"runs", 'n', "N", "--verify: runs of each, alternating (default 3)"},
	{"policy", 'p', "RULES", "--verify: measure these rules instead of the advice"},
	{"output", 'o', "DIR", "--verify: keep the runs' logs and output in DIR"},
	{"runtime-frames", 'R', "GLOB", "never a site's label, like operator new (label rules: docs/analyzer.md)"},
	{"help", 'h', NULL, "this help"},
	{0},
};

static const struct cli_opt diff_opts[] = {
	{"format", 'f', "FMT", "text (default) or json"},
	{"top", 'n', "N", "sites listed per process (text: 10, json: all; 0: all)"},
	{"output", 'o', "FILE", "write the comparison to FILE instead of standard output"},
	{"runtime-frames", 'R', "GLOB", "never a site's label, like operator new (label rules: docs/analyzer.md)"},
	{"help", 'h', NULL, "this help"},
	{0},
};

static const struct cli_opt no_opts[] = {{0}};

static int cmd_report(const struct cli_cmd *cmd, int argc, char **argv);
static int cmd_record(const struct cli_cmd *cmd, int argc, char **argv);
static int cmd_help(const struct cli_cmd *cmd, int argc, char **argv);
static int cmd_diff(const struct cli_cmd *cmd, int argc, char **argv);
static int cmd_advise(const struct cli_cmd *cmd, int argc, char **argv);

static const struct cli_cmd commands[] = {
	{"record", "[OPTIONS] [--] CMD [ARGS...] | --pid PID",
	 "run CMD under the shim (or watch PID), then print the report to stderr", record_opts, cmd_record},
	{"report", "[OPTIONS] DIR|FILE...",
	 "report the logs (*.pfslog) of a run directory or files", report_opts, cmd_report},
	{"help", "[COMMAND]", "this help, or a command's", no_opts, cmd_help},
	{"diff", "[OPTIONS] DIR_A DIR_B", "compare two runs: per site and process, what got better"
	 " or worse", diff_opts, cmd_diff},
	{"advise", "[OPTIONS] DIR | --verify CMD...",
	 "recommend a policy rule per site; --verify measures it", advise_opts, cmd_advise},
	{0},
};

/* ---- option tables ------------------------------------------------------- */

static const struct cli_cmd *find_cmd(const char *name)
{
	for (const struct cli_cmd *c = commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

/* getopt_long's tables from ours; `stop` stops at the first operand (record's CMD). */
static void build_getopt(const struct cli_opt *opts, bool stop, struct option *lo, char *so)
{
	size_t n = 0;

	/* '+': stop at the first operand; ':': report a missing argument as ':' */
	if (stop)
		*so++ = '+';
	*so++ = ':';
	for (const struct cli_opt *o = opts; o->name && n < MAX_OPTS; o++, n++) {
		lo[n] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL,
					o->key};
		if (o->key >= LONG_ONLY)
			continue;
		*so++ = (char)o->key;
		if (o->arg)
			*so++ = ':';
	}
	lo[n] = (struct option){0};
	*so = '\0';
}

/* Tables made, and getopt reset: glibc re-initialises fully at optind 0 (the CLI may run twice in a test). */
static void getopt_start(const struct cli_opt *opts, bool stop, struct option *lo, char *so)
{
	build_getopt(opts, stop, lo, so);
	optind = 0;
	opterr = 0;
}

static void print_opts(FILE *f, const struct cli_opt *opts)
{
	for (const struct cli_opt *o = opts; o->name; o++) {
		char left[40];

		if (o->key >= LONG_ONLY)
			snprintf(left, sizeof(left), "    --%s%s%s", o->name, o->arg ? " " : "",
				 o->arg ? o->arg : "");
		else
			snprintf(left, sizeof(left), "-%c, --%s%s%s", o->key, o->name,
				 o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(f, "    %-24s %s\n", left, o->help);
	}
}

static void usage_cmd(FILE *f, const struct cli_cmd *c)
{
	fprintf(f, "usage: pfshim %s %s\n  %s%s\n", c->name, c->synopsis, c->summary,
		c->coming ? " (coming)" : "");
	if (c->opts[0].name) {
		fputs("options:\n", f);
		print_opts(f, c->opts);
	}
}

static void usage(FILE *f)
{
	fputs("usage: pfshim COMMAND [OPTIONS] [ARGS...]\n"
	      "       pfshim --help | --version\n\n"
	      "pfshim profiles page faults by allocation site: `record` runs a program under\n"
	      "the LD_PRELOAD shim (libpfshim.so), `report` reads the logs it writes.\n"
	      "Manuals: pfshim(1), libpfshim.so(7); the documents named (policy.md, ...) are\n"
	      "in docs/ of the source and share/doc/pfshim/ where pfshim is installed.\n\n"
	      "commands:\n", f);
	for (const struct cli_cmd *c = commands; c->name; c++) {
		char left[48];

		snprintf(left, sizeof(left), "%s %s", c->name, c->synopsis);
		fprintf(f, "  %-36s %s%s\n", left, c->summary, c->coming ? " (coming)" : "");
	}
	for (const struct cli_cmd *c = commands; c->name; c++) {
		if (!c->opts[0].name)
			continue;
		fprintf(f, "\n%s options:\n", c->name);
		print_opts(f, c->opts);
	}
	fputs("\nglobal options:\n"
	      "    -h, --help               this help\n"
	      "    -V, --version            the version and log format\n\n"
	      "environment:\n"
	      "    PFSHIM_LIB     record, advise --verify: the libpfshim.so to preload\n"
	      "                   (default: next to pfshim, or ../lib/ from it)\n"
	      "    PFSHIM_MODE, PFSHIM_POLICY, PFSHIM_SCAN_MS, PFSHIM_TOUCH_SITE\n"
	      "                   record: passed on to the shim\n"
	      "    PAGER          report: the pager for text on a terminal (default less;\n"
	      "                   empty or cat: none)\n"
	      "    NO_COLOR       set: no colour even on a terminal\n\n"
	      "exit status:\n"
	      "    report: 0 ok, 1 a log was unreadable or had corrupt records (the report\n"
	      "            is still printed), 2 bad usage (pprof: also to a terminal)\n"
	      "    diff:   as report, for either run\n"
	      "    record: the program's status (128+N if killed by signal N), 127 if it\n"
	      "            could not be run, 2 bad usage or a log directory with logs\n"
	      "    advise: 0 ok, 1 unreadable or corrupt logs, 2 bad usage; --verify: 0 when\n"
	      "            every run was made, 127 if the program could not be run\n", f);
}

static int usage_error(const char *cmd, const char *fmt, const char *arg)
	__attribute__((format(printf, 2, 0)));

/* One line saying what is wrong, one saying where help is: exit status 2. */
static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
	fputs("pfshim: ", stderr);
	if (cmd)
		fprintf(stderr, "%s: ", cmd);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'pfshim %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
	return PFS_EXIT_USAGE;
}

/* getopt's '?' and ':' as one of our messages. */
static int getopt_error(const char *cmd, int c, char **argv)
{
	const char *arg = argv[optind - 1];
	char shortopt[3] = {'-', (char)optopt, '\0'};

	/* in a cluster ("-qx") optind has not moved on: name the letter itself */
	if (optopt && strncmp(arg, "--", 2))
		arg = shortopt;
	if (c == ':')
		return usage_error(cmd, "option '%s' needs an argument", arg);
	return usage_error(cmd, "unknown option '%s'", arg);
}

static int parse_top(const char *cmd, const char *s, unsigned *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v > UINT_MAX || s[0] == '-')
		return usage_error(cmd, "--top needs a number, not '%s'", s);
	*out = (unsigned)v;
	return 0;
}

/* Colour only for a terminal, and never when NO_COLOR is set (no-color.org) or TERM=dumb. */
static bool want_color(FILE *f)
{
	const char *term = getenv("TERM");

	return isatty(fileno(f)) && !getenv("NO_COLOR") && !(term && !strcmp(term, "dumb"));
}

/*
 * -o FILE, opened for writing without following a symbolic link (another
 * user's link in a shared directory would aim the report at a file of
 * ours), and truncated only once it is known to be the user's own regular
 * file with no other name; a device (/dev/null) is written as it is.
 * NULL when refused or impossible, said on stderr.
 */
static FILE *open_output(const char *path, const char *who)
{
	const char *why = NULL;
	struct stat st;
	FILE *f;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0666);
	if (fd < 0) {
		fprintf(stderr, "pfshim: %s: cannot write '%s': %s\n", who, path,
			errno == ELOOP ? "it is a symbolic link, which is not followed" : strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) && st.st_uid != geteuid())
		why = "it is not a regular file and not yours";
	else if (S_ISREG(st.st_mode) && st.st_uid != geteuid())
		why = "the file belongs to another user";
	else if (S_ISREG(st.st_mode) && st.st_nlink > 1)
		why = "the file has other names (hard links)";
	else if (S_ISREG(st.st_mode) && ftruncate(fd, 0) < 0)
		why = strerror(errno);
	if (why || !(f = fdopen(fd, "w"))) {
		fprintf(stderr, "pfshim: %s: cannot write '%s': %s\n", who, path,
			why ? why : strerror(errno));
		close(fd);
		return NULL;
	}
	return f;
}

/* ---- report -------------------------------------------------------------- */

typedef int (*report_writer)(const struct pfs_report *, FILE *, const struct pfs_report_opts *);

/* The formats, with what --top and --depth are when not given (0: all). */
static const struct report_format {
	const char *name;
	report_writer write;
	unsigned top, depth;
	bool binary;
} formats[] = {
	{"text", pfs_report_text, 10, PFS_REPORT_DEPTH_TEXT, false},
	{"json", pfs_report_json, 0, 0, false},
	{"folded", pfs_report_folded, 0, 0, false},
	{"pprof", pfs_report_pprof, 0, 0, true},
	{"perfetto", pfs_report_perfetto, 0, 0, false},
	{"svg", pfs_report_svg, 0, 0, false},
	{"html", pfs_report_html, 1000, 0, false},	/* a table a browser scrolls */
	{0},
};

/*
 * Read `paths`, print the report to `out`: PFS_EXIT_OK, or PFS_EXIT_BAD_LOGS
 * when a log was unreadable or corrupt (the report is printed all the same)
 * or the output failed (but not a pager the user closed early).
 */
static int report_paths(char **paths, int npaths, FILE *out, report_writer write,
			const struct pfs_report_opts *opts, const struct pfs_report_filter *filter,
			bool paged)
{
	struct pfs_report rep = {0};
	struct pfs_sym *sym = NULL;
	struct pfs_an_progress progress;
	struct pfs_run run;
	int rc = 0, status = PFS_EXIT_OK;

	/*
	 * Problems are printed as they are found, on stderr, unless the report
	 * goes there itself (record): its warnings section lists them once.
	 */
	FILE *diag = out == stderr ? NULL : stderr;

	/* on a terminal only; erased before the report is written */
	pfs_an_progress_init(&progress, STDERR_FILENO);
	rc = pfs_report_load(&rep, &run, &sym, paths, npaths, diag, &progress, filter);
	if (rc) {
		fprintf(stderr, "pfshim: report: %s\n", strerror(-rc));
		status = PFS_EXIT_BAD_LOGS;
		goto out;
	}
	if (opts->policy)
		pfs_report_warn_unmatched(&rep, opts->policy);
	rc = write(&rep, out, opts);
	if (rc && !paged) {	/* a pager the user quit early is no failure */
		fprintf(stderr, "pfshim: report: cannot write the report: %s\n", strerror(-rc));
		status = PFS_EXIT_BAD_LOGS;
	} else if (run.errors) {
		status = PFS_EXIT_BAD_LOGS;
	}
out:
	pfs_report_unload(&rep, &run, sym);
	return status;
}

static char *join_args(char **v, int n)
{
	size_t len = 1;
	char *s, *p;

	for (int i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	p = s;
	*p = '\0';
	for (int i = 0; i < n; i++)
		p += sprintf(p, "%s%s", i ? " " : "", v[i]);
	return s;
}

/* The options of report and diff (diff's table has only --format, --top, --output, --help). */
struct out_args {
	const char *format, *output;
	unsigned top, depth;
	bool top_given, depth_given;
	struct pfs_report_filter filter;
	uint64_t pids[64];
};

/* "2s", "150ms", "1.5", "20us", "300ns", "1min": a time (seconds without a unit) in ns; -1 if not. */
static int parse_time(const char *s, uint64_t *ns)
{
	static const struct {
		const char *unit;
		double ns;
	} units[] = {{"", 1e9}, {"s", 1e9}, {"ms", 1e6}, {"us", 1e3}, {"ns", 1}, {"min", 60e9}};
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || !(v >= 0) || *s == '-' || *s == '+')
		return -1;
	for (size_t i = 0; i < PFS_AN_ARRAY_SIZE(units); i++)
		if (!strcmp(end, units[i].unit) && v * units[i].ns < 1.8e19) {
			*ns = (uint64_t)(v * units[i].ns + 0.5);
			return 0;
		}
	return -1;
}

/* "123,456": more pids for the filter; -1 if not such a list. */
static int parse_pids(const char *s, struct out_args *a)
{
	const char *p = s;

	do {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(p, &end, 10);
		if (end == p || errno || *p == '-' || *p == '+' || (*end && *end != ',') ||
		    a->filter.npids >= PFS_AN_ARRAY_SIZE(a->pids))
			return -1;
		a->pids[a->filter.npids++] = v;
		p = *end ? end + 1 : end;
	} while (*p);
	return p[-1] == ',' ? -1 : 0;
}

/* -1: go on (optind at the operands); else the exit status. */
static int parse_out_args(const struct cli_cmd *cmd, int argc, char **argv, struct out_args *a)
{
	struct option lo[MAX_OPTS + 1];
	char so[3 * MAX_OPTS + 3];
	struct pfs_report_filter *f = &a->filter;
	int c;

	memset(a, 0, sizeof(*a));
	a->format = "text";
	f->pids = a->pids;
	getopt_start(cmd->opts, false, lo, so);
	while ((c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			a->format = optarg;
			break;
		case 'n':
			if (parse_top(cmd->name, optarg, &a->top))
				return PFS_EXIT_USAGE;
			a->top_given = true;
			break;
		case 'd':
			a->depth_given = true;
			if (!strcmp(optarg, "all"))
				a->depth = 0;
			else if (parse_top(cmd->name, optarg, &a->depth) || !a->depth)
				return usage_error(cmd->name, "--depth is a number of frames from 1, or "
						   "'all', not '%s'", optarg);
			break;
		case 'p':
			if (parse_pids(optarg, a))
				return usage_error(cmd->name, "--pid needs process ids separated by commas, "
						   "not '%s'", optarg);
			break;
		case 'c':
			f->comm = optarg;
			break;
		case 's':
			f->site = optarg;
			break;
		case OPT_MODULE:
			f->module = optarg;
			break;
		case OPT_SINCE:
		case OPT_UNTIL:
			if (parse_time(optarg, c == OPT_SINCE ? &f->since_ns : &f->until_ns))
				return usage_error(cmd->name, "a time is a number with a unit (s, ms, us, ns, "
						   "min; seconds without), not '%s'", optarg);
			*(c == OPT_SINCE ? &f->since_set : &f->until_set) = true;
			break;
		case 'o':
			a->output = optarg;
			break;
		case 'R':
			if (pfs_label_add_runtime(optarg))
				return usage_error(cmd->name, "%s", strerror(ENOMEM));
			break;
		case 'h':
			usage_cmd(stdout, cmd);
			return PFS_EXIT_OK;
		default:
			return getopt_error(cmd->name, c, argv);
		}
	}
	if (f->since_set && f->until_set && f->until_ns < f->since_ns)
		return usage_error(cmd->name, "%s", "--until comes before --since");
	return -1;
}

static int cmd_report(const struct cli_cmd *cmd, int argc, char **argv)
{
	const struct report_format *fmt;
	struct pfs_report_opts opts = {0};
	struct pfs_launch_pager pager = {0};
	const struct pfs_report_filter *filter;
	struct out_args a;
	FILE *out = stdout;
	char *source;
	int status;

	status = parse_out_args(cmd, argc, argv, &a);
	if (status >= 0)
		return status;
	for (fmt = formats; fmt->name && strcmp(fmt->name, a.format); fmt++)
		;
	if (!fmt->name)
		return usage_error(cmd->name, "unknown format '%s' (text, json, folded, pprof, "
				   "perfetto, svg, html)", a.format);
	opts.top = a.top_given ? a.top : fmt->top;
	opts.depth = a.depth_given ? a.depth : fmt->depth;
	/* gzipped protobuf would only garble a terminal (gzip and curl refuse too) */
	if (fmt->binary && !a.output && isatty(STDOUT_FILENO))
		return usage_error(cmd->name, "%s output is binary: give -o FILE or redirect standard "
				   "output", fmt->name);
	if (optind >= argc)
		return usage_error(cmd->name, "%s", "no run directory or log file given");
	if (a.output && !(out = open_output(a.output, cmd->name)))
		return PFS_EXIT_BAD_LOGS;
	opts.color = !a.output && fmt->write == pfs_report_text && want_color(stdout);
	/* a text report to a terminal pages through $PAGER, as git does */
	if (!a.output && fmt->write == pfs_report_text)
		out = pfs_launch_pager(&pager);
	filter = a.filter.npids || a.filter.comm || a.filter.site || a.filter.module ||
		 a.filter.since_set || a.filter.until_set ? &a.filter : NULL;
	source = join_args(argv + optind, argc - optind);
	opts.source = source;
	status = report_paths(argv + optind, argc - optind, out, fmt->write, &opts, filter,
			      pager.pid > 0);
	free(source);
	if (pager.pid > 0)
		pfs_launch_pager_end(&pager);
	else if (a.output && fclose(out) != 0) {
		fprintf(stderr, "pfshim: report: cannot write '%s': %s\n", a.output, strerror(errno));
		status = PFS_EXIT_BAD_LOGS;
	}
	return status;
}

/* ---- record (launch.c) -------------------------------------------------- */

struct record_args {
	struct pfs_launch l;
	unsigned top;
	struct pfs_kev *kev;	/* the kernel's fault events of what the shim cannot trace */
	const char *kev_why;	/* why there are none */
};

/* The child is there, not yet exec'd: the kernel's fault events follow it from its exec. */
static void record_started(pid_t pid, const char *outdir, void *arg)
{
	struct record_args *a = arg;

	a->kev = pfs_kev_start(pid, outdir, &a->kev_why);
}

/* The run's logs read quietly: the untraced processes said, then the report. */
static void record_report(const struct record_args *a, const char *argv0, const char *outdir, int made)
{
	struct pfs_run run;
	char *dir = (char *)outdir;

	/* a quiet load: the report that follows says what is wrong with the logs */
	pfs_model_init(&run, NULL);
	pfs_model_load_path(&run, outdir);
	pfs_model_finish(&run);
	int kept = pfs_jitmap_keep(&run); /* before the report reads them */
	if (kept < 0)
		fprintf(stderr, "pfshim: record: a JIT's perf map not copied into %s: %s\n", outdir, strerror(-kept));
	if (run.nprocs) {
		struct pfs_report_opts opts = {.top = a->top, .depth = PFS_REPORT_DEPTH_TEXT,
					       .color = want_color(stderr), .source = outdir,
					       .policy = a->l.policy};

		/* the program's status is what record returns, bad logs or not */
		report_paths(&dir, 1, stderr, pfs_report_text, &opts, NULL, false);
	}
	/* not for --pid: what is watched is said by the report */
	if (argv0 && pfs_launch_untraced(&run, argv0, "record", stderr) && !a->kev && a->kev_why)
		fprintf(stderr, "pfshim: record: their faults are not counted: %s\n", a->kev_why);
	if (run.nprocs)
		fprintf(stderr, "pfshim: logs in %s\n", outdir);
	else if (made)	/* made for nothing: not left behind */
		pfs_launch_unmake(outdir, made);
	pfs_model_free(&run);
}

static volatile sig_atomic_t attach_stop;

static void attach_stop_sig(int sig)
{
	(void)sig;
	attach_stop = 1;
}

/* The process is still there (a zombie is not): /proc/PID/stat's state. */
static bool attach_alive(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	const char *paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

/* record --pid: the kernel's fault events of a running process for a while (kevents.c), then the report. */
static int record_attach(struct record_args *a, pid_t pid, uint64_t for_ns)
{
	char name[32], *dir;
	const char *why = NULL;
	int rc;

	snprintf(name, sizeof(name), "pfshim.%d", (int)pid);
	rc = pfs_launch_outdir(a->l.outdir ? a->l.outdir : name, a->l.force, "record");
	if (rc)
		return rc;
	if (!(dir = realpath(a->l.outdir ? a->l.outdir : name, NULL))) {
		fprintf(stderr, "pfshim: record: %s\n", strerror(errno));
		return PFS_EXIT_CANNOT_RUN;
	}
	struct pfs_kev *k = pfs_kev_attach(pid, dir, &why);
	if (!k) {
		fprintf(stderr, "pfshim: record: cannot watch pid %d: %s\n", (int)pid, why);
		free(dir);
		return PFS_EXIT_CANNOT_RUN;
	}
	struct sigaction stop = {.sa_handler = attach_stop_sig}, old_int, old_term;
	sigaction(SIGINT, &stop, &old_int);
	sigaction(SIGTERM, &stop, &old_term);
	struct timespec t0, now, nap = {0, 20 * 1000 * 1000};
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		uint64_t spent = (uint64_t)(now.tv_sec - t0.tv_sec) * 1000000000ull + (uint64_t)now.tv_nsec -
				 (uint64_t)t0.tv_nsec;
		if (attach_stop || !attach_alive(pid) || (for_ns && spent >= for_ns))
			break;
		nanosleep(&nap, NULL);
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	attach_stop = 0;
	if (pfs_kev_finish(k, dir, 0))
		record_report(a, NULL, dir, 0);
	else
		fprintf(stderr, "pfshim: record: pid %d took no page fault while watched\n", (int)pid);
	free(dir);
	return PFS_EXIT_OK;
}

static int cmd_record(const struct cli_cmd *cmd, int argc, char **argv)
{
	long attach_pid = 0;
	uint64_t for_ns = 0;
	struct option lo[MAX_OPTS + 1];
	char so[3 * MAX_OPTS + 3], lib[PATH_MAX];
	struct record_args a = {.l = {.who = "record", .like_system = true}, .top = 10};
	struct pfs_launch_result res;
	int c, rc;

	getopt_start(cmd->opts, true, lo, so);
	while ((c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		switch (c) {
		case 'o':
			a.l.outdir = optarg;
			break;
		case 'F':
			a.l.force = true;
			break;
		case 'm':
			if (strcmp(optarg, "fast") && strcmp(optarg, "exact") && strcmp(optarg, "off"))
				return usage_error(cmd->name, "--mode is fast, exact or off, not '%s'",
						   optarg);
			a.l.mode = optarg;
			break;
		case 'p':
			a.l.policy = optarg;
			break;
		case 'R':
			if (pfs_label_add_runtime(optarg))
				return usage_error(cmd->name, "%s", strerror(ENOMEM));
			break;
		case 'n':
			if (parse_top(cmd->name, optarg, &a.top))
				return PFS_EXIT_USAGE;
			break;
		case OPT_PID: {
			char *end;
			errno = 0;
			attach_pid = strtol(optarg, &end, 10);
			if (errno || *end || attach_pid <= 0 || attach_pid > INT32_MAX)
				return usage_error(cmd->name, "--pid takes a process id, not '%s'", optarg);
			break;
		}
		case OPT_FOR:
			if (parse_time(optarg, &for_ns) || !for_ns)
				return usage_error(cmd->name, "--for takes a time like 10s or 500ms, not '%s'",
						   optarg);
			break;
		case 'h':
			usage_cmd(stdout, cmd);
			return PFS_EXIT_OK;
		default:
			return getopt_error(cmd->name, c, argv);
		}
	}
	if (attach_pid) {
		if (optind < argc)
			return usage_error(cmd->name, "%s", "--pid watches a running process: no command with it");
		if (a.l.mode || a.l.policy)
			return usage_error(cmd->name, "%s", "--mode and --policy need the shim: not with --pid");
		return record_attach(&a, (pid_t)attach_pid, for_ns);
	}
	if (for_ns)
		return usage_error(cmd->name, "%s", "--for goes with --pid");
	if (optind >= argc)
		return usage_error(cmd->name, "%s", "no command to run");
	if (pfs_launch_find_lib(lib, sizeof(lib), cmd->name))
		return PFS_EXIT_CANNOT_RUN;
	a.l.lib = lib;
	a.l.argv = argv + optind;
	a.l.started = record_started;
	a.l.started_arg = &a;
	rc = pfs_launch_run(&a.l, &res);
	if (rc) {
		pfs_kev_finish(a.kev, NULL, 0);
		return rc;
	}
	pfs_kev_finish(a.kev, res.outdir, res.wst);
	record_report(&a, a.l.argv[0], res.outdir, res.made_dirs);
	free(res.outdir);
	return res.status;
}

/* ---- advise (advise.c, advise_run.c) ----------------------------------- */

static int cmd_advise(const struct cli_cmd *cmd, int argc, char **argv)
{
	struct option lo[MAX_OPTS + 1];
	char so[3 * MAX_OPTS + 3], lib[PATH_MAX];
	struct pfs_verify_opts v = {.runs = 3};
	bool verify = false, runs_given = false;
	unsigned runs = 3;
	int c;

	getopt_start(cmd->opts, true, lo, so);
	while ((c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "text") && strcmp(optarg, "json"))
				return usage_error(cmd->name, "unknown format '%s' (text, json)", optarg);
			v.json = !strcmp(optarg, "json");
			break;
		case 'v':
			verify = true;
			break;
		case 'n':
			if (parse_top(cmd->name, optarg, &runs))
				return PFS_EXIT_USAGE;
			if (runs < 1 || runs > 100)
				return usage_error(cmd->name, "--runs is 1 to 100, not '%s'", optarg);
			v.runs = runs;
			runs_given = true;
			break;
		case 'p':
			v.policy = optarg;
			break;
		case 'o':
			v.keep = optarg;
			break;
		case 'R':
			if (pfs_label_add_runtime(optarg))
				return usage_error(cmd->name, "%s", strerror(ENOMEM));
			break;
		case 'h':
			usage_cmd(stdout, cmd);
			return PFS_EXIT_OK;
		default:
			return getopt_error(cmd->name, c, argv);
		}
	}
	if (optind >= argc)
		return usage_error(cmd->name, "%s", verify ? "no command to run" : "no run directory given");
	if (!verify) {
		if (v.policy || v.keep || runs_given)
			return usage_error(cmd->name, "%s", "--runs, --policy and --output go with --verify");
		if (argc - optind > 1)
			return usage_error(cmd->name, "one run directory, not '%s' too", argv[optind + 1]);
		return pfs_adv_dir(argv[optind], v.json, stdout);
	}
	if (pfs_launch_find_lib(lib, sizeof(lib), cmd->name))
		return PFS_EXIT_CANNOT_RUN;
	v.lib = lib;
	v.cmd = argv + optind;
	return pfs_adv_verify(&v, stdout);
}

/* ---- diff ---------------------------------------------------------------- */

static int cmd_diff(const struct cli_cmd *cmd, int argc, char **argv)
{
	struct pfs_diff_opts opts = {0};
	struct out_args a;
	const char *output;
	FILE *out = stdout;
	int status;

	status = parse_out_args(cmd, argc, argv, &a);
	if (status >= 0)
		return status;
	if (strcmp(a.format, "text") && strcmp(a.format, "json"))
		return usage_error(cmd->name, "unknown format '%s' (text, json)", a.format);
	if (argc - optind != 2)
		return usage_error(cmd->name, "%s", "two runs needed: DIR_A DIR_B");
	opts.json = !strcmp(a.format, "json");
	opts.top = a.top_given || opts.json ? a.top : 10;
	output = a.output;
	if (output && !(out = open_output(output, cmd->name)))
		return PFS_EXIT_BAD_LOGS;
	opts.color = !output && !opts.json && want_color(stdout);
	status = pfs_diff_paths(argv[optind], argv[optind + 1], out, &opts);
	if (output && fclose(out) != 0) {
		fprintf(stderr, "pfshim: diff: cannot write '%s': %s\n", output, strerror(errno));
		status = PFS_EXIT_BAD_LOGS;
	}
	return status;
}

/* ---- help ---------------------------------------------------------------- */

static int cmd_help(const struct cli_cmd *cmd, int argc, char **argv)
{
	const struct cli_cmd *c;

	(void)cmd;
	if (argc < 2) {
		usage(stdout);
		return PFS_EXIT_OK;
	}
	c = find_cmd(argv[1]);
	if (!c)
		return usage_error(NULL, "unknown command '%s'", argv[1]);
	usage_cmd(stdout, c);
	return PFS_EXIT_OK;
}

int pfs_cli_main(int argc, char **argv)
{
	const struct cli_cmd *c;

	if (argc < 2) {
		usage(stderr);
		return PFS_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return PFS_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("pfshim %s (log format %d)\n", PFS_VERSION_STRING, PFS_LOG_VERSION);
		return PFS_EXIT_OK;
	}
	if (argv[1][0] == '-')
		return usage_error(NULL, "unknown option '%s'", argv[1]);
	c = find_cmd(argv[1]);
	if (!c)
		return usage_error(NULL, "unknown command '%s'", argv[1]);
	return c->run(c, argc - 1, argv + 1);
}
