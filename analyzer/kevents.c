/*
 * The kernel's fault events of a run, watched from outside (kevents.h).
 *
 * Each process image (a pid from its fork or exec to its exit or next exec)
 * keeps what the events said: its mappings, the pages it faulted, its fault
 * events.  A fault is a first touch the first time its page faults, and
 * again after the page was given back; a fault on a page present at a fork
 * (the process faulted it before the fork, and so did its parent for the
 * child) is copy-on-write, once.  Which mapping a fault is in gives its
 * category: file text and read-only data are not counted (the shim does not
 * count them either); a file's private writable mapping, and the anonymous
 * one right after it (its .bss), are [data of FILE]; [stack]; anonymous
 * mappings with MAP_STACK are [thread stack]; shared ones [shared]; other
 * anonymous memory (a static program's brk heap, Go's arenas) [mapped
 * without libc].  A fault outside every mapping seen (the stack and vdso
 * mapped by exec before the events were enabled) is [stack] above every
 * mapping, else [mapped without libc].
 */
#include "kevents.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <uthash.h>

#include "an_common.h"
#include "logdir.h"
#include "../preload/pevent_ring.h"
#include "pfshim/log_format.h"

/* A mapping of an image; kind 0: not counted (file text, read-only data, the vdso). */
struct kmap {
	uint64_t start, end, seq;
	uint32_t stack;		/* DATA: its module's STACK id */
	uint8_t kind;
};

/* An ALLOC (is_free 0) or FREE record to write, in time order. */
struct kop {
	uint64_t time, addr, len, seq;
	uint32_t stack;
	uint8_t kind, is_free, inherited;
};

/* A file mapped by the image: a MODULE record, and a STACK naming it for [data of FILE]. */
struct kmod {
	uint64_t start, end, base, seq;
	char *path;
};

struct kfault {
	uint64_t page, time, ip;
	uint32_t tid;
	uint8_t flags;		/* PFS_FEV_* */
};

/* Pages faulted: page << 1 | present-at-a-fork, 0 for a free slot (open addressing). */
struct pageset {
	uint64_t *slot;
	size_t cap, n;
};

struct kimage {
	UT_hash_handle hh;	/* the current image of its pid, keyed by pid */
	struct kimage *next;	/* every image, newest first */
	uint32_t pid, ppid, gen;
	uint64_t start_ns, end_ns;
	bool ended, by_exec, forked, has_exe;
	char exe[PATH_MAX];
	char comm[PFS_PEV_NAME_MAX];
	struct kmap *maps;	/* sorted by start, disjoint */
	size_t nmaps, capmaps;
	struct kop *ops;
	size_t nops, capops;
	struct kmod *mods;
	size_t nmods, capmods;
	struct kfault *ev;
	size_t nev, capev;
	struct pageset pages;
	uint64_t seq, samples, first, cow;
	uint64_t samples_before;	/* of this pid's earlier images since its fork (getrusage's count goes on across exec) */
	bool oom;		/* memory ran out: its log is not written */
	bool shim_traced;	/* the shim wrote a log of it: its events are not kept */
	struct kimage *parent;	/* the image that forked it */
	size_t next_check;	/* its events count when that is looked for again */
};

#define KEV_SETS_MAX 256 /* threads of an attached process followed */

struct pfs_kev {
	struct pfs_pev_set *sets[KEV_SETS_MAX]; /* one for a started child; one per thread when attached */
	unsigned nsets;
	bool attached;		/* the root is not our child: its status is not ours to see */
	pthread_t reader;
	bool reading;
	volatile int stop;
	pthread_mutex_t lock;	/* the rings and the images */
	struct kimage *cur;	/* by pid */
	struct kimage *all;
	uint32_t root_pid;
	uint64_t page_size;
	int page_shift;
	char outdir[PATH_MAX];
};

static bool traced_now(const struct pfs_kev *k, const struct kimage *img);
static uint64_t clock_ns(clockid_t c);

/* ---- pages ---------------------------------------------------------------- */

static size_t slot_of(const struct pageset *s, uint64_t page)
{
	return (size_t)((page * 0x9E3779B97F4A7C15ull) >> 20) & (s->cap - 1);
}

