// SPDX-License-Identifier: MIT
/*
 * sizemix.c - many sizes, several free orders: after sh6bench, sh8bench and
 * alloc-test.
 *
 *   sizemix lifo|fifo|random [THREADS [ROUNDS [BATCH]]]
 *                        defaults: 1 thread, 200 rounds, 2000 objects
 *
 * Every thread, ROUNDS times, allocates BATCH objects whose sizes spread
 * over the small, medium and large classes (7 in 10 of 1..128 bytes, 1 in
 * 4 of 129..2048, 1 in 25 of 2049..16384, 1 in 100 of 16385..131072),
 * writes their first bytes and their last byte, and frees them:
 *
 *   lifo    newest first (the stack order of sh6bench's inner loops)
 *   fifo    oldest first
 *   random  a random half, then allocates that half again with new sizes,
 *           then frees everything in a random order (sh8bench, alloc-test)
 *
 * One object in four of each round also survives into the next round, so
 * that the heap keeps a fragmented population instead of emptying.
 */
#include "bench.h"

const char *bench_name = "sizemix";

enum order { LIFO, FIFO, RANDOM };

struct worker {
	_Alignas(2 * CACHELINE) unsigned long id;
	uint64_t rng;
};

static enum order order;
static unsigned long rounds, batch;

static size_t pick_size(uint64_t *rng)
{
	unsigned int c = rng_next(rng) % 100;

	if (c < 70)
		return rng_range(rng, 1, 128);
	if (c < 95)
		return rng_range(rng, 129, 2048);
	if (c < 99)
		return rng_range(rng, 2049, 16384);
	return rng_range(rng, 16385, 131072);
}

static void *obj_new(uint64_t *rng, size_t *sizep)
{
	size_t size = pick_size(rng);
	unsigned char *p = xmalloc(size);

	memset(p, (int)(size & 0xff), size < 32 ? size : 32);
	p[size - 1] = (unsigned char)size;
	*sizep = size;
	return p;
}

static void obj_free(void *obj, size_t size)
{
	unsigned char *p = obj;

	if (p[size - 1] != (unsigned char)size || p[0] != (size & 0xff))
		die("object %p of %zu bytes corrupted", obj, size);
	free(p);
}

static void shuffle(unsigned long *idx, unsigned long n, uint64_t *rng)
{
	unsigned long i, j, t;

	for (i = n - 1; i > 0; i--) {
		j = rng_next(rng) % (i + 1);
		t = idx[i];
		idx[i] = idx[j];
		idx[j] = t;
	}
}

static void *sizemix_thread(void *arg)
{
	struct worker *w = arg;
	unsigned long keep = batch / 4, r, i, n;
	void **objs = xmalloc(batch * sizeof(*objs));
	size_t *sizes = xmalloc(batch * sizeof(*sizes));
	unsigned long *idx = xmalloc(batch * sizeof(*idx));
	void **kept = xmalloc(keep * sizeof(*kept));
	size_t *kept_size = xmalloc(keep * sizeof(*kept_size));

	for (i = 0; i < keep; i++)
		kept[i] = NULL;
	for (r = 0; r < rounds; r++) {
		for (i = 0; i < batch; i++)
			objs[i] = obj_new(&w->rng, &sizes[i]);
		if (order == RANDOM) {
			for (i = 0; i < batch; i++)
				idx[i] = i;
			shuffle(idx, batch, &w->rng);
			n = batch / 2;
			for (i = 0; i < n; i++)
				obj_free(objs[idx[i]], sizes[idx[i]]);
			for (i = 0; i < n; i++)
				objs[idx[i]] = obj_new(&w->rng, &sizes[idx[i]]);
			shuffle(idx, batch, &w->rng);
		}
		/* The survivors of the last round die, a quarter of this one's
		 * replace them: the first quarter in free order is kept. */
		for (i = 0; i < keep; i++)
			if (kept[i])
				obj_free(kept[i], kept_size[i]);
		for (i = 0; i < batch; i++) {
			unsigned long k;

			switch (order) {
			case LIFO:
				k = batch - 1 - i;
				break;
			case FIFO:
				k = i;
				break;
			default:
				k = idx[i];
				break;
			}
			if (i < keep) {
				kept[i] = objs[k];
				kept_size[i] = sizes[k];
			} else {
				obj_free(objs[k], sizes[k]);
			}
		}
	}
	for (i = 0; i < keep; i++)
		if (kept[i])
			obj_free(kept[i], kept_size[i]);
	free(kept_size);
	free(kept);
	free(idx);
	free(sizes);
	free(objs);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long nthreads, t;
	struct worker *workers;

	usage_if(argc < 2 || argc > 5,
		 "lifo|fifo|random [THREADS [ROUNDS [BATCH]]]");
	if (!strcmp(argv[1], "lifo"))
		order = LIFO;
	else if (!strcmp(argv[1], "fifo"))
		order = FIFO;
	else if (!strcmp(argv[1], "random"))
		order = RANDOM;
	else
		usage_if(1, "lifo|fifo|random [THREADS [ROUNDS [BATCH]]]");
	nthreads = arg_ulong(argc, argv, 2, 1, 1, BENCH_MAX_THREADS, "threads");
	rounds = arg_ulong(argc, argv, 3, 200, 1, 1UL << 40, "rounds");
	batch = arg_ulong(argc, argv, 4, 2000, 4, 1UL << 24, "batch size");

	workers = aligned_alloc(2 * CACHELINE, nthreads * sizeof(*workers));
	if (!workers)
		die("out of memory");
	for (t = 0; t < nthreads; t++) {
		workers[t].id = t;
		workers[t].rng = rng_seed(t + 100);
	}
	run_threads(nthreads, sizemix_thread, workers, sizeof(*workers));
	free(workers);
	return 0;
}
