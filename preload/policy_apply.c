/*
 * Policies applied to allocations (policy_apply.h).
 *
 * Matching is cheap per allocation: size and kind are compared directly;
 * site= and module= depend on the call stack only, so their outcome for
 * every rule is computed once per stack id (a bit per rule) from the symbol
 * tables (symtab.c) and cached.  The actions are madvise/mlock system
 * calls on the whole pages inside the allocation; the pages they make
 * present are counted from /proc/self/pagemap (mincore where it cannot be
 * read) before and after.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alloc_glibc.h"
#include "arena.h"
#include "heap.h"
#include "inlines.h"
#include "msg.h"
#include "pagemap.h"
#include "policy.h"
#include "policy_apply.h"
#include "python.h"
#include "sites.h"
#include "symtab.h"
#include "tracker.h"

int pfs_policy_on;
static struct pfs_policy policy;
static int need_symbols, need_modules;

static int wants_site(const char *name, void *arg)
{
	return pfs_policy_wants_site(arg, name);
}

void pfs_policy_init(void)
{
	char err[256];
	if (!pfs_proc.cfg.policy[0])
		return;
	if (pfs_policy_parse(&policy, pfs_proc.cfg.policy, err, sizeof(err))) {
		/* Once per run: children inherit the same variable. */
		if (pfs_proc.cfg.run_pid == 0)
			pfs_warn("%s; no policy applied", err);
		return;
	}
	for (unsigned i = 0; i < policy.nrules; i++) {
		need_symbols |= policy.rules[i].nsite != 0;
		need_modules |= policy.rules[i].nmodule != 0;
	}
	/* inlined functions have no symbol: their ranges, from DWARF, now (not inside a hook) */
	if (need_symbols)
		pfs_inlines_load(wants_site, &policy);
	pfs_policy_on = policy.nrules > 0;
}

/* ---- site= and module=, once per stack ---------------------------------- */

/* Per stack id: bit 63 valid, bits 32-62 the symbol table's epoch, bits 0-31 the rules whose stack conditions hold. */
#define MASK_CHUNK 1024u
#define MASK_CHUNKS 4096u
#define MASK_VALID (1ull << 63)
#define NAMES_PER_FRAME 4	/* a symbol and its aliases */
#define INLINED_PER_FRAME 8	/* inlined functions around one address */
#define DEMANGLED_BYTES (64u << 10)
static uint64_t *mask_cache[MASK_CHUNKS];

