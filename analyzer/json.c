/* Streaming JSON writer; see json.h. */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

/*
 * A writer's FILE is written by one thread (the report's): stdio's unlocked calls, without a
 * lock taken for each of the millions of pieces of a big report.
 */
#define fputc fputc_unlocked
#define fputs fputs_unlocked
#define fwrite fwrite_unlocked

void pfs_json_init(struct pfs_json *w, FILE *out, unsigned indent)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
	w->indent = indent;
}

/* (whole runs through fwrite, not a character a call: a report of a Python program is 60 MB) */
static void json_newline(struct pfs_json *w, unsigned depth)
{
	static const char line[] = "\n                                                                ";
	size_t n = (size_t)depth * w->indent, chunk = sizeof(line) - 2;

	if (!w->indent)
		return;
	fwrite(line, 1, 1 + (n < chunk ? n : chunk), w->out);
	for (n -= n < chunk ? n : chunk; n; n -= n < chunk ? n : chunk)
		fwrite(line + 1, 1, n < chunk ? n : chunk, w->out);
}

/* Everything a value needs written before it: a comma, a line break, checks. */
static bool json_before_value(struct pfs_json *w)
{
	if (w->err)
		return false;
	if (w->after_key) {
		w->after_key = false;
		return true;
	}
	if (w->depth == 0) {
		if (w->done) {
			w->err = -EINVAL; /* a second top-level value */
			return false;
		}
		return true;
	}
	if (w->open[w->depth - 1] == '{') {
		w->err = -EINVAL; /* object members need a key first */
		return false;
	}
	if (w->items[w->depth - 1])
		fputc(',', w->out);
	w->items[w->depth - 1] = true;
	json_newline(w, w->depth);
	return true;
}

static void json_after_value(struct pfs_json *w)
{
	if (w->depth == 0)
		w->done = true;
}

static void json_begin(struct pfs_json *w, char c)
{
	if (!json_before_value(w))
		return;
	if (w->depth >= PFS_JSON_MAX_DEPTH) {
		w->err = -EINVAL;
		return;
	}
	fputc(c, w->out);
	w->open[w->depth] = c;
	w->items[w->depth] = false;
	w->depth++;
}

static void json_end(struct pfs_json *w, char open, char close)
{
	if (w->err)
		return;
	if (w->depth == 0 || w->open[w->depth - 1] != open || w->after_key) {
		w->err = -EINVAL;
		return;
	}
	w->depth--;
	if (w->items[w->depth])
		json_newline(w, w->depth);
	fputc(close, w->out);
	json_after_value(w);
}

void pfs_json_begin_object(struct pfs_json *w) { json_begin(w, '{'); }
void pfs_json_end_object(struct pfs_json *w) { json_end(w, '{', '}'); }
void pfs_json_begin_array(struct pfs_json *w) { json_begin(w, '['); }
void pfs_json_end_array(struct pfs_json *w) { json_end(w, '[', ']'); }

void pfs_json_key(struct pfs_json *w, const char *key)
{
	if (w->err)
		return;
	if (w->depth == 0 || w->open[w->depth - 1] != '{' || w->after_key || !key) {
		w->err = -EINVAL;
		return;
	}
	if (w->items[w->depth - 1])
		fputc(',', w->out);
	w->items[w->depth - 1] = true;
	json_newline(w, w->depth);
	pfs_json_write_escaped(w->out, key, strlen(key));
	fputs(w->indent ? ": " : ":", w->out);
	w->after_key = true;
}

/*
 * Length of the well-formed UTF-8 sequence at s (Unicode 15, table 3-7:
 * no overlongs, no surrogates, nothing above U+10FFFF), or 0.
 */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n;

	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

