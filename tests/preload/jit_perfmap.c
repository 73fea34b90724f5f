/*
 * A program with a JIT, as node or a JVM: two pieces of machine code made
 * at run time, named in /tmp/perf-PID.map (as `node --perf-basic-prof`
 * names them): "Stub:JSEntry" (the runtime's) calls "JS:makeTable
 * /srv/app/table.js:3:20" (the program's), which calls table_alloc: 4 MiB,
 * 1,000 pages written.  main also allocates at plain_site, 100 pages, and
 * at jit_touched_site 64 pages that "JS:touchPages /srv/app/touch.js:7:1"
 * writes (where exact mode's touch sites are).  x86-64 only (prints "no
 * JIT here" elsewhere).
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

__attribute__((noinline)) char *jit_touched_site(void)
{
	char *p = malloc(64 * PAGE);
	if (!p)
		exit(2);
	return p;
}

#if defined(__x86_64__)
/* loop: mov byte [rdi], 1; add rdi, 4096; dec rsi; jnz loop; ret: touch(p, pages) */
static const unsigned char touch_code[] = {0xc6, 0x07, 0x01, 0x48, 0x81, 0xc7, 0x00, 0x10, 0x00, 0x00,
					   0x48, 0xff, 0xce, 0x75, 0xf1, 0xc3};

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
	unsigned char *make_table = code, *entry = code + 64, *touch = code + 128;
	size_t n1 = emit_call(make_table, (void *)table_alloc);
	size_t n2 = emit_call(entry, make_table);
	memcpy(touch, touch_code, sizeof(touch_code));
	if (mprotect(code, PAGE, PROT_READ | PROT_EXEC))
		return 2;
	char path[64];
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
	FILE *f = fopen(path, "w");
	if (!f)
		return 2;
	fprintf(f, "%lx %zx Stub:JSEntry\n", (unsigned long)(uintptr_t)entry, n2);
	fprintf(f, "%lx %zx JS:makeTable /srv/app/table.js:3:20\n", (unsigned long)(uintptr_t)make_table, n1);
	fprintf(f, "%lx %zx JS:touchPages /srv/app/touch.js:7:1\n", (unsigned long)(uintptr_t)touch,
		sizeof(touch_code));
	fclose(f);
	((void (*)(void))entry)();
	plain_site();
	((void (*)(char *, long))touch)((char *)(((uintptr_t)jit_touched_site() + PAGE - 1) & ~(uintptr_t)(PAGE - 1)), 63);
	if (!getenv("PFSHIM_OUT"))
		unlink(path); /* a native run's: nobody reads it */
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
