/*
 * `pfshim report --format pprof`: a gzipped profile.proto, the format of
 * github.com/google/pprof (proto/profile.proto), which `pprof`, `go tool
 * pprof`, speedscope and most profiling UIs read.
 *
 * Sample types, in this order: first_touch_faults (faults), cow_faults
 * (faults), allocations (count), bytes (bytes); the default is the first
 * (pprof opens on the last one otherwise), allocations when the run has no
 * faults.  One Sample per site per process, leaf (frames[0], the
 * allocator's caller) first, labelled `pid` (number), `command` and `kind`
 * (strings); every process goes in the one profile.  --top keeps the run's
 * top sites, --depth the frames up to that far below the label.
 * Locations are one per (module, address): the inlined frames of a return
 * address become its Line entries, innermost first.  Functions are one per
 * (name, file), the name "module+0xoff" or "0xaddr" where no symbol exists.
 *
 * The protobuf is encoded by hand (varints and length-delimited fields): the
 * message set is small and fixed, and a library would be a dependency for
 * ~100 lines.  Field numbers are profile.proto's.
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>
#include <zlib.h>

/* profile.proto field numbers */
enum {
	PROFILE_SAMPLE_TYPE = 1, PROFILE_SAMPLE = 2, PROFILE_MAPPING = 3, PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5, PROFILE_STRING_TABLE = 6, PROFILE_DURATION_NANOS = 10,
	PROFILE_DEFAULT_SAMPLE_TYPE = 14,
	VALUE_TYPE_TYPE = 1, VALUE_TYPE_UNIT = 2,
	SAMPLE_LOCATION_ID = 1, SAMPLE_VALUE = 2, SAMPLE_LABEL = 3,
	LABEL_KEY = 1, LABEL_STR = 2, LABEL_NUM = 3, LABEL_NUM_UNIT = 4,
	MAPPING_ID = 1, MAPPING_MEMORY_START = 2, MAPPING_MEMORY_LIMIT = 3,
	MAPPING_FILE_OFFSET = 4, MAPPING_FILENAME = 5, MAPPING_BUILD_ID = 6,
	MAPPING_HAS_FUNCTIONS = 7, MAPPING_HAS_FILENAMES = 8, MAPPING_HAS_LINE_NUMBERS = 9,
	MAPPING_HAS_INLINE_FRAMES = 10,
	LOCATION_ID = 1, LOCATION_MAPPING_ID = 2, LOCATION_ADDRESS = 3, LOCATION_LINE = 4,
	LINE_FUNCTION_ID = 1, LINE_LINE = 2,
	FUNCTION_ID = 1, FUNCTION_NAME = 2, FUNCTION_SYSTEM_NAME = 3, FUNCTION_FILENAME = 4,
};

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

/* A growable byte buffer; `oom` sticks, checked once at the end. */
struct pb {
	uint8_t *buf;
	size_t len, cap;
	bool oom;
};