static int pageset_grow(struct pageset *s)
{
	struct pageset g = {.cap = s->cap ? s->cap * 2 : 1024};
	if (!(g.slot = calloc(g.cap, sizeof(*g.slot))))
		return -1;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slot[i]) {
			size_t j = slot_of(&g, s->slot[i] >> 1);
			while (g.slot[j])
				j = (j + 1) & (g.cap - 1);
			g.slot[j] = s->slot[i];
		}
	g.n = s->n;
	free(s->slot);
	*s = g;
	return 0;
}

/* The slot of page, added (not present at a fork) when new: *fresh says so.  NULL without memory. */
static uint64_t *pageset_get(struct pageset *s, uint64_t page, bool *fresh)
{
	if ((s->n + 1) * 2 > s->cap && pageset_grow(s))
		return NULL;
	size_t j = slot_of(s, page);
	while (s->slot[j] && s->slot[j] >> 1 != page)
		j = (j + 1) & (s->cap - 1);
	*fresh = !s->slot[j];
	if (*fresh) {
		s->slot[j] = page << 1;
		s->n++;
	}
	return &s->slot[j];
}

/* Every page present now is present at a fork. */
static void pageset_fork(struct pageset *s)
{
	for (size_t i = 0; i < s->cap; i++)
		if (s->slot[i])
			s->slot[i] |= 1;
}

/* ---- images --------------------------------------------------------------- */

static struct kimage *image_new(struct pfs_kev *k, uint32_t pid, uint64_t time)
{
	struct kimage *img = calloc(1, sizeof(*img));
	if (!img)
		return NULL;
	img->pid = pid;
	img->ppid = pid == k->root_pid ? (uint32_t)getpid() : 0;
	img->start_ns = time;
	img->seq = 1;
	img->next = k->all;
	k->all = img;
	HASH_ADD(hh, k->cur, pid, sizeof(img->pid), img);
	return img;
}

static void image_end(struct pfs_kev *k, struct kimage *img, uint64_t time, bool by_exec)
{
	img->ended = true;
	img->by_exec = by_exec;
	img->end_ns = time;
	HASH_DELETE(hh, k->cur, img);
}

static struct kimage *image_of(struct pfs_kev *k, uint32_t pid, uint64_t time)
{
	struct kimage *img;
	HASH_FIND(hh, k->cur, &pid, sizeof(pid), img);
	return img ? img : image_new(k, pid, time);
}

static void add_op(struct kimage *img, uint64_t time, const struct kmap *m, bool is_free, bool inherited)
{
	if (!m->kind)
		return;
	if (pfs_an_reserve((void **)&img->ops, &img->capops, img->nops + 1, sizeof(*img->ops))) {
		img->oom = true;
		return;
	}
	img->ops[img->nops++] = (struct kop){.time = time, .addr = m->start, .len = m->end - m->start,
					     .seq = is_free ? img->seq++ : m->seq, .stack = m->stack,
					     .kind = m->kind, .is_free = is_free, .inherited = inherited};
}

/* The mapping holding addr, or NULL (binary search). */
static struct kmap *map_find(struct kimage *img, uint64_t addr)
{
	size_t lo = 0, hi = img->nmaps;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (addr < img->maps[mid].start)
			hi = mid;
		else if (addr >= img->maps[mid].end)
			lo = mid + 1;
		else
			return &img->maps[mid];
	}
	return NULL;
}

/* Inserts m, replacing what it overlaps (FREE of the old, ALLOC of the pieces that stay, then of m). */
static void map_insert(struct kimage *img, uint64_t time, struct kmap m)
{
	size_t i = 0;
	while (i < img->nmaps && img->maps[i].end <= m.start)
		i++;
	while (i < img->nmaps && img->maps[i].start < m.end) {
		struct kmap old = img->maps[i];
		add_op(img, time, &old, true, false);
		memmove(&img->maps[i], &img->maps[i + 1], (img->nmaps - i - 1) * sizeof(*img->maps));
		img->nmaps--;
		struct kmap lo = old, hi = old;
		lo.end = m.start;
		hi.start = m.end;
		if (old.start < m.start) {
			map_insert(img, time, lo);
			i++;
		}
		if (old.end > m.end) {
			map_insert(img, time, hi);
			break;
		}
	}
	if (pfs_an_reserve((void **)&img->maps, &img->capmaps, img->nmaps + 1, sizeof(*img->maps))) {
		img->oom = true;
		return;
	}
	i = 0;
	while (i < img->nmaps && img->maps[i].start < m.start)
		i++;
	memmove(&img->maps[i + 1], &img->maps[i], (img->nmaps - i) * sizeof(*img->maps));
	m.seq = img->seq++; /* after the FREEs of what it replaced */
	img->maps[i] = m;
	img->nmaps++;
	add_op(img, time, &m, false, false);
}

