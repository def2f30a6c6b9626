// SPDX-License-Identifier: MIT
/*
 * api_edges - the corners of every entry point of the malloc family.
 *
 * Checks do not stop at the first failure: every failed expectation is
 * reported and the program fails at the end. Sizes are passed through
 * opaque() and the program is built with -fno-builtin so that the
 * compiler cannot fold any of these calls.
 *
 * Slab-defined semantics where libcs differ (invalid alignments, errno
 * preserved by free) are only strict with -DWITH_SLAB.
 */
#include "stress.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)

static const size_t sizes[] = {
	0,       1,       2,       7,       8,       15,      16,     17,
	23,      24,      31,      32,      33,      48,      63,     64,
	65,      96,      127,     128,     129,     192,     255,    256,
	257,     384,     511,     512,     513,     768,     1023,   1024,
	1025,    1536,    2047,    2048,    2049,    3072,    4095,   4096,
	4097,    6144,    8191,    8192,    8193,    12288,   16383,  16384,
	16385,   24576,   32767,   32768,   32769,   65535,   65536,  65537,
	131071,  131072,  131073,  262143,  262144,  262145,  524288, 1048575,
	1048576, 1048577, 2097152, 2097153, 4194304, 8388609,
};

/* Sizes no allocator can satisfy, many chosen to overflow roundings. */
static size_t huge[96];
static int nhuge;

static void init_huge(void)
{
	size_t pg = sysconf(_SC_PAGESIZE), k;

	for (k = 0; k <= 40; k++)
		huge[nhuge++] = SIZE_MAX - k;
	for (k = 1; k <= 4; k++) {
		huge[nhuge++] = SIZE_MAX - k * pg + 1;
		huge[nhuge++] = SIZE_MAX - k * pg - 15;
		huge[nhuge++] = SIZE_MAX - k * MIB + 1;
		huge[nhuge++] = SIZE_MAX - k * 2 * MIB + 17;
	}
	huge[nhuge++] = SIZE_MAX / 2 + 1;
	huge[nhuge++] = SIZE_MAX / 2;
	huge[nhuge++] = SIZE_MAX / 2 - 4095;
	huge[nhuge++] = PTRDIFF_MAX;
	huge[nhuge++] = (size_t)PTRDIFF_MAX + 2;
	huge[nhuge++] = (size_t)1 << 62;
	huge[nhuge++] = ((size_t)1 << 62) + 1;
	huge[nhuge++] = ((size_t)1 << 62) - 4096;
	huge[nhuge++] = (size_t)3 << 61;
}

static size_t first_nonzero(const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i])
			return i;
	return (size_t)-1;
}

static int is_pow2(size_t x)
{
	return x && !(x & (x - 1));
}

/* ------------------------------------------------------------------ */

static void test_malloc_basic(void)
{
	static void *live[ARRAY_SIZE(sizes)][16];
	int v = 0, dummy;
	size_t i, j;
	void *a, *b;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		/* 16 copies of each, 2 of the large ones */
		for (j = 0; j < (sizes[i] > 64 * KIB ? 2 : 16); j++) {
			size_t n = opaque(sizes[i]), u;
			void *p = malloc(n);

			live[i][j] = p;
			check(p, "malloc(%zu) = NULL: %s", n, strerror(errno));
			if (!p)
				continue;
			check(ptr_aligned(p, 16), "malloc(%zu) = %p", n, p);
			u = malloc_usable_size(p);
			check(u >= n, "malloc_usable_size(malloc(%zu)) = %zu",
			      n, u);
			/* The whole usable size must be ours to write. */
			if (u > 64 * KIB)
				u = n;
			pat_fill(p, u, pat_seed(p, u));
#ifdef WITH_SLAB
			check(slab_owns(p) == 1, "slab_owns(malloc(%zu))", n);
			if (n > 16)
				check(slab_owns((char *)p + 16) == 0,
				      "slab_owns(interior of %zu)", n);
#endif
		}
	}
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		for (j = 0; j < 16; j++) {
			void *p = live[i][j];
			size_t u;

			if (!p)
				continue;
			u = malloc_usable_size(p);
			if (u > 64 * KIB)
				u = sizes[i];
			if (pat_walk(p, u, u, pat_seed(p, u), 0) != (size_t)-1)
				v++;
			free(p);
		}
	}
	check(v == 0,
	      "%d objects overwritten through their neighbours' "
	      "usable size",
	      v);

	a = malloc(opaque(0));
	b = malloc(opaque(0));
	check(a && b && a != b, "malloc(0) twice: %p %p", a, b);
	free(a);
	free(b);
