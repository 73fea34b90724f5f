/* The kernel's fault events read from their ring buffers (pevent_ring.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pevent_ring.h"
#include "util.h"

static long page_bytes(void)
{
	long p = sysconf(_SC_PAGESIZE);
	return p > 0 ? p : 4096;
}

int pfs_pev_paranoid(void)
{
	int64_t v;
	return pfs_read_decimal("/proc/sys/kernel/perf_event_paranoid", &v) ? INT32_MIN : (int)v;
}

static void close_rings(struct pfs_pev_set *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		if (s->r[i].base)
			syscall(SYS_munmap, s->r[i].base, s->r[i].size);
		if (s->r[i].fd >= 0)
			syscall(SYS_close, s->r[i].fd);
	}
	s->n = 0;
}

void pfs_pev_close_fds(struct pfs_pev_set *s)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->r[i].fd >= 0) {
			syscall(SYS_close, s->r[i].fd);
			s->r[i].fd = -1;
		}
}

void pfs_pev_close(struct pfs_pev_set *s)
{
	close_rings(s);
}

static int open_one(struct perf_event_attr *a, int pid, int cpu)
{
	int fd = (int)syscall(SYS_perf_event_open, a, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* One try at `pages` per ring: 0, -errno (*why set), or 1 when a ring could not be mapped at that size. */