/* The module of a file path (one per path), made on first sight; its index, or -1. */
static int module_of(struct kimage *img, const char *path, uint64_t start, uint64_t end, uint64_t pgoff)
{
	for (size_t i = 0; i < img->nmods; i++)
		if (!strcmp(img->mods[i].path, path)) {
			struct kmod *d = &img->mods[i];
			if (start < d->start)
				d->start = start;
			if (end > d->end)
				d->end = end;
			return (int)i;
		}
	if (pfs_an_reserve((void **)&img->mods, &img->capmods, img->nmods + 1, sizeof(*img->mods)))
		return -1;
	char *p = strdup(path);
	if (!p)
		return -1;
	img->mods[img->nmods] = (struct kmod){.start = start, .end = end, .base = start - pgoff,
					      .seq = img->seq++, .path = p};
	return (int)img->nmods++;
}

static void on_mmap(struct pfs_kev *k, const struct pfs_pev_sample *sm)
{
	struct kimage *img = image_of(k, sm->pid, sm->time_ns);
	if (!img || !sm->len)
		return;
	const char *name = sm->name ? sm->name : "";
	struct kmap m = {.start = sm->addr, .end = sm->addr + sm->len};
	bool file = name[0] == '/' && name[1] != '/' /* "//anon" */ && strncmp(name, "/dev/zero", 9) && strncmp(name, "/memfd:", 7) &&
		    strncmp(name, "/SYSV", 5);
	if (file && (sm->prot & PROT_EXEC) && !img->has_exe) {
		snprintf(img->exe, sizeof(img->exe), "%s", name);
		img->has_exe = true;
	}
	if (sm->flags & MAP_SHARED) {
		m.kind = file ? 0 : PFS_KIND_SHARED;
	} else if (file) {
		int mod = module_of(img, name, m.start, m.end, sm->pgoff);
		if (mod >= 0 && (sm->prot & PROT_WRITE)) {
			m.kind = PFS_KIND_DATA;
			m.stack = (uint32_t)mod + 1;
		}
	} else if (!strcmp(name, "[stack]")) {
		m.kind = PFS_KIND_STACK;
	} else if (name[0] == '[' && strcmp(name, "[heap]")) {
		m.kind = 0; /* [vdso], [vvar]: the kernel's */
	} else if (sm->flags & MAP_STACK) {
		m.kind = PFS_KIND_THREAD_STACK;
	} else {
		struct kmap *before = m.start ? map_find(img, m.start - 1) : NULL;
		if (before && before->kind == PFS_KIND_DATA) { /* a file's .bss, right after its .data */
			m.kind = PFS_KIND_DATA;
			m.stack = before->stack;
		} else {
			m.kind = PFS_KIND_UNHOOKED;
		}
	}
	map_insert(img, sm->time_ns, m);
}

static void copy_image(struct kimage *to, const struct kimage *from, uint64_t time)
{
	bool ok = !pfs_an_reserve((void **)&to->maps, &to->capmaps, from->nmaps, sizeof(*to->maps)) &&
		  !pfs_an_reserve((void **)&to->mods, &to->capmods, from->nmods, sizeof(*to->mods));
	struct pageset ps = {.cap = from->pages.cap, .n = from->pages.n};
	if (ps.cap && (ps.slot = malloc(ps.cap * sizeof(*ps.slot))))
		memcpy(ps.slot, from->pages.slot, ps.cap * sizeof(*ps.slot));
	if (!ok || (ps.cap && !ps.slot)) {
		free(ps.slot);
		to->oom = true;
		return;
	}
	to->pages = ps;
	pageset_fork(&to->pages);
	to->seq = from->seq;
	for (size_t i = 0; i < from->nmods; i++) {
		to->mods[i] = from->mods[i];
		to->mods[i].path = strdup(from->mods[i].path);
		to->oom |= !to->mods[i].path;
	}
	to->nmods = from->nmods;
	memcpy(to->maps, from->maps, from->nmaps * sizeof(*to->maps));
	to->nmaps = from->nmaps;
	for (size_t i = 0; i < to->nmaps; i++)
		add_op(to, time, &to->maps[i], false, true);
	memcpy(to->exe, from->exe, sizeof(to->exe));
	to->has_exe = from->has_exe;
	memcpy(to->comm, from->comm, sizeof(to->comm));
}

