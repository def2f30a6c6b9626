// SPDX-License-Identifier: MIT
/*
 * test_ownership.c - which pointers are slab's (slab_owns()), and what
 * free() does with pointers into the arena that are not object starts.
 */
#include <malloc.h>
#include <stdlib.h>

#include "unit.h"

static const size_t sizes[] = {
	0,
	1,
	16,
	17,
	100,
	1000,
	4096,
	20000,
	KMALLOC_MAX - 1,
	KMALLOC_MAX,
	KMALLOC_MAX + 1,
	1UL << 20,
	5UL << 20,
};
#define NR_SIZES (sizeof(sizes) / sizeof(sizes[0]))

static int static_var;

START_TEST(owns_allocations)
{
	void *p[NR_SIZES];
	unsigned int i;
	size_t us;

	for (i = 0; i < NR_SIZES; i++) {
		p[i] = malloc(sizes[i]);
		ck_assert_ptr_nonnull(p[i]);
		ck_assert_msg(slab_owns(p[i]), "malloc(%zu)", sizes[i]);
		us = malloc_usable_size(p[i]);
		ck_assert_uint_ge(us, sizes[i]);
		/* Interior pointers are not object starts. */
		ck_assert_int_eq(slab_owns((char *)p[i] + 1), 0);
		ck_assert_int_eq(slab_owns((char *)p[i] + us - 1), 0);
		if (us >= 32)
			ck_assert_int_eq(slab_owns((char *)p[i] + 16), 0);
		if (us > PAGE_SIZE)
			ck_assert_int_eq(slab_owns((char *)p[i] + PAGE_SIZE),
					 0);
	}
	for (i = 0; i < NR_SIZES; i++)
		free(p[i]);

	p[0] = calloc(3, 100);
	p[1] = aligned_alloc(4096, 100);
	p[2] = aligned_alloc(1UL << 20, 1UL << 20);
	p[3] = realloc(NULL, 10);
	p[4] = realloc(p[3], 100000);
	ck_assert_int_eq(posix_memalign(&p[5], 256, 1000), 0);
	for (i = 0; i < 6; i++) {
		if (i == 3)
			continue;
		ck_assert_msg(slab_owns(p[i]), "p[%u] = %p", i, p[i]);
		free(p[i]);
	}
}
END_TEST

START_TEST(owns_nothing_else)
{
	void *libc = __real_malloc(64);
	int local = 0;
	void *p;

	ck_assert_ptr_nonnull(libc);
	ck_assert_int_eq(slab_owns(libc), 0);
	ck_assert_int_eq(in_arena(libc), 0);
	/* free() hands it to libc. */
	free(libc);
	ck_assert_int_eq(slab_owns(NULL), 0);
	ck_assert_int_eq(slab_owns(&local), 0);
	ck_assert_int_eq(slab_owns(&static_var), 0);
	ck_assert_int_eq(slab_owns((void *)1), 0);
	ck_assert_int_eq(slab_owns((void *)(slab_arena.base - 16)), 0);
	ck_assert_int_eq(slab_owns((void *)(slab_arena.base + slab_arena.size)),
			 0);
	/* In the arena, beyond anything ever carved. */
	ck_assert_int_eq(slab_owns((void *)(slab_arena.base + slab_arena.size -
					    PAGE_SIZE)),
			 0);
	/* A large allocation, once freed, is not ours to free again. */
	p = malloc(2UL << 20);
	ck_assert_int_eq(slab_owns(p), 1);
	free(p);
	ck_assert_int_eq(slab_owns(p), 0);
	/* libc's own allocations (strdup in libc.so) are freed by libc. */
	p = strdup("not ours");
	ck_assert_ptr_nonnull(p);
	free(p);
}
END_TEST

struct bad {
	void *p;
	size_t off;
	int op;
	size_t size; /* for free_sized() */
};

enum { OP_FREE, OP_REALLOC, OP_USABLE, OP_FREE_SIZED };

static void bad_child(void *arg)
{
	struct bad *b = arg;
	char *p = (char *)b->p + b->off;

	switch (b->op) {
	case OP_FREE:
		free(p);
		break;
	case OP_REALLOC:
		p = realloc(p, 1);
		break;
	case OP_USABLE:
		malloc_usable_size(p);
		break;
	case OP_FREE_SIZED:
		free_sized(p, b->size);
		break;
	}
}

START_TEST(free_interior)
{
	struct bad b = { malloc(64), 16, OP_FREE, 0 };

	ck_assert_aborts(bad_child, &b, "not the start of an object");
	b.off = 1;
	ck_assert_aborts(bad_child, &b, "not the start of an object");
	b.op = OP_REALLOC;
	ck_assert_aborts(bad_child, &b, "not the start of an object");
	b.op = OP_USABLE;
	ck_assert_aborts(bad_child, &b, "not the start of an object");
	free(b.p);

	/* A large allocation. */
	b.p = malloc(1UL << 20);
	b.op = OP_FREE;
	b.off = 8;
	ck_assert_aborts(bad_child, &b, "inside the large allocation");
	/* Interior pages are not mapped to the run: found by a walk back. */
	b.off = PAGE_SIZE;
	ck_assert_aborts(bad_child, &b, "inside the large allocation");
	b.off = (1UL << 19) + 24;
	ck_assert_aborts(bad_child, &b, "inside the large allocation");
	b.off = (1UL << 20) - 16;
	ck_assert_aborts(bad_child, &b, "inside the large allocation");
	free(b.p);
}
END_TEST

START_TEST(free_never_allocated)
{
	struct bad b = { (void *)(slab_arena.base + slab_arena.size -
				  PAGE_SIZE),
			 0, OP_FREE, 0 };

	ck_assert_aborts(bad_child, &b, "not an allocated object");
	/* Freed (and not reused) page run. */
	b.p = malloc(3UL << 20);
	free(b.p);
	ck_assert_aborts(bad_child, &b, "memory is free");
	/* A run small enough that this thread keeps it for reuse. */
	b.p = malloc(300000);
	free(b.p);
	ck_assert_aborts(bad_child, &b, "memory is free");
	b.op = OP_REALLOC;
	ck_assert_aborts(bad_child, &b, "memory is free");
	b.op = OP_USABLE;
	ck_assert_aborts(bad_child, &b, "memory is free");
}
END_TEST

START_TEST(free_sized_too_big)
{
	struct bad b = { malloc(100), 0, OP_FREE_SIZED, 200 };

	/* The object is 112 bytes: up to that, free_sized() is fine. */
	free_sized(malloc(100), 100);
	free_sized(malloc(100), 112);
	free_sized(NULL, 5);
	ck_assert_aborts(bad_child, &b, "object is only 112 bytes");
	free(b.p);
}
END_TEST

Suite *ownership_suite(void)
{
	Suite *s = suite_create("ownership");
	TCase *tc = unit_tcase("slab_owns");

	tcase_add_test(tc, owns_allocations);
	tcase_add_test(tc, owns_nothing_else);
	suite_add_tcase(s, tc);

	tc = unit_tcase("bad pointers");
	tcase_add_test(tc, free_interior);
	tcase_add_test(tc, free_never_allocated);
	tcase_add_test(tc, free_sized_too_big);
	suite_add_tcase(s, tc);
	return s;
}
