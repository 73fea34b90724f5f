/*
 * Loading a run into the model: one handler per record type
 * (model_handlers[]) while logread walks each file, then
 * pfs_model_finish(): large blocks replayed, exact mode's faults
 * attributed, sites ranked, the process tree linked.  See model.h.
 */
#include "model.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "blocks.h"
#include "faults.h"
#include "logdir.h"
#include "logread.h"

/* The logread tool for one file: the handlers reach the process through it. */
struct model_loader {
	struct pfs_logread_tool tool;
	struct pfs_run *run;
	struct pfs_proc *proc;
	uint64_t order;		/* records seen, for stable replay order */
	/*
	 * The sites of recent TOUCH records by stack id: a log has millions of
	 * them over a few thousand sites, and a hash lookup each was a tenth
	 * of the report's time.  Sites are never freed while loading.
	 */
	struct pfs_site *touch_cache[1024];
	const char *path;			/* the file's */
	size_t file_len;			/* its length */
	const struct pfs_logread_stats *st;	/* the walk's so far */
	struct pfs_logread_stats done;		/* of the file's earlier images */
};

static struct model_loader *loader_of(struct pfs_logread_tool *tool)
{
	return pfs_an_container_of(tool, struct model_loader, tool);
}

/* The smallest record that makes a block event (FREE): a file holds at most its length / this many. */
#define EV_REC_MIN sizeof(struct pfs_rec_free)

static int push_ev(struct model_loader *ld, const struct pfs_block_ev *ev)
{
	struct pfs_proc *p = ld->proc;

	if (pfs_an_reserve_big((void **)&p->evs, &p->evs_cap, p->nevs + 1, sizeof(*p->evs),
			       ld->file_len / EV_REC_MIN))
		return -ENOMEM;
	p->evs[p->nevs++] = *ev;
	return 0;
}

/* ---- record handlers, one per type ------------------------------------ */

/* argv as NUL-separated strings; the last may lack its NUL when cut short. */
static int parse_argv(struct pfs_proc *p, const char *cmd, uint32_t len)
{
	uint32_t n = 0, i, start;
	size_t total = 0;
	char *out;

	for (i = 0, start = 0; i <= len; i++) {
		if (i == len ? i > start : cmd[i] == '\0') {
			n++;
			total += i - start + 1;
		}
		if (i < len && cmd[i] == '\0')
			start = i + 1;
	}
	p->argv = calloc(n + 1, sizeof(*p->argv));
	p->command = malloc(total + 1);
	if (!p->argv || !p->command)
		return -ENOMEM;
	out = p->command;
	*out = '\0';
	for (i = 0, start = 0; i <= len; i++) {
		bool piece = i == len ? i > start : cmd[i] == '\0';

		if (piece) {
			p->argv[p->argc] = strndup(cmd + start, i - start);
			if (!p->argv[p->argc])
				return -ENOMEM;
			p->argc++;
			if (out != p->command)
				*out++ = ' ';
			memcpy(out, cmd + start, i - start);
			out += i - start;
			*out = '\0';
		}
		if (i < len && cmd[i] == '\0')
			start = i + 1;
	}
	return 0;
}

static int on_proc_start(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
			 const char **why)
{
	struct model_loader *ld = loader_of(tool);
	struct pfs_proc *p = ld->proc;
	const struct pfs_rec_proc_start *r = &rec->u.proc_start;

	if (p->have_start) {
		*why = "a second PROC_START in one log";
		return -EINVAL;
	}
	p->have_start = true;
	p->pid = r->pid;
	p->ppid = r->ppid;
	p->root_pid = r->root_pid;
	if (r->start_mono_ns)
		p->start_ns = r->start_mono_ns;
	p->mode = r->mode;
	p->start_flags = rec->h.flags;
	p->exec_gen = r->exec_gen;
	p->page_size = r->page_size;
	p->cmd_truncated = rec->h.flags & PFS_PROC_CMD_TRUNCATED;
	p->exe = strndup(rec->str[0], rec->str_len[0]);
	if (!p->exe)
		return -ENOMEM;
	return parse_argv(p, rec->str[1], rec->str_len[1]);
}

