// SPDX-License-Identifier: MIT
/*
 * test_api.c - libc semantics of the wrapped malloc family (wrap.c,
 * malloc.c): the test binary's own calls go through slab.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "slab_stats.h"
#include "unit.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

/*
 * Requests no one can serve reach libc's allocator; under valgrind its
 * replacement reports them as errors ("fishy" sizes): skip those there.
 */
#define SKIP_HUGE_ON_VALGRIND()          \
	do {                             \
		if (RUNNING_ON_VALGRIND) \
			return;          \
	} while (0)

/* Keep the compiler from reasoning about the sizes. */
static volatile size_t vmax = SIZE_MAX;

static unsigned char pat(size_t i, unsigned int seed)
{
	return (unsigned char)(i * 131 + seed * 7 + 1);
}

static void fill(void *p, size_t n, unsigned int seed)
{
	unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		c[i] = pat(i, seed);
}

static size_t first_bad(const void *p, size_t n, unsigned int seed)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i] != pat(i, seed))
			return i;
	return n;
}

static size_t first_nonzero(const void *p, size_t n)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (c[i])
			return i;
	return n;
}

static void *sentinel_fill(void *p)
{
	ck_assert_ptr_nonnull(p);
	memcpy(p, "abcdefghi", 10);
	return p;
}

START_TEST(malloc_basics)
{
	void *p;

	p = malloc(0);
	ck_assert_ptr_nonnull(p);
	ck_assert(slab_owns(p));
	ck_assert_uint_ge(malloc_usable_size(p), 1);
	free(p);
	free(NULL);
	ck_assert_uint_eq(malloc_usable_size(NULL), 0);
}
END_TEST

/* Requests too big for anyone: NULL and ENOMEM, the caller's data kept. */
START_TEST(huge_requests)
{
	void *p = malloc(10);

	SKIP_HUGE_ON_VALGRIND();
	errno = 0;
	ck_assert_ptr_null(malloc(vmax));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(malloc(vmax - PAGE_SIZE));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(malloc(vmax / 2));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(calloc(vmax / 4, 2));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(aligned_alloc(64, vmax & ~(size_t)63));
	ck_assert_int_eq(errno, ENOMEM);
	p = sentinel_fill(p);
	ck_assert_int_eq(posix_memalign(&p, 64, vmax - 100), ENOMEM);
	ck_assert_str_eq(p, "abcdefghi");
	errno = 0;
	ck_assert_ptr_null(realloc(p, vmax));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_str_eq(p, "abcdefghi");
	errno = 0;
	ck_assert_ptr_null(realloc(p, vmax / 2));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_str_eq(p, "abcdefghi");
	free(p);
}
END_TEST

START_TEST(calloc_overflow)
{
	errno = 0;
	ck_assert_ptr_null(calloc(vmax / 2 + 1, 2));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(calloc(2, vmax / 2 + 1));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(calloc(vmax, vmax));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(calloc((vmax >> 32) + 2, (vmax >> 32) + 2));
	ck_assert_int_eq(errno, ENOMEM);
	errno = 0;
	ck_assert_ptr_null(reallocarray(NULL, vmax / 2 + 1, 2));
	ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

/* Memory that was used and freed comes back zeroed from calloc. */
START_TEST(calloc_zeroes)
{
	static const size_t sizes[] = {
		0,      1,         16,          100,
		1000,   5000,      KMALLOC_MAX, KMALLOC_MAX + 1,
		300000, 1UL << 20, 4UL << 20,
	};
	unsigned int i, round;
	size_t n, bad;
	void *p, *q;

	for (round = 0; round < 3; round++) {
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			n = sizes[i];
			p = malloc(n);
			ck_assert_ptr_nonnull(p);
			memset(p, 0xff, malloc_usable_size(p));
			free(p);
			q = calloc(1, n);
			ck_assert_ptr_nonnull(q);
			ck_assert(slab_owns(q));
			bad = first_nonzero(q, n);
			ck_assert_msg(bad == n,
				      "calloc(%zu): byte %zu is not 0", n, bad);
			memset(q, 0xee, n);
			free(q);
		}
	}
	/* A page run grown in place, then freed: calloc still zeroes. */
	p = malloc(300000);
	ck_assert_ptr_nonnull(p);
	memset(p, 0xff, 300000);
	p = realloc(p, 900000);
	ck_assert_ptr_nonnull(p);
	memset(p, 0xff, 900000);
	p = realloc(p, 200000); /* shrunk in place: tail is free */
	ck_assert_ptr_nonnull(p);
	q = calloc(1, 700000);
	ck_assert_ptr_nonnull(q);
	bad = first_nonzero(q, 700000);
	ck_assert_msg(bad == 700000, "calloc: byte %zu is not 0", bad);
	free(q);
	free(p);
	q = calloc(9, 100000);
	ck_assert_ptr_nonnull(q);
	bad = first_nonzero(q, 900000);
	ck_assert_msg(bad == 900000, "calloc: byte %zu is not 0", bad);
	free(q);
}
END_TEST