static void on_fork(struct pfs_kev *k, const struct pfs_pev_sample *sm)
{
	struct kimage *parent = image_of(k, sm->ppid, sm->time_ns), *old;
	HASH_FIND(hh, k->cur, &sm->pid, sizeof(sm->pid), old);
	if (old)
		image_end(k, old, sm->time_ns, false); /* its exit was not seen: a pid used again */
	struct kimage *child = image_new(k, sm->pid, sm->time_ns);
	if (!parent || !child)
		return;
	child->ppid = sm->ppid;
	child->forked = true;
	child->parent = parent;
	copy_image(child, parent, sm->time_ns);
	pageset_fork(&parent->pages);
}

static void on_exec(struct pfs_kev *k, const struct pfs_pev_sample *sm)
{
	struct kimage *old;
	HASH_FIND(hh, k->cur, &sm->pid, sizeof(sm->pid), old);
	uint32_t ppid = old ? old->ppid : 0, gen = old ? old->gen + 1 : 0;
	if (old)
		image_end(k, old, sm->time_ns, true);
	struct kimage *img = image_new(k, sm->pid, sm->time_ns);
	if (!img)
		return;
	img->ppid = ppid;
	img->gen = gen;
	img->samples_before = old ? old->samples_before + old->samples : 0;
	snprintf(img->comm, sizeof(img->comm), "%s", sm->name ? sm->name : "");
}

static void on_exit_ev(struct pfs_kev *k, const struct pfs_pev_sample *sm)
{
	struct kimage *img;
	HASH_FIND(hh, k->cur, &sm->pid, sizeof(sm->pid), img);
	if (img)
		image_end(k, img, sm->time_ns, false);
}

/* The shim's own log of img is there: its events are the shim's to count, not kept here. */
static void drop_events(struct kimage *img)
{
	img->shim_traced = true;
	free(img->ev);
	img->ev = NULL;
	img->nev = img->capev = 0;
}

static void on_fault(struct pfs_kev *k, const struct pfs_pev_sample *sm)
{
	struct kimage *img = image_of(k, sm->pid, sm->time_ns);
	if (!img)
		return;
	img->samples++;
	if (img->shim_traced)
		return;
	if (img->nev >= img->next_check) { /* looked for at 256, 1024, 4096 ... events: a bounded cost */
		img->next_check = img->next_check ? img->next_check * 4 : 256;
		if (img->nev && traced_now(k, img)) {
			drop_events(img);
			return;
		}
	}
	uint64_t page = sm->addr >> k->page_shift;
	struct kmap *m = map_find(img, sm->addr);
	if (!m) {
		/* Mapped before the events began (exec's stack, the vdso): a page of its own. */
		uint64_t top = img->nmaps ? img->maps[img->nmaps - 1].end : 0;
		struct kmap pm = {.start = page << k->page_shift, .end = (page + 1) << k->page_shift, .kind = sm->addr >= top ? PFS_KIND_STACK : PFS_KIND_UNHOOKED};
		map_insert(img, img->start_ns, pm); /* there since the image began */
		m = map_find(img, sm->addr);
		if (!m)
			return;
	}
	if (!m->kind)
		return;
	bool fresh;
	uint64_t *slot = pageset_get(&img->pages, page, &fresh);
	if (!slot || pfs_an_reserve((void **)&img->ev, &img->capev, img->nev + 1, sizeof(*img->ev))) {
		img->oom = true;
		return;
	}
	uint8_t flags = PFS_FEV_SITE;
	if (!fresh && (*slot & 1)) {
		*slot &= ~1ull;
		flags |= PFS_FEV_COW | PFS_FEV_WRITE;
		img->cow++;
	} else {
		img->first++;
	}
	img->ev[img->nev++] = (struct kfault){.page = page, .time = sm->time_ns, .ip = sm->ip, .tid = sm->tid,
					      .flags = flags};
}

