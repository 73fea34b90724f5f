/* The log files of a directory: see logdir.h. */
#include "logdir.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "an_common.h"
#include "pfshim/log_format.h"

bool pfs_logdir_is_log(const char *name)
{
	size_t n = strlen(name), s = strlen(PFS_LOG_FILE_SUFFIX);

	return n > s && !strcmp(name + n - s, PFS_LOG_FILE_SUFFIX);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int pfs_logdir_list(const char *dir, char ***names)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0, cap = 0;
	char **v = NULL;

	*names = NULL;
	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		if (!pfs_logdir_is_log(e->d_name))
			continue;
		if (pfs_an_reserve((void **)&v, &cap, n + 1, sizeof(*v)) ||
		    !(v[n] = strdup(e->d_name))) {
			pfs_logdir_free(v, (int)n);
			closedir(d);
			return -ENOMEM;
		}
		n++;
	}
	closedir(d);
	/* names do not matter (the headers do), but a stable order reads better */
	if (n)
		qsort(v, n, sizeof(*v), cmp_names);
	*names = v;
	return (int)n;
}

void pfs_logdir_free(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