#ifdef WITH_SLAB
	check(slab_owns(NULL) == 0, "slab_owns(NULL)");
	check(slab_owns(&dummy) == 0, "slab_owns(stack)");
	check(slab_owns(&nhuge) == 0, "slab_owns(.bss)");
	check(slab_owns((void *)test_malloc_basic) == 0, "slab_owns(text)");
#endif
	(void)dummy;
}

static void expect_enomem(void *p, const char *call, size_t n)
{
	check(!p && errno == ENOMEM,
	      "%s(%zu = SIZE_MAX - %zu) = %p, errno "
	      "%d (%s), want NULL/ENOMEM",
	      call, n, SIZE_MAX - n, p, errno, strerror(errno));
	free(p);
}

static void test_huge(void)
{
	int i, r;

	for (i = 0; i < nhuge; i++) {
		size_t n = opaque(huge[i]);
		void *p, *q;

		errno = 0;
		expect_enomem(malloc(n), "malloc", n);
		errno = 0;
		expect_enomem(calloc(1, n), "calloc(1, n)", n);
		errno = 0;
		expect_enomem(calloc(n, 1), "calloc(n, 1)", n);
		errno = 0;
		expect_enomem(realloc(NULL, n), "realloc(NULL, n)", n);
		errno = 0;
		expect_enomem(reallocarray(NULL, 1, n), "reallocarray", n);
		errno = 0;
		expect_enomem(aligned_alloc(16, n), "aligned_alloc(16)", n);
		errno = 0;
		expect_enomem(aligned_alloc(4096, n), "aligned_alloc(4096)", n);
		errno = 0;
		expect_enomem(aligned_alloc(MIB, n), "aligned_alloc(1M)", n);
		errno = 0;
		expect_enomem(memalign(64, n), "memalign(64)", n);
		errno = 0;
		expect_enomem(valloc(n), "valloc", n);
		errno = 0;
		expect_enomem(pvalloc(n), "pvalloc", n);
		q = (void *)&r;
		r = posix_memalign(&q, 4096, n);
		check(r == ENOMEM && (q == (void *)&r || q == NULL),
		      "posix_memalign(4096, SIZE_MAX - %zu) = %d, %p",
		      SIZE_MAX - n, r, q);
		if (!r)
			free(q);

		/* A failed realloc leaves the block alone. */
		p = malloc(opaque(100));
		if (!p)
			continue;
		pat_fill(p, 100, 7);
		errno = 0;
		q = realloc(p, n);
		check(!q && errno == ENOMEM,
		      "realloc(p, SIZE_MAX - %zu) = %p errno %d", SIZE_MAX - n,
		      q, errno);
		check(pat_walk(p, 100, 100, 7, 0) == (size_t)-1,
		      "failed realloc damaged the block");
		if (q)
			p = q;
		free(p);
	}
}