static uint64_t *mask_slot(uint32_t stack)
{
	uint32_t c = stack / MASK_CHUNK;
	if (c >= MASK_CHUNKS)
		return NULL;
	uint64_t *chunk = __atomic_load_n(&mask_cache[c], __ATOMIC_ACQUIRE);
	if (!chunk) {
		uint64_t *fresh = pfs_arena_alloc(MASK_CHUNK * sizeof(*fresh));
		if (!fresh)
			return NULL;
		/* Two threads racing: one chunk wins; the other stays unused in the arena. */
		if (!__atomic_compare_exchange_n(&mask_cache[c], &chunk, fresh, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return &chunk[stack % MASK_CHUNK];
		chunk = fresh;
	}
	return &chunk[stack % MASK_CHUNK];
}

/*
 * The names site= matches for one stack: each frame's symbols and the
 * inlined functions around it, each also demangled (the names reports
 * show), into names[] (pool memory, `cap` entries) and the text buffer.
 */
static unsigned stack_names(const uint64_t *frames, int n, const char **names, unsigned cap, char *text)
{
	unsigned nn = 0;
	size_t used = 0;
	for (int i = 0; i < n && i < PFS_MAX_FRAMES_PYTHON; i++) {
		unsigned first = nn;
		if (pfs_is_pyframe(frames[i])) { /* a Python function: its names and FILE:LINE */
			nn += pfs_python_names(frames[i], names + nn, cap - nn, text, text ? DEMANGLED_BYTES : 0, &used);
			continue;
		}
		/* Return addresses: the call instruction is the byte before. */
		nn += pfs_symtab_names(frames[i] - 1, names + nn, NAMES_PER_FRAME);
		nn += pfs_inlines_names(frames[i] - 1, names + nn, INLINED_PER_FRAME);
		for (unsigned k = first, end = nn; k < end && nn < cap; k++) {
			size_t room = DEMANGLED_BYTES - used;
			if (text && room > 1 && pfs_symtab_demangle(names[k], text + used, room)) {
				names[nn++] = text + used;
				used += strlen(text + used) + 1;
			}
		}
	}
	return nn;
}

static uint32_t compute_mask(uint32_t stack)
{
	const uint64_t *frames = NULL;
	int n = pfs_stacks_frames(stack, &frames);
	unsigned cap = PFS_MAX_FRAMES_PYTHON * (NAMES_PER_FRAME + INLINED_PER_FRAME) * 2, nn = 0;
	const char **names = need_symbols ? pfs_pool_alloc(cap * sizeof(*names)) : NULL;
	char *text = names ? pfs_pool_alloc(DEMANGLED_BYTES) : NULL;
	if (names)
		nn = stack_names(frames, n, names, cap, text);
	const char *module = need_modules && n > 0 ? pfs_symtab_object(frames[0] - 1) : NULL;
	uint32_t mask = 0;
	for (unsigned i = 0; i < policy.nrules; i++)
		if (pfs_rule_stack_holds(&policy.rules[i], names, nn, module))
			mask |= 1u << i;
	pfs_pool_free(text, DEMANGLED_BYTES);
	pfs_pool_free(names, cap * sizeof(*names));
	return mask;
}

static uint32_t stack_mask(uint32_t stack)
{
	uint64_t *slot = mask_slot(stack);
	uint64_t epoch = pfs_symtab_epoch() & 0x7fffffffu;
	uint64_t v = slot ? __atomic_load_n(slot, __ATOMIC_RELAXED) : 0;
	if ((v & MASK_VALID) && (v >> 32 & 0x7fffffffu) == epoch)
		return (uint32_t)v;
	/* Objects loaded since the last look are read now (their frames may be in this stack). */
	pfs_symtab_sync(need_symbols);
	epoch = pfs_symtab_epoch() & 0x7fffffffu;
	uint32_t mask = compute_mask(stack);
	if (slot)
		__atomic_store_n(slot, MASK_VALID | epoch << 32 | mask, __ATOMIC_RELAXED);
	return mask;
}

static const struct pfs_rule *match(uint64_t size, int kind, uint32_t stack)
{
	uint32_t mask = 0;
	int have_mask = 0;
	for (unsigned i = 0; i < policy.nrules; i++) {
		const struct pfs_rule *r = &policy.rules[i];
		if (!pfs_rule_alloc_holds(r, size, kind))
			continue;
		if (r->nsite || r->nmodule) {
			if (!have_mask) {
				mask = stack_mask(stack);
				have_mask = 1;
			}
			if (!(mask >> i & 1))
				continue;
		}
		return r;
	}
	return NULL;
}

/* ---- the actions -------------------------------------------------------- */

static int sys_madvise(void *addr, size_t len, int advice)
{
	return pfs_sys_madvise(addr, len, advice);
}

int (*pfs_policy_madvise)(void *addr, size_t len, int advice) = sys_madvise;

/* Whether the kernel knows MADV_POPULATE_WRITE (Linux 5.14): an EINVAL from it otherwise means something else. */
static int (*probed_with)(void *, size_t, int);
static int populate_known;

static int kernel_lacks_populate(void)
{
	int (*fn)(void *, size_t, int) = pfs_policy_madvise;
	if (__atomic_load_n(&probed_with, __ATOMIC_ACQUIRE) != fn) {
		uint64_t page = pfs_proc.page_size ? pfs_proc.page_size : 4096;
		void *p = pfs_sys_mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return 0;
		int known = !(fn(p, page, MADV_POPULATE_WRITE) && errno == EINVAL);
		pfs_sys_munmap(p, page);
		__atomic_store_n(&populate_known, known, __ATOMIC_RELAXED);
		__atomic_store_n(&probed_with, fn, __ATOMIC_RELEASE);
	}
	return !__atomic_load_n(&populate_known, __ATOMIC_RELAXED);
}

/* The old kernel's populate: a write to each page that leaves its byte as it was. */
static void touch_pages(uint64_t start, uint64_t len, uint64_t page)
{
	for (uint64_t a = start; a < start + len; a += page)
		__atomic_fetch_add((volatile char *)(uintptr_t)a, 0, __ATOMIC_RELAXED);
}

/* Advice that changes how pages are faulted first, then what reads ahead, then what populates. */
static const struct {
	unsigned act;
	int advice; /* -1: mlock */
} act_order[] = {
	{PFS_ACT_NOHUGEPAGE, MADV_NOHUGEPAGE}, {PFS_ACT_HUGEPAGE, MADV_HUGEPAGE},
	{PFS_ACT_RANDOM, MADV_RANDOM},	       {PFS_ACT_SEQUENTIAL, MADV_SEQUENTIAL},
	{PFS_ACT_WILLNEED, MADV_WILLNEED},     {PFS_ACT_POPULATE_READ, MADV_POPULATE_READ},
	{PFS_ACT_POPULATE, MADV_POPULATE_WRITE}, {PFS_ACT_MLOCK, -1},
};

void pfs_policy_act(uint64_t start, uint64_t len, unsigned actions, int anon_writable, int16_t *result,
		    uint64_t *prefaulted)
{
	uint64_t page = pfs_proc.page_size ? pfs_proc.page_size : 4096;
	int64_t before = actions & (PFS_ACT_POPULATE | PFS_ACT_POPULATE_READ | PFS_ACT_MLOCK) ? pfs_pagemap_present(start, len)
											       : -1;
	*prefaulted = 0;
	for (size_t i = 0; i < PFS_ARRAY_SIZE(act_order); i++) {
		unsigned act = act_order[i].act;
		if (!(actions & act))
			continue;
		void *p = (void *)(uintptr_t)start;
		int rc = act_order[i].advice < 0 ? (int)syscall(SYS_mlock, p, len)
						 : pfs_policy_madvise(p, len, act_order[i].advice);
		rc = rc ? -errno : 0;
		if (act == PFS_ACT_POPULATE && rc == -EINVAL && anon_writable && kernel_lacks_populate()) {
			touch_pages(start, len, page);
			rc = 0;
		}
		result[__builtin_ctz(act)] = (int16_t)(rc < -32768 ? -EINVAL : rc);
		/* mlock populates as MADV_POPULATE_WRITE does: its pages are no first touches either */
		if (rc == 0)
			pfs_tracker->advised(pfs_tls_thread, start, len,
					     act_order[i].advice >= 0 ? act_order[i].advice : MADV_POPULATE_WRITE);
	}
	if (before >= 0) {
		int64_t after = pfs_pagemap_present(start, len);
		*prefaulted = after > before ? (uint64_t)(after - before) : 0;
	}
}

/* ---- one allocation ----------------------------------------------------- */

static unsigned warned; /* actions whose failure was said */

static void say_failures(const int16_t *result, uint64_t len, int kind)
{
	for (unsigned k = 0; k < PFS_POLICY_NACTIONS; k++) {
		if (!result[k] || (__atomic_fetch_or(&warned, 1u << k, __ATOMIC_RELAXED) & (1u << k)))
			continue;
		pfs_warn("policy: %s failed on %llu KiB of a %s allocation (%s); each failure is logged, the program "
			 "runs on",
			 pfs_policy_action_name(k), (unsigned long long)(len >> 10), pfs_kind_name((unsigned)kind),
			 strerror(-result[k]));
	}
}

static void write_policy(struct pfs_thread *t, const struct pfs_rule *r, int kind, uint32_t stack, uint64_t alloc_seq,
			 uint64_t t0, uint64_t t1, const int16_t *result, uint64_t prefaulted)
{
	uint32_t len = r->len;
	uint32_t size = PFS_ALIGN8((uint32_t)sizeof(struct pfs_rec_policy) + len);
	pfs_stack_used(t, stack);
	struct pfs_rec_policy *rec = t ? pfs_rec_begin(&t->w, size) : NULL;
	if (!rec)
		return;
	rec->alloc_seq = alloc_seq;
	rec->time_ns = t0;
	rec->duration_ns = t1 - t0;
	rec->prefaulted_pages = prefaulted;
	rec->stack = stack;
	rec->tid = t->tid;
	rec->actions = (uint16_t)r->actions;
	rec->rule = (uint8_t)(r - policy.rules);
	rec->kind = (uint8_t)kind;
	memcpy(rec->result, result, sizeof(rec->result));
	rec->rule_len = len;
	memcpy(rec + 1, pfs_proc.cfg.policy + r->pos - 1, len);
	pfs_rec_end(rec, PFS_REC_POLICY, 0, size);
}

/* ---- reservations: actions that wait for the mprotect that opens them ---- */

#define WAIT_ACTIONS (PFS_ACT_POPULATE | PFS_ACT_POPULATE_READ | PFS_ACT_MLOCK)
#define WAITING_MAX 1024u /* reservations waiting at once; past that a rule acts at mmap, and fails */

struct waiting {
	uint64_t start, end; /* page-aligned; end 0: a free slot */
	uint64_t alloc_seq;
	uint32_t stack;
	uint16_t rule;
	uint8_t kind;
};

int pfs_policy_waiting; /* entries in use, read without the lock by the hooks */
static struct waiting *waiting; /* WAITING_MAX of them, from the shim's pool at the first */
static pfs_spin_t waiting_lock;

void pfs_policy_child(void)
{
	waiting_lock = (pfs_spin_t)PFS_SPIN_INIT;
}

static int wait_add(uint64_t start, uint64_t end, uint64_t alloc_seq, uint32_t stack, int kind,
		    const struct pfs_rule *r)
{
	int ok = 0;
	pfs_spin_lock(&waiting_lock);
	if (!waiting)
		waiting = pfs_pool_alloc(WAITING_MAX * sizeof(*waiting));
	for (unsigned i = 0; waiting && i < WAITING_MAX && !ok; i++) {
		if (waiting[i].end)
			continue;
		waiting[i] = (struct waiting){start, end, alloc_seq, stack, (uint16_t)(r - policy.rules), (uint8_t)kind};
		__atomic_add_fetch(&pfs_policy_waiting, 1, __ATOMIC_RELAXED);
		ok = 1;
	}
	pfs_spin_unlock(&waiting_lock);
	return ok;
}

void pfs_policy_forget_slow(uint64_t addr, uint64_t len)
{
	uint64_t lo, hi;
	pfs_page_span(addr, len, pfs_proc.page_size ? pfs_proc.page_size : 4096, &lo, &hi);
	pfs_spin_lock(&waiting_lock);
	for (unsigned i = 0; waiting && i < WAITING_MAX; i++) {
		struct waiting *w = &waiting[i];
		if (!w->end || w->end <= lo || hi <= w->start)
			continue;
		if (lo <= w->start && w->end <= hi) { /* all of it */
			w->end = 0;
			__atomic_sub_fetch(&pfs_policy_waiting, 1, __ATOMIC_RELAXED);
		} else if (lo <= w->start) {
			w->start = hi;
		} else {
			w->end = lo; /* the part above the hole, if any, is forgotten too: rare, and never wrong */
		}
	}
	pfs_spin_unlock(&waiting_lock);
}

void pfs_policy_opened_slow(struct pfs_thread *t, uint64_t addr, uint64_t len, int prot)
{
	if (!(prot & (PROT_READ | PROT_WRITE)))
		return;
	int saved = errno;
	uint64_t lo, hi;
	pfs_page_span(addr, len, pfs_proc.page_size ? pfs_proc.page_size : 4096, &lo, &hi);
	struct waiting open[8];
	for (unsigned from = 0; from < WAITING_MAX;) {
		/* the reservations the range opens, a few at a time, acted on without the lock (system calls) */
		unsigned n = 0;
		pfs_spin_lock(&waiting_lock);
		for (; waiting && from < WAITING_MAX && n < PFS_ARRAY_SIZE(open); from++)
			if (waiting[from].end > lo && hi > waiting[from].start)
				open[n++] = waiting[from];
		if (!waiting)
			from = WAITING_MAX;
		pfs_spin_unlock(&waiting_lock);
		for (unsigned k = 0; k < n; k++) {
			uint64_t start = lo > open[k].start ? lo : open[k].start, end = hi < open[k].end ? hi : open[k].end;
			const struct pfs_rule *r = &policy.rules[open[k].rule];
			int16_t result[PFS_POLICY_NACTIONS] = {0};
			uint64_t prefaulted = 0, t0 = pfs_now_ns();
			pfs_policy_act(start, end - start, r->actions & WAIT_ACTIONS, (prot & PROT_WRITE) != 0, result,
				       &prefaulted);
			write_policy(t, r, open[k].kind, open[k].stack, open[k].alloc_seq, t0, pfs_now_ns(), result,
				     prefaulted);
			say_failures(result, end - start, open[k].kind);
		}
	}
	errno = saved;
}

/* ---- at the allocation ---------------------------------------------------- */

void pfs_policy_apply_slow(struct pfs_thread *t, int kind, uint32_t stack, uint64_t addr, uint64_t size, int prot,
			   uint64_t alloc_seq)
{
	int saved = errno;
	const struct pfs_rule *r = match(size, kind, stack);
	if (!r) {
		errno = saved;
		return;
	}
	uint64_t page = pfs_proc.page_size ? pfs_proc.page_size : 4096;
	int mapping = kind == PFS_KIND_MMAP || kind == PFS_KIND_MMAP_FILE;
	/* The whole pages inside: a mapping's last page is all its own, a block's is not. */
	uint64_t start = (addr + page - 1) & ~(page - 1);
	uint64_t end = mapping ? (addr + size + page - 1) & ~(page - 1) : (addr + size) & ~(page - 1);
	int anon_writable = kind != PFS_KIND_MMAP_FILE && (!mapping || (prot & PROT_WRITE));
	unsigned actions = r->actions;
	/* A reservation: what populates or locks waits for the mprotect that opens it; the rest acts now. */
	if (kind == PFS_KIND_MMAP && prot == PROT_NONE && (actions & WAIT_ACTIONS) && end > start &&
	    wait_add(start, end, alloc_seq, stack, kind, r)) {
		actions &= ~WAIT_ACTIONS;
		if (!actions) {
			errno = saved;
			return;
		}
	}
	int16_t result[PFS_POLICY_NACTIONS] = {0};
	uint64_t prefaulted = 0, t0 = pfs_now_ns();
	if (end > start)
		pfs_policy_act(start, end - start, actions, anon_writable, result, &prefaulted);
	/* A heap block's pages belong to fast mode's heap tracking: populated ones are its baseline. */
	if (prefaulted && !mapping && kind != PFS_KIND_BRK && pfs_heap_on &&
	    !pfs_alloc_is_mmapped((void *)(uintptr_t)addr))
		pfs_heap_prefaulted(t, addr, pfs_alloc_block_end((void *)(uintptr_t)addr,
								 pfs_alloc_usable((void *)(uintptr_t)addr)),
				    stack, kind, start, end);
	write_policy(t, r, kind, stack, alloc_seq, t0, pfs_now_ns(), result, prefaulted);
	say_failures(result, end > start ? end - start : 0, kind);
	errno = saved;
}
