/*
 * CPython's frames beside the C stack (python.h).
 *
 * What is read, per CPython version (the structures of its headers:
 * Include/cpython/pystate.h, Include/internal/pycore_frame.h,
 * Include/cpython/code.h, Include/cpython/unicodeobject.h):
 *
 *   the thread state -> (3.11, 3.12: its _PyCFrame ->) the top frame;
 *   _PyInterpreterFrame: f_code (3.13: f_executable), previous,
 *     prev_instr (3.13: instr_ptr, the same unit for the line), owner;
 *   PyCodeObject: co_filename, co_qualname, co_firstlineno, co_linetable
 *     (the location table, Objects/locations.md), its code units;
 *   str: compact objects, ASCII in place or their cached UTF-8.
 *
 * Which eval call runs which frames: in 3.11 each call of
 * _PyEval_EvalFrameDefault keeps a _PyCFrame on its own C stack, whose
 * current_frame is the top of the frames it runs, down to the one marked
 * is_entry; from 3.12 each call pushes an entry frame on its own C stack
 * (owner FRAME_OWNED_BY_CSTACK) below the frames it runs.  Either address
 * lies in that call's C stack frame: the C frame holding it (found once
 * with stack pointers, then known by its return address) is replaced by
 * the group's Python frames.  No symbol of the interpreter is needed for
 * that (Debian's python3 is stripped, and its eval loop has cold parts
 * apart).
 *
 * Why plain loads are safe: only the thread that holds the GIL changes its
 * frame chain, and this thread holds it and is inside the shim; the chain
 * is linked before a call can allocate (frames are initialised, then
 * pushed).  Every object read is checked for its type and every pointer
 * for alignment; what does not check out ends the walk (the stack is
 * marked truncated): left out, never guessed.
 */
#include <dlfcn.h>
#include <libunwind.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "dynsym.h"
#include "log.h"
#include "modules.h"
#include "msg.h"
#include "proc.h"
#include "python.h"
#include "thread.h"

#include <uthash.h>

/*
 * Offsets in bytes, those of default LP64 builds, from each version's
 * headers (tests/integration/python.sh reads the interpreters it finds).
 */
struct layout {
	unsigned minor;				/* CPython 3.minor */
	int16_t ts_top;				/* thread state: its _PyCFrame, or (cf_top < 0) the top frame */
	int16_t cf_top, cf_prev;		/* _PyCFrame: current_frame, previous */
	int16_t fr_code, fr_prev, fr_instr, fr_owner;
	int16_t fr_entry;			/* is_entry (3.11), -1 */
	int8_t owner_cstack;			/* the owner of entry frames (3.12+), -1 */
	int16_t co_first, co_file, co_qualname, co_lines, co_code, co_traceable;
	int16_t str_ascii, str_compact, str_utf8, str_utf8_len; /* data after PyASCIIObject, after PyCompactUnicodeObject */
};

static const struct layout layouts[] = {
	{11, 56, 8, 16, 32, 48, 56, 69, 68, -1, 72, 112, 128, 136, 184, 168, 48, 72, 56, 48},
	{12, 56, 0, 8, 0, 8, 56, 70, -1, 3, 68, 112, 128, 136, 192, 176, 40, 56, 48, 40},
	{13, 72, -1, -1, 0, 8, 56, 70, -1, 3, 68, 112, 128, 136, 200, 184, 40, 56, 48, 40},
};

/* The same in every supported version (PyObject_HEAD without Py_TRACE_REFS, PyVarObject, str's state bits). */
#define OB_TYPE 8
#define OB_SIZE 16
#define BYTES_DATA 32
#define STR_LENGTH 16
#define STR_STATE 32
#define STR_KIND(state) ((state) >> 2 & 7)
#define STR_COMPACT 0x20u
#define STR_ASCII 0x40u
#define OWNED_BY_GENERATOR 1

#define FILE_MAX 4096u		/* bytes of a file name kept */
#define NAME_MAX_ 1024u		/* bytes of a qualified name kept */
#define CONVERT_MAX 512u	/* a non-ASCII name without cached UTF-8: bytes converted */
#define WALK_MAX 4096u		/* frames walked at most (a chain that loops ends here) */
#define GROUPS_MAX 96u

