/* Python frames of a site's stack (pyframes.h). */
#include "pyframes.h"

#include <inttypes.h>
#include <string.h>

void pfs_pyframe_resolve(const struct pfs_proc *p, uint64_t v, struct pfs_rframe *f, FILE *key)
{
	const struct pfs_pycode *c = pfs_model_pycode(p, pfs_pyframe_code(v));

	*f = (struct pfs_rframe){.python = true, .line = pfs_pyframe_line(v)};
	if (!c) {
		fprintf(key, "|py?%s:%" PRIu32 ":%u", p->log_path, pfs_pyframe_code(v), f->line);
		return;
	}
	f->function = c->name;
	f->source_path = c->file;
	f->file = pfs_an_basename(c->file);
	/* lengths first: a file or a name cannot pass for another's */
	fprintf(key, "|py:%zu:%s:%zu:%s:%" PRIu32 ":%u", strlen(c->file), c->file, strlen(c->name), c->name,
		c->first_line, f->line);
}
