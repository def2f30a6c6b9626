// SPDX-License-Identifier: MIT
/*
 * test_slab.c - slab geometry and carving (slab.c): the geometry of every
 * kmalloc cache, object index arithmetic, cache_refill()/cache_drain()
 * round trips, accounting of a private cache, double-free detection.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"

#define MAX_OUT (3 * SLAB_MAX_OBJS + 8)

static void *out[MAX_OUT];

static unsigned int min_objs(size_t size)
{
	return size <= 1024 ? 8 : size <= 16384 ? 4 : 1;
}

START_TEST(geometry)
{
	unsigned int i, np, n, want = 0;
	size_t bytes, tail;

	for (i = 0; i < NR_KMALLOC; i++) {
		struct kmem_cache *s = &kmalloc_caches[i];

		bytes = (size_t)s->npages << PAGE_SHIFT;
		ck_assert_msg(s->nobj >= 1 && s->nobj <= SLAB_MAX_OBJS,
			      "%s: nobj %u", s->name, s->nobj);
		ck_assert_msg(s->npages >= 1 && s->npages <= SLAB_MAX_PAGES,
			      "%s: npages %u", s->name, s->npages);
		ck_assert_msg((size_t)s->nobj * s->size <= bytes,
			      "%s: %u objects of %u in %zu bytes", s->name,
			      s->nobj, s->size, bytes);
		/* Either the slab is full of objects or the bitmap is. */
		ck_assert_msg(s->nobj == SLAB_MAX_OBJS ||
				      bytes - (size_t)s->nobj * s->size <
					      s->size,
			      "%s: room for another object", s->name);
		tail = bytes - (size_t)s->nobj * s->size;
		ck_assert_msg(tail * 8 <= bytes, "%s: %zu of %zu bytes wasted",
			      s->name, tail, bytes);
		ck_assert_msg(s->nobj >= min_objs(s->size),
			      "%s: only %u objects per slab", s->name, s->nobj);
		/* The fewest pages that meet both targets. */
		for (np = 1; np < s->npages; np++) {
			n = (unsigned int)((np << PAGE_SHIFT) / s->size);
			if (n > SLAB_MAX_OBJS)
				n = SLAB_MAX_OBJS;
			want = n >= min_objs(s->size) &&
			       (((size_t)np << PAGE_SHIFT) -
				(size_t)n * s->size) *
					       8 <=
				       (size_t)np << PAGE_SHIFT;
			ck_assert_msg(!want, "%s: %u pages would do, has %u",
				      s->name, np, s->npages);
		}
		/* Magic: ceil(2^64 / size). */
		ck_assert_uint_eq(s->magic, UINT64_MAX / s->size + 1);
		ck_assert_uint_ge(s->batch, 1);
		ck_assert_uint_le(s->batch, MAX_BATCH);
		ck_assert_uint_le(s->batch, slab_fast.slot_max[i]);
		ck_assert_uint_ge(slab_fast.slot_max[i], 2);
		ck_assert_uint_eq(s->depot_cap, slab_fast.slot_max[i]);
		ck_assert_ptr_nonnull(s->depot);
	}
}
END_TEST

/* slab_obj_index() at every byte offset of a slab of every class. */
START_TEST(object_index)
{
	struct slab sl = { .start = 0, .kind = SPAN_SLAB };
	unsigned int i;
	uintptr_t off, bytes;
	long idx, want;

	for (i = 0; i < NR_KMALLOC; i++) {
		struct kmem_cache *s = &kmalloc_caches[i];

		sl.nobj = s->nobj;
		sl.npages = s->npages;
		sl.size = s->size;
		sl.magic = s->magic;
		sl.objs_end = (uint32_t)s->nobj * s->size;
		bytes = (uintptr_t)s->npages << PAGE_SHIFT;
		for (off = 0; off < bytes; off++) {
			idx = slab_obj_index(&sl, (void *)off);
			want = off % s->size || off / s->size >= s->nobj ?
				       -1 :
				       (long)(off / s->size);
			REQUIREF(idx == want,
				 "%s: offset %lu: index %ld, want %ld", s->name,
				 (unsigned long)off, idx, want);
		}
	}
}
END_TEST

