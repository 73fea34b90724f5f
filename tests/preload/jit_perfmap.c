/*
 * A program with a JIT, as node or a JVM: two pieces of machine code made
 * at run time, named in /tmp/perf-PID.map (as `node --perf-basic-prof`
 * names them): "Stub:JSEntry" (the runtime's) calls "JS:makeTable
 * /srv/app/table.js:3:20" (the program's), which calls table_alloc: 4 MiB,
 * 1,000 pages written.  main also allocates at plain_site, 100 pages.
 * x86-64 only (prints "no JIT here" elsewhere).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

__attribute__((noinline)) void table_alloc(void)
{
	char *p = malloc(4 << 20);
	if (!p)
		exit(2);
	for (int i = 0; i < 1000; i++)
		p[(long)i * PAGE] = 1;
	__asm__ volatile("" ::"r"(p) : "memory");
}

__attribute__((noinline)) void plain_site(void)
{
	char *p = malloc(1 << 20);
	if (!p)
		exit(2);
	for (int i = 0; i < 100; i++)
		p[(long)i * PAGE] = 1;
	__asm__ volatile("" ::"r"(p) : "memory");
}

#if defined(__x86_64__)
/* push rbp; mov rbp, rsp; movabs rax, target; call rax; pop rbp; ret: a frame of its own, rbp-chained */
static size_t emit_call(unsigned char *at, void *target)
{
	static const unsigned char head[] = {0x55, 0x48, 0x89, 0xe5, 0x48, 0xb8};
	static const unsigned char tail[] = {0xff, 0xd0, 0x5d, 0xc3};
	uint64_t t = (uint64_t)(uintptr_t)target;
	memcpy(at, head, sizeof(head));
	memcpy(at + sizeof(head), &t, sizeof(t));
	memcpy(at + sizeof(head) + sizeof(t), tail, sizeof(tail));
	return sizeof(head) + sizeof(t) + sizeof(tail);
}

int main(void)
{
	unsigned char *code = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (code == MAP_FAILED)
		return 2;
	unsigned char *make_table = code, *entry = code + 64;
	size_t n1 = emit_call(make_table, (void *)table_alloc);
	size_t n2 = emit_call(entry, make_table);
	if (mprotect(code, PAGE, PROT_READ | PROT_EXEC))
		return 2;
	char path[64];
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
	FILE *f = fopen(path, "w");
	if (!f)
		return 2;
	fprintf(f, "%lx %zx Stub:JSEntry\n", (unsigned long)(uintptr_t)entry, n2);
	fprintf(f, "%lx %zx JS:makeTable /srv/app/table.js:3:20\n", (unsigned long)(uintptr_t)make_table, n1);
	fclose(f);
	((void (*)(void))entry)();
	plain_site();
	printf("jit ran\n");
	return 0;
}
#else
int main(void)
{
	printf("no JIT here\n");
	return 0;
}
#endif
