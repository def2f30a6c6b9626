// SPDX-License-Identifier: MIT
/*
 * fastpath.c - the cost of a malloc()/free() pair when nothing goes wrong.
 *
 *   fastpath 32|batch [ITERATIONS]     default: 10000000 iterations
 *
 *   32      malloc(32) then free() it, ITERATIONS times: the hottest path
 *           of any allocator, one object bouncing in a per-thread or
 *           per-CPU cache
 *   batch   allocate 64 objects of mixed sizes (16..1024 bytes, a fixed
 *           shuffled table), then free them in the same order,
 *           ITERATIONS times: 16 size classes in use at once
 *
 * tools/bench/run.sh also runs it under `valgrind --tool=callgrind` with
 * two iteration counts and divides the difference of the instruction
 * counts by the difference of pairs: the instructions of one pair, without
 * the start-up. Single-threaded, so that SLAB_OPTIONS=rseq=fake can run.
 */
#include "bench.h"

const char *bench_name = "fastpath";

#define BATCH 64

static const size_t class_sizes[16] = {
	16,  24,  32,  48,  64,  80,  96,  128,
	160, 192, 256, 320, 384, 512, 768, 1024,
};

static size_t sizes[BATCH];

static void __attribute__((noinline)) loop32(unsigned long iters)
{
	unsigned long i;
	void *p;

	for (i = 0; i < iters; i++) {
		p = malloc(32);
		if (!p)
			die("malloc(32) failed");
		escape(p);
		free(p);
	}
}

static void __attribute__((noinline)) loop_batch(unsigned long iters)
{
	void *p[BATCH];
	unsigned long i;
	int j;

	for (i = 0; i < iters; i++) {
		for (j = 0; j < BATCH; j++) {
			p[j] = malloc(sizes[j]);
			if (!p[j])
				die("malloc(%zu) failed", sizes[j]);
			escape(p[j]);
		}
		for (j = 0; j < BATCH; j++)
			free(p[j]);
	}
}

int main(int argc, char **argv)
{
	unsigned long iters;
	uint64_t rng = rng_seed(7);
	size_t t;
	int j, k;

	usage_if(argc < 2 || argc > 3 ||
			 (strcmp(argv[1], "32") && strcmp(argv[1], "batch")),
		 "32|batch [ITERATIONS]");
	iters = arg_ulong(argc, argv, 2, 10000000, 1, 1UL << 40, "iterations");

	if (!strcmp(argv[1], "32")) {
		loop32(iters);
		return 0;
	}
	for (j = 0; j < BATCH; j++)
		sizes[j] = class_sizes[j % 16];
	for (j = BATCH - 1; j > 0; j--) {
		k = rng_next(&rng) % (j + 1);
		t = sizes[j];
		sizes[j] = sizes[k];
		sizes[k] = t;
	}
	loop_batch(iters);
	return 0;
}
