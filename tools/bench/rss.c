// SPDX-License-Identifier: MIT
/*
 * rss.c - does memory go back to the kernel after a mass free?
 *
 *   rss [MIB [SECONDS]]        defaults: 1024 MiB, 5 seconds
 *
 * Allocates MIB MiB in objects of 64..256 bytes (chained into a list
 * through their first word, so that no pointer array adds to the
 * footprint), writes all of them, then frees them all. For SECONDS after
 * the free the program keeps a little traffic going (every 10 ms, 100
 * malloc/free pairs of 64..256 bytes), as a server that became idle would,
 * and samples its resident set size (/proc/self/statm) every 100 ms.
 *
 * Output, on stdout, one "key value" pair per line:
 *   alloc_ms N        time taken by the allocation phase
 *   free_ms N         time taken by the mass free
 *   peak_kb N         RSS right before the free
 *   objects N         how many objects were allocated
 *   sample MS KB      RSS MS milliseconds after the free (one per sample)
 *   rss_1s_kb N       the sample at 1 s
 *   rss_end_kb N      the last sample (at SECONDS s)
 */
#include <unistd.h>

#include "bench.h"

const char *bench_name = "rss";

#define MIN_OBJ   64
#define MAX_OBJ   256
#define TICK_MS   10
#define SAMPLE_MS 100
#define PAIRS     100

static long page_kb;

static long rss_kb(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		die("cannot open /proc/self/statm: %s", strerror(errno));
	if (fscanf(f, "%ld %ld", &size, &resident) != 2)
		die("cannot parse /proc/self/statm");
	fclose(f);
	return resident * page_kb;
}

static void sleep_until(double t)
{
	struct timespec ts;
	double d = t - now_s();

	if (d <= 0)
		return;
	ts.tv_sec = (time_t)d;
	ts.tv_nsec = (long)((d - ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	unsigned long mib, seconds, total = 0, target, nobj = 0, i, n;
	long peak, at_1s = -1, last = 0, ms;
	uint64_t rng = rng_seed(3);
	void **head = NULL, **p, **next;
	double t0, t_free;
	size_t size;

	usage_if(argc > 3, "[MIB [SECONDS]]");
	mib = arg_ulong(argc, argv, 1, 1024, 1, 1UL << 20, "MiB");
	seconds = arg_ulong(argc, argv, 2, 5, 1, 3600, "seconds");
	page_kb = sysconf(_SC_PAGESIZE) / 1024;
	target = mib << 20;

	t0 = now_s();
	while (total < target) {
		size = rng_range(&rng, MIN_OBJ, MAX_OBJ);
		p = xmalloc(size);
		memset(p, 0x5a, size);
		*p = head;
		head = p;
		total += size;
		nobj++;
	}
	t_free = now_s();
	peak = rss_kb();
	for (p = head; p; p = next) {
		next = *p;
		free(p);
	}
	printf("alloc_ms %.0f\n", (t_free - t0) * 1e3);
	t0 = now_s();
	printf("free_ms %.0f\n", (t0 - t_free) * 1e3);
	printf("peak_kb %ld\n", peak);
	printf("objects %lu\n", nobj);

	/* A tick every 10 ms, a sample every 10 ticks, until SECONDS. */
	for (n = 1; n <= seconds * (1000 / TICK_MS); n++) {
		for (i = 0; i < PAIRS; i++) {
			size = rng_range(&rng, MIN_OBJ, MAX_OBJ);
			p = xmalloc(size);
			memset(p, 0xa5, size);
			escape(p);
			free(p);
		}
		sleep_until(t0 + n * TICK_MS / 1e3);
		if (n % (SAMPLE_MS / TICK_MS))
			continue;
		last = rss_kb();
		ms = (long)((now_s() - t0) * 1e3 + 0.5);
		printf("sample %ld %ld\n", ms, last);
		if (at_1s < 0 && ms >= 1000)
			at_1s = last;
	}
	printf("rss_1s_kb %ld\n", at_1s < 0 ? last : at_1s);
	printf("rss_end_kb %ld\n", last);
	return 0;
}
