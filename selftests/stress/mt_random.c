// SPDX-License-Identifier: MIT
/*
 * mt_random - threads doing random allocations of random sizes.
 *
 *   mt_random [threads [ops_per_thread]]       (default 8 threads)
 *
 * Each thread owns a table of slots. An operation picks a slot: an empty
 * slot gets a new object (malloc, calloc, aligned_alloc, posix_memalign,
 * memalign, realloc(NULL), reallocarray), a full one is checked and freed
 * (free, free_sized, free_aligned_sized) or resized with realloc. Sizes
 * are skewed small (0..300 KiB) with a few 1..8 MiB objects. Every object
 * carries a pattern derived from its address and size, checked before
 * every free and realloc, so overlapping objects, metadata written into
 * live objects and lost realloc contents are all caught. Some objects are
 * written up to malloc_usable_size() to check that it does not overstate.
 * Objects also migrate between threads through an exchange array, and
 * threads hop between CPUs. Half way through, all threads stop and
 * slab_validate() runs with everything live; it runs again at the end.
 */
#include "stress.h"

#define SLOTS      512
#define XCHG_SLOTS 64
#define BIG        (1u << 20)

enum kind {
	K_MALLOC,
	K_CALLOC,
	K_ALIGNED, /* aligned_alloc: free_aligned_sized allowed */
	K_POSIX,   /* posix_memalign / memalign: plain free only */
};

struct obj {
	void *p;
	size_t size; /* requested size */
	size_t len;  /* bytes under the pattern: size or usable size */
	uint64_t seed;
	size_t align;
	enum kind kind;
};

struct thr {
	pthread_t tid;
	int id;
	uint64_t rnd;
	unsigned long ops;
	int nbig;
	cpu_set_t allowed;
	struct obj slot[SLOTS];
	unsigned long n_alloc, n_free, n_realloc, n_xchg;
};

static struct obj *volatile xchg[XCHG_SLOTS];
static pthread_barrier_t mid_start, mid_done;
static int ncpus;

static size_t rand_size(struct thr *t)
{
	uint64_t x = rnd_below(&t->rnd, 1000);

	if (x < 600)
		return rnd_below(&t->rnd, 129);
	if (x < 850)
		return 129 + rnd_below(&t->rnd, 2048 - 129);
	if (x < 950)
		return 2048 + rnd_below(&t->rnd, 30 << 10);
	if (x < 995 || t->nbig >= 2)
		return (32 << 10) + rnd_below(&t->rnd, 268 << 10);
	return BIG + rnd_below(&t->rnd, 7 << 20);
}

static void account(struct thr *t, size_t size, int d)
{
	if (size >= BIG)
		t->nbig += d;
}

static void obj_check(struct obj *o, const char *what)
{
	pat_check(o->p, o->len, o->len, o->seed, what);
}