static void pb_put(struct pb *b, const void *p, size_t n)
{
	if (b->oom || !n)
		return;
	if (pfs_an_reserve((void **)&b->buf, &b->cap, b->len + n, 1)) {
		b->oom = true;
		return;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
}

static void pb_varint(struct pb *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	do {
		tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	pb_put(b, tmp, n);
}

static void pb_key(struct pb *b, unsigned field, unsigned wire)
{
	pb_varint(b, (uint64_t)field << 3 | wire);
}

/* A scalar field; proto3 leaves zeros out.  int64s go as their two's complement. */
static void pb_uint(struct pb *b, unsigned field, uint64_t v)
{
	if (!v)
		return;
	pb_key(b, field, WIRE_VARINT);
	pb_varint(b, v);
}

static void pb_bytes(struct pb *b, unsigned field, const void *p, size_t n)
{
	pb_key(b, field, WIRE_LEN);
	pb_varint(b, n);
	pb_put(b, p, n);
}

/* An embedded message `m` as field `field` of `b`; `m` is emptied for reuse. */
static void pb_msg(struct pb *b, unsigned field, struct pb *m)
{
	if (m->oom)
		b->oom = true;
	pb_bytes(b, field, m->buf, m->len);
	m->len = 0;
	m->oom = false;
}

/* A key -> id table: strings, functions, locations, mappings. */
struct intern {
	char *key;
	uint64_t id;
	UT_hash_handle hh;
};

struct pprof {
	struct pb prof;		/* the Profile message, string table last */
	struct pb msg, sub;	/* scratch: one message, one message inside it */
	struct intern *strings, *funcs, *locs, *maps;
	const char **strtab;	/* by index: the keys of `strings` */
	size_t nstr, strtab_cap;
	uint64_t nfuncs, nlocs, nmaps;
};

/* id of `key` in `*t` (0: out of memory); *fresh says it was just added. */
static uint64_t intern(struct pprof *pp, struct intern **t, uint64_t *count, const char *key,
		       bool *fresh)
{
	struct intern *e;

	*fresh = false;
	HASH_FIND_STR(*t, key, e);
	if (e)
		return e->id;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->key = strdup(key))) {
		free(e);
		pp->prof.oom = true;
		return 0;
	}
	e->id = ++*count;
	HASH_ADD_KEYPTR(hh, *t, e->key, strlen(e->key), e);
	*fresh = true;
	return e->id;
}

/* Index of `s` in the string table; "" is always 0. */
static uint64_t str(struct pprof *pp, const char *s)
{
	uint64_t n = pp->nstr, id;
	bool fresh;

	if (!s)
		s = "";
	id = intern(pp, &pp->strings, &n, s, &fresh);
	if (!id)
		return 0;
	if (fresh) {
		struct intern *e;

		if (pfs_an_reserve((void **)&pp->strtab, &pp->strtab_cap, pp->nstr + 1,
				   sizeof(*pp->strtab))) {
			pp->prof.oom = true;
			return 0;
		}
		HASH_FIND_STR(pp->strings, s, e);
		pp->strtab[pp->nstr++] = e->key;
	}
	return id - 1;	/* ids count from 1, the table from 0 */
}

static void free_table(struct intern **t)
{
	struct intern *e, *tmp;

	HASH_ITER(hh, *t, e, tmp) {
		HASH_DEL(*t, e);
		free(e->key);
		free(e);
	}
}

static void value_type(struct pprof *pp, unsigned field, const char *type, const char *unit)
{
	pb_uint(&pp->msg, VALUE_TYPE_TYPE, str(pp, type));
	pb_uint(&pp->msg, VALUE_TYPE_UNIT, str(pp, unit));
	pb_msg(&pp->prof, field, &pp->msg);
}

/* The module record of `path` in the process that holds `addr`, for its range and build-id. */
static const struct pfs_module *find_module(const struct pfs_proc *p, const char *path,
					    uint64_t addr)
{
	const struct pfs_module *any = NULL;

	for (size_t i = 0; i < p->nmodules; i++) {
		const struct pfs_module *m = &p->modules[i];

		if (!m->path || strcmp(m->path, path))
			continue;
		if (addr >= m->start && addr < m->end)
			return m;
		any = m;
	}
	return any;
}

/*
 * One Mapping per loaded object: its path and run-time range (processes
 * forked from one another share them).  0 for a frame in no known module.
 */