static void test_calloc(void)
{
	static const struct {
		size_t n, m;
	} ovf[] = {
		{ SIZE_MAX / 2 + 1, 2 },
		{ 2, SIZE_MAX / 2 + 1 },
		{ SIZE_MAX, SIZE_MAX },
		{ SIZE_MAX, 2 },
		{ (size_t)1 << 32, (size_t)1 << 32 },
		{ (size_t)1 << 33, (size_t)1 << 31 }, /* wraps to 0 */
		{ SIZE_MAX / 16 + 1, 16 },            /* wraps to 0 */
		{ 16, SIZE_MAX / 16 + 1 },
		{ 274177, 67280421310721ULL }, /* wraps to 1 */
		{ 67280421310721ULL, 274177 },
		{ SIZE_MAX / 3 + 1, 3 },
		{ SIZE_MAX / 4096 + 1, 4096 },
		{ (size_t)1 << 40, (size_t)1 << 24 }, /* wraps to 0 */
		{ ((size_t)1 << 32) + 1, ((size_t)1 << 32) - 1 },
	};
	size_t i, k;

	for (i = 0; i < ARRAY_SIZE(ovf); i++) {
		void *p;

		errno = 0;
		p = calloc(opaque(ovf[i].n), opaque(ovf[i].m));
		check(!p && errno == ENOMEM, "calloc(%zu, %zu) = %p errno %d",
		      ovf[i].n, ovf[i].m, p, errno);
		free(p);
		errno = 0;
		p = reallocarray(NULL, opaque(ovf[i].n), opaque(ovf[i].m));
		check(!p && errno == ENOMEM,
		      "reallocarray(NULL, %zu, %zu) = %p errno %d", ovf[i].n,
		      ovf[i].m, p, errno);
		free(p);
	}
	{
		void *a = calloc(opaque(0), opaque(0));
		void *b = calloc(opaque(0), opaque(SIZE_MAX));
		void *c = calloc(opaque(SIZE_MAX), opaque(0));

		check(a && b && c, "calloc with a zero operand: %p %p %p", a, b,
		      c);
		free(a);
		free(b);
		free(c);
	}

	/* Zeroing, also of memory reused after being dirtied. */
	for (i = 1; i < ARRAY_SIZE(sizes); i++) {
		size_t n = sizes[i];

		for (k = 0; k < 6; k++) {
			void *d[4], *p;
			size_t bad, j;

			for (j = 0; j < 4; j++) {
				d[j] = malloc(opaque(n));
				if (d[j])
					memset(d[j], 0xa5,
					       malloc_usable_size(d[j]));
			}
			if (k & 1) {
				d[0] = realloc(d[0], opaque(n / 2 + 1));
				if (d[0])
					memset(d[0], 0x5a, n / 2 + 1);
			}
			for (j = 0; j < 4; j++)
				free(d[j]);
			switch (k % 3) {
			case 0:
				p = calloc(1, opaque(n));
				break;
			case 1:
				p = calloc(opaque(n), 1);
				break;
			default:
				p = calloc(opaque((n + 15) / 16), 16);
				break;
			}
			check(p, "calloc(%zu) failed", n);
			if (!p)
				continue;
			check(ptr_aligned(p, 16), "calloc(%zu) = %p", n, p);
			escape(p);
			bad = first_nonzero(p, n);
			check(bad == (size_t)-1,
			      "calloc(%zu) = %p not zeroed "
			      "at %zu (round %zu)",
			      n, p, bad, k);
			memset(p, 0xee, n);
			free(p);
		}
	}
}

/*
 * calloc of large runs: a run may be carved from dirty memory that was
 * freed, coalesced, split or left over by a shrinking realloc. Whatever
 * calloc may skip zeroing must really be clean.
 */
static void test_calloc_large(void)
{
	static const size_t big[] = { 300 * KIB, MIB, 3 * MIB / 2, 5 * MIB };
	void *a, *b, *c, *z[6];
	size_t i, k, bad;

	for (k = 0; k < 3; k++) {
		a = malloc(opaque(3 * MIB));
		b = malloc(opaque(3 * MIB));
		c = malloc(opaque(4 * MIB));
		if (!a || !b || !c)
			fail("malloc of 3-4 MiB failed");
		memset(a, 0xa1, 3 * MIB);
		memset(b, 0xb2, 3 * MIB);
		memset(c, 0xc3, 4 * MIB);
		/* shrink in place: the tail becomes free, dirty memory */
		c = realloc(c, opaque(MIB));
		free(a);
		free(b);
		for (i = 0; i < ARRAY_SIZE(big); i++) {
			z[i] = calloc(1, opaque(big[i]));
			check(z[i] != NULL, "calloc(%zu)", big[i]);
			if (!z[i])
				continue;
			escape(z[i]);
			bad = first_nonzero(z[i], big[i]);
			check(bad == (size_t)-1,
			      "calloc(%zu) over reused memory = %p not zero "
			      "at %zu (0x%02x), round %zu",
			      big[i], z[i], bad, ((unsigned char *)z[i])[bad],
			      k);
			memset(z[i], 0xd4, big[i]);
		}
		for (i = 0; i < ARRAY_SIZE(big); i++)
			free(z[i]);
		free(c);
	}
}