static const size_t align_sizes[] = {
	0,         1, 17, 100, 4096, 5000, 40000, KMALLOC_MAX, KMALLOC_MAX + 1,
	3UL << 20,
};
#define NR_ALIGN_SIZES (sizeof(align_sizes) / sizeof(align_sizes[0]))

static void check_aligned(void *p, size_t align, size_t size)
{
	ck_assert_msg(p != NULL, "align %zu size %zu: NULL", align, size);
	ck_assert_msg((uintptr_t)p % (align ? align : 1) == 0,
		      "%p not aligned to %zu", p, align);
	ck_assert_msg(slab_owns(p), "align %zu size %zu: %p not slab's", align,
		      size, p);
	ck_assert_uint_ge(malloc_usable_size(p), size);
	if (size)
		memset(p, 0x3c, size);
}

START_TEST(aligned_alloc_semantics)
{
	static const size_t bad[] = { 0,    3,    24,   48,
				      1000, 4095, 4097, (1UL << 20) + 1 };
	unsigned int i, j;
	size_t align;
	void *p;

	/* Alignment 0 is not an alignment: EINVAL, as in C17 DR 460. */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_ptr_null(aligned_alloc(bad[i], 64));
		ck_assert_int_eq(errno, EINVAL);
		errno = 0;
		ck_assert_ptr_null(memalign(bad[i], 64));
		ck_assert_int_eq(errno, EINVAL);
	}
	for (align = 1; align <= (4UL << 20); align <<= 1) {
		for (j = 0; j < NR_ALIGN_SIZES; j++) {
			p = aligned_alloc(align, align_sizes[j]);
			check_aligned(p, align, align_sizes[j]);
			free(p);
		}
	}
}
END_TEST

START_TEST(posix_memalign_semantics)
{
	static const size_t bad[] = { 0, 1, 2, 4, 3, 24, 48, 1000 };
	void *p, *sentinel = (void *)0x1234;
	unsigned int i, j;
	size_t align;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = sentinel;
		ck_assert_int_eq(posix_memalign(&p, bad[i], 64), EINVAL);
		ck_assert_ptr_eq(p, sentinel);
	}
	for (align = sizeof(void *); align <= (4UL << 20); align <<= 1) {
		for (j = 0; j < NR_ALIGN_SIZES; j++) {
			p = NULL;
			ck_assert_int_eq(posix_memalign(&p, align,
							align_sizes[j]),
					 0);
			check_aligned(p, align, align_sizes[j]);
			free(p);
		}
	}
}
END_TEST

