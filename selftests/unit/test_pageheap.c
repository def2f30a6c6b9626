// SPDX-License-Identifier: MIT
/*
 * test_pageheap.c - the page heap (pageheap.c): runs of varied sizes and
 * alignments, coalescing, in-place shrink and grow, purging of dirty pages.
 *
 * Besides pageheap_validate(), the tests walk the pagemap themselves
 * (walk()) so that a validator that misses a case does not hide it.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <unistd.h>

#include "unit.h"

#define NR_LIVE 64

struct walk {
	unsigned long runs, free_runs;
	size_t free_bytes, dirty_bytes;
	size_t largest_free; /* pages */
};

/*
 * Walk every run below the frontier in address order; check that the runs
 * tile the arena and that no two free runs touch.
 */
static void walk(struct walk *w)
{
	struct pageheap_stats st;
	size_t i = 0, npages;
	struct slab *s, *prev = NULL;

	pageheap_get_stats(&st);
	npages = st.frontier >> PAGE_SHIFT;
	memset(w, 0, sizeof(*w));
	while (i < npages) {
		s = slab_arena.pagemap[i];
		REQUIREF(s && s->start == slab_arena.base + (i << PAGE_SHIFT),
			 "page %zu: no run starts here", i);
		REQUIREF(s->npages && i + s->npages <= npages,
			 "page %zu: run of %u pages", i, s->npages);
		REQUIREF(slab_arena.pagemap[i + s->npages - 1] == s,
			 "page %zu: last page not mapped", i);
		REQUIREF(s->kind == SPAN_FREE || s->kind == SPAN_LARGE ||
				 s->kind == SPAN_SLAB,
			 "page %zu: kind %d", i, s->kind);
		w->runs++;
		if (s->kind == SPAN_FREE) {
			REQUIREF(!prev || prev->kind != SPAN_FREE,
				 "free runs at pages %zu and before touch", i);
			w->free_runs++;
			w->free_bytes += (size_t)s->npages << PAGE_SHIFT;
			w->dirty_bytes += (size_t)s->dirty_pages << PAGE_SHIFT;
			if (s->npages > w->largest_free)
				w->largest_free = s->npages;
		}
		prev = s;
		i += s->npages;
	}
	REQUIRE(w->free_bytes == st.free_bytes);
	REQUIRE(w->dirty_bytes == st.dirty_bytes);
}

/* The run holding @addr (below the frontier). */
static struct slab *run_at(uintptr_t addr)
{
	struct pageheap_stats st;
	size_t i = 0, want = (addr - slab_arena.base) >> PAGE_SHIFT;
	struct slab *s;

	pageheap_get_stats(&st);
	REQUIRE(addr - slab_arena.base < st.frontier);
	for (;;) {
		s = slab_arena.pagemap[i];
		REQUIRE(s && s->npages);
		if (want < i + s->npages)
			return s;
		i += s->npages;
	}
}

static uintptr_t run_end(const struct slab *s)
{
	return s->start + ((size_t)s->npages << PAGE_SHIFT);
}

/* Pages that no free run can serve: the next run comes from the frontier. */
static size_t above_free(void)
{
	struct walk w;

	walk(&w);
	return w.largest_free + 1 > 129 ? w.largest_free + 1 : 129;
}

static void check_run(struct slab *s, size_t npages, size_t align, int kind)
{
	struct pageheap_stats st;
	size_t i;

	pageheap_get_stats(&st);
	REQUIREF(s, "pageheap_alloc(%zu, %zu) failed", npages, align);
	REQUIRE(s->kind == kind && s->npages == npages);
	REQUIREF(s->start % (align << PAGE_SHIFT) == 0,
		 "run %#lx not aligned to %zu pages", (unsigned long)s->start,
		 align);
	REQUIRE(s->start >= slab_arena.base &&
		run_end(s) <= slab_arena.base + st.frontier);
	REQUIRE(virt_to_slab((void *)s->start) == s);
	REQUIRE(virt_to_slab((void *)(run_end(s) - 1)) == s);
	if (kind == SPAN_SLAB)
		for (i = 0; i < npages; i++)
			REQUIRE(virt_to_slab((void *)(s->start +
						      (i << PAGE_SHIFT))) == s);
	/* Committed memory: both ends are writable. */
	*(volatile char *)s->start = 1;
	*(volatile char *)(run_end(s) - 1) = 1;
}

static int kind_of_run(const void *p)
{
	struct slab *s = virt_to_slab(p);

	return s ? s->kind : SPAN_NONE;
}