static void test_realloc(void)
{
	static const size_t rs[] = {
		1,      8,       16,      17,      24,      100,     128,
		129,    500,     1000,    1024,    2000,    4096,    4097,
		10000,  32768,   40000,   65536,   100000,  131072,  262144,
		300000, 1048576, 1500000, 2097152, 5000000, 8388608,
	};
	size_t i, j, n;
	void *p, *q;

	p = realloc(NULL, opaque(100));
	check(p && malloc_usable_size(p) >= 100, "realloc(NULL, 100)");
	free(p);
	p = realloc(NULL, opaque(0));
	check(p != NULL, "realloc(NULL, 0) = NULL, want malloc(0)");
	free(p);

	/* realloc(p, 0) follows the libc that is linked. */
	for (i = 0; i < 4; i++) {
		static const size_t from[] = { 1, 4000, 300000, 3 * MIB };

		p = malloc(opaque(from[i]));
		if (!p)
			continue;
		q = realloc(p, opaque(0));
#ifdef __GLIBC__
		check(q == NULL,
		      "glibc semantics: realloc(%p [%zu], 0) = "
		      "%p, want NULL (p freed)",
		      p, from[i], q);
#else
		check(q != NULL && ptr_aligned(q, 16),
		      "musl semantics: "
		      "realloc(%p [%zu], 0) = %p, want a malloc(0) object",
		      p, from[i], q);
#endif
		free(q);
	}

	/* Every pair of sizes, both directions. */
	for (i = 0; i < ARRAY_SIZE(rs); i++) {
		for (j = 0; j < ARRAY_SIZE(rs); j++) {
			size_t a = rs[i], b = rs[j], bad;
			uint64_t seed;

			p = malloc(opaque(a));
			check(p, "malloc(%zu)", a);
			if (!p)
				continue;
			seed = pat_seed(p, a);
			pat_fill(p, a, seed);
			q = realloc(p, opaque(b));
			check(q, "realloc(%zu -> %zu) failed", a, b);
			if (!q) {
				free(p);
				continue;
			}
			check(ptr_aligned(q, 16), "realloc(%zu -> %zu) = %p", a,
			      b, q);
			check(malloc_usable_size(q) >= b,
			      "usable %zu after realloc(%zu -> %zu)",
			      malloc_usable_size(q), a, b);
			bad = pat_walk(q, a, b, seed, 0);
			check(bad == (size_t)-1,
			      "realloc(%zu -> %zu) lost "
			      "byte %zu",
			      a, b, bad);
			if (b > a) { /* the new part must be writable */
				memset((char *)q + a, 0x33, b - a);
				bad = pat_walk(q, a, a, seed, 0);
				check(bad == (size_t)-1,
				      "grown part aliases "
				      "old part at %zu (%zu -> %zu)",
				      bad, a, b);
			}
			free(q);
		}
	}

	/* Grow by 1.5x to 16 MiB and back, in place or not. */
	n = 1;
	p = malloc(n);
	pat_fill(p, n, 11);
	while (p && n < 16 * MIB) {
		size_t nn = n + n / 2 + 1, bad;

		q = realloc(p, opaque(nn));
		check(q, "growing realloc to %zu", nn);
		if (!q)
			break;
		bad = pat_walk(q, n, n, 11, 0);
		check(bad == (size_t)-1, "grow %zu -> %zu lost byte %zu", n, nn,
		      bad);
		p = q;
		n = nn;
		pat_fill(p, n, 11);
	}
	while (p && n > 1) {
		size_t nn = n * 2 / 3, bad;

		q = realloc(p, opaque(nn));
		check(q, "shrinking realloc to %zu", nn);
		if (!q)
			break;
		bad = pat_walk(q, n, nn, 11, 0);
		check(bad == (size_t)-1, "shrink %zu -> %zu lost byte %zu", n,
		      nn, bad);
		p = q;
		n = nn;
		pat_fill(p, n, 11);
	}
	free(p);

	/* realloc of aligned objects keeps the contents. */
	for (i = 4; i <= 20; i += 4) {
		size_t al = (size_t)1 << i, bad;

		p = aligned_alloc(al, 3000);
		if (!p)
			continue;
		pat_fill(p, 3000, al);
		q = realloc(p, opaque(9000));
		check(q && ptr_aligned(q, 16), "realloc of aligned_alloc(%zu)",
		      al);
		if (!q) {
			free(p);
			continue;
		}
		bad = pat_walk(q, 3000, 3000, al, 0);
		check(bad == (size_t)-1,
		      "realloc of aligned_alloc(%zu) "
		      "lost byte %zu",
		      al, bad);
		free(q);
	}

	/* reallocarray */
	p = reallocarray(NULL, opaque(10), opaque(10));
	check(p && malloc_usable_size(p) >= 100, "reallocarray(NULL, 10, 10)");
	if (p) {
		pat_fill(p, 100, 5);
		errno = 0;
		q = reallocarray(p, opaque(274177), opaque(67280421310721ULL));
		check(!q && errno == ENOMEM,
		      "reallocarray wrapping to 1 = %p"
		      " errno %d",
		      q, errno);
		q = reallocarray(p, opaque(SIZE_MAX / 2 + 1), opaque(2));
		check(!q, "reallocarray wrapping to 0 = %p", q);
		check(pat_walk(p, 100, 100, 5, 0) == (size_t)-1,
		      "failed reallocarray damaged the block");
		q = reallocarray(p, opaque(1000), opaque(30));
		check(q, "reallocarray(p, 1000, 30)");
		if (q) {
			check(pat_walk(q, 100, 100, 5, 0) == (size_t)-1,
			      "reallocarray lost contents");
			p = q;
		}
		free(p);
	}
}

