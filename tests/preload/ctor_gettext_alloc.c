/*
 * tests/preload/ctor_gettext.c's library (its constructor's first allocation is libc's, under
 * gettext's lock) with another allocator linked after it (tests/preload/lib/bumpalloc.c), the
 * one the shim's malloc calls on to: the shim must still know that allocation for libc's.  It
 * took the other allocator's object for libc's, started inside bindtextdomain, and (its log
 * directory unusable) hung the program.  The output is the same natively and under the shim.
 */
#include <libintl.h>
#include <stdio.h>

const char *ctorgettext_dir(void);
unsigned long bumpalloc_served(void);

int main(void)
{
	bindtextdomain("pfshim-test-main", "/nonexistent/main");
	printf("library's domain at %s, other allocator used: %d\n", ctorgettext_dir(), bumpalloc_served() > 0);
	return 0;
}