static int on_module(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		     const char **why)
{
	struct pfs_proc *p = loader_of(tool)->proc;
	const struct pfs_rec_module *r = &rec->u.module;
	struct pfs_module *m;

	(void)why;
	if (pfs_an_reserve((void **)&p->modules, &p->modules_cap, p->nmodules + 1,
			    sizeof(*p->modules)))
		return -ENOMEM;
	m = &p->modules[p->nmodules];
	memset(m, 0, sizeof(*m));
	m->id = r->id;
	m->seq = r->seq;
	m->unload_seq = UINT64_MAX;
	m->base = r->base;
	m->start = r->start;
	m->end = r->end;
	m->build_id_len = r->build_id_len; /* <= PFS_BUILD_ID_MAX, checked by logread */
	memcpy(m->build_id, r->build_id, r->build_id_len);
	m->path = strndup(rec->str[0], rec->str_len[0]);
	if (!m->path)
		return -ENOMEM;
	p->nmodules++;
	return 0;
}

static int on_module_unload(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
			    const char **why)
{
	struct pfs_proc *p = loader_of(tool)->proc;

	(void)why;
	/* applied in finish: the MODULE may sit later in the file than its unload */
	if (pfs_an_reserve((void **)&p->unloads, &p->unloads_cap, p->nunloads + 1,
			    sizeof(*p->unloads)))
		return -ENOMEM;
	p->unloads[p->nunloads].seq = rec->u.module_unload.seq;
	p->unloads[p->nunloads].id = rec->u.module_unload.id;
	p->nunloads++;
	return 0;
}

/* The record's text p[0..len) as strndup() kept it equals s. */
static bool same_text(const char *s, const char *p, uint32_t len)
{
	size_t n = strnlen(p, len);

	return strlen(s) == n && !memcmp(s, p, n);
}