int pfs_python_on;
static const struct layout *L;
static void *(*py_this_state)(void);	/* PyGILState_GetThisThreadState */
static void *(*py_current_state)(void);	/* _PyThreadState_UncheckedGet, PyThreadState_GetUnchecked */
static uintptr_t code_type, str_type, bytes_type;

/* ---- plain loads ------------------------------------------------------------ */

static inline uintptr_t ld(uintptr_t a)
{
	return *(const uintptr_t *)a;
}

static inline int ptr_ok(uintptr_t p)
{
	return p >= 4096 && !(p & 7) && p < (1ull << 56);
}

static inline int obj_is(uintptr_t o, uintptr_t type)
{
	return ptr_ok(o) && ld(o + OB_TYPE) == type;
}

/* ---- strings ------------------------------------------------------------ */

struct str {
	const char *p;
	uint32_t len;
};

static uint32_t utf8_put(char *out, uint32_t c)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | (c >> 6 & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (c >> 18 & 7));
	out[1] = (char)(0x80 | (c >> 12 & 0x3f));
	out[2] = (char)(0x80 | (c >> 6 & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* A str object's text as UTF-8, at most `cap` bytes: in place, or converted into buf. 0 or -1. */
static int str_read(uintptr_t o, uint32_t cap, char *buf, struct str *s)
{
	if (!obj_is(o, str_type))
		return -1;
	uint32_t state = *(const uint32_t *)(o + STR_STATE);
	int64_t n = (int64_t)ld(o + STR_LENGTH);
	if (!(state & STR_COMPACT) || n < 0)
		return -1; /* a legacy string: its data elsewhere (code objects hold compact ones) */
	if (state & STR_ASCII) {
		s->p = (const char *)(o + (uintptr_t)L->str_ascii);
		s->len = n > cap ? cap : (uint32_t)n;
		return 0;
	}
	uintptr_t utf8 = ld(o + (uintptr_t)L->str_utf8);
	if (utf8) {
		int64_t len = (int64_t)ld(o + (uintptr_t)L->str_utf8_len);
		if (len < 0)
			return -1;
		s->p = (const char *)utf8;
		s->len = len > cap ? cap : (uint32_t)len;
		return 0;
	}
	unsigned kind = STR_KIND(state);
	if (kind != 1 && kind != 2 && kind != 4)
		return -1;
	const uint8_t *d = (const uint8_t *)(o + (uintptr_t)L->str_compact);
	uint32_t out = 0;
	for (int64_t i = 0; i < n && out + 4 <= CONVERT_MAX; i++) {
		uint32_t c = kind == 1 ? d[i] : kind == 2 ? ((const uint16_t *)d)[i] : ((const uint32_t *)d)[i];
		out += utf8_put(buf + out, c > 0x10ffff ? 0xfffd : c);
	}
	s->p = buf;
	s->len = out;
	return 0;
}

/* ---- lines -------------------------------------------------------------- */

/* One varint of the location table: 6 bits a byte, bit 6 set on all but the last. */
static uint32_t lt_varint(const uint8_t **p, const uint8_t *end)
{
	uint32_t v = 0;
	for (unsigned shift = 0; *p < end && shift < 32; shift += 6) {
		uint8_t b = *(*p)++;
		v |= (uint32_t)(b & 63) << shift;
		if (!(b & 64))
			break;
	}
	return v;
}

/*
 * The line of code unit `unit` from a location table (Objects/locations.md):
 * entries of a first byte (bit 7 set, a code in bits 3-6, units - 1 in bits
 * 0-2) and bytes with bit 7 clear; the codes say how the line moves from
 * the previous entry's (from co_firstlineno).  0 when the unit has none.
 */
static uint32_t line_of(const uint8_t *p, const uint8_t *end, int first, int64_t unit)
{
	int64_t at = 0;
	int64_t line = first;
	while (p < end) {
		uint8_t b = *p++;
		if (!(b & 0x80))
			return 0; /* not an entry's first byte: not a table we know */
		unsigned code = b >> 3 & 15, units = (b & 7) + 1u;
		if (code == 13 || code == 14) { /* no columns / long form: a signed varint first */
			uint32_t v = lt_varint(&p, end);
			line += v & 1 ? -(int64_t)(v >> 1) : (int64_t)(v >> 1);
		} else if (code >= 10 && code <= 12) { /* one-line forms */
			line += code - 10;
		}
		if (unit < at + units)
			return code == 15 || line <= 0 || line > UINT32_MAX ? 0 : (uint32_t)line;
		at += units;
		while (p < end && !(*p & 0x80))
			p++;
	}
	return 0;
}

/* ---- functions: interned once, a PYCODE record each ---------------------- */

struct pycode {
	UT_hash_handle hh;
	uint64_t hash;
	struct pycode *next;	/* another function of the same hash */
	uint32_t id, first_line;
	uint32_t file_len, name_len;
	const char *base;	/* the file's base name, in text */
	const char *plain;	/* the name after the qualified name's last '.', in text */
	char text[];		/* file NUL name NUL */
};

static pfs_spin_t codes_lock = PFS_SPIN_INIT;
static struct pycode *codes;
static uint32_t codes_next = 1;

#define BY_ID_CHUNK 1024u
#define BY_ID_CHUNKS 2048u
static struct pycode **by_id[BY_ID_CHUNKS];

static void by_id_set(struct pycode *c)
{
	uint32_t k = c->id / BY_ID_CHUNK;
	if (k >= BY_ID_CHUNKS)
		return;
	if (!by_id[k]) {
		struct pycode **chunk = pfs_arena_alloc(BY_ID_CHUNK * sizeof(*chunk));
		if (!chunk)
			return;
		__atomic_store_n(&by_id[k], chunk, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&by_id[k][c->id % BY_ID_CHUNK], c, __ATOMIC_RELEASE);
}

static const struct pycode *code_by_id(uint32_t id)
{
	uint32_t k = id / BY_ID_CHUNK;
	struct pycode **chunk = k < BY_ID_CHUNKS ? __atomic_load_n(&by_id[k], __ATOMIC_ACQUIRE) : NULL;
	return chunk ? __atomic_load_n(&chunk[id % BY_ID_CHUNK], __ATOMIC_ACQUIRE) : NULL;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static void emit_code(struct pfs_thread *t, const struct pycode *c)
{
	uint32_t size = PFS_ALIGN8((uint32_t)sizeof(struct pfs_rec_pycode) + c->file_len + c->name_len);
	struct pfs_rec_pycode *r = t ? pfs_rec_begin(&t->w, size) : NULL;
	if (!r)
		return;
	r->seq = pfs_next_seq();
	r->id = c->id;
	r->first_line = c->first_line;
	r->file_len = c->file_len;
	r->name_len = c->name_len;
	memcpy(r + 1, c->text, c->file_len);
	memcpy((char *)(r + 1) + c->file_len, c->text + c->file_len + 1, c->name_len);
	pfs_rec_end(r, PFS_REC_PYCODE, 0, size);
}

static int code_same(const struct pycode *c, uint32_t first, struct str file, struct str name)
{
	return c->first_line == first && c->file_len == file.len && c->name_len == name.len &&
	       !memcmp(c->text, file.p, file.len) && !memcmp(c->text + file.len + 1, name.p, name.len);
}

/* The id of function (file, name, first line), made and logged on first sight; 0 when out of memory. */
static uint32_t code_intern(struct pfs_thread *t, uint32_t first, struct str file, struct str name)
{
	uint64_t h = fnv(fnv(fnv(0xcbf29ce484222325ull, &first, sizeof(first)), file.p, file.len), name.p, name.len);
	struct pycode *head, *c;
	pfs_spin_lock(&codes_lock);
	HASH_FIND(hh, codes, &h, sizeof(h), head);
	for (c = head; c; c = c->next)
		if (code_same(c, first, file, name)) {
			pfs_spin_unlock(&codes_lock);
			return c->id;
		}
	c = pfs_arena_alloc(sizeof(*c) + file.len + name.len + 2);
	if (!c) {
		pfs_spin_unlock(&codes_lock);
		return 0;
	}
	c->hash = h;
	c->id = codes_next++;
	c->first_line = first;
	c->file_len = file.len;
	c->name_len = name.len;
	memcpy(c->text, file.p, file.len);
	memcpy(c->text + file.len + 1, name.p, name.len);
	const char *slash = memrchr(c->text, '/', file.len);
	c->base = slash ? slash + 1 : c->text;
	const char *dot = memrchr(c->text + file.len + 1, '.', name.len);
	c->plain = dot ? dot + 1 : c->text + file.len + 1;
	if (head) {
		c->next = head->next;
		head->next = c;
	} else {
		HASH_ADD(hh, codes, hash, sizeof(c->hash), c);
	}
	by_id_set(c);
	emit_code(t, c); /* under the lock: the record precedes every stack that names it */
	pfs_spin_unlock(&codes_lock);
	return c->id;
}

void pfs_python_rewrite(struct pfs_thread *t)
{
	struct pycode *head, *tmp;
	pfs_spin_lock(&codes_lock);
	HASH_ITER(hh, codes, head, tmp)
	for (const struct pycode *c = head; c; c = c->next)
		emit_code(t, c);
	pfs_spin_unlock(&codes_lock);
}

void pfs_python_lock(void)
{
	pfs_spin_lock(&codes_lock);
}

void pfs_python_unlock(void)
{
	pfs_spin_unlock(&codes_lock);
}

void pfs_python_child(void)
{
	codes_lock = (pfs_spin_t)PFS_SPIN_INIT;
}

unsigned pfs_python_names(uint64_t frame, const char **names, unsigned max, char *text, size_t room,
			  size_t *used)
{
	const struct pycode *c = pfs_is_pyframe(frame) ? code_by_id(pfs_pyframe_code(frame)) : NULL;
	unsigned n = 0;
	if (!c)
		return 0;
	const char *name = c->text + c->file_len + 1;
	if (n < max)
		names[n++] = name;
	if (n < max && c->plain != name)
		names[n++] = c->plain;
	uint32_t line = pfs_pyframe_line(frame);
	const char *files[2] = {c->base, c->text};
	for (unsigned i = 0; i < 2 && line && text; i++) {
		if (i == 1 && c->base == c->text)
			break;
		if (n >= max || *used >= room)
			break;
		int k = snprintf(text + *used, room - *used, "%s:%u", files[i], line);
		if (k < 0 || (size_t)k >= room - *used)
			break;
		names[n++] = text + *used;
		*used += (size_t)k + 1;
	}
	return n;
}

/* ---- the walk ------------------------------------------------------------ */

/* The Python frames one eval call runs; `anchor`: an address in that call's C stack frame (0: unknown). */
struct group {
	uint64_t anchor;
	unsigned first, n;
};

struct walk {
	struct pfs_thread *t;
	uint64_t *frames;	/* Python frames of every group, innermost first */
	unsigned nframes, max;
	struct group groups[GROUPS_MAX];
	unsigned ngroups;	/* one per eval call on the stack, innermost first (some may be empty) */
	int cut;		/* something could not be read or placed: the rest is left out */
	int full;		/* more frames than room: the outer ones left out, the groups still counted */
};

/* The code object of frame f, or 0 when it is none (the walk stops). */
static uintptr_t frame_code(uintptr_t f)
{
	uintptr_t code = ld(f + (uintptr_t)L->fr_code);
	return obj_is(code, code_type) ? code : 0;
}

/* One frame: its function and line, appended to the current group (incomplete frames are skipped, as CPython's own tracebacks do). */
static int frame_add(struct walk *w, uintptr_t f, uintptr_t code)
{
	uintptr_t instr = ld(f + (uintptr_t)L->fr_instr), units = code + (uintptr_t)L->co_code;
	int owner = *(const int8_t *)(f + (uintptr_t)L->fr_owner);
	int traceable = *(const int32_t *)(code + (uintptr_t)L->co_traceable);
	int64_t unit = ((int64_t)instr - (int64_t)units) / 2;
	if (owner != OWNED_BY_GENERATOR && unit < traceable)
		return 0; /* pushed, not started: its caller's line is where the call is */
	if (w->nframes == w->max) {
		w->full = 1;
		return 0;
	}
	int first = *(const int32_t *)(code + (uintptr_t)L->co_first);
	int64_t size = (int64_t)ld(code + OB_SIZE);
	uint32_t line = 0;
	uintptr_t lt = ld(code + (uintptr_t)L->co_lines);
	if (unit < 0)
		line = first > 0 ? (uint32_t)first : 0;
	else if (unit < size && obj_is(lt, bytes_type)) {
		int64_t len = (int64_t)ld(lt + OB_SIZE);
		const uint8_t *p = (const uint8_t *)(lt + BYTES_DATA);
		if (len > 0)
			line = line_of(p, p + len, first, unit);
	}
	char fbuf[CONVERT_MAX], nbuf[CONVERT_MAX];
	struct str file, name;
	if (str_read(ld(code + (uintptr_t)L->co_file), FILE_MAX, fbuf, &file) ||
	    str_read(ld(code + (uintptr_t)L->co_qualname), NAME_MAX_, nbuf, &name))
		return -1;
	uint32_t id = code_intern(w->t, first > 0 ? (uint32_t)first : 0, file, name);
	if (!id)
		return -1;
	w->frames[w->nframes++] = pfs_pyframe(id, line);
	w->groups[w->ngroups].n++;
	return 0;
}

static void group_open(struct walk *w)
{
	w->groups[w->ngroups] = (struct group){.first = w->nframes};
}

/* Closes the current group at its eval call's `anchor`; without one, frames cannot be placed. */
static void group_close(struct walk *w, uint64_t anchor)
{
	struct group *g = &w->groups[w->ngroups];
	g->anchor = anchor;
	if (!anchor && !g->n)
		return;
	w->cut |= !anchor;
	w->ngroups++;
}

/* 3.11: each eval call's _PyCFrame, from the thread's, down to the thread's own root one. */
static void walk_cframes(struct walk *w, uintptr_t ts)
{
	unsigned steps = 0;
	uintptr_t cf = ld(ts + (uintptr_t)L->ts_top);
	for (; ptr_ok(cf); cf = ld(cf + (uintptr_t)L->cf_prev)) {
		if (!ld(cf + (uintptr_t)L->cf_prev))
			return; /* the root _PyCFrame, in the thread state: no eval call's */
		if (w->ngroups == GROUPS_MAX)
			break;
		group_open(w);
		for (uintptr_t f = ld(cf + (uintptr_t)L->cf_top); f; f = ld(f + (uintptr_t)L->fr_prev)) {
			uintptr_t code = ptr_ok(f) && ++steps < WALK_MAX ? frame_code(f) : 0;
			if (!code || frame_add(w, f, code)) {
				group_close(w, cf);
				w->cut = 1;
				return;
			}
			if (*(const uint8_t *)(f + (uintptr_t)L->fr_entry))
				break;
		}
		group_close(w, cf);
	}
	w->cut = 1; /* a _PyCFrame that is none, or too many */
}

/* 3.12, 3.13: the frame chain, cut into groups at each eval call's entry frame. */
static void walk_entries(struct walk *w, uintptr_t ts)
{
	uintptr_t f = ld(ts + (uintptr_t)L->ts_top);
	if (L->cf_top >= 0)
		f = ptr_ok(f) ? ld(f + (uintptr_t)L->cf_top) : 0;
	unsigned steps = 0;
	group_open(w);
	for (; f; f = ld(f + (uintptr_t)L->fr_prev)) {
		if (!ptr_ok(f) || ++steps >= WALK_MAX) {
			w->cut = 1;
			break;
		}
		if (*(const int8_t *)(f + (uintptr_t)L->fr_owner) == L->owner_cstack) {
			group_close(w, f);
			if (w->ngroups == GROUPS_MAX) {
				w->cut = 1;
				return;
			}
			group_open(w);
			continue;
		}
		uintptr_t code = frame_code(f);
		if (!code || frame_add(w, f, code)) {
			w->cut = 1;
			break;
		}
	}
	group_close(w, 0); /* frames below the outermost entry frame: not expected */
}

/* This thread's state when it holds the GIL (PyGILState_Check without its shortcuts), else 0. */
static uintptr_t gil_state(void)
{
	void *cur = py_current_state();
	return cur && cur == py_this_state() ? (uintptr_t)cur : 0;
}

/* ---- where the eval calls are on the C stack -------------------------------- */

/*
 * Return addresses known to be eval calls' own: learned where a group's
 * anchor placed one.  An address is one call instruction of one function,
 * after (never before) the call pushed its anchor, so a C frame at a known
 * address is an eval call with a group.  Lock-free: set once, never cleared.
 */
#define EVAL_IPS 2048u
static uint64_t eval_ips[EVAL_IPS];

static unsigned eval_slot(uint64_t ip)
{
	return (unsigned)((ip * 0x9E3779B97F4A7C15ull) >> 40) & (EVAL_IPS - 1);
}

static int eval_known(uint64_t ip)
{
	for (unsigned k = 0, i = eval_slot(ip); k < 32; k++, i = (i + 1) & (EVAL_IPS - 1)) {
		uint64_t v = __atomic_load_n(&eval_ips[i], __ATOMIC_RELAXED);
		if (v == ip)
			return 1;
		if (!v)
			return 0;
	}
	return 0;
}

static void eval_learn(uint64_t ip)
{
	for (unsigned k = 0, i = eval_slot(ip); k < 32; k++, i = (i + 1) & (EVAL_IPS - 1)) {
		uint64_t v = 0;
		if (__atomic_compare_exchange_n(&eval_ips[i], &v, ip, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED) || v == ip)
			return;
	}
}

/* ---- the stack, put together -------------------------------------------------- */

struct out {
	uint64_t *v;
	unsigned n, max;
	int full;
};

static void put(struct out *o, uint64_t v)
{
	if (o->n < o->max)
		o->v[o->n++] = v;
	else
		o->full = 1;
}

/* The C frame `ip` of an eval call that ran group g: its Python frames, or the frame itself when it ran none yet. */
static void put_eval(struct out *o, const struct walk *w, const struct group *g, uint64_t ip)
{
	if (!g->n)
		put(o, ip);
	for (unsigned k = 0; k < g->n; k++)
		put(o, w->frames[g->first + k]);
}

/*
 * With return addresses alone (unw_backtrace, cheap): when the frames at
 * known eval addresses are as many as the groups, they are every eval call
 * on the stack, in order.  0 when that does not hold.
 */
#define RAW_MAX 256

static int place_by_known(const struct walk *w, const uint64_t *ip, int from, int raw, struct out *o)
{
	unsigned known = 0, kept = 0, g = 0;
	for (int i = from; i < raw; i++)
		known += (unsigned)eval_known(ip[i]);
	if (known != w->ngroups)
		return 0;
	for (int i = from; i < raw; i++) {
		if (eval_known(ip[i]))
			put_eval(o, w, &w->groups[g++], ip[i]);
		else if (kept < PFS_MAX_FRAMES)
			put(o, ip[i]);
		else
			o->full = 1; /* C frames past the limit are left out, Python ones kept in order */
		kept++;
	}
	return 1;
}

/*
 * With stack pointers (unw_step, costly: libunwind masks signals at each
 * step): the C frame i spans [sp[i], sp[i + 1]); the one holding a group's
 * anchor is its eval call, whose return address is learned.
 */
static void place_by_sp(const struct walk *w, struct out *o, int *cut)
{
	uint64_t ip[PFS_MAX_FRAMES + 16], sp[PFS_MAX_FRAMES + 16];
	unw_context_t ctx;
	unw_cursor_t cur;
	int raw = 0, i = 0;
	if (unw_getcontext(&ctx) == 0 && unw_init_local(&cur, &ctx) == 0) {
		do {
			unw_word_t a, b;
			if (unw_get_reg(&cur, UNW_REG_IP, &a) < 0 || unw_get_reg(&cur, UNW_REG_SP, &b) < 0)
				break;
			ip[raw] = a;
			sp[raw] = b;
			raw++;
		} while (raw < (int)PFS_ARRAY_SIZE(ip) && unw_step(&cur) > 0);
	}
	while (i < raw && pfs_addr_in_self((uintptr_t)ip[i]))
		i++;
	unsigned g = 0;
	for (int kept = 0; i < raw && kept < PFS_MAX_FRAMES; i++, kept++) {
		uint64_t lo = sp[i], hi = i + 1 < raw ? sp[i + 1] : lo; /* the outermost frame taken: no known end */
		int eval = 0;
		while (g < w->ngroups && w->groups[g].anchor && w->groups[g].anchor < hi) {
			if (w->groups[g].anchor >= lo && !eval) {
				eval = 1;
				eval_learn(ip[i]);
				put_eval(o, w, &w->groups[g], ip[i]);
			} else { /* below this frame: not expected; its Python frames kept in order */
				for (unsigned k = 0; k < w->groups[g].n; k++)
					put(o, w->frames[w->groups[g].first + k]);
			}
			g++;
		}
		if (!eval)
			put(o, ip[i]);
	}
	*cut |= i < raw || raw == (int)PFS_ARRAY_SIZE(ip);
	/* Groups whose eval call lies beyond the frames taken: outermost, in order. */
	for (*cut |= g < w->ngroups; g < w->ngroups; g++)
		for (unsigned k = 0; k < w->groups[g].n; k++)
			put(o, w->frames[w->groups[g].first + k]);
}

int pfs_python_capture(struct pfs_thread *t, uint64_t *frames, unsigned max, uint16_t *flags)
{
	uintptr_t ts = pfs_python_on ? gil_state() : 0;
	if (!ts)
		return -1;
	uint64_t pyframes[PFS_MAX_FRAMES_PYTHON];
	struct walk w = {.t = t, .frames = pyframes, .max = PFS_ARRAY_SIZE(pyframes)};
	if (L->fr_entry >= 0)
		walk_cframes(&w, ts);
	else
		walk_entries(&w, ts);
	if (!w.nframes)
		return -1;
	struct out o = {.v = frames, .max = max};
	int cut = w.cut, placed = 0;
	if (!cut && !__tsan_acquire) { /* unw_backtrace's cache and TSan: see pfs_unwind_capture */
		uint64_t ip[RAW_MAX];
		int raw = unw_backtrace((void **)ip, RAW_MAX), i = 0;
		while (i < raw && pfs_addr_in_self((uintptr_t)ip[i]))
			i++;
		/* a stack cut short could hide eval calls: only a whole one is placed this way */
		placed = raw < RAW_MAX && place_by_known(&w, ip, i, raw, &o);
	}
	if (!placed) {
		o.n = 0;
		o.full = 0;
		place_by_sp(&w, &o, &cut);
	}
	*flags = (uint16_t)(PFS_STACK_PYTHON | (cut || o.full || w.full ? PFS_STACK_TRUNCATED : 0));
	return (int)o.n;
}

/* ---- start ------------------------------------------------------------------- */

static const struct layout *layout_for(unsigned long hex)
{
	if ((hex >> 24) != 3)
		return NULL;
	for (size_t i = 0; i < PFS_ARRAY_SIZE(layouts); i++)
		if (layouts[i].minor == (hex >> 16 & 0xff))
			return &layouts[i];
	return NULL;
}

void pfs_python_init(void)
{
	if (!pfs_dynsym_maybe("Py_Version") && !pfs_dynsym_maybe("Py_GetVersion"))
		return; /* not CPython, told without dlsym's failure (dynsym.c) */
	const unsigned long *hexp = dlsym(RTLD_DEFAULT, "Py_Version");
	const char *(*get_version)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "Py_GetVersion");
	if (!hexp && !get_version)
		return; /* not CPython */
	char ver[32];
	if (hexp)
		snprintf(ver, sizeof(ver), "%lu.%lu.%lu", *hexp >> 24, *hexp >> 16 & 0xff, *hexp >> 8 & 0xff);
	else
		snprintf(ver, sizeof(ver), "%.*s", (int)strcspn(get_version(), " "), get_version());
	const char *why = NULL;
	L = hexp ? layout_for(*hexp) : NULL;
	py_this_state = (void *(*)(void))dlsym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
	py_current_state = (void *(*)(void))dlsym(RTLD_DEFAULT, "PyThreadState_GetUnchecked");
	if (!py_current_state)
		py_current_state = (void *(*)(void))dlsym(RTLD_DEFAULT, "_PyThreadState_UncheckedGet");
	code_type = (uintptr_t)dlsym(RTLD_DEFAULT, "PyCode_Type");
	str_type = (uintptr_t)dlsym(RTLD_DEFAULT, "PyUnicode_Type");
	bytes_type = (uintptr_t)dlsym(RTLD_DEFAULT, "PyBytes_Type");
	if (!L)
		why = "Python frames are read from CPython 3.11, 3.12 and 3.13";
	else if (dlsym(RTLD_DEFAULT, "_Py_PrintReferences"))
		why = "a build with Py_TRACE_REFS lays its objects out otherwise";
	else if (dlsym(RTLD_DEFAULT, "_Py_MergeZeroLocalRefcount"))
		why = "a free-threaded build lays its objects out otherwise";
	else if (!py_this_state || !py_current_state || !code_type || !str_type || !bytes_type)
		why = "its thread-state functions or type objects are not exported";
	if (why) {
		L = NULL;
		pfs_warn("CPython %s: %s; stacks show C frames only", ver, why);
		return;
	}
	pfs_python_on = 1;
}