START_TEST(memalign_valloc_pvalloc)
{
	void *p;

	p = memalign(64, 100);
	check_aligned(p, 64, 100);
	free(p);
	p = memalign(1UL << 16, 1UL << 16);
	check_aligned(p, 1UL << 16, 1UL << 16);
	free(p);
	p = valloc(100);
	check_aligned(p, PAGE_SIZE, 100);
	free(p);
	p = valloc(0);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq((uintptr_t)p % PAGE_SIZE, 0);
	free(p);
	p = pvalloc(100);
	check_aligned(p, PAGE_SIZE, PAGE_SIZE);
	free(p);
	p = pvalloc(0);
	check_aligned(p, PAGE_SIZE, PAGE_SIZE);
	free(p);
	p = pvalloc(PAGE_SIZE + 1);
	check_aligned(p, PAGE_SIZE, 2 * PAGE_SIZE);
	free(p);
	errno = 0;
	ck_assert_ptr_null(pvalloc(vmax));
	ck_assert_int_eq(errno, ENOMEM);
}
END_TEST

static int kind_of(const void *p)
{
	struct slab *sl = virt_to_slab(p);

	return sl ? sl->kind : SPAN_NONE;
}

/* Contents survive realloc across slab -> page run -> slab. */
START_TEST(realloc_chain)
{
	static const struct {
		size_t size;
		int kind;
	} steps[] = {
		{ 100, SPAN_SLAB },        { 1000, SPAN_SLAB },
		{ 300000, SPAN_LARGE },    { 2UL << 20, SPAN_LARGE },
		{ 5UL << 20, SPAN_LARGE }, { 1UL << 20, SPAN_LARGE },
		{ 200000, SPAN_LARGE },    { 70000, SPAN_SLAB },
		{ 200, SPAN_SLAB },        { 10, SPAN_SLAB },
		{ 500000, SPAN_LARGE },    { 16, SPAN_SLAB },
	};
	unsigned int i, round;
	size_t old = 0, keep, bad;
	void *p = NULL, *q;

	for (round = 0; round < 2; round++) {
		for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
			q = realloc(p, steps[i].size);
			ck_assert_ptr_nonnull(q);
			ck_assert(slab_owns(q));
			ck_assert_msg(kind_of(q) == steps[i].kind,
				      "realloc to %zu: kind %d", steps[i].size,
				      kind_of(q));
			ck_assert_uint_ge(malloc_usable_size(q), steps[i].size);
			keep = old < steps[i].size ? old : steps[i].size;
			bad = first_bad(q, keep, i + round);
			ck_assert_msg(bad == keep,
				      "realloc %zu -> %zu: byte %zu lost", old,
				      steps[i].size, bad);
			fill(q, steps[i].size, i + 1 + round);
			p = q;
			old = steps[i].size;
		}
		/* Seeds of the next round start where this one ended. */
		fill(p, old, round + 1);
	}
	free(p);
}
END_TEST

START_TEST(realloc_in_place)
{
	void *p, *q;

	p = malloc(100); /* kmalloc-112 */
	ck_assert_ptr_eq(realloc(p, 112), p);
	ck_assert_ptr_eq(realloc(p, 60), p);
	q = realloc(p, 113);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq(malloc_usable_size(q), 128);
	p = realloc(q, 20); /* would waste more than half */
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(malloc_usable_size(p), 32);
	free(p);

	p = malloc(1UL << 20);
	fill(p, 1UL << 20, 9);
	q = realloc(p, 600000); /* shrinks the run in place */
	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(malloc_usable_size(q),
			  (600000 + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1));
	ck_assert_uint_eq(first_bad(q, 600000, 9), 600000);
	free(q);
}
END_TEST