static void test_aligned(void)
{
	static const size_t extra[] = { 1, 8, 100, 5000 };
	size_t shift, al, n, k;
	void *live[16];
	uint64_t seeds[16];
	size_t lsz[16];
	int nl, i, r;

	for (shift = 0; shift <= 20; shift++) {
		al = (size_t)1 << shift;
		nl = 0;
		for (k = 0; k < 8; k++) {
			size_t cand[8] = { al - 1,   al,       al + 1,
					   3 * al,   extra[0], extra[1],
					   extra[2], extra[3] };
			void *p[3] = { NULL, NULL, NULL };
			const char *fn[3] = { "aligned_alloc", "memalign",
					      "posix_memalign" };
			int f;

			n = opaque(cand[k]);
			if (!n)
				continue;
			p[0] = aligned_alloc(al, n);
			p[1] = memalign(al, n);
			if (al >= sizeof(void *)) {
				r = posix_memalign(&p[2], al, n);
				check(r == 0, "posix_memalign(%zu, %zu) = %d",
				      al, n, r);
			}
			for (f = 0; f < 3; f++) {
				if (f == 2 && al < sizeof(void *))
					continue;
				check(p[f], "%s(%zu, %zu) = NULL: %s", fn[f],
				      al, n, strerror(errno));
				if (!p[f])
					continue;
				check(ptr_aligned(p[f], al) &&
					      ptr_aligned(p[f], 16),
				      "%s(%zu, %zu) = %p misaligned", fn[f], al,
				      n, p[f]);
				check(malloc_usable_size(p[f]) >= n,
				      "%s(%zu, %zu): usable %zu", fn[f], al, n,
				      malloc_usable_size(p[f]));
#ifdef WITH_SLAB
				check(slab_owns(p[f]) == 1,
				      "slab_owns(%s(%zu, %zu))", fn[f], al, n);
#endif
				if (nl < 16) {
					lsz[nl] = n;
					seeds[nl] = pat_seed(p[f], n);
					pat_fill(p[f], n, seeds[nl]);
					live[nl++] = p[f];
					continue;
				}
				if (f == 0 && (k & 1))
					free_aligned_sized(p[f], al, n);
				else
					free(p[f]);
			}
		}
		for (i = 0; i < nl; i++) {
			size_t bad = pat_walk(live[i], lsz[i], lsz[i], seeds[i],
					      0);

			check(bad == (size_t)-1,
			      "aligned object %p (%zu, "
			      "align %zu) overwritten at %zu",
			      live[i], lsz[i], al, bad);
			free(live[i]);
		}
		/* size 0: anything, but aligned if not NULL */
		live[0] = aligned_alloc(al, opaque(0));
		check(!live[0] || ptr_aligned(live[0], al),
		      "aligned_alloc(%zu, 0) = %p", al, live[0]);
		free(live[0]);
	}

	/* Above 1 MiB: may fail, must not misalign. */
	for (shift = 21; shift <= 25; shift++) {
		void *p;

		al = (size_t)1 << shift;
		p = aligned_alloc(al, opaque(al));
		check(!p || ptr_aligned(p, al), "aligned_alloc(%zu) = %p", al,
		      p);
		if (p)
			memset(p, 1, al);
		free(p);
		p = aligned_alloc(al, opaque(1));
		check(!p || ptr_aligned(p, al), "aligned_alloc(%zu, 1) = %p",
		      al, p);
		free(p);
	}

	/* Invalid alignments. */
	{
		static const size_t bad[] = {
			0,
			3,
			5,
			6,
			12,
			24,
			48,
			100,
			1000,
			4095,
			4097,
			(1u << 20) + 16,
			SIZE_MAX,
			SIZE_MAX - 15,
			(SIZE_MAX / 2 + 1) + 1,
			SIZE_MAX / 2,
		};
		static const size_t pbad[] = {
			0,
			1,
			2,
			4,
			3,
			12,
			24,
			40,
			48,
			1000,
			4097,
			SIZE_MAX,
			(SIZE_MAX / 2 + 1) + 8,
		};
		void *p, *q;

		for (k = 0; k < ARRAY_SIZE(bad); k++) {
			errno = 0;
			p = aligned_alloc(opaque(bad[k]), opaque(64));
#ifdef WITH_SLAB
			check(!p && errno == EINVAL,
			      "aligned_alloc(%zu, 64) "
			      "= %p errno %d, want NULL/EINVAL",
			      bad[k], p, errno);
#endif
			free(p);
			errno = 0;
			p = memalign(opaque(bad[k]), opaque(64));
#ifdef WITH_SLAB
			check(!p && errno == EINVAL,
			      "memalign(%zu, 64) = %p "
			      "errno %d, want NULL/EINVAL",
			      bad[k], p, errno);
#endif
			free(p);
		}
		for (k = 0; k < ARRAY_SIZE(pbad); k++) {
			q = (void *)&k;
			r = posix_memalign(&q, opaque(pbad[k]), opaque(64));
			check(r == EINVAL,
			      "posix_memalign(%zu, 64) = %d, "
			      "want EINVAL",
			      pbad[k], r);
			check(q == (void *)&k || q == NULL,
			      "posix_memalign "
			      "failure changed *memptr to %p",
			      q);
			if (!r)
				free(q);
		}
		/* SIZE_MAX/2+1 is a power of two but cannot be honoured. */
		errno = 0;
		p = aligned_alloc(opaque(SIZE_MAX / 2 + 1), opaque(64));
		check(!p && (errno == EINVAL || errno == ENOMEM),
		      "aligned_alloc(SIZE_MAX/2+1, 64) = %p errno %d", p,
		      errno);
		errno = 0;
		p = memalign(opaque(SIZE_MAX / 2 + 1), opaque(64));
		check(!p && (errno == EINVAL || errno == ENOMEM),
		      "memalign(SIZE_MAX/2+1, 64) = %p errno %d", p, errno);
		q = NULL;
		r = posix_memalign(&q, opaque(SIZE_MAX / 2 + 1), opaque(64));
		check(r == EINVAL || r == ENOMEM,
		      "posix_memalign(SIZE_MAX/2+1, 64) = %d", r);
		if (!r)
			free(q);
		/* size + alignment overflowing */
		errno = 0;
		p = aligned_alloc(MIB, opaque(SIZE_MAX - MIB + 2));
		check(!p && errno == ENOMEM,
		      "aligned_alloc(1M, SIZE_MAX-1M"
		      "+2) = %p errno %d",
		      p, errno);
		q = NULL;
		r = posix_memalign(&q, 4096, opaque(SIZE_MAX - 4000));
		check(r == ENOMEM, "posix_memalign(4096, SIZE_MAX-4000) = %d",
		      r);
	}
	(void)is_pow2;
}