void pfs_json_write_escaped(FILE *out, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	fputc('"', out);
	while (i < len) {
		unsigned char c = s[i];
		size_t n;

		for (n = 0; i + n < len && s[i + n] >= 0x20 && s[i + n] < 0x80 && s[i + n] != '"' && s[i + n] != '\\'; n++)
			;
		if (n) {	/* a run of characters written as they are */
			fwrite(s + i, 1, n, out);
			i += n;
			continue;
		}
		if (c == '"' || c == '\\') {
			fputc('\\', out);
			fputc(c, out);
			i++;
		} else if (c < 0x20) {
			switch (c) {
			case '\b': fputs("\\b", out); break;
			case '\f': fputs("\\f", out); break;
			case '\n': fputs("\\n", out); break;
			case '\r': fputs("\\r", out); break;
			case '\t': fputs("\\t", out); break;
			default: fprintf(out, "\\u%04x", c); break;
			}
			i++;
		} else if ((n = utf8_seq_len(s + i, len - i)) != 0) {
			fwrite(s + i, 1, n, out);
			i += n;
		} else {
			/*
			 * A byte that is not part of valid UTF-8 (file names on
			 * Linux are bytes): JSON must be Unicode, so it becomes
			 * U+FFFD, the replacement Unicode recommends.
			 */
			fputs("\\ufffd", out);
			i++;
		}
	}
	fputc('"', out);
}

void pfs_json_string_len(struct pfs_json *w, const char *s, size_t len)
{
	if (!s) {
		pfs_json_null(w);
		return;
	}
	if (!json_before_value(w))
		return;
	pfs_json_write_escaped(w->out, s, len);
	json_after_value(w);
}

void pfs_json_string(struct pfs_json *w, const char *s)
{
	pfs_json_string_len(w, s, s ? strlen(s) : 0);
}

/* v in decimal, as printf's %PRIu64 (with a '-' before it if negative) */
static void write_decimal(FILE *out, bool negative, uint64_t v)
{
	char buf[24];
	char *p = buf + sizeof(buf);

	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	if (negative)
		*--p = '-';
	fwrite(p, 1, (size_t)(buf + sizeof(buf) - p), out);
}

void pfs_json_uint(struct pfs_json *w, uint64_t v)
{
	if (!json_before_value(w))
		return;
	write_decimal(w->out, false, v);
	json_after_value(w);
}

void pfs_json_int(struct pfs_json *w, int64_t v)
{
	if (!json_before_value(w))
		return;
	write_decimal(w->out, v < 0, v < 0 ? -(uint64_t)v : (uint64_t)v);
	json_after_value(w);
}

void pfs_json_bool(struct pfs_json *w, bool v)
{
	if (!json_before_value(w))
		return;
	fputs(v ? "true" : "false", w->out);
	json_after_value(w);
}

void pfs_json_null(struct pfs_json *w)
{
	if (!json_before_value(w))
		return;
	fputs("null", w->out);
	json_after_value(w);
}

void pfs_json_double(struct pfs_json *w, double v)
{
	if (!isfinite(v)) {
		pfs_json_null(w);
		return;
	}
	if (!json_before_value(w))
		return;
	/* %.17g round-trips a double; JSON has no "inf"/"nan", handled above */
	fprintf(w->out, "%.17g", v);
	json_after_value(w);
}

int pfs_json_finish(struct pfs_json *w)
{
	if (!w->err && (w->depth != 0 || !w->done || w->after_key))
		w->err = -EINVAL;
	if (w->err)
		return w->err;
	fputc('\n', w->out);
	if (fflush(w->out) != 0 || ferror(w->out))
		return -EIO;
	return 0;
}

void pfs_json_kv_uint(struct pfs_json *w, const char *key, uint64_t v)
{
	pfs_json_key(w, key);
	pfs_json_uint(w, v);
}

void pfs_json_kv_string(struct pfs_json *w, const char *key, const char *s)
{
	pfs_json_key(w, key);
	pfs_json_string(w, s);
}

void pfs_json_kv_uint_or_null(struct pfs_json *w, const char *key, bool known, uint64_t v)
{
	pfs_json_key(w, key);
	if (known)
		pfs_json_uint(w, v);
	else
		pfs_json_null(w);
}

void pfs_json_kv_double(struct pfs_json *w, const char *key, double v)
{
	pfs_json_key(w, key);
	pfs_json_double(w, v);
}