static uint64_t mapping(struct pprof *pp, const struct pfs_proc *p, const struct pfs_rframe *fr)
{
	const struct pfs_module *m;
	uint64_t start = 0, end = 0, id;
	char key[4096 + 64], hex[2 * PFS_BUILD_ID_MAX + 1] = "";
	bool fresh;

	if (!fr->module_path)
		return 0;
	m = find_module(p, fr->module_path, fr->address);
	if (m) {
		start = m->start;
		end = m->end;
		for (unsigned i = 0; i < m->build_id_len && i < PFS_BUILD_ID_MAX; i++)
			snprintf(hex + 2 * i, 3, "%02x", m->build_id[i]);
	}
	snprintf(key, sizeof(key), "%s|%" PRIx64 "|%" PRIx64, fr->module_path, start, end);
	id = intern(pp, &pp->maps, &pp->nmaps, key, &fresh);
	if (!fresh)
		return id;
	pb_uint(&pp->msg, MAPPING_ID, id);
	pb_uint(&pp->msg, MAPPING_MEMORY_START, start);
	pb_uint(&pp->msg, MAPPING_MEMORY_LIMIT, end);
	/* pprof: file offset = address - memory_start + file_offset; ours is address - bias */
	if (m && m->start >= m->base)
		pb_uint(&pp->msg, MAPPING_FILE_OFFSET, m->start - m->base);
	pb_uint(&pp->msg, MAPPING_FILENAME, str(pp, fr->module_path));
	pb_uint(&pp->msg, MAPPING_BUILD_ID, str(pp, hex));
	/* every location has a name (the symbol or module+0xoff): pprof must not re-symbolize */
	pb_uint(&pp->msg, MAPPING_HAS_FUNCTIONS, 1);
	pb_uint(&pp->msg, MAPPING_HAS_FILENAMES, 1);
	pb_uint(&pp->msg, MAPPING_HAS_LINE_NUMBERS, 1);
	pb_uint(&pp->msg, MAPPING_HAS_INLINE_FRAMES, 1);
	pb_msg(&pp->prof, PROFILE_MAPPING, &pp->msg);
	return id;
}

/*
 * The run's first program as mapping 1: profile.proto's "mapping[0] will be
 * the main binary" (pprof names the profile after it: "File: libstdc++.so.6"
 * for a C++ program whose first frame was operator new).
 */
static void main_mapping(struct pprof *pp, const struct pfs_report *rep)
{
	const struct pfs_proc *first = NULL;

	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_proc *p = rep->procs[i].proc;

		if (p->exe && (!first || p->start_ns < first->start_ns))
			first = p;
	}
	const struct pfs_module *m = first ? find_module(first, first->exe, 0) : NULL;
	if (m) {
		struct pfs_rframe fr = {.module_path = first->exe, .address = m->start};

		mapping(pp, first, &fr);
	}
}

static uint64_t function(struct pprof *pp, const struct pfs_rframe *fr)
{
	char name[512], key[128];
	uint64_t name_idx, sys_idx, file_idx, id;
	bool fresh;

	pfs_report_frame_name(fr, name, sizeof(name));
	name_idx = str(pp, name);
	/* system_name: the symbol as the object spells it (mangled) */
	sys_idx = fr->symbol ? str(pp, fr->symbol) : name_idx;
	file_idx = str(pp, fr->source_path);
	snprintf(key, sizeof(key), "%" PRIu64 "|%" PRIu64 "|%" PRIu64, name_idx, sys_idx, file_idx);
	id = intern(pp, &pp->funcs, &pp->nfuncs, key, &fresh);
	if (!fresh)
		return id;
	pb_uint(&pp->msg, FUNCTION_ID, id);
	pb_uint(&pp->msg, FUNCTION_NAME, name_idx);
	pb_uint(&pp->msg, FUNCTION_SYSTEM_NAME, sys_idx);
	pb_uint(&pp->msg, FUNCTION_FILENAME, file_idx);
	pb_msg(&pp->prof, PROFILE_FUNCTION, &pp->msg);
	return id;
}

/*
 * The Location of frames[0..n): one return address, its inlined frames
 * innermost first and the real function last (symbolize.h's order, which is
 * also the order profile.proto wants for Location.line).
 */