START_TEST(realloc_edges)
{
	void *p, *q;

	p = realloc(NULL, 50);
	ck_assert_ptr_nonnull(p);
	ck_assert(slab_owns(p));
	/* glibc's convention: realloc(p, 0) frees p. */
	ck_assert_ptr_null(realloc(p, 0));

	p = sentinel_fill(malloc(10));
	errno = 0;
	ck_assert_ptr_null(reallocarray(p, vmax, 2));
	ck_assert_int_eq(errno, ENOMEM);
	ck_assert_str_eq(p, "abcdefghi");
	q = reallocarray(p, 100, 100);
	ck_assert_ptr_nonnull(q);
	ck_assert_str_eq(q, "abcdefghi");
	ck_assert_uint_ge(malloc_usable_size(q), 10000);
	free(q);

	/* A libc pointer goes to libc's realloc. */
	p = __real_malloc(10);
	ck_assert_ptr_nonnull(p);
	memcpy(p, "xyz", 4);
	q = realloc(p, 100000);
	ck_assert_ptr_nonnull(q);
	ck_assert(!in_arena(q));
	ck_assert_str_eq(q, "xyz");
	free(q);
}
END_TEST

START_TEST(getline_buffers)
{
	static char text[] = "first line\nsecond, longer line\nlast";
	size_t n = 4;
	char *buf = malloc(n);
	FILE *f = fmemopen(text, sizeof(text) - 1, "r");

	ck_assert_ptr_nonnull(f);
	ck_assert(slab_owns(buf));
	/* A buffer of ours: replaced by one of libc's, which libc grows. */
	ck_assert_int_eq(getline(&buf, &n, f), 11);
	ck_assert_str_eq(buf, "first line\n");
	ck_assert_int_eq(getline(&buf, &n, f), 20);
	ck_assert_str_eq(buf, "second, longer line\n");
	ck_assert_int_eq(getdelim(&buf, &n, 'x', f), 4);
	ck_assert_str_eq(buf, "last");
	ck_assert_int_eq(getline(&buf, &n, f), -1);
	free(buf);
	fclose(f);
}
END_TEST

/* Take every page of the arena; returns the runs (libc memory). */
static struct slab **exhaust_arena(size_t *nr)
{
	size_t n = slab_arena.size >> PAGE_SHIFT, cap = 1UL << 16;
	struct slab **v = __real_malloc(cap * sizeof(*v)), *s;

	REQUIRE(v);
	*nr = 0;
	while (n) {
		s = pageheap_alloc(n, 1, SPAN_LARGE);
		if (!s) {
			n /= 2;
			continue;
		}
		REQUIRE(*nr < cap);
		v[(*nr)++] = s;
	}
	return v;
}

static int run_kind(const void *p)
{
	struct slab *s = virt_to_slab(p);

	return s && s->start == (uintptr_t)p ? s->kind : -1;
}

static void kept_figures(size_t *bytes, unsigned long *nr)
{
	struct pageheap_stats st;

	pageheap_get_stats(&st);
	*bytes = st.kept_bytes;
	*nr = st.kept_nr;
}

/*
 * A thread keeps the last large run it freed and reuses it for a large
 * malloc of about its size; the statistics show it as free, calloc()
 * clears it, a much smaller request does not take it, and it goes back to
 * the page heap when another is kept or the thread exits.
 */
