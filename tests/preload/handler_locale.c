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

#include "touched.h"

#define SIZE (64u << 20)

char *fault_site(void)
{
	return MAP_TOUCHED(SIZE / 4096);
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
