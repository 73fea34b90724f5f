/* This process's address space (addrspace.h). */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "addrspace.h"
#include "modules.h"
#include "pfshim/log_format.h"
#include "util.h"

static uint64_t hex(const char **p)
{
	uint64_t v = 0;
	for (;; (*p)++) {
		int c = **p, d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return v;
		v = v << 4 | (uint64_t)d;
	}
}

/* "start-end perms offset dev inode   name": 0, or -1 for a line this does not understand. */
static int parse_line(const char *p, struct pfs_mapping *m)
{
	m->start = hex(&p);
	if (*p++ != '-')
		return -1;
	m->end = hex(&p);
	if (*p++ != ' ' || !p[0] || !p[1] || !p[2] || !p[3])
		return -1;
	m->prot = (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) | (p[2] == 'x' ? PROT_EXEC : 0);
	m->shared = p[3] == 's';
	p += 4;
	while (*p == ' ')
		p++;
	hex(&p); /* offset */
	while (*p == ' ')
		p++;
	while (*p && *p != ' ')
		p++; /* device */
	while (*p == ' ')
		p++;
	m->inode = pfs_dec(&p);
	while (*p == ' ')
		p++;
	pfs_strlcpy(m->name, p, sizeof(m->name));
	return 0;
}

int pfs_addrspace_each(int (*fn)(const struct pfs_mapping *m, const struct pfs_mapping *prev, void *arg), void *arg)
{
	int fd = PFS_NO_EINTR(open("/proc/self/maps", O_RDONLY | O_CLOEXEC));
	if (fd < 0)
		return -errno;
	char buf[4096 + 512];
	size_t have = 0;
	struct pfs_mapping cur, prev;
	memset(&prev, 0, sizeof(prev));
	int stop = 0, err = 0;
	while (!stop) {
		ssize_t n = PFS_NO_EINTR(read(fd, buf + have, sizeof(buf) - 1 - have));
		if (n < 0) {
			err = -errno;
			break;
		}
		have += (size_t)n;
		buf[have] = 0;
		char *line = buf, *nl;
		while (!stop && (nl = strchr(line, '\n')) != NULL) {
			*nl = 0;
			if (parse_line(line, &cur) == 0) {
				stop = fn(&cur, &prev, arg);
				prev = cur;
			}
			line = nl + 1;
		}
		size_t rest = have - (size_t)(line - buf);
		if (n == 0 || rest == sizeof(buf) - 1)
			break; /* the end, or a line longer than the buffer (a path of 4 KiB): the rest is dropped */
		memmove(buf, line, rest);
		have = rest;
	}
	close(fd);
	return err;
}

struct find_ctx {
	uint64_t addr;
	struct pfs_mapping *m, *prev;
	int found;
};

static int find_cb(const struct pfs_mapping *m, const struct pfs_mapping *prev, void *arg)
{
	struct find_ctx *c = arg;
	if (m->end <= c->addr)
		return 0;
	if (m->start <= c->addr) {
		*c->m = *m;
		*c->prev = *prev;
		c->found = 1;
	}
	return 1;
}

int pfs_addrspace_find(uint64_t addr, struct pfs_mapping *m, struct pfs_mapping *prev)
{
	struct find_ctx c = {addr, m, prev, 0};
	int err = pfs_addrspace_each(find_cb, &c);
	return err ? err : c.found ? 0 : -ENOENT;
}

struct image_end {
	uint64_t addr, end;
};

static int image_end_fn(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct image_end *c = arg;
	uint64_t start, end;
	(void)size;
	pfs_module_range(info, &start, &end);
	if (start <= c->addr && c->addr < end) {
		c->end = end;
		return 1;
	}
	return 0;
}

/* The end of the memory image (its segments' sizes in memory, to a page) of the object mapped at addr; 0: none. */
static uint64_t object_image_end(uint64_t addr)
{
	struct image_end c = {addr, 0};
	dl_iterate_phdr(image_end_fn, &c);
	uint64_t page = (uint64_t)getpagesize();
	return (c.end + page - 1) & ~(page - 1);
}

int pfs_addrspace_kind(const struct pfs_mapping *m, const struct pfs_mapping *prev, int at_start, uint64_t *end)
{
	*end = m->end;
	if (m->shared || !(m->prot & PROT_WRITE))
		return 0;
	if (!strcmp(m->name, "[stack]"))
		return PFS_KIND_STACK;
	if (!strcmp(m->name, "[heap]"))
		return at_start ? PFS_KIND_PRESTART : 0;
	if (m->inode)
		return PFS_KIND_DATA; /* a private writable mapping of a file: an object's .data */
	if (m->name[0])
		return 0; /* [vvar] and the like */
	/*
	 * The .bss past an object's last file page lies right after its
	 * writable file mapping, and ends where the object's memory image
	 * does: the kernel merges the anonymous mapping made next (the loader's
	 * static TLS, a library's own) with it, and that is not the object's
	 * (postgres's children: 4 copies a child charged to libldap's data).
	 * Asked of the loader at the start only: later a pass asks, holding
	 * the regions lock, which a thread in dlopen may wait for while it
	 * holds the loader's.
	 */
	if (prev->end == m->start && prev->inode && (prev->prot & PROT_WRITE) && !prev->shared) {
		uint64_t image_end = at_start ? object_image_end(prev->start) : m->end;
		if (image_end > m->start) {
			if (image_end < m->end)
				*end = image_end;
			return PFS_KIND_DATA;
		}
	}
	/*
	 * Threads' stacks are known from pthread_create, not guessed from the
	 * maps: the kernel merges neighbouring anonymous mappings, so a stack
	 * and the memory next to it may read as one.
	 */
	return at_start ? PFS_KIND_PRESTART : PFS_KIND_UNHOOKED;
}
