/*
 * C++ as users write it, built -O2 -g: a std::vector, a push_back loop, an
 * unordered_map, new[] in a class method and in a template.  Every site's
 * label must be the user's function and line, named demangled, past
 * operator new and the standard library's containers.
 */
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <vector>

struct Record {
	char bytes[4096];
};

namespace app {
class Loader {
public:
	__attribute__((noinline)) char *load(size_t n);
};

char *Loader::load(size_t n)
{
	char *p = new char[n]; /* LOADER_LINE */
	memset(p, 3, n);
	return p;
}
} // namespace app

template <typename T> __attribute__((noinline)) T *make_table(size_t n)
{
	T *p = new T[n]; /* TEMPLATE_LINE */
	for (size_t i = 0; i < n; i++)
		p[i] = (T)i;
	return p;
}

__attribute__((noinline)) std::vector<Record> load_records(size_t n)
{
	std::vector<Record> v;
	for (size_t i = 0; i < n; i++) {
		Record r;
		memset(r.bytes, (int)i, sizeof(r.bytes));
		v.push_back(r); /* RECORDS_LINE */
	}
	return v;
}

__attribute__((noinline)) size_t index_keys(size_t n)
{
	std::unordered_map<long, long> m;
	m.reserve(n); /* MAP_LINE */
	for (size_t i = 0; i < n; i += 4096)
		m[(long)i] = (long)i;
	return m.bucket_count();
}

int main()
{
	std::vector<char> big(64u << 20); /* VECTOR_LINE */
	app::Loader loader;
	char *l = loader.load(16u << 20);
	long *t = make_table<long>(2u << 20);
	std::vector<Record> recs = load_records(2048);
	size_t buckets = index_keys(1u << 20);
	std::printf("%d %d %ld %d %s\n", big[4096], l[8192], t[1000], recs[100].bytes[0],
		    buckets >= (1u << 20) ? "ok" : "few");
	delete[] l;
	delete[] t;
	return 0;
}