/*
 * The same for sizes a named cache may have (any multiple of 8 from 8 up),
 * over a slab of SLAB_MAX_PAGES: the magic-number division is exact.
 */
START_TEST(object_index_any_size)
{
	static const uint32_t sizes[] = {
		8,    24,    40,    56,    72,     104,    136,
		200,  264,   328,   1000,  1032,   3000,   4088,
		4104, 12296, 65544, 99992, 131080, 200008, 262144,
	};
	struct slab sl = { .start = 0, .kind = SPAN_SLAB };
	uintptr_t off, bytes = (uintptr_t)SLAB_MAX_PAGES << PAGE_SHIFT;
	unsigned int i;
	long idx, want;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		sl.size = sizes[i];
		sl.magic = UINT64_MAX / sizes[i] + 1;
		sl.nobj = (uint16_t)(bytes / sizes[i]);
		sl.objs_end = (uint32_t)(sl.nobj * sizes[i]);
		for (off = 0; off < bytes; off += 8) {
			idx = slab_obj_index(&sl, (void *)off);
			want = off % sizes[i] || off >= sl.objs_end ?
				       -1 :
				       (long)(off / sizes[i]);
			REQUIREF(idx == want,
				 "size %u: offset %lu: index %ld, want %ld",
				 sizes[i], (unsigned long)off, idx, want);
		}
	}
}
END_TEST

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Objects @objs[0..n) of cache @s: valid object starts in slabs of @s,
 * aligned, pairwise disjoint; fill each with a pattern and check it.
 */
static void check_objects(struct kmem_cache *s, void **objs, unsigned long n)
{
	static void *sorted[MAX_OUT];
	unsigned long i;
	struct slab *sl;

	for (i = 0; i < n; i++) {
		sl = virt_to_slab(objs[i]);
		REQUIREF(sl && sl->kind == SPAN_SLAB && sl->cache == s &&
				 span_contains(sl, objs[i]),
			 "%s: %p is not in a slab of the cache", s->name,
			 objs[i]);
		REQUIREF(((uintptr_t)objs[i] - sl->start) % s->size == 0 &&
				 slab_obj_index(sl, objs[i]) >= 0,
			 "%s: %p is not an object start", s->name, objs[i]);
		REQUIRE((uintptr_t)objs[i] % SLAB_MIN_ALIGN == 0);
		/* The descriptor's copy of the geometry (free's fast path). */
		REQUIRE(sl->nobj == s->nobj && sl->npages == s->npages);
		REQUIRE(sl->slot == s->slot && sl->size == s->size &&
			sl->magic == s->magic &&
			sl->objs_end == (uint32_t)s->nobj * s->size);
		memset(objs[i], (int)(i & 0xff), s->size);
	}
	for (i = 0; i < n; i++) {
		unsigned char *p = objs[i];

		REQUIREF(p[0] == (i & 0xff) && p[s->size - 1] == (i & 0xff),
			 "%s: object %p overwritten", s->name, objs[i]);
	}
	memcpy(sorted, objs, n * sizeof(void *));
	qsort(sorted, n, sizeof(void *), cmp_ptr);
	for (i = 1; i < n; i++)
		REQUIREF((uintptr_t)sorted[i - 1] + s->size <=
				 (uintptr_t)sorted[i],
			 "%s: objects %p and %p overlap", s->name,
			 sorted[i - 1], sorted[i]);
}

/* Refill and drain every kmalloc cache directly, across several slabs. */
START_TEST(refill_drain_roundtrip)
{
	unsigned long n, half, got, a0, i;
	unsigned int c;

	for (c = 0; c < NR_KMALLOC; c++) {
		struct kmem_cache *s = &kmalloc_caches[c];

		n = 2UL * s->nobj + 1;
		a0 = s->active;
		got = cache_refill(s, out, n);
		REQUIREF(got == n, "%s: refill %lu gave %lu", s->name, n, got);
		REQUIRE(s->active == a0 + n);
		REQUIRE(s->nr_slabs >= 2);
		cache_validate(s);
		check_objects(s, out, n);

		/* Give half back, take as many again: still all distinct. */
		half = n / 2;
		cache_drain(s, out, half);
		REQUIRE(s->active == a0 + n - half);
		cache_validate(s);
		got = cache_refill(s, out, half);
		REQUIRE(got == half);
		cache_validate(s);
		check_objects(s, out, n);

		cache_drain(s, out, n);
		REQUIRE(s->active == a0);
		cache_validate(s);
		cache_shrink(s);
		REQUIRE(s->depot_nr == 0);
		REQUIRE(s->empty.nr == 0);
		cache_validate(s);
		for (i = 0; i < n; i++)
			out[i] = NULL;
	}
	pageheap_validate();
}
END_TEST