static void on_record(const struct pfs_pev_sample *sm, void *arg)
{
	struct pfs_kev *k = arg;
	switch (sm->kind) {
	case PFS_PEV_FAULT:
		on_fault(k, sm);
		break;
	case PFS_PEV_MMAP:
		on_mmap(k, sm);
		break;
	case PFS_PEV_FORK:
		on_fork(k, sm);
		break;
	case PFS_PEV_EXEC:
		on_exec(k, sm);
		break;
	case PFS_PEV_EXIT:
		on_exit_ev(k, sm);
		break;
	}
}

/* ---- reading while the run goes on ------------------------------------------ */

static void *reader(void *arg)
{
	struct pfs_kev *k = arg;
	struct timespec nap = {0, 5 * 1000 * 1000};
	while (!k->stop) {
		pthread_mutex_lock(&k->lock);
		for (unsigned i = 0; i < k->nsets; i++)
			pfs_pev_drain(k->sets[i], on_record, k);
		pthread_mutex_unlock(&k->lock);
		nanosleep(&nap, NULL);
	}
	return NULL;
}

static struct pfs_kev *kev_new(pid_t pid, const char *outdir, const char **why)
{
	struct pfs_kev *k = calloc(1, sizeof(*k));
	if (!k) {
		*why = strerror(ENOMEM);
		return NULL;
	}
	snprintf(k->outdir, sizeof(k->outdir), "%s", outdir ? outdir : "");
	long ps = sysconf(_SC_PAGESIZE);
	k->page_size = ps > 0 ? (uint64_t)ps : 4096;
	while ((1ull << k->page_shift) < k->page_size)
		k->page_shift++;
	k->root_pid = (uint32_t)pid;
	pthread_mutex_init(&k->lock, NULL);
	return k;
}

/* Opens the events on task `tid` into a new set: 0, or -errno with *why (the reason, the paranoid level). */
static int open_set(struct pfs_kev *k, pid_t tid, bool on_exec, unsigned pages, const char **why)
{
	struct pfs_pev_opts o = {
		.pid = tid, .type = PERF_TYPE_SOFTWARE, .config = PERF_COUNT_SW_PAGE_FAULTS_MIN, .ip = 1,
		.inherit_children = 1, .task_events = 1, .enable_on_exec = on_exec, .data_pages = pages, .min_pages = 8,
	};
	struct pfs_pev_set *s = k->nsets < KEV_SETS_MAX ? calloc(1, sizeof(*s)) : NULL;
	if (!s) {
		*why = k->nsets < KEV_SETS_MAX ? strerror(ENOMEM) : "too many threads to follow";
		return -ENOMEM;
	}
	int err = pfs_pev_open(s, &o, why);
	if (err) {
		static char buf[200];
		snprintf(buf, sizeof(buf), "%s: %s (kernel.perf_event_paranoid %d)", *why, strerror(-err),
			 pfs_pev_paranoid());
		*why = buf;
		free(s);
		return err;
	}
	k->sets[k->nsets++] = s;
	return 0;
}

static void kev_free(struct pfs_kev *k)
{
	for (unsigned i = 0; i < k->nsets; i++) {
		pfs_pev_close(k->sets[i]);
		free(k->sets[i]);
	}
	pthread_mutex_destroy(&k->lock);
	free(k);
}

struct pfs_kev *pfs_kev_start(pid_t pid, const char *outdir, const char **why)
{
	struct pfs_kev *k = kev_new(pid, outdir, why);
	if (!k)
		return NULL;
	if (open_set(k, pid, true, 1024, why)) {
		kev_free(k);
		return NULL;
	}
	k->reading = !pthread_create(&k->reader, NULL, reader, k);
	return k;
}

/* The mappings of a running process as MMAP records (/proc/PID/maps), before its events are read. */
static void known_mappings(struct pfs_kev *k, pid_t pid, uint64_t now)
{
	char path[64], line[PATH_MAX + 128];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi, off;
		char perms[8] = "", name[PATH_MAX] = "";
		int n = sscanf(line, "%llx-%llx %7s %llx %*s %*s %4095[^\n]", &lo, &hi, perms, &off, name);
		if (n < 4)
			continue;
		struct pfs_pev_sample sm = {.kind = PFS_PEV_MMAP, .pid = (uint32_t)pid, .tid = (uint32_t)pid,
					    .time_ns = now, .addr = lo, .len = hi - lo, .pgoff = off,
					    .name = name[0] ? name : "//anon"};
		sm.prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
			  (perms[2] == 'x' ? PROT_EXEC : 0);
		sm.flags = perms[3] == 's' ? MAP_SHARED : MAP_PRIVATE;
		on_mmap(k, &sm);
	}
	fclose(f);
}

