/*
 * Perf maps: the names of code a JIT compiled (jitmap.h).
 */
#include "jitmap.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uthash.h>

#include "an_common.h"
#include "pfshim/log_format.h"

/* The clocks' offset may drift and a runtime may write its map at exit: this much slack at each end. */
#define SLACK_NS 5000000000ll

struct jit_code {
	uint64_t start, end;
	size_t order;	/* the line's: code written later at the same place is the newer */
	char *name;
};

struct jit_map {
	char *key;			/* the process's log and start: a run read later may reuse its memory */
	struct jit_code *code;		/* by start */
	size_t n;
	char *names;			/* every name, NUL-terminated, one block */
	UT_hash_handle hh;
};

static struct jit_map *maps;

static int cmp_code(const void *a, const void *b)
{
	const struct jit_code *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* "START SIZE NAME" lines (hexadecimal, 0x optional); lines that are not are skipped. */
static int map_read(struct jit_map *m, FILE *f)
{
	size_t cap = 0, names_len = 0, names_cap = 0;
	char *line = NULL;
	size_t line_cap = 0;
	ssize_t len;
	int rc = 0;

	while ((len = getline(&line, &line_cap, f)) > 0) {
		char *p = line, *e;
		uint64_t start, size;

		if (line[len - 1] == '\n')
			line[--len] = 0;
		start = strtoull(p, &e, 16);
		if (e == p || *e != ' ')
			continue;
		p = e + 1;
		size = strtoull(p, &e, 16);
		if (e == p || *e != ' ' || !size || start + size < start)
			continue;
		p = e + 1;
		size_t nl = strlen(p) + 1;
		if (pfs_an_reserve((void **)&m->code, &cap, m->n + 1, sizeof(*m->code)) ||
		    pfs_an_reserve((void **)&m->names, &names_cap, names_len + nl, 1)) {
			rc = -ENOMEM;
			break;
		}
		memcpy(m->names + names_len, p, nl);
		m->code[m->n] = (struct jit_code){.start = start, .end = start + size, .order = m->n,
						  .name = (char *)(uintptr_t)names_len};
		m->n++;
		names_len += nl;
	}
	free(line);
	for (size_t i = 0; i < m->n; i++) /* the block is where it ends up now */
		m->code[i].name = m->names + (uintptr_t)m->code[i].name;
	qsort(m->code, m->n, sizeof(*m->code), cmp_code);
	return rc;
}

/* The process's life in CLOCK_REALTIME, with slack; no end when it has none. */
static bool written_in_life(const struct pfs_proc *p, const struct stat *st)
{
	int64_t mtime = (int64_t)st->st_mtim.tv_sec * 1000000000ll + st->st_mtim.tv_nsec;
	int64_t start = (int64_t)p->start_ns + p->real_offset_ns - SLACK_NS;

	if (mtime < start)
		return false;
	return !p->end_ns || mtime <= (int64_t)p->end_ns + p->real_offset_ns + SLACK_NS;
}

/* The map /tmp holds for process p, written during its life (a file, not a link another user may have left): 0, or -ENOENT. */
static int tmp_path(const struct pfs_proc *p, char *path, size_t len)
{
	struct stat st;

	snprintf(path, len, "/tmp/perf-%" PRIu64 ".map", p->pid);
	if (lstat(path, &st) || !S_ISREG(st.st_mode) || !written_in_life(p, &st))
		return -ENOENT;
	return 0;
}

/* The kept map's path: the log's with ".perf.map" for its suffix.  0, or -ENAMETOOLONG. */
static int kept_path(const struct pfs_proc *p, char *path, size_t len)
{
	size_t n = strlen(p->log_path);
	const char *suffix = PFS_LOG_FILE_SUFFIX;

	if (n > strlen(suffix) && !strcmp(p->log_path + n - strlen(suffix), suffix))
		n -= strlen(suffix);
	if (n + sizeof(".perf.map") > len)
		return -ENAMETOOLONG;
	memcpy(path, p->log_path, n);
	memcpy(path + n, ".perf.map", sizeof(".perf.map"));
	return 0;
}

static FILE *open_kept(const struct pfs_proc *p)
{
	char path[PATH_MAX];

	return kept_path(p, path, sizeof(path)) ? NULL : fopen(path, "re");
}

/* src to a new file dst (mode 0600): 0 or -errno; no dst left on failure. */
static int copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), out, rc = 0;
	char buf[65536];
	ssize_t n;

	if (in < 0)
		return -errno;
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	while (!rc && (n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			rc = errno == EINTR ? 0 : -errno;
			continue;
		}
		for (ssize_t off = 0; !rc && off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0)
				rc = errno == EINTR ? 0 : -errno;
			else
				off += w;
		}
	}
	if (close(out) && !rc)
		rc = -errno;
	close(in);
	if (rc)
		unlink(dst);
	return rc;
}

int pfs_jitmap_keep(const struct pfs_run *run)
{
	int copied = 0;

	for (size_t i = 0; i < run->nprocs; i++) {
		const struct pfs_proc *p = run->procs[i];
		char src[64], dst[PATH_MAX];
		int rc;

		if (tmp_path(p, src, sizeof(src)) || kept_path(p, dst, sizeof(dst)) || !access(dst, F_OK))
			continue;
		rc = copy_file(src, dst);
		if (rc)
			return rc;
		copied++;
	}
	return copied;
}

static void map_free(struct jit_map *m)
{
	free(m->key);
	free(m->code);
	free(m->names);
	free(m);
}

static struct jit_map *map_of(const struct pfs_proc *p)
{
	struct jit_map *m;
	char path[64], *key;
	FILE *f;

	if (asprintf(&key, "%s|%" PRIu64, p->log_path, p->start_ns) < 0)
		return NULL;
	HASH_FIND_STR(maps, key, m);
	if (m) {
		free(key);
		return m;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		free(key);
		return NULL;
	}
	m->key = key;
	f = open_kept(p);
	if (!f && !tmp_path(p, path, sizeof(path)))
		f = fopen(path, "re");
	if (f) {
		int rc = map_read(m, f);

		fclose(f);
		if (rc) {
			map_free(m);
			return NULL;
		}
	}
	HASH_ADD_KEYPTR(hh, maps, m->key, strlen(m->key), m);
	return m;
}

/* How far back from the last code starting at or below an address a holder is looked for (code moved, overlaps). */
#define LOOK_BACK 64

const char *pfs_jitmap_name(const struct pfs_proc *p, uint64_t addr)
{
	struct jit_map *m = map_of(p);
	size_t lo = 0, hi;
	const struct jit_code *best = NULL;

	if (!m || !m->n)
		return NULL;
	hi = m->n;
	while (lo < hi) { /* the first code starting above addr */
		size_t mid = lo + (hi - lo) / 2;

		if (m->code[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo, k = 0; i > 0 && k < LOOK_BACK; i--, k++) {
		const struct jit_code *c = &m->code[i - 1];

		if (addr < c->end && (!best || c->order > best->order))
			best = c;
	}
	return best ? best->name : NULL;
}

void pfs_jitmap_reset(void)
{
	struct jit_map *m, *tmp;

	HASH_ITER(hh, maps, m, tmp) {
		HASH_DEL(maps, m);
		map_free(m);
	}
}
