// SPDX-License-Identifier: MIT
/*
 * seed.c - the benchmark that motivated slab.
 *
 *   seed [THREADS [ITERATIONS [SWEEPS]]]
 *                      defaults: 1 thread, 100000 iterations, 1 sweep
 *
 * Each thread allocates a block one byte larger than the last, fills it,
 * reads one byte back and frees it. Every size from 1 byte to ITERATIONS
 * bytes is asked for once per sweep (SWEEPS > 1 repeats the sweep, for a
 * run long enough to time without leaving the sizes the demo uses), each
 * block is dead before the next is made, and
 * nothing is shared between threads: a general allocator that returns memory
 * to the kernel on every free, or that serialises threads on one lock, is
 * at its worst here.
 *
 * The main thread is one of the workers, so "1 thread" is a program that
 * never calls pthread_create(). The program prints nothing and exits 0 when
 * every thread saw the expected bytes; otherwise it says so on stderr.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED_DEFAULT_ITERS 100000UL
#define SEED_MAX_THREADS   1024UL

static unsigned long iters = SEED_DEFAULT_ITERS;
static unsigned long sweeps = 1;

/*
 * Make @p escape: the compiler must assume the asm reads and writes the
 * block, so it can neither drop the memset() nor fold p[100] to 1, and with
 * them the malloc()/free() pair that it could otherwise elide.
 */
static inline void escape(void *p)
{
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

static void *seed_loop(void *arg)
{
	size_t *result = arg;
	unsigned char *p;
	unsigned long i, k;
	size_t n = 0, sum = 0;

	for (k = 0; k < sweeps; k++, sum += n, n = 0)
		for (i = 0; i < iters; i++) {
			p = malloc(n ? n : 1);
			if (!p) {
				fprintf(stderr, "seed: malloc(%zu) failed\n",
					n);
				exit(1);
			}
			memset(p, 1, n);
			escape(p);
			n += n > 100 ? p[100] : 1;
			free(p);
		}
	*result = sum;
	return NULL;
}

static unsigned long parse(const char *s, const char *what, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > max) {
		fprintf(stderr, "seed: bad %s '%s' (1..%lu)\n", what, s, max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned long nthreads = 1, t;
	pthread_t *tids;
	size_t *results;
	int err, ret = 0;

	if (argc > 4) {
		fprintf(stderr,
			"usage: seed [THREADS [ITERATIONS [SWEEPS]]]\n");
		return 2;
	}
	if (argc > 1)
		nthreads = parse(argv[1], "thread count", SEED_MAX_THREADS);
	if (argc > 2)
		iters = parse(argv[2], "iteration count", 1UL << 30);
	if (argc > 3)
		sweeps = parse(argv[3], "sweep count", 1UL << 20);

	tids = calloc(nthreads, sizeof(*tids));
	results = calloc(nthreads, sizeof(*results));
	if (!tids || !results) {
		fprintf(stderr, "seed: out of memory\n");
		return 1;
	}

	/* Threads 1..N-1 are created; thread 0 is the main thread. */
	for (t = 1; t < nthreads; t++) {
		err = pthread_create(&tids[t], NULL, seed_loop, &results[t]);
		if (err) {
			fprintf(stderr, "seed: pthread_create: %s\n",
				strerror(err));
			return 1;
		}
	}
	seed_loop(&results[0]);
	for (t = 1; t < nthreads; t++)
		pthread_join(tids[t], NULL);

	/* n grows by exactly one per iteration if every byte read back as 1. */
	for (t = 0; t < nthreads; t++) {
		if (results[t] != iters * sweeps) {
			fprintf(stderr,
				"seed: thread %lu: checksum %zu, expected %lu\n",
				t, results[t], iters * sweeps);
			ret = 1;
		}
	}
	free(results);
	free(tids);
	return ret;
}