START_TEST(large_run_kept)
{
	struct slab_global_info g;
	unsigned long nr0, nr;
	size_t b0, b;
	unsigned char *p, *q;

	/*
	 * Only a thread whose exit hook will give the run back keeps one:
	 * not with SLAB_OPTIONS=debug, nor rseq=fake's start-up thread.
	 */
	if (!percpu_thread_hooked())
		return;
	slab_large_release();
	kept_figures(&b0, &nr0);
	p = malloc(300000);
	ck_assert_ptr_nonnull(p);
	memset(p, 0x5a, 300000);
	free(p);
	kept_figures(&b, &nr);
	ck_assert_uint_eq(nr, nr0 + 1);
	ck_assert_uint_eq(b, b0 + 300000 / PAGE_SIZE * PAGE_SIZE + PAGE_SIZE);
	ck_assert_int_eq(run_kind(p), SPAN_KEPT);
	ck_assert(!slab_owns(p));
	slab_stats_get(&g, NULL, 0);
	ck_assert_uint_eq(g.large_nr, 0);

	/* A little larger (same page count): the same run, still whole. */
	q = malloc(300001);
	ck_assert_ptr_eq(q, p);
	ck_assert_int_eq(run_kind(q), SPAN_LARGE);
	ck_assert_uint_eq(q[299999], 0x5a);
	free(q);
	/* calloc() gets it cleared. */
	q = calloc(1, 299000);
	ck_assert_ptr_eq(q, p);
	ck_assert_uint_eq(first_nonzero(q, 299000), 299000);
	free(q);
	/* Far smaller: not from the kept run, which goes back. */
	q = malloc(KMALLOC_MAX + 1);
	ck_assert_ptr_nonnull(q);
	kept_figures(&b, &nr);
	ck_assert_uint_eq(nr, nr0);
	ck_assert_uint_eq(b, b0);
	free(q);
	/* Another freed run replaces the kept one. */
	p = malloc(400000);
	free(p);
	kept_figures(&b, &nr);
	ck_assert_uint_eq(nr, nr0 + 1);
	ck_assert_int_eq(run_kind(p), SPAN_KEPT);
	/* Runs above 1 MiB are not kept. */
	q = malloc(2UL << 20);
	free(q);
	ck_assert_int_eq(run_kind(q), SPAN_FREE);
	slab_large_release();
	kept_figures(&b, &nr);
	ck_assert_uint_eq(nr, nr0);
	ck_assert_int_eq(run_kind(p), SPAN_FREE);
	pageheap_validate();
}
END_TEST

#define KEEPERS 64
static pthread_barrier_t kept_all, kept_done;

static void *keep_and_exit(void *arg)
{
	free(malloc((size_t)(uintptr_t)arg));
	pthread_barrier_wait(&kept_all);
	pthread_barrier_wait(&kept_done);
	return NULL;
}

/*
 * 64 threads hold a freed 900 KB run each at once: the kept total stays
 * within dirty_max / 2 (57 MiB would be kept otherwise), and every run
 * goes back when its thread exits.
 */
START_TEST(large_run_kept_threads)
{
	unsigned long nr0, nr;
	pthread_t tid[KEEPERS];
	size_t b0, b;
	unsigned int i;

	slab_large_release();
	kept_figures(&b0, &nr0);
	ck_assert_int_eq(pthread_barrier_init(&kept_all, NULL, KEEPERS + 1), 0);
	ck_assert_int_eq(pthread_barrier_init(&kept_done, NULL, KEEPERS + 1),
			 0);
	for (i = 0; i < KEEPERS; i++)
		ck_assert_int_eq(pthread_create(&tid[i], NULL, keep_and_exit,
						(void *)(uintptr_t)(900000 + i)),
				 0);
	pthread_barrier_wait(&kept_all);
	kept_figures(&b, &nr);
	ck_assert_uint_le(b, slab_opt.dirty_max / 2);
	if (slab_opt.dirty_max >= (16UL << 20) && !slab_opt.debug)
		ck_assert_uint_gt(nr, nr0); /* some were kept */
	pthread_barrier_wait(&kept_done);
	for (i = 0; i < KEEPERS; i++)
		pthread_join(tid[i], NULL);
	kept_figures(&b, &nr);
	ck_assert_uint_eq(nr, nr0);
	ck_assert_uint_eq(b, b0);
	pageheap_validate();
	pthread_barrier_destroy(&kept_all);
	pthread_barrier_destroy(&kept_done);
}
END_TEST

