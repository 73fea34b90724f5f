/*
 * Copy-on-write after fork, the way a database saves in the background
 * (Redis's BGSAVE): fork, the child writes a snapshot of the table while the
 * parent keeps serving writes.  fork copies no data; each page the parent
 * writes while the child still shares it is copied then, one copy-on-write
 * fault per page.  The child only reads: it takes none.
 *
 * The table is 64 MiB (16384 pages); while the child saves, the parent
 * updates one entry on every fourth page: 4096 copy-on-write faults at
 * table_site in the parent, 0 in the child, and the snapshot the child
 * saved is the table as it was at the fork.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TABLE_BYTES (64ul << 20)
#define PAGE 4096ul

/* The database: one 64 MiB table, every page written at load time. */
unsigned long *table_site(void)
{
	unsigned long *t = malloc(TABLE_BYTES);
	if (t)
		for (size_t i = 0; i < TABLE_BYTES / sizeof(*t); i++)
			t[i] = i;
	return t;
}

static unsigned long checksum(const unsigned long *t)
{
	unsigned long sum = 0;
	for (size_t i = 0; i < TABLE_BYTES / sizeof(*t); i++)
		sum = sum * 31 + t[i];
	return sum;
}

/* The background save: reads the whole table (a real one would write it to disk). */
static unsigned long save_snapshot(const unsigned long *t)
{
	return checksum(t);
}

/* Client writes while the save runs: one entry on every fourth page. */
static unsigned long serve_writes(unsigned long *t)
{
	unsigned long n = 0;
	for (size_t off = 0; off < TABLE_BYTES; off += 4 * PAGE, n++)
		t[off / sizeof(*t) + 1] += 1000000;
	return n;
}

int main(void)
{
	unsigned long *t = table_site();
	if (!t)
		return 1;
	unsigned long at_fork = checksum(t);
	int go[2];
	if (pipe(go))
		return 1;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		char c;
		/* Save only once the parent has written: its copies are then certain. */
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		unsigned long saved = save_snapshot(t);
		_exit(saved == at_fork ? 0 : 2);
	}
	unsigned long writes = serve_writes(t);
	if (write(go[1], "g", 1) != 1)
		return 1;
	int st;
	waitpid(pid, &st, 0);
	printf("table: %lu MiB, %lu pages\n", TABLE_BYTES >> 20, TABLE_BYTES / PAGE);
	printf("parent: %lu entries written during the save, on %lu pages\n", writes, writes);
	printf("child: snapshot %s the table at fork (exit %d)\n",
	       WIFEXITED(st) && WEXITSTATUS(st) == 0 ? "matches" : "DIFFERS from", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	printf("parent: table changed since the fork: %s\n", checksum(t) != at_fork ? "yes" : "no");
	free(t);
	return 0;
}