static void obj_new(struct thr *t, struct obj *o)
{
	size_t size = rand_size(t), align = 0, usable, n = 1, m;
	uint64_t k = rnd_below(&t->rnd, 100);
	enum kind kind = K_MALLOC;
	void *p = NULL;
	int r;

	if (k < 70) {
		p = malloc(size);
	} else if (k < 80) {
		m = 1 + rnd_below(&t->rnd, 24);
		n = size / m;
		size = n * m;
		p = calloc(n, m);
		kind = K_CALLOC;
	} else if (k < 86) {
		align = (size_t)1 << rnd_below(&t->rnd, 17);
		p = aligned_alloc(align, size);
		kind = K_ALIGNED;
	} else if (k < 90) {
		align = sizeof(void *) << rnd_below(&t->rnd, 14);
		r = posix_memalign(&p, align, size);
		if (r)
			fail("posix_memalign(%zu, %zu) = %d", align, size, r);
		kind = K_POSIX;
	} else if (k < 92) {
		align = (size_t)1 << rnd_below(&t->rnd, 13);
		p = memalign(align, size);
		kind = K_POSIX;
	} else if (k < 97) {
		p = realloc(NULL, size);
	} else {
		m = 1 + rnd_below(&t->rnd, 8);
		n = size / m;
		size = n * m;
		p = reallocarray(NULL, n, m);
	}
	if (!p)
		fail("allocation of %zu bytes (kind %d align %zu) failed: %s",
		     size, kind, align, strerror(errno));
	if (!ptr_aligned(p, 16))
		fail("%p (size %zu) is not 16-byte aligned", p, size);
	if (align && !ptr_aligned(p, align))
		fail("%p (size %zu) is not %zu-byte aligned", p, size, align);
	if (!from_slab(p))
		fail("allocation of %zu bytes (kind %d) = %p was served by "
		     "libc, not slab",
		     size, kind, p);
	usable = malloc_usable_size(p);
	if (usable < size)
		fail("malloc_usable_size(%p) = %zu < %zu", p, usable, size);
	if (kind == K_CALLOC) {
		size_t bad = zero_walk(p, size);

		if (bad != (size_t)-1)
			fail("calloc(%zu, %zu) = %p not zeroed at offset %zu "
			     "(0x%02x)",
			     n, size / (n ? n : 1), p, bad,
			     ((unsigned char *)p)[bad]);
	}
	o->p = p;
	o->size = size;
	o->len = size;
	/* Sometimes use the slack that malloc_usable_size() promises. */
	if (usable > size && rnd_below(&t->rnd, 50) == 0)
		o->len = usable;
	o->align = align;
	o->kind = kind;
	o->seed = pat_seed(p, o->len);
	pat_fill(p, o->len, o->seed);
	account(t, size, 1);
	t->n_alloc++;
}

static void obj_free(struct thr *t, struct obj *o)
{
	uint64_t k = rnd_below(&t->rnd, 100);

	obj_check(o, "before free");
	account(t, o->size, -1);
	if (o->kind == K_ALIGNED && k < 30)
		free_aligned_sized(o->p, o->align, o->size);
	else if ((o->kind == K_MALLOC || o->kind == K_CALLOC) && k < 30)
		free_sized(o->p, k < 15 ? o->size : o->len);
	else
		free(o->p);
	o->p = NULL;
	t->n_free++;
}

static void obj_realloc(struct thr *t, struct obj *o)
{
	size_t nsize, keep, usable;
	void *p;

	if (rnd_below(&t->rnd, 2)) {
		nsize = rand_size(t);
	} else {
		/* Small steps: within a size class and across its edges. */
		size_t d = rnd_below(&t->rnd, 64);

		nsize = rnd_below(&t->rnd, 2) ? o->size + d :
			o->size > d           ? o->size - d :
						0;
	}
	obj_check(o, "before realloc");
	errno = 0;
	p = realloc(o->p, nsize);
	account(t, o->size, -1);
	t->n_realloc++;
	if (!p) {
#ifdef __GLIBC__
		if (nsize == 0) { /* glibc: realloc(p, 0) frees p */
			o->p = NULL;
			return;
		}
#endif
		fail("realloc(%p, %zu) from %zu failed: %s", o->p, nsize,
		     o->size, strerror(errno));
	}
	keep = o->size < nsize ? o->size : nsize;
	if (!from_slab(p))
		fail("realloc(%zu) = %p was served by libc, not slab", nsize,
		     p);
	if (!ptr_aligned(p, 16))
		fail("realloc returned %p, not 16-byte aligned", p);
	usable = malloc_usable_size(p);
	if (usable < nsize)
		fail("malloc_usable_size(%p) = %zu < %zu after realloc", p,
		     usable, nsize);
	{
		size_t bad = pat_walk(p, o->len, keep, o->seed, 0);

		if (bad != (size_t)-1)
			fail("realloc(%p, %zu) -> %p lost contents at offset "
			     "%zu of %zu kept bytes (old size %zu)",
			     o->p, nsize, p, bad, keep, o->size);
	}
	o->p = p;
	o->size = nsize;
	o->len = nsize;
	o->align = 0;
	o->kind = K_MALLOC;
	o->seed = pat_seed(p, nsize);
	pat_fill(p, nsize, o->seed);
	account(t, nsize, 1);
}