/* Do objects @a and @b of @size bytes touch a common cache line? */
static int share_line(const void *a, const void *b, size_t size)
{
	uintptr_t a0 = (uintptr_t)a / CACHELINE, b0 = (uintptr_t)b / CACHELINE;
	uintptr_t a1 = ((uintptr_t)a + size - 1) / CACHELINE;
	uintptr_t b1 = ((uintptr_t)b + size - 1) / CACHELINE;

	return a0 <= b1 && b0 <= a1;
}

/*
 * Objects smaller than a line leave their slab a line apart: consecutive
 * objects of a refill, which a per-CPU stack hands out one after the
 * other (often to different threads), never share a cache line.
 */
START_TEST(refill_spreads_lines)
{
	static const size_t sizes[] = { 16, 32, 48 };
	unsigned long n, got, i, shared;
	unsigned int k;

	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct kmem_cache *s = &kmalloc_caches[size_to_class(sizes[k])];

		REQUIRE(s->size == sizes[k]);
		cache_shrink(s); /* empty the depot: objects from slabs */
		n = MAX_BATCH;
		got = cache_refill(s, out, n);
		REQUIREF(got == n, "%s: refill %lu gave %lu", s->name, n, got);
		check_objects(s, out, n);
		for (i = 1, shared = 0; i < n; i++)
			if (virt_to_slab(out[i - 1]) == virt_to_slab(out[i]) &&
			    share_line(out[i - 1], out[i], s->size))
				shared++;
		REQUIREF(shared == 0,
			 "%s: %lu of %lu consecutive objects share a line",
			 s->name, shared, n - 1);
		cache_drain(s, out, n);
		cache_validate(s);
		for (i = 0; i < n; i++)
			out[i] = NULL;
	}
}
END_TEST

/* A private cache: exact slab and object accounting. */
START_TEST(private_cache_accounting)
{
	struct kmem_cache *s = kmem_cache_create("unit-acct", 200, 0, 0, NULL);
	unsigned long n, got, full, partial;

	ck_assert_ptr_nonnull(s);
	REQUIRE(s->slot == -1);
	REQUIRE(s->size == 208);
	n = 3UL * s->nobj + 5;
	REQUIRE(n <= MAX_OUT);
	got = cache_refill(s, out, n);
	REQUIRE(got == n);
	full = n / s->nobj;
	partial = n % s->nobj ? 1 : 0;
	REQUIREF(s->nr_slabs == full + partial, "%lu slabs for %lu objects",
		 s->nr_slabs, n);
	REQUIRE(s->full.nr == full && s->partial.nr == partial &&
		s->empty.nr == 0);
	REQUIRE(s->active == n && s->depot_nr == 0);
	REQUIRE(s->stats.slabs_new == full + partial);
	cache_validate(s);
	check_objects(s, out, n);

	cache_drain(s, out, n);
	REQUIRE(s->active == 0);
	REQUIRE(s->depot_nr == (n < s->depot_cap ? n : s->depot_cap));
	REQUIRE(s->empty.nr <= 4); /* EMPTY_KEEP_NAMED */
	cache_validate(s);
	cache_shrink(s);
	REQUIRE(s->nr_slabs == 0 && s->depot_nr == 0);
	REQUIRE(s->stats.slabs_freed == s->stats.slabs_new);
	cache_validate(s);
	ck_assert_int_eq(kmem_cache_destroy(s), 0);
}
END_TEST

/*
 * Free @bad into @s behind a full depot, so that it reaches its slab.
 * The depot is emptied first (cache_shrink) and filled by @nfill objects.
 */
static void drain_past_depot(struct kmem_cache *s, void **fill,
			     unsigned long nfill, void *bad)
{
	fill[nfill] = bad;
	cache_drain(s, fill, nfill + 1);
}