static uint64_t location(struct pprof *pp, const struct pfs_proc *p,
			 const struct pfs_rframe *frames, size_t n)
{
	const struct pfs_rframe *fr = &frames[0];
	char key[4096 + 64];
	uint64_t id, map_id, *fids;
	bool fresh;

	if (fr->python)	/* no address: one location per function and line */
		snprintf(key, sizeof(key), "py|%s|%s|%u", fr->source_path ? fr->source_path : "",
			 fr->function ? fr->function : "", fr->line);
	else
		snprintf(key, sizeof(key), "%s|%" PRIx64 "|%" PRIx64,
			 fr->module_path ? fr->module_path : "", fr->address, fr->offset);
	id = intern(pp, &pp->locs, &pp->nlocs, key, &fresh);
	if (!fresh)
		return id;
	/* mappings and functions go to the profile first: `msg` is free again after each */
	map_id = mapping(pp, p, fr);
	fids = calloc(n, sizeof(*fids));
	if (!fids) {
		pp->prof.oom = true;
		return id;
	}
	for (size_t i = 0; i < n; i++)
		fids[i] = function(pp, &frames[i]);
	pb_uint(&pp->msg, LOCATION_ID, id);
	pb_uint(&pp->msg, LOCATION_MAPPING_ID, map_id);
	pb_uint(&pp->msg, LOCATION_ADDRESS, fr->address);
	for (size_t i = 0; i < n; i++) {
		pb_uint(&pp->sub, LINE_FUNCTION_ID, fids[i]);
		pb_uint(&pp->sub, LINE_LINE, frames[i].line);
		pb_msg(&pp->msg, LOCATION_LINE, &pp->sub);
	}
	free(fids);
	pb_msg(&pp->prof, PROFILE_LOCATION, &pp->msg);
	return id;
}

static void label(struct pprof *pp, const char *key, const char *s, uint64_t num)
{
	pb_uint(&pp->sub, LABEL_KEY, str(pp, key));
	if (s)
		pb_uint(&pp->sub, LABEL_STR, str(pp, s));
	else
		pb_uint(&pp->sub, LABEL_NUM, num);
	pb_msg(&pp->msg, SAMPLE_LABEL, &pp->sub);
}

/* A numeric label with its unit ("bytes", "nanoseconds"): pprof -tags shows them per sample. */
static void num_label(struct pprof *pp, const char *key, uint64_t num, const char *unit)
{
	pb_uint(&pp->sub, LABEL_KEY, str(pp, key));
	pb_uint(&pp->sub, LABEL_NUM, num);
	pb_uint(&pp->sub, LABEL_NUM_UNIT, str(pp, unit));
	pb_msg(&pp->msg, SAMPLE_LABEL, &pp->sub);
}

/* The site's evidence (docs/advisor.md) where it has allocations of its own. */
static void evidence_labels(struct pprof *pp, const struct pfs_evidence *e)
{
	if (!e || !e->tracked_allocs)
		return;
	num_label(pp, "requested_bytes", e->requested_bytes, "bytes");
	num_label(pp, "touched_bytes", e->tracked_touched_pages * e->page_size, "bytes");
	num_label(pp, "lifetime_ns", e->lifetime_ns, "nanoseconds");
	if (e->timed_allocs)
		num_label(pp, "first_touch_after_ns", e->first_touch_hi_ns, "nanoseconds");
}

static void sample(struct pprof *pp, const struct pfs_rproc *rp, const struct pfs_rsite *rs,
		   unsigned depth)
{
	const struct pfs_site *s = rs->site;
	const uint64_t values[] = {s->first_touch_faults, s->cow_faults, s->allocations,
				   s->bytes_allocated};
	size_t end = pfs_report_depth_end(rs, depth);
	struct pb ids = {0};

	/* locations (and their functions, mappings) first, one per return address */
	for (size_t i = 0; i < end;) {
		size_t n = 1;

		while (i + n - 1 < end - 1 && rs->frames[i + n - 1].inlined &&
		       rs->frames[i + n].address == rs->frames[i].address)
			n++;
		pb_varint(&ids, location(pp, rp->proc, &rs->frames[i], n));
		i += n;
	}
	if (ids.oom)
		pp->prof.oom = true;
	/* packed repeated fields: one length-delimited run of varints */
	pb_bytes(&pp->msg, SAMPLE_LOCATION_ID, ids.buf, ids.len);
	free(ids.buf);
	pb_key(&pp->msg, SAMPLE_VALUE, WIRE_LEN);
	{
		struct pb v = {0};

		for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
			pb_varint(&v, values[i]);
		pb_varint(&pp->msg, v.len);
		pb_put(&pp->msg, v.buf, v.len);
		if (v.oom)
			pp->prof.oom = true;
		free(v.buf);
	}
	label(pp, "pid", NULL, rp->proc->pid);
	label(pp, "command", rp->proc->command ? rp->proc->command : "?", 0);
	label(pp, "kind", pfs_kind_name(s->key.kind), 0);
	{
		char site[512];

		pfs_report_site_label(rs, site, sizeof(site));
		label(pp, "site", site, 0);
	}
	evidence_labels(pp, rp->evidence ? &rp->evidence[rs - rp->sites] : NULL);
	pb_msg(&pp->prof, PROFILE_SAMPLE, &pp->msg);
}