/* Swap an object with whatever another thread left in the exchange. */
static void obj_exchange(struct thr *t, struct obj *o)
{
	struct obj *d = malloc(sizeof(*d)), *old;
	unsigned int i = rnd_below(&t->rnd, XCHG_SLOTS);

	if (!d)
		fail("malloc(%zu) failed", sizeof(*d));
	*d = *o;
	account(t, o->size, -1);
	old = __atomic_exchange_n(&xchg[i], d, __ATOMIC_ACQ_REL);
	o->p = NULL;
	if (old) {
		*o = *old;
		free(old);
		obj_check(o, "after exchange");
		account(t, o->size, 1);
	}
	t->n_xchg++;
}

static void migrate(struct thr *t)
{
	cpu_set_t set;
	int i, n, want;

	if (ncpus < 2)
		return;
	if (rnd_below(&t->rnd, 2)) {
		sched_setaffinity(0, sizeof(t->allowed), &t->allowed);
		return;
	}
	want = rnd_below(&t->rnd, ncpus);
	for (i = 0, n = 0; i < CPU_SETSIZE; i++) {
		if (!CPU_ISSET(i, &t->allowed))
			continue;
		if (n++ == want) {
			CPU_ZERO(&set);
			CPU_SET(i, &set);
			sched_setaffinity(0, sizeof(set), &set);
			return;
		}
	}
}

static void *worker(void *arg)
{
	struct thr *t = arg;
	unsigned long i;
	int s;

	sched_getaffinity(0, sizeof(t->allowed), &t->allowed);
	for (i = 0; i < t->ops; i++) {
		struct obj *o = &t->slot[rnd_below(&t->rnd, SLOTS)];
		uint64_t k = rnd_below(&t->rnd, 1000);

		if (i == t->ops / 2) {
			pthread_barrier_wait(&mid_start);
			pthread_barrier_wait(&mid_done);
		}
		if (k < 2)
			migrate(t);
		else if (k < 4)
			sched_yield();
		if (!o->p)
			obj_new(t, o);
		else if (k < 100)
			obj_realloc(t, o);
		else if (k < 110)
			obj_exchange(t, o);
		else
			obj_free(t, o);
	}
	for (s = 0; s < SLOTS; s++)
		if (t->slot[s].p)
			obj_free(t, &t->slot[s]);
	sched_setaffinity(0, sizeof(t->allowed), &t->allowed);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long nthr = arg_ul(argc, argv, 1, 8);
	unsigned long ops = arg_ul(argc, argv, 2, 60000);
	unsigned long tot_alloc = 0, tot_realloc = 0, tot_xchg = 0;
	struct thr *thr;
	double t0 = now_s();
	unsigned long i;
	int e;

	watchdog("mt_random", 100);
	check_rseq_mode();
	ncpus = nr_cpus();
	if (nthr < 1)
		nthr = 1;
	thr = calloc(nthr, sizeof(*thr));
	if (!thr)
		fail("calloc thread table");
	pthread_barrier_init(&mid_start, NULL, nthr + 1);
	pthread_barrier_init(&mid_done, NULL, nthr + 1);
	for (i = 0; i < nthr; i++) {
		thr[i].id = i;
		thr[i].ops = ops;
		thr[i].rnd = rnd_seed(i);
		e = pthread_create(&thr[i].tid, NULL, worker, &thr[i]);
		if (e)
			fail("pthread_create: %s", strerror(e));
	}
	pthread_barrier_wait(&mid_start);
	slab_validate(); /* everything live, caches full */
	pthread_barrier_wait(&mid_done);
	for (i = 0; i < nthr; i++) {
		pthread_join(thr[i].tid, NULL);
		tot_alloc += thr[i].n_alloc;
		tot_realloc += thr[i].n_realloc;
		tot_xchg += thr[i].n_xchg;
		if (thr[i].nbig < 0)
			fail("internal: big object accounting");
	}
	for (i = 0; i < XCHG_SLOTS; i++) {
		struct obj *o = xchg[i];

		if (!o)
			continue;
		pat_check(o->p, o->len, o->len, o->seed, "exchange leftover");
		free(o->p);
		free(o);
	}
	free(thr);
	slab_validate();
	info("%lu threads x %lu ops: %lu allocs, %lu reallocs, %lu "
	     "exchanges in %.2fs",
	     nthr, ops, tot_alloc, tot_realloc, tot_xchg, now_s() - t0);
	return KSFT_PASS;
}