struct df_ctx {
	struct kmem_cache *s;
	unsigned long nfill;
	void *a, *b;
	int foreign;
};

/* Set up: a was freed and sits in its slab; b keeps that slab alive. */
static void df_prepare(struct df_ctx *x, const char *name)
{
	struct kmem_cache *s = kmem_cache_create(name, 1024, 0, 0, NULL);
	void *ab[2];

	ck_assert_ptr_nonnull(s);
	x->s = s;
	x->nfill = s->depot_cap;
	ck_assert_uint_lt(x->nfill + 1, MAX_OUT);
	ck_assert_uint_eq(cache_refill(s, out, x->nfill), x->nfill);
	ck_assert_uint_eq(cache_refill(s, ab, 2), 2);
	x->a = ab[0];
	x->b = ab[1];
	/* Both from the slab carved last (nobj >= 2 for this size). */
	ck_assert_ptr_eq(virt_to_slab(x->a), virt_to_slab(x->b));
	cache_drain(s, &x->a, 1); /* to the depot */
	cache_shrink(s);          /* depot -> slab; b keeps it */
	ck_assert_uint_eq(s->depot_nr, 0);
	ck_assert_ptr_eq(virt_to_slab(x->a)->cache, s);
	cache_validate(s);
}

static void df_child(void *arg)
{
	struct df_ctx *x = arg;

	drain_past_depot(x->s, out, x->nfill, x->a);
}

START_TEST(double_free_detected)
{
	struct df_ctx x;

	df_prepare(&x, "unit-df");
	ck_assert_aborts(df_child, &x, "double free");
	/* The parent is untouched: finish cleanly. */
	cache_drain(x.s, out, x.nfill);
	cache_drain(x.s, &x.b, 1);
	cache_validate(x.s);
	ck_assert_int_eq(kmem_cache_destroy(x.s), 0);
}
END_TEST

/* The same through libcheck's own signal expectation (CK_FORK). */
START_TEST(double_free_raises_sigabrt)
{
	struct df_ctx x;
	int fd = open("/dev/null", O_WRONLY);

	df_prepare(&x, "unit-df2");
	if (fd >= 0)
		dup2(fd, STDERR_FILENO);
	drain_past_depot(x.s, out, x.nfill, x.a);
	/* Not reached; an exit here (not a signal) fails the test. */
	ck_abort_msg("double free not detected");
}
END_TEST

static void foreign_child(void *arg)
{
	struct df_ctx *x = arg;
	void *p = malloc(1024); /* a kmalloc object, not of x->s */

	drain_past_depot(x->s, out, x->nfill, p);
}

START_TEST(foreign_object_detected)
{
	struct df_ctx x;

	df_prepare(&x, "unit-foreign");
	ck_assert_aborts(foreign_child, &x,
			 "not an object of cache unit-foreign");
}
END_TEST

static void interior_child(void *arg)
{
	struct df_ctx *x = arg;

	drain_past_depot(x->s, out, x->nfill, (char *)x->b + 16);
}

START_TEST(interior_object_detected)
{
	struct df_ctx x;

	df_prepare(&x, "unit-interior");
	ck_assert_aborts(interior_child, &x, "not the start of an object");
}
END_TEST

Suite *slab_suite(void)
{
	Suite *s = suite_create("slab");
	TCase *tc = unit_tcase("geometry");

	tcase_add_test(tc, geometry);
	tcase_add_test(tc, object_index);
	tcase_add_test(tc, object_index_any_size);
	suite_add_tcase(s, tc);

	tc = unit_tcase("carving");
	tcase_add_test(tc, refill_drain_roundtrip);
	tcase_add_test(tc, refill_spreads_lines);
	tcase_add_test(tc, private_cache_accounting);
	suite_add_tcase(s, tc);

	tc = unit_tcase("misuse");
	tcase_add_test(tc, double_free_detected);
	tcase_add_test_raise_signal(tc, double_free_raises_sigabrt, SIGABRT);
	tcase_add_test(tc, foreign_object_detected);
	tcase_add_test(tc, interior_object_detected);
	suite_add_tcase(s, tc);
	return s;
}
