// SPDX-License-Identifier: MIT
/*
 * cache.c - false sharing caused by the allocator, after Hoard's
 * cache-scratch and cache-thrash.
 *
 *   cache scratch|thrash [THREADS [ROUNDS [OBJSIZE [WRITES]]]]
 *                        defaults: 2 threads, 100 rounds, 8 bytes,
 *                        100000 writes per round
 *
 * thrash (active false sharing): every thread, ROUNDS times, allocates an
 * object of OBJSIZE bytes, writes each of its bytes WRITES times and frees
 * it. An allocator that hands neighbouring objects of one cache line to
 * different threads makes the cores fight over that line.
 *
 * scratch (passive false sharing): the main thread first allocates one
 * object per thread, back to back, and hands object i to thread i, which
 * frees it before its rounds. An allocator that gives that freed object
 * (or its neighbours) back to the thread that freed it makes the threads
 * share the main thread's cache lines from then on.
 *
 * The work is the same for every allocator; without false sharing the time
 * is that of THREADS * ROUNDS * OBJSIZE * WRITES byte writes spread over the
 * cores.
 */
#include "bench.h"

const char *bench_name = "cache";

struct worker {
	_Alignas(2 * CACHELINE) void *first; /* scratch: freed first */
	unsigned long id;
};

static unsigned long rounds, objsize, writes;

static void *cache_thread(void *arg)
{
	struct worker *w = arg;
	unsigned long r, j, k;
	volatile char *a;
	char c;

	free(w->first);
	for (r = 0; r < rounds; r++) {
		a = xmalloc(objsize);
		for (j = 0; j < writes; j++) {
			for (k = 0; k < objsize; k++) {
				a[k] = (char)j;
				c = a[k];
				a[k] = c + 1;
			}
		}
		if (a[0] != (char)writes)
			die("thread %lu: lost a write", w->id);
		free((void *)a);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long nthreads, t;
	struct worker *workers;
	int scratch;

	usage_if(argc < 2 || argc > 6 ||
			 (strcmp(argv[1], "scratch") &&
			  strcmp(argv[1], "thrash")),
		 "scratch|thrash [THREADS [ROUNDS [OBJSIZE [WRITES]]]]");
	scratch = !strcmp(argv[1], "scratch");
	nthreads = arg_ulong(argc, argv, 2, 2, 1, BENCH_MAX_THREADS, "threads");
	rounds = arg_ulong(argc, argv, 3, 100, 1, 1UL << 40, "rounds");
	objsize = arg_ulong(argc, argv, 4, 8, 1, 1UL << 20, "object size");
	writes = arg_ulong(argc, argv, 5, 100000, 1, 1UL << 40, "writes");

	workers = aligned_alloc(2 * CACHELINE, nthreads * sizeof(*workers));
	if (!workers)
		die("out of memory");
	memset(workers, 0, nthreads * sizeof(*workers));
	for (t = 0; t < nthreads; t++) {
		workers[t].id = t;
		if (scratch)
			workers[t].first = xmalloc(objsize);
	}
	run_threads(nthreads, cache_thread, workers, sizeof(*workers));
	free(workers);
	return 0;
}
