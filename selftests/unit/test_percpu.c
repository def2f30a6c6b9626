// SPDX-License-Identifier: MIT
/*
 * test_percpu.c - the per-CPU layer (percpu.c) as malloc/free drive it:
 * bursts beyond the per-CPU capacity (refill and drain), object accounting
 * across the layers, threads and their exit, fork, re-entry while busy.
 *
 * Accounting: kmem_cache.active counts the objects handed out by the cache,
 * including those parked in per-CPU stacks and per-thread caches. So with
 * nothing else changing, active - (per-CPU + this thread's tcache) is the
 * number of objects the program holds, whatever the mode. The runner is
 * executed with SLAB_OPTIONS unset, rseq=off and rseq=fake.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"

#define MAX_BURST (3 * 256 + 7)

static const size_t burst_sizes[] = { 16, 100, 1000, 5000, 40000, 200000 };
#define NR_SIZES (sizeof(burst_sizes) / sizeof(burst_sizes[0]))

/* Objects of @slot held by the program (see the comment at the top). */
static long held(int slot)
{
	return (long)kmalloc_caches[slot].active -
	       (long)percpu_check_slot(slot);
}

static void check_mode(void)
{
	enum slab_rseq_mode mode, want = wanted_rseq_mode();
	const char *why = NULL;

	mode = slab_rseq_mode(&why);
	ck_assert_ptr_nonnull(why);
	if (want != SLAB_RSEQ_UNINIT)
		ck_assert_msg(mode == want,
			      "SLAB_OPTIONS asks for mode %d, got %d (%s)",
			      want, mode, why);
	else
		ck_assert_msg(mode == SLAB_RSEQ_CPU_ID ||
				      mode == SLAB_RSEQ_MM_CID ||
				      mode == SLAB_RSEQ_OFF,
			      "default mode %d (%s)", mode, why);
	if (mode == SLAB_RSEQ_OFF) {
		ck_assert_uint_eq(slab_fast.ncpus, 0);
		ck_assert_int_eq(slab_tls.state, TS_TCACHE);
		ck_assert_ptr_nonnull(slab_tls.tcache);
	} else {
		ck_assert_uint_gt(slab_fast.ncpus, 0);
		ck_assert_ptr_nonnull(slab_fast.percpu_base);
		ck_assert_int_eq(slab_tls.state, TS_RSEQ);
		ck_assert_ptr_null(slab_tls.tcache);
	}
}

/* Fixture: the allocator runs, in the mode SLAB_OPTIONS asked for. */
static void percpu_setup(void)
{
	unit_setup();
	check_mode();
}

START_TEST(mode_matches_options)
{
	check_mode();
}
END_TEST

START_TEST(slot_layout)
{
	unsigned int i;

	ck_assert_uint_eq(slab_fast.slot_off[0], REGION_HDR + 8);
	for (i = 0; i < NR_KMALLOC; i++) {
		ck_assert_uint_ge(slab_fast.slot_max[i], 2);
		ck_assert_uint_le(slab_fast.slot_max[i], 256);
		ck_assert_uint_eq(slab_fast.slot_off[i] % 8, 0);
		ck_assert_uint_le(slab_fast.slot_off[i] +
					  slab_fast.slot_max[i] * 8,
				  REGION_SIZE);
		if (i + 1 < NR_KMALLOC)
			ck_assert_uint_ge(slab_fast.slot_off[i + 1],
					  slab_fast.slot_off[i] +
						  slab_fast.slot_max[i] * 8 +
						  8);
		ck_assert_uint_le(kmalloc_caches[i].batch,
				  slab_fast.slot_max[i]);
	}
}
END_TEST

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Allocate @n objects of @size, check them, free them (LIFO or FIFO order).
 * Objects of the class held by the program before and after are the same.
 */
static void burst(size_t size, unsigned long n, int fifo)
{
	static void *objs[MAX_BURST], *sorted[MAX_BURST];
	unsigned int slot = size_to_class(size);
	struct kmem_cache *s = &kmalloc_caches[slot];
	unsigned long refills, drains, i;
	long base;

	REQUIRE(n <= MAX_BURST);
	base = held(slot);
	refills = s->stats.refills;
	drains = s->stats.drains;
	for (i = 0; i < n; i++) {
		objs[i] = malloc(size);
		REQUIRE(objs[i]);
		REQUIREF(virt_to_slab(objs[i]) &&
				 virt_to_slab(objs[i])->cache == s &&
				 slab_owns(objs[i]),
			 "malloc(%zu) = %p: not an object of %s", size, objs[i],
			 s->name);
		memset(objs[i], 0xa5, size < 64 ? size : 64);
		((unsigned long *)objs[i])[0] = i;
	}
	REQUIREF(held(slot) == base + (long)n, "%s: held %ld, want %ld",
		 s->name, held(slot), base + (long)n);
	memcpy(sorted, objs, n * sizeof(void *));
	qsort(sorted, n, sizeof(void *), cmp_ptr);
	for (i = 1; i < n; i++)
		REQUIREF(sorted[i] != sorted[i - 1], "%p handed out twice",
			 sorted[i]);
	for (i = 0; i < n; i++)
		REQUIREF(((unsigned long *)objs[i])[0] == i,
			 "object %p overwritten", objs[i]);
	for (i = 0; i < n; i++)
		free(objs[fifo ? i : n - 1 - i]);
	REQUIREF(held(slot) == base, "%s: held %ld after freeing, want %ld",
		 s->name, held(slot), base);
	if (n > slab_fast.slot_max[slot]) {
		/* More than a stack holds: both slow paths ran. */
		REQUIREF(s->stats.refills > refills, "%s: no refill", s->name);
		REQUIREF(s->stats.drains > drains, "%s: no drain", s->name);
	}
	cache_validate(s);
}

