// A C++ library a C program calls (tests/preload/cxx_from_c.c): it throws and catches, and says
// which object defines the _Unwind_RaiseException its throws go through (the global scope's
// first definition: libgcc_s natively, which libstdc++ needs).
#include <dlfcn.h>
#include <stdexcept>
#include <string.h>
#include <unwind.h>

extern "C" int cxxthrow_catch(int n, char *who, size_t size)
{
	Dl_info info;
	const char *name = "(unknown)";
	if (dladdr(reinterpret_cast<void *>(&_Unwind_RaiseException), &info) && info.dli_fname) {
		const char *slash = strrchr(info.dli_fname, '/');
		name = slash ? slash + 1 : info.dli_fname;
	}
	strncpy(who, name, size - 1);
	who[size - 1] = 0;
	int caught = 0;
	for (int i = 0; i < n; i++) {
		try {
			throw std::runtime_error("thrown");
		} catch (const std::exception &) {
			caught++;
		}
	}
	return caught;
}