static void test_valloc(void)
{
	size_t pg = sysconf(_SC_PAGESIZE), n, i;
	static const size_t vs[] = { 1,    100,   4095,  4096,
				     4097, 12293, 65536, 3 << 20 };
	void *p;

	for (i = 0; i < ARRAY_SIZE(vs); i++) {
		n = opaque(vs[i]);
		p = valloc(n);
		check(p && ptr_aligned(p, pg) && malloc_usable_size(p) >= n,
		      "valloc(%zu) = %p", n, p);
		if (p)
			memset(p, 0x11, n);
		free(p);
		p = pvalloc(n);
		check(p && ptr_aligned(p, pg) &&
			      malloc_usable_size(p) >=
				      ((n + pg - 1) & ~(pg - 1)),
		      "pvalloc(%zu) = %p usable %zu", n, p,
		      p ? malloc_usable_size(p) : 0);
		/* pvalloc rounds the size up to whole pages */
		if (p)
			memset(p, 0x22, (n + pg - 1) & ~(pg - 1));
		free(p);
	}
	p = valloc(opaque(0));
	check(!p || ptr_aligned(p, pg), "valloc(0) = %p", p);
	free(p);
	p = pvalloc(opaque(0));
	check(p && ptr_aligned(p, pg), "pvalloc(0) = %p", p);
	free(p);
	p = pvalloc(opaque(1));
	check(p && ptr_aligned(p, pg) && malloc_usable_size(p) >= pg,
	      "pvalloc(1) = %p usable %zu", p, p ? malloc_usable_size(p) : 0);
	if (p)
		memset(p, 0x33, pg);
	free(p);
}

