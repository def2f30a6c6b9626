// SPDX-License-Identifier: MIT
/*
 * test_kmem_cache.c - the named-cache API of <slab.h>: create, alloc, free,
 * destroy, constructors, argument checks and misuse.
 */
#include <errno.h>
#include <stdlib.h>

#include "unit.h"

#define NR_OBJS 1000

static void *objs[NR_OBJS];

START_TEST(create_alloc_free_destroy)
{
	struct kmem_cache *c;
	unsigned int i;
	struct slab *sl;

	c = kmem_cache_create("unit-basic", 40, 0, 0, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(kmem_cache_name(c), "unit-basic");
	ck_assert_uint_eq(kmem_cache_size(c), 48);
	for (i = 0; i < NR_OBJS; i++) {
		objs[i] = kmem_cache_alloc(c);
		ck_assert_ptr_nonnull(objs[i]);
		ck_assert_uint_eq((uintptr_t)objs[i] % SLAB_MIN_ALIGN, 0);
		ck_assert(slab_owns(objs[i]));
		sl = virt_to_slab(objs[i]);
		ck_assert_ptr_eq(sl->cache, c);
		memset(objs[i], (int)i, 48);
	}
	ck_assert_uint_eq(c->active, NR_OBJS);
	for (i = 0; i < NR_OBJS; i++) {
		unsigned char *p = objs[i];

		ck_assert_msg(p[0] == (i & 0xff) && p[47] == (i & 0xff),
			      "object %u overwritten", i);
	}
	cache_validate(c);
	for (i = 0; i < NR_OBJS; i += 2)
		kmem_cache_free(c, objs[i]);
	ck_assert_uint_eq(c->active, NR_OBJS / 2);
	cache_validate(c);
	for (i = 1; i < NR_OBJS; i += 2)
		kmem_cache_free(c, objs[i]);
	kmem_cache_free(c, NULL);
	ck_assert_uint_eq(c->active, 0);
	cache_validate(c);
	ck_assert_int_eq(kmem_cache_destroy(c), 0);
	ck_assert_int_eq(kmem_cache_destroy(NULL), 0);
}
END_TEST

START_TEST(sizes_and_alignment)
{
	static const struct {
		size_t size, align;
		unsigned int flags;
		size_t want;
	} t[] = {
		{ 1, 0, 0, 16 },
		{ 16, 0, 0, 16 },
		{ 17, 8, 0, 32 },
		{ 40, 0, SLAB_HWCACHE_ALIGN, 64 },
		{ 65, 0, SLAB_HWCACHE_ALIGN, 128 },
		{ 100, 128, 0, 128 },
		{ 100, 4096, 0, 4096 },
		{ 5000, 1024, 0, 5120 },
		{ KMALLOC_MAX, 0, 0, KMALLOC_MAX },
		{ 24, 0, SLAB_POISON, 32 },
	};
	unsigned int i, j;
	struct kmem_cache *c;
	size_t align;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		c = kmem_cache_create("unit-align", t[i].size, t[i].align,
				      t[i].flags, NULL);
		ck_assert_ptr_nonnull(c);
		ck_assert_uint_eq(kmem_cache_size(c), t[i].want);
		align = t[i].align > SLAB_MIN_ALIGN ? t[i].align :
						      SLAB_MIN_ALIGN;
		if (t[i].flags & SLAB_HWCACHE_ALIGN && align < 64)
			align = 64;
		for (j = 0; j < 20; j++) {
			objs[j] = kmem_cache_alloc(c);
			ck_assert_ptr_nonnull(objs[j]);
			ck_assert_msg((uintptr_t)objs[j] % align == 0,
				      "%p not aligned to %zu", objs[j], align);
			memset(objs[j], 1, t[i].size);
		}
		for (j = 0; j < 20; j++)
			kmem_cache_free(c, objs[j]);
		cache_validate(c);
		ck_assert_int_eq(kmem_cache_destroy(c), 0);
	}
}
END_TEST

static int ctor_calls;
static struct kmem_cache *ctor_cache;

struct thing {
	unsigned long magic;
	void *self;
	char pad[48];
};

#define THING_MAGIC 0x7468696e67UL

