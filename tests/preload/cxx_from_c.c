/*
 * A C program that calls a C++ library (lib/cxxthrow.cpp): it links no
 * unwinder itself, so the library's exceptions go through the first
 * _Unwind_RaiseException of the global scope.  Prints which object that is
 * and how many of the library's exceptions were caught.  cxx_from_c [N]: N
 * exceptions (1000); bench/real.sh's "cxx" workload throws 200,000.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

int cxxthrow_catch(int n, char *who, size_t size);

int main(int argc, char **argv)
{
	char who[256];
	int n = argc > 1 ? atoi(argv[1]) : 1000;
	int caught = cxxthrow_catch(n, who, sizeof(who));
	printf("exceptions unwound by %s, %d of %d caught\n", who, caught, n);
	return caught == n ? 0 : 1;
}
