/*
 * Faults only, then libc's locale (issue 19): 64 MiB touched page by page,
 * so that in exact mode the fault handler is the one writing the log, then
 * setlocale, bindtextdomain and a translated message, which take libc's
 * locale locks.  A handler that called into libc's locale (a message with
 * strerror) took those locks and left them taken: the program hung here.
 */
#include <libintl.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define SIZE (64u << 20)

char *fault_site(void)
{
	char *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	for (size_t i = 0; i < SIZE; i += 4096)
		m[i] = 1;
	return m;
}

int main(void)
{
	if (!fault_site())
		return 2;
	setlocale(LC_ALL, "");
	bindtextdomain("pfshim-test", "/nonexistent");
	textdomain("pfshim-test");
	printf("%s; %s\n", gettext("locale taken"), strerror(2));
	return 0;
}