static void thing_ctor(void *p)
{
	struct thing *t = p;
	struct slab *sl = virt_to_slab(p);
	void *m;

	/* Runs on an object of a slab of this cache, outside its lock. */
	if (!sl || sl->kind != SPAN_SLAB || sl->cache != ctor_cache ||
	    slock_held(&ctor_cache->lock))
		t->magic = 0;
	else
		t->magic = THING_MAGIC;
	t->self = p;
	/* A constructor may allocate. */
	m = malloc(32);
	free(m);
	ctor_calls++;
}

START_TEST(constructor)
{
	struct kmem_cache *c;
	unsigned int i, n;
	struct thing *t;

	ctor_calls = 0;
	c = kmem_cache_create("unit-ctor", sizeof(struct thing), 0, 0,
			      thing_ctor);
	ck_assert_ptr_nonnull(c);
	ctor_cache = c;
	ck_assert_int_eq(ctor_calls, 0);
	n = 2 * c->nobj + 1;
	ck_assert_uint_le(n, NR_OBJS);
	for (i = 0; i < n; i++) {
		t = objs[i] = kmem_cache_alloc(c);
		ck_assert_ptr_nonnull(t);
		ck_assert_msg(t->magic == THING_MAGIC && t->self == t,
			      "object %u not constructed", i);
	}
	/* Once per object of every slab carved, and only then. */
	ck_assert_uint_eq(c->nr_slabs, 3);
	ck_assert_int_eq(ctor_calls, 3 * c->nobj);
	/* Objects go back in their constructed state and come out so. */
	for (i = 0; i < n; i++)
		kmem_cache_free(c, objs[i]);
	for (i = 0; i < n; i++) {
		t = objs[i] = kmem_cache_alloc(c);
		ck_assert_ptr_nonnull(t);
		ck_assert(t->magic == THING_MAGIC && t->self == t);
	}
	ck_assert_int_eq(ctor_calls, 3 * c->nobj);
	for (i = 0; i < n; i++)
		kmem_cache_free(c, objs[i]);
	ck_assert_int_eq(kmem_cache_destroy(c), 0);
}
END_TEST

START_TEST(zalloc_and_poison)
{
	struct kmem_cache *c = kmem_cache_create("unit-poison", 100, 0,
						 SLAB_POISON, NULL);
	unsigned char *p;
	unsigned int i;

	ck_assert_ptr_nonnull(c);
	p = kmem_cache_alloc(c);
	ck_assert_ptr_nonnull(p);
	memset(p, 0x11, 100);
	kmem_cache_free(c, p);
	/* Freed memory (still mapped) is poisoned. */
	for (i = 0; i < kmem_cache_size(c); i++)
		ck_assert_uint_eq(p[i], 0x6b);
	p = kmem_cache_zalloc(c);
	ck_assert_ptr_nonnull(p);
	for (i = 0; i < kmem_cache_size(c); i++)
		ck_assert_uint_eq(p[i], 0);
	kmem_cache_free(c, p);
	ck_assert_int_eq(kmem_cache_destroy(c), 0);
}
END_TEST

static void nop_ctor(void *p)
{
	(void)p;
}

START_TEST(bad_arguments)
{
	static const struct {
		const char *name;
		size_t size, align;
		unsigned int flags;
		int ctor;
	} t[] = {
		{ NULL, 16, 0, 0, 0 },
		{ "z", 0, 0, 0, 0 },
		{ "big", KMALLOC_MAX + 1, 0, 0, 0 },
		{ "a3", 16, 3, 0, 0 },
		{ "a48", 16, 48, 0, 0 },
		{ "a8k", 16, 8192, 0, 0 },
		{ "flags", 16, 0, 0x4, 0 },
		{ "flags", 16, 0, 0x80000000u, 0 },
		{ "poison+ctor", 16, 0, SLAB_POISON, 1 },
	};
	unsigned int i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		errno = 0;
		ck_assert_ptr_null(
			kmem_cache_create(t[i].name, t[i].size, t[i].align,
					  t[i].flags,
					  t[i].ctor ? nop_ctor : NULL));
		ck_assert_msg(errno == EINVAL, "case %u: errno %d", i, errno);
	}
}
END_TEST

