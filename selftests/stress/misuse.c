// SPDX-License-Identifier: MIT
/*
 * misuse - invalid frees must abort with a message, not corrupt the heap.
 *
 * Each case runs in a child with stderr captured. After the bad call the
 * child keeps allocating and freeing objects of the same size (so that a
 * check done lazily, when per-CPU caches flush to the slabs, gets its
 * chance), then exits. Expected: death by SIGABRT with a message that
 * contains "slab".
 *
 *   - free/realloc of interior pointers (small, medium, large objects,
 *     page-aligned interior of a large one, unaligned interior): strict
 *   - free of a pointer inside slab's memory that was never handed out
 *     (a free slot next to a live object, the start of its page): strict
 *   - free_sized() with a size larger than the object, of an interior
 *     pointer, twice: strict (the first two), like a double free (the last)
 *   - double frees: immediately, with other frees in between, and of a
 *     whole batch. A per-CPU cache design may not see them cheaply: if
 *     the child survives, the test notes it (documented limitation) and
 *     whether the heap then handed out the same object twice.
 *
 * Dying by any other signal (a crash) or aborting without a slab message
 * fails the test.
 */
#include "stress.h"

#define MIB ((size_t)1 << 20)

/*
 * After a bad free: give lazy checks a chance, then look for the same
 * object handed out twice. Exits 3 if it was, 0 otherwise.
 */
static void __attribute__((noreturn)) churn_and_exit(size_t size)
{
	static void *p[4096];
	int i, j, r;

	for (r = 0; r < 4; r++) {
		for (i = 0; i < 4096; i++)
			p[i] = malloc(size);
		for (i = 0; i < 4096; i++)
			free(p[i]);
	}
	for (i = 0; i < 4096; i++)
		p[i] = malloc(size);
	for (i = 0; i < 4096; i++)
		for (j = i + 1; j < 4096; j++)
			if (p[i] && p[i] == p[j])
				_exit(3);
	_exit(0);
}

struct icase {
	size_t size;
	size_t off;
	int use_realloc;
};

static void interior(void *arg)
{
	struct icase *c = arg;
	char *p = malloc(c->size);

	if (!p)
		_exit(2);
	memset(p, 1, c->size);
	if (c->use_realloc)
		p = realloc(p + c->off, 100);
	else
		free(p + c->off);
	churn_and_exit(c->size);
}

/* free_sized() misuse, case number @arg (see main()). */
static void sized_misuse(void *arg)
{
	int k = (int)(uintptr_t)arg;
	size_t size = k == 3 ? 3 * MIB : k == 2 ? 64 : 100;
	char *p = malloc(size);

	if (!p)
		_exit(2);
	memset(p, 1, size);
	switch (k) {
	case 0:
		free_sized(p, opaque(5000));
		break;
	case 1:
		free_sized(p + 16, opaque(size));
		break;
	case 2:
		free_sized(p, opaque(size));
		free_sized(p, opaque(size));
		break;
	case 3:
		free_sized(p, opaque(8 * MIB));
		break;
	}
	churn_and_exit(size);
}

struct dcase {
	size_t size;
	size_t align;
	int between;
};

static void double_free(void *arg)
{
	struct dcase *c = arg;
	void *p, *q = NULL;

	p = c->align ? aligned_alloc(c->align, c->size) : malloc(c->size);
	if (c->between)
		q = malloc(c->size);
	if (!p)
		_exit(2);
	memset(p, 2, c->size);
	free(p);
	if (c->between) {
		void *r = malloc(c->size * 2 + 1);

		free(q);
		free(r);
	}
	free(p);
	churn_and_exit(c->size);
}

#define NB 1000

static void batch_double_free(void *arg)
{
	size_t size = (uintptr_t)arg;
	static void *b[NB], *again[2 * NB];
	int i, j;

	for (i = 0; i < NB; i++) {
		b[i] = malloc(size);
		if (!b[i])
			_exit(2);
	}
	for (i = 0; i < NB; i++)
		free(b[i]);
	/* churn so that the objects travel back to their slabs */
	for (j = 0; j < 4; j++) {
		for (i = 0; i < 2 * NB; i++)
			again[i] = malloc(size);
		for (i = 0; i < 2 * NB; i++)
			free(again[i]);
	}
	for (i = 0; i < NB; i++)
		free(b[i]);
	churn_and_exit(size);
}

static void never_allocated(void *arg)
{
	int mode = (uintptr_t)arg;
	uintptr_t pg = sysconf(_SC_PAGESIZE);
	char *p = malloc(48), *q;

	if (!p)
		_exit(2);
	if (mode == 0) {
		/* a slot of the same size class a few objects away */
		q = p + 5 * 48;
		if (((uintptr_t)q & ~(pg - 1)) != ((uintptr_t)p & ~(pg - 1)))
			q = p - 5 * 48;
	} else {
		/* the start of the page the object lives in */
		q = (char *)((uintptr_t)p & ~(pg - 1));
		if (q == p)
			q += pg / 2;
	}
	free(q);
}

