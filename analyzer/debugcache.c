/*
 * Uncompressed copies of separate debug files; see debugcache.h.
 *
 * A copy is the debug file with each SHF_COMPRESSED section inflated by
 * libelf (elf_compress to none, elf_update laying the file out again): the
 * same sections, symbols and notes, so libdw reads it as it would the
 * original.  It is written under a temporary name and renamed into place,
 * so two reports writing it at once, or one killed, leave either nothing
 * or a whole file; on open its build-id note must match the module's.
 */
#include "debugcache.h"

#include "an_common.h"

#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The cache directory into dir, made (with its parents up to ~/.cache) if `make`. */
static bool cache_dir(char *dir, size_t len, bool make)
{
	static const char *const parts[] = {"", "/pfshim", "/pfshim/debuginfo"};
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char base[PATH_MAX];
	int n;

	/* a relative $XDG_CACHE_HOME is to be ignored (XDG Base Directory Specification) */
	if (xdg && xdg[0] == '/')
		n = snprintf(base, sizeof(base), "%s", xdg);
	else if (home && home[0] == '/')
		n = snprintf(base, sizeof(base), "%s/.cache", home);
	else
		return false;
	if (n < 0 || (size_t)n >= sizeof(base))
		return false;
	for (size_t i = 0; i < PFS_AN_ARRAY_SIZE(parts); i++) {
		n = snprintf(dir, len, "%s%s", base, parts[i]);
		if (n < 0 || (size_t)n >= len)
			return false;
		if (make && mkdir(dir, 0700) < 0 && errno != EEXIST)
			return false;
	}
	return true;
}

/* DIR/HEX.debug for the build-id; false when it does not fit. */
static bool cache_path(char *path, size_t len, const unsigned char *id, size_t idlen, bool make)
{
	size_t n;

	if (idlen == 0 || !cache_dir(path, len, make))
		return false;
	n = strlen(path);
	if (n + 1 + 2 * idlen + sizeof(".debug") > len)
		return false;
	path[n++] = '/';
	for (size_t i = 0; i < idlen; i++)
		n += (size_t)sprintf(path + n, "%02x", id[i]);
	memcpy(path + n, ".debug", sizeof(".debug"));
	return true;
}

int pfs_debugcache_open(const unsigned char *build_id, size_t len, char **path)
{
	char name[PATH_MAX];
	const void *id;
	bool ok = false;
	Elf *elf;
	int fd;

	*path = NULL;
	if (!cache_path(name, sizeof(name), build_id, len, false))
		return -1;
	fd = open(name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf) {
		ssize_t n = dwelf_elf_gnu_build_id(elf, &id);

		ok = n > 0 && (size_t)n == len && !memcmp(id, build_id, len);
		elf_end(elf);
	}
	if (!ok || !(*path = strdup(name))) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Whether a copy is worth keeping: some section compressed the ELF way (the
 * old .zdebug_ names are left alone), and no dwz alt file
 * (.gnu_debugaltlink), which libdw may look for next to the debug file.
 */
static bool worth_a_copy(Elf *elf)
{
	bool compressed = false;
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(elf, &shstrndx) < 0)
		return false;
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);
		const char *name = sh ? elf_strptr(elf, shstrndx, sh->sh_name) : NULL;

		if (!sh || !name || !strcmp(name, ".gnu_debugaltlink"))
			return false;
		compressed |= (sh->sh_flags & SHF_COMPRESSED) != 0;
	}
	return compressed;
}

/* Copy `from` into the open, empty `to`; 0 or -1. */
static int copy_file(int from, int to)
{
	char buf[1 << 16];
	ssize_t r;

	if (lseek(from, 0, SEEK_SET) < 0)
		return -1;
	while ((r = read(from, buf, sizeof(buf))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		for (ssize_t w, done = 0; done < r; done += w) {
			w = write(to, buf + done, (size_t)(r - done));
			if (w < 0 && errno != EINTR)
				return -1;
			w = w < 0 ? 0 : w;
		}
	}
	return 0;
}

/* Inflate every compressed section of the ELF file open read-write as fd; 0 or -1. */
static int inflate_sections(int fd)
{
	Elf *elf = elf_begin(fd, ELF_C_RDWR, NULL);
	Elf_Scn *scn = NULL;
	int rc = elf ? 0 : -1;

	while (!rc && (scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);

		if (sh && (sh->sh_flags & SHF_COMPRESSED) && elf_compress(scn, 0, 0) < 0)
			rc = -1;
	}
	if (!rc && elf_update(elf, ELF_C_WRITE) < 0)
		rc = -1;
	if (elf)
		elf_end(elf);
	return rc;
}

void pfs_debugcache_add(const unsigned char *build_id, size_t len, const char *debug_path)
{
	char name[PATH_MAX], tmp[PATH_MAX + 8];
	bool worth = false;
	int in, out;
	Elf *elf;

	in = open(debug_path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return;
	elf_version(EV_CURRENT);
	elf = elf_begin(in, ELF_C_READ_MMAP, NULL);
	if (elf) {
		worth = worth_a_copy(elf);
		elf_end(elf);
	}
	if (!worth || !cache_path(name, sizeof(name), build_id, len, true) ||
	    snprintf(tmp, sizeof(tmp), "%s.XXXXXX", name) >= (int)sizeof(tmp)) {
		close(in);
		return;
	}
	out = mkostemp(tmp, O_CLOEXEC);	/* mode 0600 */
	if (out >= 0) {
		bool ok = !copy_file(in, out) && !inflate_sections(out);

		if (close(out) || !ok || rename(tmp, name))
			unlink(tmp);
	}
	close(in);
}
