/*
 * A program whose library's constructor allocates first inside libc, under gettext's lock
 * (tests/preload/lib/ctorgettext.c); main binds a domain of its own too, then prints the
 * library's.  The output is the same natively and under the shim, however the shim's start
 * goes (a log directory it cannot use included).
 */
#include <libintl.h>
#include <stdio.h>

const char *ctorgettext_dir(void);

int main(void)
{
	bindtextdomain("pfshim-test-main", "/nonexistent/main");
	printf("library's domain at %s\n", ctorgettext_dir());
	return 0;
}