START_TEST(destroy_busy)
{
	struct kmem_cache *c = kmem_cache_create("unit-busy", 64, 0, 0, NULL);
	char msg[512];
	void *a, *b;
	int ret;

	ck_assert_ptr_nonnull(c);
	a = kmem_cache_alloc(c);
	b = kmem_cache_alloc(c);
	errno = 0;
	stderr_capture_begin();
	ret = kmem_cache_destroy(c);
	stderr_capture_end(msg, sizeof(msg));
	ck_assert_int_eq(ret, -1);
	ck_assert_int_eq(errno, EBUSY);
	/* The warning names the cache and the count. */
	ck_assert_msg(strstr(msg, "unit-busy") && strstr(msg, " 2 objects"),
		      "warning: %s", msg);
	/* Still alive and usable. */
	kmem_cache_free(c, a);
	a = kmem_cache_alloc(c);
	ck_assert_ptr_nonnull(a);
	kmem_cache_free(c, a);
	errno = 0;
	stderr_capture_begin();
	ret = kmem_cache_destroy(c);
	stderr_capture_end(msg, sizeof(msg));
	ck_assert_int_eq(ret, -1);
	ck_assert_int_eq(errno, EBUSY);
	/* free() also takes objects of named caches. */
	free(b);
	ck_assert_uint_eq(c->active, 0);
	ck_assert_int_eq(kmem_cache_destroy(c), 0);
	ck_assert(c->flags & SLAB_DEAD);
	ck_assert_uint_eq(c->nr_slabs, 0);
}
END_TEST

struct misuse {
	struct kmem_cache *c, *other;
	void *p;
};

static void wrong_cache_child(void *arg)
{
	struct misuse *m = arg;

	kmem_cache_free(m->other, m->p);
}

static void dead_cache_child(void *arg)
{
	struct misuse *m = arg;

	kmem_cache_alloc(m->c);
}

START_TEST(misuse_aborts)
{
	struct misuse m;
	void *k;

	m.c = kmem_cache_create("unit-one", 64, 0, 0, NULL);
	m.other = kmem_cache_create("unit-two", 64, 0, 0, NULL);
	ck_assert_ptr_nonnull(m.c);
	ck_assert_ptr_nonnull(m.other);
	m.p = kmem_cache_alloc(m.c);
	ck_assert_ptr_nonnull(m.p);
	/* An object of another cache of the same size. */
	ck_assert_aborts(wrong_cache_child, &m, "kmem_cache_free(unit-two");
	/* A kmalloc object, an interior pointer, a libc pointer. */
	k = malloc(64);
	m.p = k;
	ck_assert_aborts(wrong_cache_child, &m, "not an object of this cache");
	free(k);
	m.p = (char *)kmem_cache_alloc(m.other) + 16;
	ck_assert_aborts(wrong_cache_child, &m, "not an object of this cache");
	kmem_cache_free(m.other, (char *)m.p - 16);
	k = __real_malloc(64);
	m.p = k;
	ck_assert_aborts(wrong_cache_child, &m, "not an object of this cache");
	__real_free(k);
	/* Use after destroy. */
	ck_assert_int_eq(kmem_cache_destroy(m.other), 0);
	m.c = m.other;
	ck_assert_aborts(dead_cache_child, &m, "not a live cache");
}
END_TEST

static void double_free_child(void *arg)
{
	struct kmem_cache *c = kmem_cache_create("unit-df-last", 64, 0, 0,
						 NULL);
	void *p = kmem_cache_alloc(c);

	(void)arg;
	kmem_cache_free(c, p);
	kmem_cache_free(c, p);
}

/*
 * Freeing the only object twice: the depot takes both, but the count of
 * objects in use cannot go below zero. (The message is the allocator's
 * "BUG:" line today, though the program is at fault.)
 */
START_TEST(double_free_last_object)
{
	ck_assert_aborts(double_free_child, NULL, "slab: ");
}
END_TEST

Suite *kmem_cache_suite(void)
{
	Suite *s = suite_create("kmem_cache");
	TCase *tc = unit_tcase("api");

	tcase_add_test(tc, create_alloc_free_destroy);
	tcase_add_test(tc, sizes_and_alignment);
	tcase_add_test(tc, constructor);
	tcase_add_test(tc, zalloc_and_poison);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, destroy_busy);
	tcase_add_test(tc, misuse_aborts);
	tcase_add_test(tc, double_free_last_object);
	suite_add_tcase(s, tc);
	return s;
}