START_TEST(bursts)
{
	unsigned int i, slot, round;
	unsigned long cap;

	for (round = 0; round < 3; round++) {
		for (i = 0; i < NR_SIZES; i++) {
			slot = size_to_class(burst_sizes[i]);
			cap = slab_fast.slot_max[slot];
			burst(burst_sizes[i], 3 * cap + 7, round & 1);
			burst(burst_sizes[i], 1, 0);
			burst(burst_sizes[i], cap, round & 1);
		}
	}
	/* Nothing but the caches holds objects of the 200000-byte class. */
	slot = size_to_class(200000);
	/* percpu_cached() counts per-CPU and per-thread stacks alike. */
	REQUIREF(kmalloc_caches[slot].active == percpu_cached((int)slot),
		 "active %lu, cached in stacks %lu (this thread's tcache %lu)",
		 kmalloc_caches[slot].active, percpu_cached((int)slot),
		 my_tcache_count((int)slot));
}
END_TEST

/* Alternating patterns that stay around the refill/drain thresholds. */
START_TEST(sawtooth)
{
	static void *objs[MAX_BURST];
	unsigned int slot = size_to_class(256), k, j;
	unsigned long cap = slab_fast.slot_max[slot], n = 0;
	long base = held((int)slot);

	for (k = 0; k < 2000; k++) {
		unsigned long up = 1 + (k * 7919) % (cap + 3);

		for (j = 0; j < up && n < MAX_BURST; j++) {
			objs[n] = malloc(256);
			REQUIRE(objs[n]);
			n++;
		}
		for (j = 0; j < up / 2 + (k & 1) && n; j++)
			free(objs[--n]);
		if (n > 2 * cap)
			while (n > cap / 3)
				free(objs[--n]);
	}
	REQUIRE(held((int)slot) == base + (long)n);
	while (n)
		free(objs[--n]);
	REQUIRE(held((int)slot) == base);
	cache_validate(&kmalloc_caches[slot]);
}
END_TEST

/* ---- threads ---- */

#define NR_THREADS 4
#define XFER       300

struct xfer {
	void *objs[XFER];
	size_t size;
	int fail;
};

static void *burst_thread(void *arg)
{
	unsigned long k = (unsigned long)arg, i, j;
	void *objs[MAX_BURST];

	for (i = 0; i < 20; i++) {
		size_t size = burst_sizes[(i + k) % NR_SIZES];
		unsigned long n = 2UL * slab_fast.slot_max[size_to_class(size)] +
				  3;

		for (j = 0; j < n && j < MAX_BURST; j++) {
			objs[j] = malloc(size);
			if (!objs[j] || !slab_owns(objs[j]))
				return (void *)1;
			*(unsigned long *)objs[j] = j;
		}
		for (j = 0; j < n && j < MAX_BURST; j++) {
			if (*(unsigned long *)objs[j] != j)
				return (void *)1;
			free(objs[j]);
		}
	}
	return NULL;
}

/* Frees what another thread allocated. */
static void *free_thread(void *arg)
{
	struct xfer *x = arg;
	unsigned int i;

	for (i = 0; i < XFER; i++) {
		if (*(size_t *)x->objs[i] != i)
			x->fail = 1;
		free(x->objs[i]);
	}
	return NULL;
}

/* Allocates what another thread will free. */
static void *alloc_thread(void *arg)
{
	struct xfer *x = arg;
	unsigned int i;

	for (i = 0; i < XFER; i++) {
		x->objs[i] = malloc(x->size);
		if (!x->objs[i] || !slab_owns(x->objs[i])) {
			x->fail = 1;
			return NULL;
		}
		*(size_t *)x->objs[i] = i;
	}
	return NULL;
}

static long held_all(long *per)
{
	unsigned int i;
	long sum = 0;

	for (i = 0; i < NR_SIZES; i++) {
		per[i] = held((int)size_to_class(burst_sizes[i]));
		sum += per[i];
	}
	return sum;
}