/* With the arena full, every call is served by libc, correctly. */
START_TEST(arena_exhausted)
{
	struct slab **runs;
	struct kmem_cache *c;
	struct pageheap_stats st;
	void *keep, *p, *q, *big[1000];
	size_t nr, i, nbig = 0;

	/* Making 64 GiB accessible is slow under valgrind; no news there. */
	SKIP_HUGE_ON_VALGRIND();
	keep = sentinel_fill(malloc(100));
	c = kmem_cache_create("unit-full", 128, 0, 0, NULL);
	ck_assert_ptr_nonnull(c);
	runs = exhaust_arena(&nr);
	pageheap_get_stats(&st);
	ck_assert_uint_eq(st.free_bytes, 0);

	/* Cached objects first, then libc's. */
	do {
		big[nbig] = malloc(KMALLOC_MAX);
		ck_assert_ptr_nonnull(big[nbig]);
	} while (in_arena(big[nbig++]) && nbig < 1000);
	ck_assert_msg(!in_arena(big[nbig - 1]), "%zu objects from a full arena",
		      nbig);
	ck_assert_uint_gt(kmalloc_caches[NR_KMALLOC - 1].stats.alloc_fail, 0);
	memset(big[nbig - 1], 1, KMALLOC_MAX);

	p = malloc(5UL << 20);
	ck_assert_ptr_nonnull(p);
	ck_assert(!in_arena(p) && !slab_owns(p));
	memset(p, 2, 5UL << 20);
	free(p);
	p = calloc(1, 2UL << 20);
	ck_assert_ptr_nonnull(p);
	ck_assert(!in_arena(p));
	ck_assert_uint_eq(first_nonzero(p, 2UL << 20), 2UL << 20);
	free(p);
	p = aligned_alloc(1UL << 20, 1UL << 20);
	ck_assert_ptr_nonnull(p);
	ck_assert(!in_arena(p));
	ck_assert_uint_eq((uintptr_t)p % (1UL << 20), 0);
	free(p);
	ck_assert_int_eq(posix_memalign(&p, 1UL << 16, 100), 0);
	ck_assert(!in_arena(p));
	ck_assert_uint_eq((uintptr_t)p % (1UL << 16), 0);
	free(p);
	errno = 0;
	ck_assert_ptr_null(kmem_cache_alloc(c));
	ck_assert_int_eq(errno, ENOMEM);
	/* An object of ours moves out to libc with its contents. */
	q = realloc(keep, 1UL << 20);
	ck_assert_ptr_nonnull(q);
	ck_assert(!in_arena(q));
	ck_assert_str_eq(q, "abcdefghi");
	free(q);

	for (i = 0; i < nbig; i++)
		free(big[i]);
	for (i = 0; i < nr; i++)
		pageheap_free(runs[i]);
	__real_free(runs);
	pageheap_validate();
	/* Room again. */
	p = malloc(KMALLOC_MAX);
	ck_assert(slab_owns(p));
	free(p);
	p = kmem_cache_alloc(c);
	ck_assert_ptr_nonnull(p);
	kmem_cache_free(c, p);
	ck_assert_int_eq(kmem_cache_destroy(c), 0);
}
END_TEST

Suite *api_suite(void)
{
	Suite *s = suite_create("api");
	TCase *tc = unit_tcase("malloc family");

	tcase_add_test(tc, malloc_basics);
	tcase_add_test(tc, huge_requests);
	tcase_add_test(tc, calloc_overflow);
	tcase_add_test(tc, calloc_zeroes);
	tcase_add_test(tc, aligned_alloc_semantics);
	tcase_add_test(tc, posix_memalign_semantics);
	tcase_add_test(tc, memalign_valloc_pvalloc);
	tcase_add_test(tc, realloc_chain);
	tcase_add_test(tc, realloc_in_place);
	tcase_add_test(tc, realloc_edges);
	tcase_add_test(tc, getline_buffers);
	tcase_add_test(tc, arena_exhausted);
	tcase_add_test(tc, large_run_kept);
	tcase_add_test(tc, large_run_kept_threads);
	suite_add_tcase(s, tc);
	return s;
}