static int open_all(struct pfs_pev_set *s, struct perf_event_attr *a, const struct pfs_pev_opts *o, unsigned pages,
		    const char **why)
{
	long ncpu = sysconf(_SC_NPROCESSORS_CONF), psz = page_bytes();
	if (ncpu < 1)
		ncpu = 1;
	if (ncpu > PFS_PEV_CPUS_MAX)
		ncpu = PFS_PEV_CPUS_MAX;
	s->n = 0;
	for (int cpu = 0; cpu < ncpu; cpu++) {
		int fd = open_one(a, o->pid, cpu);
		if (fd == -EACCES && !a->exclude_kernel) { /* the kernel's side is not ours to see: user mode only */
			a->exclude_kernel = 1;
			fd = open_one(a, o->pid, cpu);
		}
		if (fd == -ENODEV)
			continue; /* an offline CPU */
		if (fd < 0) {
			*why = "perf_event_open of the page-fault event failed";
			close_rings(s);
			return fd;
		}
		struct pfs_pev_ring *r = &s->r[s->n++];
		r->fd = fd;
		r->cpu = cpu;
		r->tail = 0;
		r->size = (uint64_t)(pages + 1) * (uint64_t)psz;
		long m = syscall(SYS_mmap, NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (m < 0 && m > -4096) {
			int err = (int)-m;
			r->base = NULL;
			close_rings(s);
			if ((err == EPERM || err == ENOMEM) && pages > o->min_pages)
				return 1;
			*why = "the kernel refuses to map the fault events' ring buffer (perf_event_mlock_kb, ulimit -l)";
			return -err;
		}
		r->base = (void *)m;
		syscall(SYS_madvise, r->base, r->size, MADV_DONTFORK); /* a forked child opens its own */
	}
	if (!s->n) {
		*why = "no CPU to open the page-fault event on";
		return -ENODEV;
	}
	s->data_pages = pages;
	s->kernel = !a->exclude_kernel;
	return 0;
}

int pfs_pev_open(struct pfs_pev_set *s, const struct pfs_pev_opts *o, const char **why)
{
	struct perf_event_attr a;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = o->type;
	a.config = o->config;
	a.sample_period = 1;
	a.sample_type = PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_ADDR | (o->ip ? PERF_SAMPLE_IP : 0);
	a.exclude_kernel = !o->try_kernel;
	a.exclude_hv = 1;
	a.inherit = o->inherit_threads || o->inherit_children ? 1 : 0;
	a.inherit_thread = o->inherit_threads && !o->inherit_children ? 1 : 0;
	if (o->task_events) {
		a.mmap = a.mmap_data = a.mmap2 = 1;
		a.comm = a.comm_exec = a.task = 1;
		a.sample_id_all = 1; /* each task record ends with the sample's pid, tid and time */
	}
	a.use_clockid = 1;
	a.clockid = CLOCK_MONOTONIC;
	a.disabled = o->enable_on_exec ? 1 : 0;
	a.enable_on_exec = o->enable_on_exec ? 1 : 0;
	memset(s, 0, offsetof(struct pfs_pev_set, r)); /* the rings opened are filled in: 72 KiB not written */
	s->with_ip = o->ip;
	s->task_events = o->task_events;
	unsigned pages = o->data_pages ? o->data_pages : 64;
	for (;;) {
		int rc = open_all(s, &a, o, pages, why);
		if (rc <= 0)
			return rc;
		pages /= 2;
	}
}

/* ---- reading ---------------------------------------------------------------- */

static uint64_t ring_head(const struct pfs_pev_ring *r)
{
	const struct perf_event_mmap_page *h = r->base;
	return __atomic_load_n(&h->data_head, __ATOMIC_ACQUIRE);
}

/* Copies `len` bytes at ring offset `off` (wrapping) into out. */
static void ring_copy(const struct pfs_pev_ring *r, uint64_t off, void *out, uint64_t len)
{
	const struct perf_event_mmap_page *h = r->base;
	uint64_t dsize = h->data_size ? h->data_size : r->size - (uint64_t)page_bytes();
	const char *data = (const char *)r->base + (h->data_offset ? h->data_offset : (uint64_t)page_bytes());
	uint64_t at = off % dsize, first = dsize - at < len ? dsize - at : len;
	memcpy(out, data + at, first);
	if (first < len)
		memcpy((char *)out + first, data, len - first);
}

/* The pid, tid and time at the end of a task record (sample_id_all with TID and TIME). */
static void task_tail(const struct pfs_pev_ring *r, const struct perf_event_header *eh, struct pfs_pev_sample *sm)
{
	uint64_t v[2];
	ring_copy(r, r->tail + eh->size - sizeof(v), v, sizeof(v));
	sm->time_ns = v[1];
}

/* A task record of ring r at its tail (type eh->type) parsed into *sm: 1, or 0 when it is not one. */
static int task_record(struct pfs_pev_ring *r, const struct perf_event_header *eh, struct pfs_pev_sample *sm)
{
	uint64_t at = r->tail + sizeof(*eh);
	uint32_t ids[4];
	memset(sm, 0, sizeof(*sm));
	switch (eh->type) {
	case PERF_RECORD_MMAP2: {
		/* pid, tid; addr, len, pgoff; maj, min, ino, ino_generation (or a build id); prot, flags; filename */
		uint64_t v[3];
		uint32_t pf[2];
		if (eh->size < sizeof(*eh) + 8 + 24 + 24 + 8 + 16)
			return 0;
		ring_copy(r, at, ids, 8);
		ring_copy(r, at + 8, v, sizeof(v));
		ring_copy(r, at + 8 + 24 + 24, pf, sizeof(pf));
		uint64_t name_at = at + 8 + 24 + 24 + 8, name_len = r->tail + eh->size - 16 - name_at;
		if (name_len >= PFS_PEV_NAME_MAX)
			name_len = PFS_PEV_NAME_MAX - 1;
		ring_copy(r, name_at, r->name, name_len);
		r->name[name_len] = 0;
		sm->kind = PFS_PEV_MMAP;
		sm->pid = ids[0];
		sm->tid = ids[1];
		sm->addr = v[0];
		sm->len = v[1];
		sm->pgoff = v[2];
		sm->prot = pf[0];
		sm->flags = pf[1];
		sm->name = r->name;
		break;
	}
	case PERF_RECORD_FORK:
	case PERF_RECORD_EXIT:
		if (eh->size < sizeof(*eh) + 16 + 8 + 16)
			return 0;
		ring_copy(r, at, ids, sizeof(ids));
		sm->kind = eh->type == PERF_RECORD_FORK ? PFS_PEV_FORK : PFS_PEV_EXIT;
		sm->pid = ids[0];
		sm->ppid = ids[1];
		sm->tid = ids[2];
		if (ids[0] != ids[2])
			return 0; /* a thread's start or end: the process goes on */
		break;
	case PERF_RECORD_COMM: {
		if (!(eh->misc & PERF_RECORD_MISC_COMM_EXEC) || eh->size < sizeof(*eh) + 8 + 16)
			return 0; /* a thread renamed: nothing new */
		ring_copy(r, at, ids, 8);
		uint64_t name_len = eh->size - sizeof(*eh) - 8 - 16;
		if (name_len >= PFS_PEV_NAME_MAX)
			name_len = PFS_PEV_NAME_MAX - 1;
		ring_copy(r, at + 8, r->name, name_len);
		r->name[name_len] = 0;
		sm->kind = PFS_PEV_EXEC;
		sm->pid = ids[0];
		sm->tid = ids[1];
		sm->name = r->name;
		break;
	}
	default:
		return 0;
	}
	task_tail(r, eh, sm);
	return 1;
}

/*
 * The next sample (or task record) of ring r before `head`, parsed into *sm
 * without moving past it; other records are passed over (LOST counted).  1,
 * or 0 when the ring has nothing more.
 */
static int peek(struct pfs_pev_set *s, struct pfs_pev_ring *r, uint64_t head, struct pfs_pev_sample *sm)
{
	while (r->tail + sizeof(struct perf_event_header) <= head) {
		struct perf_event_header eh;
		ring_copy(r, r->tail, &eh, sizeof(eh));
		if (eh.size < sizeof(eh) || r->tail + eh.size > head) {
			r->tail = head; /* malformed: never expected from the kernel; the rest is dropped */
			return 0;
		}
		if (eh.type == PERF_RECORD_SAMPLE) {
			uint64_t v[6];
			uint64_t n = (eh.size - sizeof(eh)) / sizeof(uint64_t);
			if (n > 6)
				n = 6;
			ring_copy(r, r->tail + sizeof(eh), v, n * sizeof(uint64_t));
			unsigned k = 0;
			memset(sm, 0, sizeof(*sm));
			sm->ip = s->with_ip && k < n ? v[k++] : 0;
			uint64_t pt = k < n ? v[k++] : 0;
			sm->pid = (uint32_t)pt;
			sm->tid = (uint32_t)(pt >> 32);
			sm->time_ns = k < n ? v[k++] : 0;
			sm->addr = k < n ? v[k++] : 0;
			sm->user = (eh.misc & PERF_RECORD_MISC_CPUMODE_MASK) != PERF_RECORD_MISC_KERNEL;
			return 1;
		}
		if (eh.type == PERF_RECORD_LOST && eh.size >= sizeof(eh) + 16) {
			uint64_t v[2];
			ring_copy(r, r->tail + sizeof(eh), v, sizeof(v));
			s->lost += v[1];
		} else if (s->task_events && task_record(r, &eh, sm)) {
			return 1;
		}
		r->tail += eh.size;
	}
	return 0;
}

uint64_t pfs_pev_drain(struct pfs_pev_set *s, void (*fn)(const struct pfs_pev_sample *sm, void *arg), void *arg)
{
	uint64_t heads[PFS_PEV_CPUS_MAX], count = 0;
	struct pfs_pev_sample next[PFS_PEV_CPUS_MAX];
	int have[PFS_PEV_CPUS_MAX];
	if (!s->n)
		return 0;
	/* What is there now: samples the callback's own work causes wait for the next drain. */
	for (unsigned i = 0; i < s->n; i++) {
		heads[i] = ring_head(&s->r[i]);
		have[i] = peek(s, &s->r[i], heads[i], &next[i]);
	}
	for (;;) {
		int best = -1;
		for (unsigned i = 0; i < s->n; i++)
			if (have[i] && (best < 0 || next[i].time_ns < next[best].time_ns))
				best = (int)i;
		if (best < 0)
			break;
		struct pfs_pev_ring *r = &s->r[best];
		fn(&next[best], arg);
		count++;
		struct perf_event_header eh;
		ring_copy(r, r->tail, &eh, sizeof(eh));
		r->tail += eh.size;
		have[best] = peek(s, r, heads[best], &next[best]);
	}
	for (unsigned i = 0; i < s->n; i++) {
		struct perf_event_mmap_page *h = s->r[i].base;
		__atomic_store_n(&h->data_tail, s->r[i].tail, __ATOMIC_RELEASE);
	}
	s->samples += count;
	return count;
}

uint64_t pfs_pev_sample_bytes(const struct pfs_pev_set *s)
{
	/* header; ip; pid, tid; time; addr */
	return sizeof(struct perf_event_header) + (s->with_ip ? 4 : 3) * sizeof(uint64_t);
}

uint64_t pfs_pev_fullest(const struct pfs_pev_set *s)
{
	uint64_t most = 0;
	for (unsigned i = 0; i < s->n; i++) {
		uint64_t n = ring_head(&s->r[i]) - s->r[i].tail;
		most = n > most ? n : most;
	}
	return most;
}
