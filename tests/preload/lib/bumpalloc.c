/*
 * An allocator in a library of its own (as tcmalloc or jemalloc linked into a program):
 * tests/preload/bump_alloc.h.  Linked after another library, its malloc is the one the shim's
 * hooks call on to.
 */
#include "../bump_alloc.h"

/* How many blocks it served (the program calls it, and so links the library). */
unsigned long bumpalloc_served(void)
{
	return served;
}
