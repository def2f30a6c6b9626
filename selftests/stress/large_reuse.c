// SPDX-License-Identifier: MIT
/*
 * large_reuse - large buffers freed and allocated again are kept resident,
 * and given back once the program stops reusing them.
 *
 * A codec's frame and output buffers (here 2 x 12..24 MiB per round, every
 * page written) are freed and allocated again every round. slab used to
 * purge every freed run above dirty_max (16 MiB) and fault it in again at
 * the next round: every page of every round faulted. The budget of free
 * resident memory now learns the working set: after a few rounds, the
 * rounds must fault in less than one buffer's worth of pages in total.
 * Then the program stops: after purge_ms (1 s) and one more allocation,
 * the free pages must go back to the OS (RSS falls by most of the
 * buffers).
 */
#include "stress.h"

#define ROUNDS 24
#define WARMUP 6

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static long rss_kb(void)
{
	long vsz, rss;

	return read_statm(&vsz, &rss) ? -1 : rss;
}

static void touch(unsigned char *p, size_t n, int v)
{
	size_t i;

	for (i = 0; i < n; i += 4096)
		p[i] = (unsigned char)(v + i);
	p[n - 1] = (unsigned char)v;
}

int main(void)
{
	uint64_t r = rnd_seed(3);
	long f0 = 0, faults, rss_busy, rss_idle, page = sysconf(_SC_PAGESIZE);
	size_t buf_pages = (24UL << 20) / (size_t)page;
	unsigned char *a, *b;
	int i;

	watchdog("large_reuse", 60);
	check_rseq_mode();
	for (i = 0; i < ROUNDS; i++) {
		size_t na = (12UL << 20) + rnd_next(&r) % (12UL << 20);
		size_t nb = (12UL << 20) + rnd_next(&r) % (12UL << 20);

		if (i == WARMUP)
			f0 = minflt();
		a = malloc(opaque(na));
		if (!a)
			fail("malloc(%zu) = NULL", na);
		touch(a, na, i);
		b = malloc(opaque(nb));
		if (!b)
			fail("malloc(%zu) = NULL", nb);
		memcpy(b, a, na < nb ? na : nb);
		touch(b, nb, i);
		check(from_slab(a) && from_slab(b), "buffers not from slab");
		free(a);
		free(b);
	}
	faults = minflt() - f0;
	rss_busy = rss_kb();
	info("%d rounds after %d warm-up rounds: %ld minor faults (a buffer is up to %zu pages), RSS %ld KiB",
	     ROUNDS - WARMUP, WARMUP, faults, buf_pages, rss_busy);
#ifdef WITH_SLAB
	check(faults < (long)buf_pages,
	      "%ld page faults in %d rounds of reused buffers: they were given back and faulted in again",
	      faults, ROUNDS - WARMUP);
	/* Idle for longer than purge_ms, then one page-heap operation. */
	usleep(1300 * 1000);
	a = malloc(opaque(300 << 10));
	free(a);
	a = malloc(opaque(2 << 20));
	free(a);
	rss_idle = rss_kb();
	info("after 1.3 s idle and one allocation: RSS %ld KiB, %ld KiB dirty",
	     rss_idle, slab_dirty_kb());
	check(rss_idle < rss_busy / 2,
	      "RSS %ld KiB after the program stopped reusing (%ld KiB while it did)",
	      rss_idle, rss_busy);
#else
	(void)rss_idle;
#endif
	if (nr_errors)
		return KSFT_FAIL;
	return KSFT_PASS;
}
