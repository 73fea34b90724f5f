/*
 * A C program that calls a C++ library (lib/cxxthrow.cpp): it links no
 * unwinder itself, so the library's exceptions go through the first
 * _Unwind_RaiseException of the global scope.  Prints which object that is
 * and how many of the library's exceptions were caught.
 */
#include <stddef.h>
#include <stdio.h>

int cxxthrow_catch(int n, char *who, size_t size);

int main(void)
{
	char who[256];
	int caught = cxxthrow_catch(1000, who, sizeof(who));
	printf("exceptions unwound by %s, %d of 1000 caught\n", who, caught);
	return caught == 1000 ? 0 : 1;
}