/* The whole run's span: first start to last end, 0 when no process says when it ended. */
static uint64_t duration(const struct pfs_report *rep)
{
	uint64_t first = UINT64_MAX, last = 0;

	for (size_t i = 0; i < rep->nprocs; i++) {
		const struct pfs_proc *p = rep->procs[i].proc;

		if (p->start_ns && p->start_ns < first)
			first = p->start_ns;
		if (p->end_ns > last)
			last = p->end_ns;
	}
	return last > first && first != UINT64_MAX ? last - first : 0;
}

/* gzip (RFC 1952, mtime 0: the same report gives the same bytes) of `in` to `out`. */
static int gzip_write(FILE *out, const uint8_t *in, size_t len)
{
	z_stream z = {0};
	uint8_t *buf;
	uLong cap;
	int rc = 0;

	/* windowBits 15 + 16: zlib writes the gzip wrapper, not its own */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	cap = deflateBound(&z, len);
	buf = malloc(cap);
	if (!buf) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	if (len > UINT32_MAX || deflate(&z, Z_FINISH) != Z_STREAM_END)
		rc = -ENOMEM;
	else if (fwrite(buf, 1, z.total_out, out) != z.total_out)
		rc = -EIO;
	deflateEnd(&z);
	free(buf);
	return rc;
}

int pfs_report_pprof(const struct pfs_report *rep, FILE *out, const struct pfs_report_opts *o)
{
	struct pprof pp = {0};
	int rc;

	str(&pp, "");	/* string_table[0] must be "" */
	value_type(&pp, PROFILE_SAMPLE_TYPE, "first_touch_faults", "faults");
	value_type(&pp, PROFILE_SAMPLE_TYPE, "cow_faults", "faults");
	value_type(&pp, PROFILE_SAMPLE_TYPE, "allocations", "count");
	value_type(&pp, PROFILE_SAMPLE_TYPE, "bytes", "bytes");
	/* pprof's default is the last type: name it (off mode, or nothing touched: what there is) */
	pb_uint(&pp.prof, PROFILE_DEFAULT_SAMPLE_TYPE,
		str(&pp, pfs_report_has_faults(rep) ? "first_touch_faults" : "allocations"));
	pb_uint(&pp.prof, PROFILE_DURATION_NANOS, duration(rep));
	main_mapping(&pp, rep);
	for (size_t i = 0; i < rep->nprocs; i++)
		for (size_t j = 0; j < rep->procs[i].nsites; j++)
			if (!o || pfs_report_in_top(&rep->procs[i].sites[j], o->top))
				sample(&pp, &rep->procs[i], &rep->procs[i].sites[j], o ? o->depth : 0);
	for (size_t i = 0; i < pp.nstr; i++)
		pb_bytes(&pp.prof, PROFILE_STRING_TABLE, pp.strtab[i], strlen(pp.strtab[i]));
	if (pp.prof.oom || pp.msg.oom || pp.sub.oom)
		rc = -ENOMEM;
	else
		rc = gzip_write(out, pp.prof.buf, pp.prof.len);
	if (!rc && (fflush(out) != 0 || ferror(out)))
		rc = -EIO;
	free(pp.prof.buf);
	free(pp.msg.buf);
	free(pp.sub.buf);
	free(pp.strtab);
	free_table(&pp.strings);
	free_table(&pp.funcs);
	free_table(&pp.locs);
	free_table(&pp.maps);
	return rc;
}
