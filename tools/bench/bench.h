/* SPDX-License-Identifier: MIT */
/*
 * bench.h - helpers shared by the benchmark programs of tools/bench/.
 *
 * Each program is one .c file that includes this header, takes its
 * parameters as positional arguments, prints nothing on success (rss prints
 * its samples) and exits 0; a wrong result or a failed allocation is
 * reported on stderr with a non-zero exit. They are linked unchanged with
 * every allocator: only the standard malloc family is called.
 */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ARRAY_SIZE(a)     (sizeof(a) / sizeof((a)[0]))
#define CACHELINE         64
#define BENCH_MAX_THREADS 1024UL

extern const char *bench_name;

static void die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", bench_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/*
 * Make @p escape: the compiler must assume the asm reads and writes the
 * block, so it cannot elide a malloc()/free() pair around it.
 */
static inline void escape(void *p)
{
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

static inline void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		die("malloc(%zu) failed", n);
	return p;
}

/*
 * Positional argument @i of @argv as an unsigned integer in [@min, @max],
 * or @def when absent. A bad value exits with status 2.
 */
static unsigned long arg_ulong(int argc, char **argv, int i, unsigned long def,
			       unsigned long min, unsigned long max,
			       const char *what)
{
	unsigned long v;
	char *end;

	if (i >= argc)
		return def;
	errno = 0;
	v = strtoul(argv[i], &end, 10);
	if (errno || end == argv[i] || *end || v < min || v > max) {
		fprintf(stderr, "%s: bad %s '%s' (%lu..%lu)\n", bench_name,
			what, argv[i], min, max);
		exit(2);
	}
	return v;
}

static void usage_if(int cond, const char *usage)
{
	if (cond) {
		fprintf(stderr, "usage: %s %s\n", bench_name, usage);
		exit(2);
	}
}

/* xorshift64*: fast, and the same sequence with every allocator. */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* A value in [lo, hi]. */
static inline size_t rng_range(uint64_t *s, size_t lo, size_t hi)
{
	return lo + (size_t)(rng_next(s) % (hi - lo + 1));
}

static inline uint64_t rng_seed(unsigned long id)
{
	return 0x9e3779b97f4a7c15ULL * (id + 1) | 1;
}

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Run @fn(@arg + i * @stride) for i in [0, @n): threads 1..n-1 are created,
 * thread 0 is the caller, so a 1-thread run never calls pthread_create().
 */
static void run_threads(unsigned long n, void *(*fn)(void *), void *arg,
			size_t stride)
{
	pthread_t *tids = xmalloc(n * sizeof(*tids));
	unsigned long i;
	int err;

	for (i = 1; i < n; i++) {
		err = pthread_create(&tids[i], NULL, fn,
				     (char *)arg + i * stride);
		if (err)
			die("pthread_create: %s", strerror(err));
	}
	fn(arg);
	for (i = 1; i < n; i++)
		pthread_join(tids[i], NULL);
	free(tids);
}

#endif /* BENCH_BENCH_H */