struct pfs_kev *pfs_kev_attach(pid_t pid, const char *outdir, const char **why)
{
	struct pfs_kev *k = kev_new(pid, outdir, why);
	if (!k)
		return NULL;
	k->attached = true;
	/* Each thread there now (the threads and children they start later follow by inheritance). */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *d = opendir(path);
	if (!d) {
		*why = "no such process";
		kev_free(k);
		return NULL;
	}
	struct dirent *e;
	int err = 0;
	while (!err && (e = readdir(d)))
		if (e->d_name[0] != '.')
			err = open_set(k, (pid_t)atoi(e->d_name), false, 256, why);
	closedir(d);
	if (err) {
		kev_free(k);
		return NULL;
	}
	uint64_t now = clock_ns(CLOCK_MONOTONIC);
	struct kimage *img = image_new(k, (uint32_t)pid, now);
	if (img) {
		char exe[64];
		snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
		ssize_t n = readlink(exe, img->exe, sizeof(img->exe) - 1);
		img->has_exe = n > 0;
		img->exe[n > 0 ? n : 0] = 0;
		img->ppid = 0;
	}
	known_mappings(k, pid, now);
	k->reading = !pthread_create(&k->reader, NULL, reader, k);
	return k;
}

/* ---- the logs ----------------------------------------------------------------- */

/* A log being written: one block in memory at a time (log_format.h's layout). */
struct lw {
	FILE *f;
	uint8_t blk[PFS_LOG_BLOCK_SIZE];
	size_t used;
	bool failed;
};

static void lw_flush(struct lw *w)
{
	memset(w->blk + w->used, 0, sizeof(w->blk) - w->used);
	if (fwrite(w->blk, sizeof(w->blk), 1, w->f) != 1)
		w->failed = true;
	w->used = 0;
}

/* A record: `rec` (its header filled here) of `fixed` bytes, then `tail` bytes, padded to 8. */
static void lw_rec(struct lw *w, void *rec, size_t fixed, uint16_t type, uint16_t flags, const void *tail,
		   size_t tail_len)
{
	size_t size = (fixed + tail_len + 7) & ~(size_t)7;
	if (size > sizeof(w->blk) - 64)
		return;
	if (w->used + size > sizeof(w->blk))
		lw_flush(w);
	struct pfs_rec_hdr *h = rec;
	h->type = type;
	h->flags = flags;
	h->size = (uint32_t)size;
	memcpy(w->blk + w->used, rec, fixed);
	if (tail_len)
		memcpy(w->blk + w->used + fixed, tail, tail_len);
	memset(w->blk + w->used + fixed + tail_len, 0, size - fixed - tail_len);
	w->used += size;
}

static uint64_t clock_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int by_time(const void *a, const void *b)
{
	const struct kfault *x = a, *y = b;
	return x->time < y->time ? -1 : x->time > y->time;
}

/* The image's fault events in time order (the rings of several threads are read one after another). */
static void write_faults(struct lw *w, struct kimage *img)
{
	qsort(img->ev, img->nev, sizeof(*img->ev), by_time);
	uint8_t buf[4096 + PFS_FEV_MAX_BYTES];
	for (size_t i = 0; i < img->nev;) {
		struct pfs_rec_faults r = {.time_ns = img->ev[i].time, .tid = img->ev[i].tid};
		struct pfs_fev_cursor c;
		uint32_t len = 0;
		pfs_fev_start(&c, r.time_ns, r.tid);
		for (; i < img->nev && len < 4096; i++, r.count++) {
			const struct kfault *f = &img->ev[i];
			struct pfs_fev ev = {.page = f->page, .time_ns = f->time, .pc = f->ip, .sys = -1,
					     .tid = f->tid, .flags = f->flags};
			len += pfs_fev_encode(buf + len, &c, &ev);
		}
		r.bytes = len;
		lw_rec(w, &r, sizeof(r), PFS_REC_FAULTS, 0, buf, len);
	}
}

