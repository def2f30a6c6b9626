// SPDX-License-Identifier: MIT
/*
 * sizeclass.c - size_to_class() and kmalloc_size[]: every size up to
 * KMALLOC_MAX maps to the smallest class that holds it, classes are
 * multiples of 16, increasing, and waste at most 1/8 above 128 bytes.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "unit.h"

START_TEST(classes_table)
{
	unsigned int i;

	for (i = 0; i < NR_KMALLOC; i++) {
		ck_assert_uint_gt(kmalloc_size[i], 0);
		ck_assert_uint_eq(kmalloc_size[i] % SLAB_MIN_ALIGN, 0);
		if (i)
			ck_assert_uint_gt(kmalloc_size[i], kmalloc_size[i - 1]);
		ck_assert_uint_eq(kmalloc_caches[i].size, kmalloc_size[i]);
		ck_assert_int_eq(kmalloc_caches[i].slot, (int)i);
		ck_assert(kmalloc_caches[i].flags & SLAB_KMALLOC);
		/* A class is its own class. */
		ck_assert_uint_eq(size_to_class(kmalloc_size[i]), i);
	}
	ck_assert_uint_eq(kmalloc_size[0], 16);
	ck_assert_uint_eq(kmalloc_size[NR_KMALLOC - 1], KMALLOC_MAX);
	for (i = 0; i < 8; i++)
		ck_assert_uint_eq(kmalloc_size[i], 16 * (i + 1));
}
END_TEST

/*
 * The constant table (slab/kmalloc_table.h, generated) against the rules,
 * restated here: 16..128 by 16, then 8 classes per power of two; names
 * "kmalloc-N", "kmalloc-Nk" for whole KiB from 1 KiB; the geometry of
 * slab_geometry(), which named caches use.
 */
START_TEST(table_matches_rules)
{
	char name[32];
	unsigned int i, j, k;
	uint16_t np, no;
	size_t size;

	for (i = 0; i < NR_KMALLOC; i++) {
		if (i < 8) {
			size = 16 * (i + 1);
		} else {
			j = i - 8;
			k = 7 + j / 8;
			size = (1UL << k) + (j % 8 + 1) * (1UL << (k - 3));
		}
		ck_assert_uint_eq(kmalloc_table[i].size, size);
		if (size >= 1024 && !(size & 1023))
			snprintf(name, sizeof(name), "kmalloc-%zuk",
				 size >> 10);
		else
			snprintf(name, sizeof(name), "kmalloc-%zu", size);
		ck_assert_str_eq(kmalloc_table[i].name, name);
		ck_assert_str_eq(kmalloc_caches[i].name, name);
		slab_geometry(size, &np, &no);
		ck_assert_uint_eq(kmalloc_table[i].npages, np);
		ck_assert_uint_eq(kmalloc_table[i].nobj, no);
		ck_assert_uint_eq(kmalloc_caches[i].npages, np);
		ck_assert_uint_eq(kmalloc_caches[i].nobj, no);
		ck_assert_uint_le((size_t)no * size, (size_t)np << PAGE_SHIFT);
	}
}
END_TEST

START_TEST(every_size)
{
	unsigned int c, prev = 0;
	size_t size, cls;

	for (size = 0; size <= KMALLOC_MAX; size++) {
		c = size_to_class(size);
		REQUIREF(c < NR_KMALLOC, "size %zu -> class %u", size, c);
		cls = kmalloc_size[c];
		/* Holds the size ... */
		REQUIREF(cls >= size, "size %zu -> class %u (%zu bytes)", size,
			 c, cls);
		/* ... and is the smallest class that does. */
		REQUIREF(c == 0 || kmalloc_size[c - 1] < size,
			 "size %zu -> class %u (%zu), class %u (%u) fits", size,
			 c, cls, c - 1, kmalloc_size[c - 1]);
		/* Monotonic. */
		REQUIREF(c >= prev, "size %zu -> class %u after class %u", size,
			 c, prev);
		/* At most 1/8 wasted above 128 bytes. */
		REQUIREF(size <= 128 || (cls - size) * 8 <= size,
			 "size %zu -> %zu bytes: %zu wasted", size, cls,
			 cls - size);
		prev = c;
	}
	ck_assert_uint_eq(size_to_class(0), 0);
	ck_assert_uint_eq(size_to_class(KMALLOC_MAX), NR_KMALLOC - 1);
}
END_TEST

/* malloc() of each class boundary lands in that class's cache. */
START_TEST(malloc_uses_class)
{
	unsigned int i, j;
	size_t sizes[3], size;
	struct slab *sl;
	void *p;

	for (i = 0; i < NR_KMALLOC; i++) {
		sizes[0] = kmalloc_size[i];
		sizes[1] = kmalloc_size[i] - 1;
		sizes[2] = i ? kmalloc_size[i - 1] + 1 : 0;
		for (j = 0; j < 3; j++) {
			size = sizes[j];
			p = malloc(size);
			ck_assert_ptr_nonnull(p);
			sl = virt_to_slab(p);
			ck_assert_ptr_nonnull(sl);
			ck_assert_int_eq(sl->kind, SPAN_SLAB);
			ck_assert_ptr_eq(sl->cache, &kmalloc_caches[i]);
			ck_assert_uint_eq(malloc_usable_size(p),
					  kmalloc_size[i]);
			ck_assert_uint_eq((uintptr_t)p % SLAB_MIN_ALIGN, 0);
			free(p);
		}
	}
	/* One past the largest class is a page run. */
	p = malloc(KMALLOC_MAX + 1);
	ck_assert_ptr_nonnull(p);
	sl = virt_to_slab(p);
	ck_assert_ptr_nonnull(sl);
	ck_assert_int_eq(sl->kind, SPAN_LARGE);
	ck_assert_uint_eq((uintptr_t)p % PAGE_SIZE, 0);
	ck_assert_uint_ge(malloc_usable_size(p), KMALLOC_MAX + 1);
	free(p);
}
END_TEST

Suite *sizeclass_suite(void)
{
	Suite *s = suite_create("sizeclass");
	TCase *tc = unit_tcase("core");

	tcase_add_test(tc, classes_table);
	tcase_add_test(tc, table_matches_rules);
	tcase_add_test(tc, every_size);
	tcase_add_test(tc, malloc_uses_class);
	suite_add_tcase(s, tc);
	return s;
}
