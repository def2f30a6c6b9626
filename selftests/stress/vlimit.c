// SPDX-License-Identifier: MIT
/*
 * vlimit - slab must keep serving under a small address-space limit.
 *
 *   vlimit [budget_mib]        (default: 3/4 of RLIMIT_AS, or 48 MiB)
 *
 * Run by run_selftests.sh under "ulimit -v 65536" and "ulimit -v 32768"
 * (modes vlimit64 and vlimit32), as in containers, batch systems and CI
 * runners that cap virtual memory. An allocator that reserves a large
 * arena up front must shrink its reservation to what the limit allows,
 * not hand every request to libc's malloc for the life of the process.
 *
 * With slab, objects of sizes from 0 to 2 MiB must come from slab
 * (slab_owns()). Then the program allocates small (16..2000 bytes) and
 * large (256 KiB..2 MiB) blocks, touching every page, until they add up
 * to 3/4 of the limit less what was mapped before main's first malloc
 * (the binary, libc, the stack): it must not crash, a NULL is allowed
 * only once half of that is reached, and with slab at least half of the
 * bytes must be slab's. Everything is freed, and malloc(100) and a 1 MiB
 * block must again come from slab (the freed memory is reused, the
 * allocator did not give up). Without a limit it uses a 48 MiB budget.
 */
#include "stress.h"

#define MAX_BLOCKS (1 << 16)

static void *blk[MAX_BLOCKS];

static long vsz_kb(void)
{
	long vsz, rss;

	if (read_statm(&vsz, &rss))
		return 0;
	return vsz;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {
		0,    1,     16,    32,     100,       256,    1000,    4096,
		5000, 40000, 65536, 200000, 256 << 10, 300000, 1 << 20, 2 << 20,
	};
	long vsz0 = vsz_kb(); /* before the first malloc */
	size_t limit, target, used = 0, slab_bytes = 0, n;
	unsigned long i, nb = 0, nnull = 0;
	uint64_t r = rnd_seed(5);
	struct rlimit rl;
	void *p;

	watchdog("vlimit", 60);
	/* The payload: 3/4 of the limit less what was mapped at start. */
	if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		limit = rl.rlim_cur;
		target = limit / 4 * 3 - ((size_t)vsz0 << 10);
	} else {
		limit = 0;
		target = 48UL << 20;
	}
	if (argc > 1)
		target = arg_ul(argc, argv, 1, 48) << 20;
	info("address-space limit %zu MiB%s, %ld KiB mapped at start, "
	     "allocating %zu MiB",
	     limit >> 20, limit ? "" : " (none set)", vsz0, target >> 20);

	/* Every size class and a few large sizes must be slab's. */
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		p = malloc(opaque(sizes[i]));
		if (!p)
			fail("malloc(%zu) = NULL", sizes[i]);
		memset(p, 1, sizes[i]);
		check(from_slab(p), "malloc(%zu) = %p was served by libc",
		      sizes[i], p);
		free(p);
	}
	p = calloc(1, 100);
	check(p && from_slab(p), "calloc(1, 100) = %p was not slab's", p);
	free(p);

	/* Fill to 3/4 of the limit with small and large blocks. */
	while (nb < MAX_BLOCKS && used < target) {
		if (rnd_below(&r, 2))
			n = 16 + rnd_below(&r, 2000);
		else
			n = (256 << 10) + rnd_below(&r, 7 << 18);
		/* Small blocks in a burst, so both kinds weigh the same. */
		for (i = 0; i < (n < 4096 ? 256 : 1) && nb < MAX_BLOCKS; i++) {
			p = malloc(n);
			if (!p) {
				nnull++;
				break;
			}
			memset(p, 0x77, n);
			blk[nb++] = p;
			used += n;
			if (from_slab(p))
				slab_bytes += n;
		}
		if (nnull)
			break;
	}
	info("%lu blocks, %zu KiB, %zu KiB of them slab's; address space "
	     "%ld KiB",
	     nb, used >> 10, slab_bytes >> 10, vsz_kb());
	if (nnull && used < target / 2)
		check(0, "malloc returned NULL at %zu KiB used, %ld KiB mapped",
		      used >> 10, vsz_kb());
	else if (nnull)
		note("malloc returned NULL near the end (%ld KiB mapped)",
		     vsz_kb());
#ifdef WITH_SLAB
	check(slab_bytes >= used / 2,
	      "only %zu of %zu KiB came from slab, the rest from libc",
	      slab_bytes >> 10, used >> 10);
#endif
	for (i = 0; i < nb; i++)
		free(blk[i]);

	/* The freed memory serves again. */
	p = malloc(opaque(100));
	check(p && from_slab(p), "after the free: malloc(100) = %p not slab's",
	      p);
	free(p);
	p = malloc(opaque(1 << 20));
	check(p && from_slab(p),
	      "after the free: malloc(1 MiB) = %p not slab's", p);
	if (p)
		memset(p, 2, 1 << 20);
	free(p);
	slab_validate();
	if (nr_errors)
		fail("%d checks failed", nr_errors);
	check_rseq_mode();
	if (nr_errors)
		fail("%d checks failed", nr_errors);
	return KSFT_PASS;
}
