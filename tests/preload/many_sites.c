/* bench/many_sites.c as a test program: many distinct call sites, each with a known count. */
#include "../../bench/many_sites.c"
