/*
 * C++ records in containers, its only compile unit: crt1's _start lies past
 * every range of that unit, and libdw answers its address with the unit's
 * nearest line (basic_string.h) where no line is right.  The sites: a
 * vector of records and their vectors (load), unique_ptr arrays in a hash
 * map (index_them), a map of strings (main).
 */
#include <map>
#include <string>
#include <vector>
#include <unordered_map>
#include <memory>
#include <cstdio>
struct Rec { std::string name; std::vector<double> v; };
static std::vector<Rec> load(int n) {
	std::vector<Rec> out;
	for (int i = 0; i < n; i++) out.push_back({std::to_string(i) + "-record-with-a-long-name", std::vector<double>(64, i)});
	return out;
}
static std::unordered_map<int, std::unique_ptr<int[]>> index_them(int n) {
	std::unordered_map<int, std::unique_ptr<int[]>> m;
	for (int i = 0; i < n; i++) m.emplace(i, std::make_unique<int[]>(100));
	return m;
}
int main() {
	auto r = load(20000);
	auto m = index_them(20000);
	std::map<std::string, int> t;
	for (auto &x : r) t[x.name] = (int)x.v.size();
	printf("%zu %zu %zu\n", r.size(), m.size(), t.size());
}