START_TEST(threads_and_exit)
{
	long before[NR_SIZES], after[NR_SIZES];
	pthread_t t[NR_THREADS];
	static struct xfer x[NR_SIZES];
	unsigned long i, j;
	void *ret;

	held_all(before);
	for (i = 0; i < NR_THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, burst_thread,
						(void *)i),
				 0);
	for (i = 0; i < NR_THREADS; i++) {
		ck_assert_int_eq(pthread_join(t[i], &ret), 0);
		ck_assert_msg(!ret, "thread %lu saw a bad object", i);
	}
	/* Exited threads left nothing behind but cached objects. */
	held_all(after);
	for (i = 0; i < NR_SIZES; i++)
		ck_assert_msg(after[i] == before[i],
			      "size %zu: held %ld before threads, %ld after",
			      burst_sizes[i], before[i], after[i]);

	/* Main allocates, a thread frees. */
	for (i = 0; i < NR_SIZES; i++) {
		x[i].size = burst_sizes[i];
		x[i].fail = 0;
		for (j = 0; j < XFER; j++) {
			x[i].objs[j] = malloc(x[i].size);
			ck_assert_ptr_nonnull(x[i].objs[j]);
			*(size_t *)x[i].objs[j] = j;
		}
		ck_assert_int_eq(pthread_create(&t[0], NULL, free_thread,
						&x[i]),
				 0);
		ck_assert_int_eq(pthread_join(t[0], NULL), 0);
		ck_assert(!x[i].fail);
	}
	held_all(after);
	for (i = 0; i < NR_SIZES; i++)
		ck_assert_int_eq(after[i], before[i]);

	/* A thread allocates, main frees. */
	for (i = 0; i < NR_SIZES; i++) {
		ck_assert_int_eq(pthread_create(&t[0], NULL, alloc_thread,
						&x[i]),
				 0);
		ck_assert_int_eq(pthread_join(t[0], NULL), 0);
		ck_assert(!x[i].fail);
		for (j = 0; j < XFER; j++) {
			ck_assert_uint_eq(*(size_t *)x[i].objs[j], j);
			free(x[i].objs[j]);
		}
	}
	held_all(after);
	for (i = 0; i < NR_SIZES; i++)
		ck_assert_int_eq(after[i], before[i]);
	unit_validate_all();
}
END_TEST

/* ---- fork ---- */

static void fork_child(void *arg)
{
	(void)arg;
	slab_validate();
	REQUIRE(slow_enter()); /* the gate is open in the child */
	burst(1000, MAX_BURST, 0);
	burst(100000, 20, 1);
	free(malloc(3UL << 20));
	unit_validate_all();
	/* A failed check above exits with status 1. */
	exit(0);
}

/* A fork child starts consistent and can allocate. */
START_TEST(fork_child_allocates)
{
	void *keep[64];
	char msg[1024];
	unsigned int i;
	int st;

	unit_outside(); /* a fork from inside gives a degraded child */
	for (i = 0; i < 64; i++)
		keep[i] = malloc(1000);
	st = run_child(fork_child, NULL, msg, sizeof(msg));
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "child status %#x: %s", st, msg);
	for (i = 0; i < 64; i++)
		free(keep[i]);
}
END_TEST

/* ---- re-entry ---- */

/*
 * While this thread holds a cache lock (as a signal handler that
 * interrupted the allocator would find it), malloc and free of that class
 * must not take the lock again: they use the per-CPU stack, libc, or leak.
 * A deadlock here shows up as the test timing out.
 */
START_TEST(busy_reentry)
{
	unsigned int slot = size_to_class(512), i;
	struct kmem_cache *s = &kmalloc_caches[slot];
	unsigned long n = 3UL * slab_fast.slot_max[slot] + 1;
	void *objs[3 * 256 + 1], *big;
	unsigned long ours = 0;

	slock_lock(&s->lock);
	REQUIRE(slab_tls.busy);
	for (i = 0; i < n; i++) {
		objs[i] = malloc(512);
		REQUIRE(objs[i]);
		if (in_arena(objs[i])) {
			REQUIRE(slab_owns(objs[i]));
			ours++;
		}
		memset(objs[i], 0, 512);
	}
	/* The stack ran dry: the rest came from libc. */
	REQUIRE(ours < n);
	big = malloc(1UL << 20);
	REQUIRE(big && !in_arena(big));
	free(big);
	for (i = 0; i < n; i++)
		free(objs[i]);
	slock_unlock(&s->lock);
	cache_validate(s);
	free(malloc(512));
}
END_TEST

Suite *percpu_suite(void)
{
	Suite *s = suite_create("percpu");
	TCase *tc = tcase_create("fast path");

	tcase_add_checked_fixture(tc, percpu_setup, unit_teardown);
	tcase_set_timeout(tc, UNIT_TIMEOUT);
	tcase_add_test(tc, mode_matches_options);
	tcase_add_test(tc, slot_layout);
	tcase_add_test(tc, bursts);
	tcase_add_test(tc, sawtooth);
	tcase_add_test(tc, threads_and_exit);
	tcase_add_test(tc, fork_child_allocates);
	suite_add_tcase(s, tc);

	tc = tcase_create("reentry");
	tcase_add_checked_fixture(tc, percpu_setup, unit_teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, busy_reentry);
	suite_add_tcase(s, tc);
	return s;
}
