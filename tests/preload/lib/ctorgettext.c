/*
 * A library whose constructor's first allocation is libc's, made under a lock of libc's:
 * bindtextdomain mallocs while it holds gettext's lock (libgpg-error's constructor does this,
 * and postgres links it).  A shim that started inside that malloc took the lock again (its
 * strerror) and left it broken: the program hung at its next bindtextdomain.
 */
#include <libintl.h>

__attribute__((constructor)) static void ctorgettext_init(void)
{
	bindtextdomain("pfshim-test-lib", "/nonexistent/locale");
}

/* The program calls it (and so links the library). */
const char *ctorgettext_dir(void)
{
	return bindtextdomain("pfshim-test-lib", 0);
}
