/* Shared by the shim's unit tests: a live log in a temporary directory, and a walk over its records. */
#ifndef SHIM_FIXTURE_H
#define SHIM_FIXTURE_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "modules.h"
#include "msg.h"
#include "proc.h"
#include "sites.h"
#include "thread.h"

static char fixture_dir[64];

/* Starts a process state with an open log, as pfs_core_init would, without the hooks. */
static inline int fixture_open(void)
{
	strcpy(fixture_dir, "/tmp/pfs-unit-XXXXXX");
	if (!mkdtemp(fixture_dir))
		return -1;
	memset(&pfs_proc, 0, sizeof(pfs_proc));
	pfs_proc.enabled = 1;
	pfs_proc.pid = getpid();
	pfs_proc.page_size = 4096;
	struct pfs_thread *t = pfs_thread_get();
	if (!t)
		return -1;
	struct pfs_file_header h;
	pfs_log_header_init(&h, (uint64_t)getpid(), 4096, 0, 0, 0);
	int dfd = open(fixture_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int err = pfs_log_open(&pfs_log_proc, &t->w, dfd, fixture_dir, &h);
	close(dfd);
	return err;
}

static inline void fixture_close(void)
{
	char cmd[128];
	pfs_log_close(&pfs_log_proc);
	/* The log is unmapped: forget the counters that pointed into it, as a forked child does. */
	pfs_sites_fork_child();
	pfs_tls_thread = NULL;
	pfs_proc.enabled = 0;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fixture_dir);
	if (system(cmd) != 0)
		perror("rm");
}

struct walked {
	unsigned char *data;
	size_t len;
};

static inline struct walked fixture_map(const char *path)
{
	struct walked w = {NULL, 0};
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st))
		return w;
	w.len = (size_t)st.st_size;
	w.data = mmap(NULL, w.len, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (w.data == MAP_FAILED)
		w.data = NULL;
	return w;
}

/* Calls fn for each published record; returns how many there were. */
static inline int fixture_walk(struct walked *w, void (*fn)(const struct pfs_rec_hdr *, void *), void *arg)
{
	int n = 0;
	size_t off = sizeof(struct pfs_file_header);
	while (off + sizeof(struct pfs_rec_hdr) <= w->len) {
		const struct pfs_rec_hdr *h = (const void *)(w->data + off);
		size_t block_end = (off / PFS_LOG_BLOCK_SIZE + 1) * PFS_LOG_BLOCK_SIZE;
		if (h->type == 0 || h->size < 8 || off + h->size > block_end) {
			off = block_end;
			continue;
		}
		if (fn)
			fn(h, arg);
		n++;
		off += h->size;
	}
	return n;
}

#endif