static int write_log(struct pfs_kev *k, struct kimage *img, const char *outdir, int root_wst)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/pfshim.%" PRIu32 ".outside.%" PRIu32 PFS_LOG_FILE_SUFFIX, outdir, img->pid,
		 img->gen);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	struct lw *w = calloc(1, sizeof(*w));
	if (fd < 0 || !w || !(w->f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		free(w);
		return -1;
	}
	struct pfs_file_header fh = {.version = PFS_LOG_VERSION, .header_size = sizeof(fh),
				     .block_size = PFS_LOG_BLOCK_SIZE, .page_size = (uint32_t)k->page_size,
				     .pid = img->pid, .start_mono_ns = img->start_ns,
				     .flags = img->forked ? PFS_FILE_FORKED : img->gen ? PFS_FILE_EXECED : 0};
	memcpy(fh.magic, PFS_LOG_MAGIC, sizeof(fh.magic));
	fh.start_real_ns = img->start_ns + (clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC));
	memcpy(w->blk, &fh, sizeof(fh));
	w->used = sizeof(fh);

	/* PROC_START: the executable, and as command its path (the events carry no arguments). */
	const char *exe = img->has_exe ? img->exe : img->comm;
	size_t exe_len = strlen(exe);
	char tail[2 * PATH_MAX + 2];
	memcpy(tail, exe, exe_len);
	memcpy(tail + exe_len, exe, exe_len + 1);
	struct pfs_rec_proc_start ps = {.pid = img->pid, .ppid = img->ppid, .root_pid = k->root_pid,
					.start_mono_ns = img->start_ns, .mode = PFS_MODE_EXACT, .exec_gen = img->gen,
					.page_size = (uint32_t)k->page_size, .argc = 1, .exe_len = (uint32_t)exe_len,
					.cmd_len = (uint32_t)exe_len + 1};
	lw_rec(w, &ps, sizeof(ps), PFS_REC_PROC_START, PFS_PROC_FAULT_EVENTS | PFS_PROC_OUTSIDE, tail,
	       2 * exe_len + 1);
	for (size_t i = 0; i < img->nmods; i++) {
		const struct kmod *d = &img->mods[i];
		size_t plen = strlen(d->path);
		struct pfs_rec_module mr = {.seq = d->seq, .base = d->base, .start = d->start, .end = d->end,
					    .id = (uint32_t)i + 1, .path_len = (uint32_t)plen};
		lw_rec(w, &mr, sizeof(mr), PFS_REC_MODULE, 0, d->path, plen);
		/* The STACK that names [data of FILE]: one frame, inside the file's mapping. */
		uint64_t frame = d->start + 1;
		struct pfs_rec_stack sr = {.seq = d->seq, .id = (uint32_t)i + 1, .nframes = 1};
		lw_rec(w, &sr, sizeof(sr), PFS_REC_STACK, 0, &frame, sizeof(frame));
	}
	for (size_t i = 0; i < img->nops; i++) {
		const struct kop *o = &img->ops[i];
		if (o->is_free) {
			struct pfs_rec_free fr = {.seq = o->seq, .time_ns = o->time, .addr = o->addr, .length = o->len,
						  .tid = img->pid, .kind = o->kind};
			lw_rec(w, &fr, sizeof(fr), PFS_REC_FREE, 0, NULL, 0);
		} else {
			struct pfs_rec_alloc ar = {.seq = o->seq, .time_ns = o->time, .addr = o->addr, .size = o->len,
						   .length = o->len, .tid = img->pid, .stack = o->stack,
						   .kind = o->kind, .prot = PROT_READ | PROT_WRITE};
			lw_rec(w, &ar, sizeof(ar), PFS_REC_ALLOC,
			       PFS_ALLOC_CATEGORY | (o->inherited ? PFS_ALLOC_INHERITED : 0), NULL, 0);
		}
	}
	write_faults(w, img);
	if (img->ended) {
		struct pfs_rec_proc_end pe = {.seq = img->seq, .time_ns = img->end_ns,
					      .minflt = img->samples_before + img->samples,
					      .reason = img->by_exec ? PFS_END_EXEC : PFS_END_GONE};
		if (!img->by_exec && img->pid == k->root_pid && !img->gen && !k->attached) {
			pe.reason = WIFSIGNALED(root_wst) ? PFS_END_SIGNAL : PFS_END_EXIT;
			pe.status = WIFSIGNALED(root_wst) ? WTERMSIG(root_wst) : WEXITSTATUS(root_wst);
		}
		lw_rec(w, &pe, sizeof(pe), PFS_REC_PROC_END, 0, NULL, 0);
	}
	lw_flush(w);
	bool bad = w->failed | (fclose(w->f) != 0);
	free(w);
	if (bad)
		unlink(path);
	return bad ? -1 : 0;
}

