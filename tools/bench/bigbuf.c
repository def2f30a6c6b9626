// SPDX-License-Identifier: MIT
/*
 * bigbuf.c - large buffers freed and allocated again, as a codec or a
 * compressor does with its frame and output buffers.
 *
 *   bigbuf [ROUNDS [MIN_MIB [MAX_MIB]]]      defaults: 100 rounds, 5..25 MiB
 *
 * Every round allocates an input buffer of a random size in
 * [MIN_MIB, MAX_MIB] MiB and writes every page of it, allocates an output
 * buffer of another such size and fills it from the input, reads a byte
 * per page of the output back, and frees both. An allocator that returns
 * freed runs to the OS at once (munmap, or a purge above a fixed budget)
 * faults every page in again in the next round; one that keeps them pays
 * nothing. At the end it prints the minor page faults of the run and its
 * peak RSS, the figures to compare with the time.
 */
#include <sys/resource.h>

#include "bench.h"

const char *bench_name = "bigbuf";

static void fill(unsigned char *p, size_t n, unsigned char v)
{
	size_t i;

	for (i = 0; i < n; i += 4096)
		p[i] = (unsigned char)(v + i / 4096);
	p[n - 1] = v;
}

int main(int argc, char **argv)
{
	unsigned long rounds, lo, hi, r;
	uint64_t rng = rng_seed(11);
	unsigned long sum = 0;
	struct rusage ru;

	rounds = arg_ulong(argc, argv, 1, 100, 1, 1UL << 30, "rounds");
	lo = arg_ulong(argc, argv, 2, 5, 1, 4096, "MIN_MIB");
	hi = arg_ulong(argc, argv, 3, 25, lo, 4096, "MAX_MIB");
	for (r = 0; r < rounds; r++) {
		size_t nin = rng_range(&rng, lo << 20, hi << 20);
		size_t nout = rng_range(&rng, lo << 20, hi << 20);
		unsigned char *in = xmalloc(nin), *out;
		size_t i, n = nin < nout ? nin : nout;

		fill(in, nin, (unsigned char)r);
		out = xmalloc(nout);
		memcpy(out, in, n);
		if (nout > n)
			fill(out + n, nout - n, (unsigned char)r);
		for (i = 0; i < nout; i += 4096)
			sum += out[i];
		escape(in);
		escape(out);
		free(in);
		free(out);
	}
	getrusage(RUSAGE_SELF, &ru);
	printf("bigbuf: %lu rounds of %lu..%lu MiB: %ld minor faults, peak RSS %ld KiB (checksum %lu)\n",
	       rounds, lo, hi, ru.ru_minflt, ru.ru_maxrss, sum & 0xffff);
	return 0;
}