static int undetected;

/*
 * SLAB_OPTIONS=debug turns object caching off: then every double free
 * and every free of a slot never handed out must be caught. Otherwise
 * objects parked in per-CPU stacks are not checked (documented).
 */
static int debug_mode(void)
{
	const char *o = getenv("SLAB_OPTIONS");

	return o && strstr(o, "debug");
}

static void double_free_result(const char *what, int r, int st)
{
	if (debug_mode()) {
		check(r == 0, "%s: %s (status %d)", what,
		      r > 0 ? "not detected with SLAB_OPTIONS=debug" :
			      "wrong death",
		      st);
	} else if (r > 0 && st == 0) {
		note("%s: not detected (documented limitation)", what);
		undetected++;
	} else if (r > 0 && st == 3) {
		note("%s: not detected, and the heap then handed out the "
		     "same object twice",
		     what);
		undetected++;
	} else {
		check(r == 0, "%s: %s (status %d)", what,
		      r > 0 ? "child failed" : "wrong death", st);
	}
}

int main(void)
{
	static struct icase ic[] = {
		{ 64, 16, 0 },        { 64, 1, 0 },
		{ 64, 8, 0 },         { 1000, 512, 0 },
		{ 20000, 4096, 0 },   { 200000, 65536, 0 },
		{ 4 * MIB, 4096, 0 }, { 4 * MIB, 2 * MIB, 0 },
		{ 64, 16, 1 },        { 4 * MIB, 4096, 1 },
	};
	static struct dcase dc[] = {
		{ 48, 0, 0 },      { 5000, 0, 0 },   { 100000, 0, 0 },
		{ 3 * MIB, 0, 0 }, { 100, 4096, 0 }, { 64, 0, 1 },
		{ 3000, 0, 1 },
	};
	static const size_t batch[] = { 64, 2048 };
	char what[128];
	size_t i;
	int r, st;

	watchdog("misuse", 100);
	check_rseq_mode();

	for (i = 0; i < ARRAY_SIZE(ic); i++) {
		snprintf(what, sizeof(what), "%s(malloc(%zu) + %zu)",
			 ic[i].use_realloc ? "realloc" : "free", ic[i].size,
			 ic[i].off);
		r = expect_abort(what, interior, &ic[i], &st);
		check(r == 0, "%s: %s", what,
		      r > 0 ? "not detected" : "wrong death");
	}
	for (i = 0; i < 4; i++) {
		static const char *const sc[] = {
			"free_sized(malloc(100), 5000)",
			"free_sized(malloc(100) + 16, 100)",
			"free_sized twice (64 bytes)",
			"free_sized(malloc(3 MiB), 8 MiB)",
		};

		r = expect_abort(sc[i], sized_misuse, (void *)(uintptr_t)i,
				 &st);
		if (i == 2)
			double_free_result(sc[i], r, st);
		else
			check(r == 0, "%s: %s", sc[i],
			      r > 0 ? "not detected" : "wrong death");
	}
	for (i = 0; i < ARRAY_SIZE(dc); i++) {
		snprintf(what, sizeof(what), "double free of %s(%zu)%s",
			 dc[i].align ? "aligned_alloc" : "malloc", dc[i].size,
			 dc[i].between ? " with frees in between" : "");
		double_free_result(what,
				   expect_abort(what, double_free, &dc[i], &st),
				   st);
	}
	for (i = 0; i < ARRAY_SIZE(batch); i++) {
		snprintf(what, sizeof(what),
			 "double free of a batch of %d "
			 "%zu-byte objects",
			 NB, batch[i]);
		r = expect_abort(what, batch_double_free,
				 (void *)(uintptr_t)batch[i], &st);
		double_free_result(what, r, st);
	}
	for (i = 0; i < 2; i++) {
		snprintf(what, sizeof(what), "free of a never allocated %s",
			 i ? "page start" : "slot next to a live object");
		r = expect_abort(what, never_allocated, (void *)i, &st);
		/*
		 * The page start is object 0 of the slab, which libc itself
		 * may hold (static musl allocates through us): freeing a live
		 * object of someone else cannot be told from a valid free.
		 */
		if (i == 1 && r > 0 && debug_mode())
			note("%s: an object in use, not detectable", what);
		else
			double_free_result(what, r, st);
	}
	if (nr_errors) {
		errmsg(NULL, "misuse: %d failed checks", nr_errors);
		return KSFT_FAIL;
	}
	info("misuse: all checks passed (%d double frees not detected)",
	     undetected);
	return KSFT_PASS;
}
