/*
 * A program that allocates steadily, without a burst: 16 MiB in 1 MiB
 * blocks, four new pages written every 2 ms (2000 pages a second at most,
 * for 2 s or more), as a server growing its caches does.  Its faults take
 * a small share of its time on any machine (2000 x 1.5 us is 0.3%; at
 * 20 us a fault, a loaded virtual machine's, 4%): no storm.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BLOCK (1ul << 20)
#define BLOCKS 16
#define STEP_PAGES 4

long steady_grow(char **blocks)
{
	struct timespec pause = {0, 2000000};
	long sum = 0;

	for (int b = 0; b < BLOCKS; b++) {
		blocks[b] = malloc(BLOCK);
		if (!blocks[b])
			return -1;
		for (size_t off = 0; off < BLOCK; off += 4096) {
			blocks[b][off] = (char)b;
			if ((off / 4096) % STEP_PAGES == STEP_PAGES - 1)
				nanosleep(&pause, NULL);
		}
	}
	for (int b = 0; b < BLOCKS; b++)
		sum += blocks[b][4096];
	return sum;
}

int main(void)
{
	char *blocks[BLOCKS];
	long sum = steady_grow(blocks);

	printf("grew %d MiB steadily, checksum %ld\n", BLOCKS, sum);
	for (int b = 0; b < BLOCKS; b++)
		free(blocks[b]);
	return 0;
}