static int page_is_zero(uintptr_t page)
{
	const uint64_t *w = (const uint64_t *)page;
	size_t i;

	for (i = 0; i < PAGE_SIZE / sizeof(*w); i++)
		if (w[i])
			return 0;
	return 1;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

START_TEST(random_runs)
{
	struct slab *live[NR_LIVE];
	struct pageheap_stats st0, st;
	struct walk w;
	size_t npages, align;
	unsigned int nr = 0, i, j, op;
	int kind;

	pageheap_get_stats(&st0);
	for (op = 0; op < 1500; op++) {
		if (nr < NR_LIVE && (nr == 0 || rnd() % 3)) {
			npages = 1 + rnd() % (rnd() % 8 ? 40 : 600);
			align = rnd() % 4 ? 1 : 1UL << (rnd() % 9);
			kind = rnd() % 2 ? SPAN_LARGE : SPAN_SLAB;
			live[nr] = pageheap_alloc(npages, align, kind);
			check_run(live[nr], npages, align, kind);
			for (j = 0; j < nr; j++)
				REQUIREF(run_end(live[j]) <= live[nr]->start ||
						 run_end(live[nr]) <=
							 live[j]->start,
					 "runs %#lx+%u and %#lx+%u overlap",
					 (unsigned long)live[j]->start,
					 live[j]->npages,
					 (unsigned long)live[nr]->start,
					 live[nr]->npages);
			nr++;
		} else {
			i = (unsigned int)(rnd() % nr);
			pageheap_free(live[i]);
			live[i] = live[--nr];
		}
		pageheap_validate();
		if (op % 64 == 0)
			walk(&w);
	}
	while (nr) {
		pageheap_free(live[--nr]);
		pageheap_validate();
	}
	walk(&w);
	pageheap_get_stats(&st);
	/* Everything carved here is free again, and so is what was free. */
	REQUIREF(st.free_bytes == st0.free_bytes + (st.frontier - st0.frontier),
		 "free %zu, was %zu, frontier moved %zu", st.free_bytes,
		 st0.free_bytes, st.frontier - st0.frontier);
	REQUIRE(st.large_nr == st0.large_nr);
	REQUIRE(st.large_bytes == st0.large_bytes);
}
END_TEST

START_TEST(coalesce)
{
	static const int order[6][3] = {
		{ 0, 1, 2 }, { 0, 2, 1 }, { 1, 0, 2 },
		{ 1, 2, 0 }, { 2, 0, 1 }, { 2, 1, 0 },
	};
	struct pageheap_stats st0, st;
	struct slab *r[3], *f;
	size_t p = above_free();
	unsigned int k, i;
	uintptr_t lo, hi;
	struct walk w;

	for (k = 0; k < 6; k++) {
		pageheap_get_stats(&st0);
		for (i = 0; i < 3; i++) {
			r[i] = pageheap_alloc(p, 1, SPAN_LARGE);
			check_run(r[i], p, 1, SPAN_LARGE);
		}
		/* Round 0 carves at the frontier, later ones from its rest. */
		if (!k)
			REQUIRE(r[0]->start == slab_arena.base + st0.frontier);
		REQUIRE(r[1]->start == run_end(r[0]));
		REQUIRE(r[2]->start == run_end(r[1]));
		lo = r[0]->start;
		hi = run_end(r[2]);
		for (i = 0; i < 3; i++) {
			int j = order[k][i];
			uintptr_t start = r[j]->start, end = run_end(r[j]);

			pageheap_free(r[j]);
			pageheap_validate();
			walk(&w);
			f = run_at(start);
			REQUIRE(f->kind == SPAN_FREE);
			REQUIRE(f->start <= start && run_end(f) >= end);
		}
		/* One free run spans all three. */
		f = run_at(lo);
		REQUIREF(f->kind == SPAN_FREE && f->start <= lo &&
				 run_end(f) >= hi,
			 "round %u: not merged", k);
		pageheap_get_stats(&st);
		REQUIRE(st.free_bytes ==
			st0.free_bytes + (st.frontier - st0.frontier));
	}
}
END_TEST

START_TEST(alignment)
{
	static const size_t sizes[] = { 1, 3, 17, 130 };
	struct slab *live[11 * 4];
	unsigned int a, i, nr = 0;
	struct walk w;
	size_t align;

	for (a = 0; a <= 10; a++) {
		align = 1UL << a;
		for (i = 0; i < 4; i++) {
			live[nr] = pageheap_alloc(sizes[i], align,
						  i % 2 ? SPAN_SLAB :
							  SPAN_LARGE);
			check_run(live[nr], sizes[i], align,
				  i % 2 ? SPAN_SLAB : SPAN_LARGE);
			pageheap_validate();
			nr++;
		}
	}
	walk(&w);
	/* Free every other one, then the rest: merges both ways. */
	for (i = 0; i < nr; i += 2) {
		pageheap_free(live[i]);
		pageheap_validate();
	}
	for (i = 1; i < nr; i += 2) {
		pageheap_free(live[i]);
		pageheap_validate();
	}
	walk(&w);
}
END_TEST

START_TEST(shrink_grow)
{
	struct pageheap_stats st0, st;
	struct slab *a, *b, *c, *f;
	size_t p = above_free();
	struct walk w;

	pageheap_get_stats(&st0);
	a = pageheap_alloc(p + 10, 1, SPAN_LARGE);
	check_run(a, p + 10, 1, SPAN_LARGE);
	REQUIRE(a->start == slab_arena.base + st0.frontier);
	pageheap_get_stats(&st);
	REQUIRE(st.large_bytes == st0.large_bytes + ((p + 10) << PAGE_SHIFT));

	pageheap_shrink(a, 4);
	pageheap_validate();
	walk(&w);
	REQUIRE(a->npages == 4 && a->kind == SPAN_LARGE);
	REQUIRE(virt_to_slab((void *)(run_end(a) - 1)) == a);
	f = run_at(run_end(a));
	REQUIRE(f->kind == SPAN_FREE && f->start == run_end(a) &&
		f->npages == p + 6);
	pageheap_get_stats(&st);
	REQUIRE(st.large_bytes == st0.large_bytes + (4UL << PAGE_SHIFT));

	/* Grow into the free run after it, partly then fully. */
	REQUIRE(pageheap_grow(a, 8) == 1);
	pageheap_validate();
	walk(&w);
	REQUIRE(a->npages == 8);
	REQUIRE(virt_to_slab((void *)(run_end(a) - 1)) == a);
	f = run_at(run_end(a));
	REQUIRE(f->kind == SPAN_FREE && f->start == run_end(a) &&
		f->npages == p + 2);
	REQUIRE(pageheap_grow(a, p + 10) == 1);
	pageheap_validate();
	walk(&w);
	REQUIRE(a->npages == p + 10);
	pageheap_get_stats(&st);
	REQUIRE(st.large_bytes == st0.large_bytes + ((p + 10) << PAGE_SHIFT));
	REQUIRE(st.frontier == run_end(a) - slab_arena.base);

	/* Nothing after it (frontier), then a run in use after it. */
	REQUIRE(pageheap_grow(a, p + 11) == 0);
	REQUIRE(a->npages == p + 10);
	b = pageheap_alloc(p, 1, SPAN_LARGE);
	check_run(b, p, 1, SPAN_LARGE);
	REQUIRE(b->start == run_end(a));
	REQUIRE(pageheap_grow(a, p + 11) == 0);
	REQUIRE(a->npages == p + 10);
	/* Growing to its size or less succeeds without change. */
	REQUIRE(pageheap_grow(a, p + 10) == 1);
	REQUIRE(pageheap_grow(a, 1) == 1 && a->npages == p + 10);
	/* Shrinking to its size or to nothing does nothing. */
	pageheap_shrink(a, p + 10);
	pageheap_shrink(a, 0);
	REQUIRE(a->npages == p + 10);
	pageheap_validate();

	/* A free gap too small for the growth. */
	pageheap_shrink(a, p + 8); /* 2 free pages between a and b */
	pageheap_validate();
	f = run_at(run_end(a));
	REQUIRE(f->kind == SPAN_FREE && f->npages == 2 &&
		run_end(f) == b->start);
	REQUIRE(pageheap_grow(a, p + 11) == 0);
	REQUIRE(a->npages == p + 8);
	REQUIRE(pageheap_grow(a, p + 10) == 1);
	REQUIRE(run_end(a) == b->start);
	pageheap_validate();
	walk(&w);

	c = pageheap_alloc(1, 1, SPAN_LARGE);
	check_run(c, 1, 1, SPAN_LARGE);
	pageheap_free(b);
	pageheap_validate();
	pageheap_free(a);
	pageheap_validate();
	pageheap_free(c);
	pageheap_validate();
	walk(&w);
	pageheap_get_stats(&st);
	REQUIRE(st.large_bytes == st0.large_bytes &&
		st.large_nr == st0.large_nr);
	REQUIRE(st.free_bytes == st0.free_bytes + (st.frontier - st0.frontier));
}
END_TEST

START_TEST(purge)
{
	struct pageheap_stats st0, st;
	size_t big, npages, i, p = above_free();
	struct slab *a, *g1, *g2, *f;
	long r0, r1, r2;
	uintptr_t start;
	struct walk w;

	big = 2 * slab_opt.dirty_max + (4UL << 20);
	if (big > (1UL << 30) || (p << PAGE_SHIFT) > slab_opt.dirty_max / 2) {
		/* SLAB_OPTIONS set dirty_max out of this test's range. */
		return;
	}
	npages = big >> PAGE_SHIFT;

	pageheap_purge(1);
	pageheap_get_stats(&st0);
	REQUIRE(st0.dirty_bytes == 0);
	walk(&w);
	REQUIRE(w.dirty_bytes == 0);

	/*
	 * A run below dirty_max stays dirty until purged. Guards on both
	 * sides (all three carved at the frontier) keep it from merging.
	 */
	g1 = pageheap_alloc(p, 1, SPAN_LARGE);
	a = pageheap_alloc(p, 1, SPAN_LARGE);
	g2 = pageheap_alloc(p, 1, SPAN_LARGE);
	check_run(g1, p, 1, SPAN_LARGE);
	check_run(a, p, 1, SPAN_LARGE);
	check_run(g2, p, 1, SPAN_LARGE);
	REQUIRE(a->start == run_end(g1) && g2->start == run_end(a));
	memset((void *)a->start, 0x5a, p << PAGE_SHIFT);
	start = a->start;
	pageheap_free(a);
	f = run_at(start);
	REQUIRE(f->kind == SPAN_FREE && f->start == start && f->npages == p);
	REQUIRE(f->dirty_pages);
	pageheap_get_stats(&st);
	REQUIRE(st.dirty_bytes == (p << PAGE_SHIFT));
	r1 = rss_pages();
	pageheap_purge(1);
	r2 = rss_pages();
	pageheap_get_stats(&st);
	REQUIRE(st.dirty_bytes == 0);
	REQUIRE(st.purged_bytes - st0.purged_bytes == (p << PAGE_SHIFT));
	REQUIRE(!run_at(start)->dirty_pages);
	REQUIREF(r1 - r2 >= (long)p / 2, "RSS %ld -> %ld pages", r1, r2);
	for (i = 0; i < p; i++)
		REQUIREF(page_is_zero(start + (i << PAGE_SHIFT)),
			 "page %zu of a purged run is not zero", i);
	pageheap_free(g1);
	pageheap_free(g2);
	pageheap_validate();

	/*
	 * A run beyond dirty_max: freeing it keeps it resident for reuse (a
	 * malloc/free loop of a huge block pays no fault per page), and the
	 * next purge, by age or by the next page-heap operation, returns it.
	 */
	pageheap_get_stats(&st0);
	a = pageheap_alloc(npages, 1, SPAN_LARGE);
	check_run(a, npages, 1, SPAN_LARGE);
	r0 = rss_pages();
	memset((void *)a->start, 0x5a, big);
	r1 = rss_pages();
	REQUIREF(r1 - r0 >= (long)npages * 3 / 4,
		 "RSS %ld -> %ld pages after touching %zu", r0, r1, npages);
	start = a->start;
	pageheap_free(a);
	pageheap_validate();
	REQUIRE(run_at(start)->dirty_pages == npages);
	{
		unsigned int ms = slab_opt.purge_ms;

		slab_opt.purge_ms = 0; /* everything is old enough */
		pageheap_tick();
		slab_opt.purge_ms = ms;
	}
	pageheap_get_stats(&st);
	r2 = rss_pages();
	REQUIREF(st.dirty_bytes <= slab_opt.dirty_max,
		 "%zu dirty bytes kept, dirty_max %zu", st.dirty_bytes,
		 slab_opt.dirty_max);
	REQUIRE(st.purged_bytes - st0.purged_bytes >= big);
	REQUIREF(r1 - r2 >= (long)npages / 2,
		 "RSS %ld -> %ld pages after freeing %zu", r1, r2, npages);
	f = run_at(start);
	REQUIRE(f->kind == SPAN_FREE && !f->dirty_pages);

	/* Purged memory reads as zero ... */
	for (i = 0; i < npages; i++)
		REQUIREF(page_is_zero(start + (i << PAGE_SHIFT)),
			 "page %zu of a purged run is not zero", i);
	/* ... and a run handed out clean (calloc skips its memset) is. */
	a = pageheap_alloc(npages, 1, SPAN_LARGE);
	REQUIRE(a);
	if (!a->dirty_pages)
		for (i = 0; i < npages; i++)
			REQUIREF(page_is_zero(a->start + (i << PAGE_SHIFT)),
				 "page %zu of a clean run is not zero", i);
	pageheap_free(a);
	pageheap_validate();
}
END_TEST

/* dirty_max=0: a freed run goes back at once, even a large one. */
START_TEST(purge_dirty_max_zero)
{
	size_t p = (2UL << 20) >> PAGE_SHIFT, dmax = slab_opt.dirty_max;
	struct pageheap_stats st;
	struct slab *g[2], *r;

	pageheap_purge(1);
	g[0] = pageheap_alloc(1, 1, SPAN_LARGE);
	r = pageheap_alloc(p, 1, SPAN_LARGE);
	g[1] = pageheap_alloc(1, 1, SPAN_LARGE);
	REQUIRE(g[0] && r && g[1]);
	memset((void *)r->start, 0x5a, p << PAGE_SHIFT);
	slab_opt.dirty_max = 0;
	pageheap_free(r);
	pageheap_get_stats(&st);
	slab_opt.dirty_max = dmax;
	REQUIREF(st.dirty_bytes == 0, "%zu dirty bytes with dirty_max=0",
		 st.dirty_bytes);
	pageheap_free(g[0]);
	pageheap_free(g[1]);
	pageheap_validate();
}
END_TEST

/*
 * A purge that the kernel refuses (MADV_DONTNEED fails on locked pages)
 * leaves the data in place: the run must not be taken for zeroed memory,
 * or calloc() returns old data.
 */
START_TEST(purge_refused)
{
	size_t n = 1UL << 20, i;
	unsigned char *p, *q;
	uintptr_t start;
	struct slab *f;

	p = malloc(n);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(kind_of_run(p), SPAN_LARGE);
	/* (ASan makes mlock() a no-op: the test proves nothing there.) */
	if (mlock(p, n)) {
		/* No CAP_IPC_LOCK and RLIMIT_MEMLOCK below 1 MiB. */
		ck_assert_msg(errno == EPERM || errno == ENOMEM, "mlock: %d",
			      errno);
		free(p);
		return;
	}
	memset(p, 0xaa, n);
	start = (uintptr_t)p;
	free(p);
	slab_large_release(); /* a run this thread kept: to the page heap */
	pageheap_purge(1);
	pageheap_validate();
	f = run_at(start);
	REQUIRE(f->kind == SPAN_FREE);
	if (!f->dirty_pages)
		for (i = 0; i < n; i += PAGE_SIZE)
			REQUIREF(page_is_zero(start + i),
				 "run marked clean after a refused purge: page %zu still holds data",
				 i / PAGE_SIZE);
	q = calloc(1, n);
	ck_assert_ptr_nonnull(q);
	for (i = 0; i < n; i++)
		REQUIREF(!q[i], "calloc(%zu) = %p: byte %zu is %#x (%s)", n,
			 (void *)q, i, q[i],
			 q == p ? "the locked run" : "another run");
	free(q);
	munlock((void *)start, n);
}
END_TEST

START_TEST(bad_requests)
{
	struct pageheap_stats st0, st;
	size_t arena_pages = slab_arena.size >> PAGE_SHIFT;

	pageheap_get_stats(&st0);
	ck_assert_ptr_null(pageheap_alloc(0, 1, SPAN_LARGE));
	ck_assert_ptr_null(
		pageheap_alloc((size_t)UINT32_MAX + 1, 1, SPAN_LARGE));
	ck_assert_ptr_null(pageheap_alloc(1, arena_pages * 2, SPAN_LARGE));
	ck_assert_ptr_null(pageheap_alloc(arena_pages + 1, 1, SPAN_LARGE));
	ck_assert_ptr_null(
		pageheap_alloc(arena_pages - (st0.frontier >> PAGE_SHIFT) + 1,
			       1, SPAN_LARGE));
	pageheap_validate();
	pageheap_get_stats(&st);
	ck_assert_uint_eq(st.frontier, st0.frontier);
	ck_assert_uint_eq(st.free_bytes, st0.free_bytes);
	ck_assert_uint_eq(st.large_nr, st0.large_nr);
}
END_TEST

Suite *pageheap_suite(void)
{
	Suite *s = suite_create("pageheap");
	TCase *tc = unit_tcase("runs");

	tcase_add_test(tc, random_runs);
	tcase_add_test(tc, coalesce);
	tcase_add_test(tc, alignment);
	tcase_add_test(tc, shrink_grow);
	tcase_add_test(tc, bad_requests);
	suite_add_tcase(s, tc);

	tc = unit_tcase("purge");
	tcase_add_test(tc, purge);
	tcase_add_test(tc, purge_dirty_max_zero);
	tcase_add_test(tc, purge_refused);
	suite_add_tcase(s, tc);
	return s;
}