static void test_free_misc(void)
{
	static const size_t fs[] = { 1, 24, 1000, 40000, 300000, 3 << 20 };
	int saved_ok = 1;
	size_t i;
	void *p;

	free(NULL);
	free_sized(NULL, 0);
	free_sized(NULL, 123);
	free_aligned_sized(NULL, 64, 0);
	check(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu",
	      malloc_usable_size(NULL));

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t n = opaque(sizes[i]);

		p = malloc(n);
		if (p)
			memset(p, 0x44, n);
		free_sized(p, n);
		p = calloc(1, n);
		free_sized(p, n);
		if (n && is_pow2(n) && n <= MIB) {
			p = aligned_alloc(n, n);
			if (p)
				memset(p, 0x55, n);
			free_aligned_sized(p, n, n);
		}
		p = aligned_alloc(64, n);
		free_aligned_sized(p, 64, n);
	}

	/* POSIX.1-2024: free() does not modify errno. */
	for (i = 0; i < ARRAY_SIZE(fs); i++) {
		void *ptrs[3];
		int j;

		ptrs[0] = malloc(opaque(fs[i]));
		ptrs[1] = aligned_alloc(4096, opaque(fs[i]));
		ptrs[2] = NULL;
		for (j = 0; j < 3; j++) {
			errno = 4242;
			free(ptrs[j]);
			if (errno != 4242) {
				saved_ok = 0;
#ifdef WITH_SLAB
				check(0,
				      "free(%zu-byte object) changed errno"
				      " to %d",
				      fs[i], errno);
#endif
			}
		}
	}
	if (!saved_ok)
		note("free() does not preserve errno");
}

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
	{ "malloc_basic", test_malloc_basic },
	{ "huge", test_huge },
	{ "calloc", test_calloc },
	{ "calloc_large", test_calloc_large },
	{ "realloc", test_realloc },
	{ "aligned", test_aligned },
	{ "valloc", test_valloc },
	{ "free_misc", test_free_misc },
};

/* api_edges [test...]: all tests, or the named ones (for reproducing). */
int main(int argc, char **argv)
{
	double t0 = now_s();
	size_t i;
	int a;

	watchdog("api_edges", 100);
	check_rseq_mode();
	init_huge();
	for (i = 0; i < ARRAY_SIZE(tests); i++) {
		int run = argc < 2;

		for (a = 1; a < argc; a++)
			run |= !strcmp(argv[a], tests[i].name);
		if (!run)
			continue;
		tests[i].fn();
		/* pin a corruption down to the test that made it */
		info("%s: done, validating", tests[i].name);
		slab_validate();
	}
	if (nr_errors) {
		errmsg(NULL, "api_edges: %d failed checks", nr_errors);
		return KSFT_FAIL;
	}
	info("api_edges: all checks passed in %.2fs", now_s() - t0);
	return KSFT_PASS;
}