/* (pid, start) of each log in dir: an image with a log of its own started there is the shim's. */
struct logseen {
	uint64_t pid, start;
};

/* The logs in dir (only those of `pid` unless it is 0). */
static size_t logs_seen(const char *dir, uint64_t pid, struct logseen **out)
{
	char **names, prefix[32], path[PATH_MAX];
	int nn = pfs_logdir_list(dir, &names);
	int pl = snprintf(prefix, sizeof(prefix), "pfshim.%" PRIu64 ".", pid);
	size_t n = 0, cap = 0;

	*out = NULL;
	for (int i = 0; i < nn; i++) {
		if (pid && strncmp(names[i], prefix, (size_t)pl))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) >= (int)sizeof(path))
			continue;
		int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		struct pfs_file_header h;
		bool ok = fd >= 0 && read(fd, &h, sizeof(h)) == (ssize_t)sizeof(h) &&
			  !memcmp(h.magic, PFS_LOG_MAGIC, sizeof(h.magic));
		if (fd >= 0)
			close(fd);
		if (ok && !pfs_an_reserve((void **)out, &cap, n + 1, sizeof(**out)))
			(*out)[n++] = (struct logseen){h.pid, h.start_mono_ns};
	}
	pfs_logdir_free(names, nn);
	return n;
}

static bool traced(const struct kimage *img, const struct logseen *logs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (logs[i].pid == img->pid && logs[i].start >= img->start_ns &&
		    (!img->ended || logs[i].start <= img->end_ns))
			return true;
	return false;
}

static bool traced_now(const struct pfs_kev *k, const struct kimage *img)
{
	struct logseen *logs = NULL;
	size_t n = k->outdir[0] ? logs_seen(k->outdir, img->pid, &logs) : 0;
	bool yes = traced(img, logs, n);
	free(logs);
	return yes;
}

/*
 * The shim is inside img: it logged it, or img was forked by an image the
 * shim is inside (a forked child writes a log once it allocates; one that
 * execs first has none).  So is a vfork child before its exec, which the
 * shim stays out of: it runs in its parent's memory, and the faults of those
 * few steps are not counted.
 */
static bool shims(const struct kimage *img)
{
	for (; img; img = img->forked ? img->parent : NULL)
		if (img->shim_traced)
			return true;
	return false;
}

static void image_free(struct kimage *img)
{
	for (size_t i = 0; i < img->nmods; i++)
		free(img->mods[i].path);
	free(img->mods);
	free(img->maps);
	free(img->ops);
	free(img->ev);
	free(img->pages.slot);
	free(img);
}

int pfs_kev_finish(struct pfs_kev *k, const char *outdir, int root_wst)
{
	if (!k)
		return 0;
	k->stop = 1;
	if (k->reading)
		pthread_join(k->reader, NULL);
	uint64_t lost = 0;
	for (unsigned i = 0; i < k->nsets; i++) {
		pfs_pev_drain(k->sets[i], on_record, k);
		lost += k->sets[i]->lost;
	}
	struct logseen *logs = NULL;
	size_t nlogs = outdir ? logs_seen(outdir, 0, &logs) : 0;
	int written = 0;
	for (struct kimage *img = k->all; img; img = img->next)
		img->shim_traced |= traced(img, logs, nlogs);
	for (struct kimage *img = k->all; img; img = img->next) {
		if (outdir && img->nev && !img->oom && !shims(img) && !write_log(k, img, outdir, root_wst))
			written++;
	}
	HASH_CLEAR(hh, k->cur); /* the table lives in its images */
	for (struct kimage *img = k->all, *next; img; img = next) {
		next = img->next;
		image_free(img);
	}
	if (lost)
		fprintf(stderr, "pfshim: record: the kernel dropped %" PRIu64 " fault events of untraced processes"
			" (its ring buffers were full)\n", lost);
	free(logs);
	kev_free(k);
	return written;
}