static int on_pycode(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		     const char **why)
{
	struct pfs_proc *p = loader_of(tool)->proc;
	const struct pfs_rec_pycode *r = &rec->u.pycode;
	struct pfs_pycode *c;

	if (r->id == 0) {
		*why = "Python function id 0 is reserved";
		return -EINVAL;
	}
	HASH_FIND(hh, p->pycodes, &r->id, sizeof(r->id), c);
	if (c) {
		/* a fork child writes its inherited functions again: harmless when identical */
		if (c->first_line == r->first_line && same_text(c->file, rec->str[0], rec->str_len[0]) &&
		    same_text(c->name, rec->str[1], rec->str_len[1]))
			return 0;
		*why = "a Python function id defined twice with different names";
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->id = r->id;
	c->first_line = r->first_line;
	c->file = strndup(rec->str[0], rec->str_len[0]);
	c->name = strndup(rec->str[1], rec->str_len[1]);
	if (!c->file || !c->name) {
		free(c->file);
		free(c->name);
		free(c);
		return -ENOMEM;
	}
	HASH_ADD(hh, p->pycodes, id, sizeof(c->id), c);
	return 0;
}

static int on_stack(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		    const char **why)
{
	struct pfs_proc *p = loader_of(tool)->proc;
	const struct pfs_rec_stack_head *r = &rec->u.stack;
	struct pfs_stack *s;

	if (r->id == 0) {
		*why = "stack id 0 is reserved";
		return -EINVAL;
	}
	HASH_FIND(hh, p->stacks, &r->id, sizeof(r->id), s);
	if (s) {
		/* the first one stays; a repeat is harmless only if identical */
		if (s->nframes == rec->nitems && (rec->nitems == 0 ||
		    !memcmp(s->frames, rec->items, (size_t)rec->nitems * sizeof(uint64_t))))
			return 0;
		*why = "a stack id defined twice with different frames";
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->id = r->id;
	s->seq = r->seq;
	s->nframes = rec->nitems;
	s->truncated = rec->h.flags & PFS_STACK_TRUNCATED;
	s->python = rec->h.flags & PFS_STACK_PYTHON;
	if (s->nframes) {
		s->frames = malloc((size_t)s->nframes * sizeof(*s->frames));
		if (!s->frames) {
			free(s);
			return -ENOMEM;
		}
		for (uint32_t i = 0; i < s->nframes; i++)
			s->frames[i] = pfs_logread_frame(rec, i);
	}
	HASH_ADD(hh, p->stacks, id, sizeof(s->id), s);
	return 0;
}

static int on_alloc(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		    const char **why)
{
	struct model_loader *ld = loader_of(tool);
	const struct pfs_rec_alloc *r = &rec->u.alloc;
	struct pfs_block_ev ev = {
		.seq = r->seq, .order = (uint32_t)ld->order++, .type = PFS_REC_ALLOC, .kind = r->kind,
		.stack = r->stack, .addr = r->addr, .size = r->size, .length = r->length,
		.time_ns = r->time_ns, .inherited = rec->h.flags & PFS_ALLOC_INHERITED,
		.category = (rec->h.flags & PFS_ALLOC_CATEGORY) || pfs_kind_is_category(r->kind),
		.populated = (r->kind == PFS_KIND_MMAP || r->kind == PFS_KIND_MMAP_FILE) &&
			     (r->mflags & (MAP_POPULATE | MAP_LOCKED)),
		.reserved = r->kind == PFS_KIND_MMAP && r->prot == PROT_NONE,
	};
	struct pfs_site *s;

	(void)why;
	s = pfs_model_site_get(ld->proc, r->stack, r->kind);
	if (!s)
		return -ENOMEM;
	/*
	 * An allocation a forked child inherited is tracked there, but it is the
	 * parent's allocation; a category range (a stack, .data/.bss, ...) is
	 * memory accounted by kind, no allocation at all.
	 */
	if (!(rec->h.flags & (PFS_ALLOC_INHERITED | PFS_ALLOC_CATEGORY)) && !pfs_kind_is_category(r->kind)) {
		s->allocations++;
		s->bytes_allocated += r->size;
	}
	return push_ev(ld, &ev);
}

/* Fast mode: pages of an allocation first touched, or first written after a fork, since the previous scan. */
static int on_touch(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		    const char **why)
{
	struct model_loader *ld = loader_of(tool);
	struct pfs_proc *p = ld->proc;
	const struct pfs_rec_touch *r = &rec->u.touch;
	struct pfs_site **slot = &ld->touch_cache[r->stack % PFS_AN_ARRAY_SIZE(ld->touch_cache)];
	struct pfs_site *s = *slot;

	(void)why;
	if (!s || s->key.stack != r->stack || s->key.kind != r->kind) {
		s = pfs_model_site_get(p, r->stack, r->kind);
		if (!s)
			return -ENOMEM;
		*slot = s;
	}
	/* a shim before the faults field wrote one fault per page */
	uint32_t faults = r->faults || (rec->h.flags & PFS_TOUCH_FAULTS) ? r->faults : r->pages;
	if (r->pages) {
		if (pfs_an_reserve_big((void **)&p->touches, &p->touches_cap, p->ntouches + 1,
				       sizeof(*p->touches), ld->file_len / sizeof(struct pfs_rec_touch)))
			return -ENOMEM;
		p->touches[p->ntouches++] = (struct pfs_touch_ev){
			.time_ns = r->time_ns, .alloc_seq = r->alloc_seq, .stack = r->stack,
			.pages = r->pages, .faults = faults, .kind = r->kind, .cow = rec->h.flags & PFS_TOUCH_COW,
		};
	}
	if (rec->h.flags & PFS_TOUCH_COW) {
		s->cow_faults += faults;
		s->cow_pages += r->pages;
	} else {
		s->first_touch_faults += faults;
		s->first_touch_pages += r->pages;
	}
	return 0;
}

/* Whether `rule` is one of the "; "-separated rules in `list`. */
static bool has_rule(const char *list, const char *rule, size_t len)
{
	/*
	 * Step past each separator found (a list that starts with "; " must not
	 * find the same one forever), and check the length: strncmp stops at a
	 * NUL that a rule from a log may hold, where p is shorter than len.
	 */
	for (const char *p = list;; p += 2) {
		if (!strncmp(p, rule, len) && strnlen(p, len) == len &&
		    (p[len] == '\0' || !strncmp(p + len, "; ", 2)))
			return true;
		p = strstr(p, "; ");
		if (!p)
			return false;
	}
}

/* A policy rule applied to one allocation: its site's prefaulted pages, rule text, failures. */
static int on_policy(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		     const char **why)
{
	struct pfs_proc *p = loader_of(tool)->proc;
	const struct pfs_rec_policy *r = &rec->u.policy;
	struct pfs_site *s;

	(void)why;
	s = pfs_model_site_get(p, r->stack, r->kind);
	if (!s)
		return -ENOMEM;
	s->prefaulted_pages += r->prefaulted_pages;
	s->policy_applications++;
	for (unsigned k = 0; k < PFS_POLICY_NACTIONS; k++)
		if ((r->actions >> k & 1) && r->result[k]) {
			s->policy_failures[k]++;
			s->policy_error[k] = r->result[k];
		}
	if (!s->policy || !has_rule(s->policy, rec->str[0], rec->str_len[0])) {
		char *joined;

		if (s->policy ? asprintf(&joined, "%s; %.*s", s->policy, (int)rec->str_len[0], rec->str[0]) < 0
			      : !(joined = strndup(rec->str[0], rec->str_len[0])))
			return -ENOMEM;
		free(s->policy);
		s->policy = joined;
	}
	return 0;
}

/* Fast mode: one scan pass; its time bounds the touches of the next one (storms.c).  Or a wait sample. */
static int on_scan(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		   const char **why)
{
	struct pfs_proc *p = loader_of(tool)->proc;

	(void)why;
	if (pfs_an_reserve((void **)&p->scan_evs, &p->scan_evs_cap, p->nscan_evs + 1,
			    sizeof(*p->scan_evs)))
		return -ENOMEM;
	p->scan_evs[p->nscan_evs++] = (struct pfs_scan_ev){
		.time_ns = rec->u.scan.time_ns, .new_pages = rec->u.scan.new_pages,
		.reason = rec->u.scan.reason, .have_wait = rec->h.flags & PFS_SCAN_WAIT, .wait_ns = rec->u.scan.wait_ns,
	};
	if (rec->u.scan.reason != PFS_SCAN_SAMPLE) /* a wait sample only: no pass */
		p->scans++;
	p->scanned_new_pages += rec->u.scan.new_pages;
	return 0;
}

static int on_free(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		   const char **why)
{
	struct model_loader *ld = loader_of(tool);
	const struct pfs_rec_free *r = &rec->u.free;
	struct pfs_block_ev ev = {
		.seq = r->seq, .order = (uint32_t)ld->order++, .type = PFS_REC_FREE, .kind = r->kind,
		.addr = r->addr, .length = r->length, .time_ns = r->time_ns,
	};

	(void)why;
	return push_ev(ld, &ev);
}

static int on_remap(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		    const char **why)
{
	struct model_loader *ld = loader_of(tool);
	const struct pfs_rec_remap *r = &rec->u.remap;
	struct pfs_block_ev ev = {
		.seq = r->seq, .order = (uint32_t)ld->order++, .type = PFS_REC_REMAP,
		.addr = r->old_addr, .length = r->old_length,
		.new_addr = r->new_addr, .new_length = r->new_length, .time_ns = r->time_ns,
	};

	(void)why;
	return push_ev(ld, &ev);
}

static int on_madvise(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		      const char **why)
{
	/* residency changes matter once faults are counted (a later issue) */
	(void)tool, (void)rec, (void)why;
	return 0;
}

static int on_counters(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		       const char **why)
{
	struct pfs_proc *p = loader_of(tool)->proc;

	(void)why;
	for (uint32_t i = 0; i < rec->nitems; i++) {
		struct pfs_counter_slot slot = pfs_logread_slot(rec, i);
		struct pfs_site *s;

		if (slot.stack == 0)	/* appended zeroed, not used yet */
			continue;
		s = pfs_model_site_get(p, slot.stack, slot.kind);
		if (!s)
			return -ENOMEM;
		s->allocations += slot.count;
		s->bytes_allocated += slot.bytes;
	}
	return 0;
}

static int on_fork(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		   const char **why)
{
	struct pfs_proc *p = loader_of(tool)->proc;
	const struct pfs_rec_fork *r = &rec->u.fork;

	(void)why;
	if (pfs_an_reserve((void **)&p->children, &p->children_cap, p->nchildren + 1,
			    sizeof(*p->children)))
		return -ENOMEM;
	p->children[p->nchildren].pid = r->child_pid;
	p->children[p->nchildren].seq = r->seq;
	p->children[p->nchildren].how = r->how;
	p->nchildren++;
	return 0;
}

static int on_exec(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		   const char **why)
{
	struct pfs_proc *p = loader_of(tool)->proc;

	(void)why;
	if (rec->u.exec.result != 0)	/* a failed exec: the image went on */
		return 0;
	free(p->exec_path);
	p->exec_path = strndup(rec->str[0], rec->str_len[0]);
	return p->exec_path ? 0 : -ENOMEM;
}

static int on_proc_end(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		       const char **why)
{
	struct pfs_proc *p = loader_of(tool)->proc;
	const struct pfs_rec_proc_end *r = &rec->u.proc_end;

	(void)why;
	p->ended = true;
	p->end_ns = r->time_ns;
	p->end_reason = r->reason;
	p->exit_status = r->status;
	p->have_status = r->reason == PFS_END_EXIT || r->reason == PFS_END_UEXIT;
	p->have_rusage = rec->h.size >= offsetof(struct pfs_rec_proc_end, run_ns);
	p->minflt_end = r->minflt;
	p->majflt_end = r->majflt;
	p->have_sched = rec->h.size >= sizeof(*r) && r->run_ns + r->wait_ns > 0;
	p->run_ns_end = r->run_ns;
	p->wait_ns_end = r->wait_ns;
	return 0;
}

static int on_message(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		      const char **why)
{
	struct model_loader *ld = loader_of(tool);

	(void)why;
	/* the record bounds the length (a block is at most 1 GiB), so it fits an int */
	return pfs_an_warn(&ld->run->warnings, "%s: the shim said: %.*s", ld->proc->log_path,
			   (int)(rec->str_len[0] & INT32_MAX), rec->str[0]);
}

/* Exact mode's records: faults.c. */
static int on_faults(struct pfs_logread_tool *tool, const struct pfs_rec *rec, const char **why)
{
	return pfs_faults_decode(loader_of(tool)->proc, rec, why);
}

static int on_ureg(struct pfs_logread_tool *tool, const struct pfs_rec *rec, const char **why)
{
	(void)why;
	return pfs_faults_ureg(loader_of(tool)->proc, rec);
}

static int on_carve(struct pfs_logread_tool *tool, const struct pfs_rec *rec, const char **why)
{
	(void)why;
	return pfs_faults_carve(loader_of(tool)->proc, rec);
}

/* A new image of the file, the loader's from now on; its fields from the file header until PROC_START. */
static int new_image(struct model_loader *ld)
{
	ld->proc = calloc(1, sizeof(*ld->proc));
	if (!ld->proc)
		return -ENOMEM;
	ld->proc->log_path = strdup(ld->path);
	if (!ld->proc->log_path)
		return -ENOMEM;
	ld->proc->fork_seq = UINT64_MAX;
	memset(ld->touch_cache, 0, sizeof(ld->touch_cache)); /* stack ids are an image's */
	return 0;
}

/*
 * The loader's image is read to its end: into the run, with the records the
 * walk read for it (all but the last `next`, the next image's).
 */
static int image_done(struct model_loader *ld, uint64_t next)
{
	struct pfs_run *run = ld->run;

	if (pfs_an_reserve((void **)&run->procs, &run->procs_cap, run->nprocs + 1,
			    sizeof(*run->procs)))
		return -ENOMEM;
	ld->proc->records = ld->st->records - next - ld->done.records;
	ld->proc->bad_records = ld->st->bad - ld->done.bad;
	ld->proc->unknown_records = ld->st->unknown - ld->done.unknown;
	ld->done = *ld->st;
	ld->done.records -= next;
	run->procs[run->nprocs++] = ld->proc;
	ld->proc = NULL;
	return 0;
}

/*
 * IMAGE: the image exec'd by the one read so far goes on from here, in
 * blocks of its own (every earlier block is the earlier images').
 */
static int on_image(struct pfs_logread_tool *tool, const struct pfs_rec *rec,
		    const char **why)
{
	struct model_loader *ld = loader_of(tool);
	const struct pfs_rec_image *r = &rec->u.image;
	struct pfs_proc *p;
	int rc;

	(void)why;
	rc = image_done(ld, 1); /* this IMAGE record is the next image's */
	if (!rc)
		rc = new_image(ld);
	if (rc)
		return rc;
	p = ld->proc;
	p->pid = r->pid;
	p->start_ns = r->start_mono_ns;
	p->real_offset_ns = (int64_t)(r->start_real_ns - r->start_mono_ns);
	p->page_size = r->page_size;
	p->file_flags = r->flags;
	return 0;
}

static const pfs_logread_handler model_handlers[PFS_REC_TYPE_MAX] = {
	[PFS_REC_PROC_START] = on_proc_start,
	[PFS_REC_MODULE] = on_module,
	[PFS_REC_MODULE_UNLOAD] = on_module_unload,
	[PFS_REC_STACK] = on_stack,
	[PFS_REC_PYCODE] = on_pycode,
	[PFS_REC_ALLOC] = on_alloc,
	[PFS_REC_FREE] = on_free,
	[PFS_REC_REMAP] = on_remap,
	[PFS_REC_MADVISE] = on_madvise,
	[PFS_REC_COUNTERS] = on_counters,
	[PFS_REC_FORK] = on_fork,
	[PFS_REC_EXEC] = on_exec,
	[PFS_REC_PROC_END] = on_proc_end,
	[PFS_REC_MESSAGE] = on_message,
	[PFS_REC_TOUCH] = on_touch,
	[PFS_REC_SCAN] = on_scan,
	[PFS_REC_FAULTS] = on_faults,
	[PFS_REC_UREG] = on_ureg,
	[PFS_REC_CARVE] = on_carve,
	[PFS_REC_POLICY] = on_policy,
	[PFS_REC_IMAGE] = on_image,
};

static int on_begin(struct pfs_logread_tool *tool, const struct pfs_logfile *lf)
{
	struct pfs_proc *p = loader_of(tool)->proc;

	/* the header stands in until PROC_START, which may be lost */
	p->pid = lf->hdr.pid;
	p->start_ns = lf->hdr.start_mono_ns;
	p->real_offset_ns = (int64_t)(lf->hdr.start_real_ns - lf->hdr.start_mono_ns);
	p->page_size = lf->hdr.page_size;
	p->file_flags = lf->hdr.flags;
	p->lost_records = lf->hdr.lost_records;
	return 0;
}

static void on_progress(struct pfs_logread_tool *tool, const struct pfs_logfile *lf,
			uint64_t off)
{
	char what[128];

	snprintf(what, sizeof(what), "reading %s", pfs_an_basename(lf->name));
	pfs_an_progress_update(loader_of(tool)->run->progress, what, off, lf->len);
}

static void on_problem(struct pfs_logread_tool *tool, const struct pfs_logfile *lf,
		       uint64_t offset, const char *what)
{
	struct model_loader *ld = loader_of(tool);

	ld->run->errors++;
	if (offset == UINT64_MAX)
		pfs_an_warn(&ld->run->warnings, "%s: %s", lf->name, what);
	else
		pfs_an_warn(&ld->run->warnings, "%s: offset %" PRIu64 ": %s", lf->name,
			     offset, what);
}

static void run_error(struct pfs_run *run, const char *name, const char *what)
{
	run->errors++;
	if (run->diag)
		fprintf(run->diag, "pfshim: %s: %s\n", name, what);
	pfs_an_warn(&run->warnings, "%s: %s", name, what);
}

static int load_logfile(struct pfs_run *run, struct pfs_logfile *lf)
{
	struct model_loader ld = {
		.tool = {.handlers = model_handlers, .begin = on_begin, .problem = on_problem,
			 .diag = run->diag, .progress = run->progress ? on_progress : NULL},
		.run = run,
		.path = lf->name,
		.file_len = lf->len,
	};
	struct pfs_logread_stats st;
	int rc;

	memset(&st, 0, sizeof(st));
	ld.st = &st;
	rc = new_image(&ld);
	if (!rc)
		rc = pfs_logread_walk(lf, &ld.tool, &st);
	if (!rc)
		rc = image_done(&ld, 0);
	pfs_model_proc_free(ld.proc);
	return rc;
}

int pfs_model_load_buffer(struct pfs_run *run, const void *buf, size_t len, const char *name)
{
	struct pfs_logfile lf;
	char err[256];

	if (pfs_logread_open_buffer(&lf, buf, len, name, err, sizeof(err))) {
		run_error(run, name, err);
		return 0;
	}
	return load_logfile(run, &lf);
}

int pfs_model_load_file(struct pfs_run *run, const char *path)
{
	struct pfs_logfile lf;
	char err[256];
	int rc;

	if (pfs_logread_open(&lf, path, err, sizeof(err))) {
		run_error(run, path, err);
		return 0;
	}
	rc = load_logfile(run, &lf);
	pfs_logread_close(&lf);
	return rc;
}

static int load_dir(struct pfs_run *run, const char *dir)
{
	char **names = NULL;
	int n = pfs_logdir_list(dir, &names), rc = 0;

	if (n < 0) {
		char what[128];

		if (n == -ENOMEM)
			return n;
		snprintf(what, sizeof(what), "cannot open: %s", strerror(-n));
		run_error(run, dir, what);
		return 0;
	}
	if (n == 0)
		run_error(run, dir, "no *" PFS_LOG_FILE_SUFFIX " files in this directory");
	for (int i = 0; i < n && !rc; i++) {
		char *path;

		if (asprintf(&path, "%s/%s", dir, names[i]) < 0) {
			rc = -ENOMEM;
			break;
		}
		rc = pfs_model_load_file(run, path);
		free(path);
	}
	pfs_logdir_free(names, n);
	return rc;
}

int pfs_model_load_path(struct pfs_run *run, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		char what[128];

		snprintf(what, sizeof(what), "cannot open: %s", strerror(errno));
		run_error(run, path, what);
		return 0;
	}
	if (S_ISDIR(st.st_mode))
		return load_dir(run, path);
	return pfs_model_load_file(run, path);
}

