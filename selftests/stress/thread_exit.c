// SPDX-License-Identifier: MIT
/*
 * thread_exit - many short-lived threads must not leak memory.
 *
 *   thread_exit [threads]              (default 10000)
 *
 * Threads are started in batches of 64, a quarter of them detached. Each
 * one allocates and frees objects over many size classes (filling any
 * per-thread or per-CPU caches), leaves a few objects in a shared ring
 * for later threads to free after it is gone, and frees what earlier
 * threads left there. A pthread key destructor of the test allocates and
 * frees at thread exit - possibly after slab tore down its own per-thread
 * state - and re-arms itself once so that it runs twice.
 *
 * The resident and virtual sizes after 10% of the threads and at the end
 * are compared: a per-thread leak shows up as growth proportional to the
 * 90% of threads in between.
 */
#include "stress.h"

#define BATCH 64
#define RING  512
#define NOBJ  160

struct lobj {
	size_t size;
	uint64_t seed;
	unsigned char data[];
};

static struct lobj *volatile ring[RING];
static pthread_key_t key;
static int done_detached;

static size_t lsize(uint64_t *r)
{
	/* log-uniform 0..32 KiB: every small size class gets traffic */
	int shift = rnd_below(r, 16);

	return rnd_below(r, (size_t)2 << shift);
}

static struct lobj *lobj_new(uint64_t *r)
{
	size_t n = lsize(r);
	struct lobj *o = malloc(sizeof(*o) + n);

	if (!o)
		fail("malloc(%zu): %s", sizeof(*o) + n, strerror(errno));
	if (!from_slab(o))
		fail("malloc(%zu) = %p was served by libc, not slab",
		     sizeof(*o) + n, (void *)o);
	o->size = n;
	o->seed = pat_seed(o, n);
	pat_fill(o->data, n, o->seed);
	return o;
}

static void lobj_free(struct lobj *o, const char *what)
{
	pat_check(o->data, o->size, o->size, o->seed, what);
	free(o);
}

static void tsd_destructor(void *v)
{
	uintptr_t *p = v;
	void *a, *b, *c;

	if (*p != 0x7e57 && *p != 0x7e58)
		fail("TSD value %p corrupted: 0x%lx", v, (unsigned long)*p);
	a = malloc(opaque(100));
	b = malloc(opaque(1000));
	c = malloc(opaque(40000));
	if (!a || !b || !c)
		fail("malloc in TSD destructor");
	memset(a, 1, 100);
	memset(b, 2, 1000);
	memset(c, 3, 40000);
	free(b);
	free(a);
	free(c);
	if (*p == 0x7e57) { /* run once more */
		uintptr_t *q = malloc(sizeof(*q) * 6);

		if (!q)
			fail("malloc in TSD destructor");
		*q = 0x7e58;
		pthread_setspecific(key, q);
	}
	free(p);
}

static void *worker(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	uint64_t r = rnd_seed(id);
	struct lobj *obj[NOBJ];
	uintptr_t *tsd;
	int i;

	tsd = malloc(sizeof(*tsd) * 4);
	if (!tsd)
		fail("malloc");
	*tsd = 0x7e57;
	pthread_setspecific(key, tsd);

	for (i = 0; i < NOBJ; i++)
		obj[i] = lobj_new(&r);
	for (i = 0; i < NOBJ; i += 2)
		lobj_free(obj[i], "own object");
	for (i = 0; i < NOBJ; i += 2)
		obj[i] = lobj_new(&r);
	for (i = 0; i < NOBJ; i++) {
		if (i % 20 == 1) {
			unsigned int k = rnd_below(&r, RING);
			struct lobj *old;

			old = __atomic_exchange_n(&ring[k], obj[i],
						  __ATOMIC_ACQ_REL);

			if (old)
				lobj_free(old, "object of an exited thread");
		} else {
			lobj_free(obj[i], "own object");
		}
	}
	if (id & 1) /* detached */
		__atomic_add_fetch(&done_detached, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void run_threads(unsigned long from, unsigned long to)
{
	pthread_attr_t det;
	pthread_t t[BATCH];
	unsigned long i, n;
	int e, ndet;

	pthread_attr_init(&det);
	pthread_attr_setdetachstate(&det, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&det, 256 << 10);
	while (from < to) {
		n = to - from < BATCH ? to - from : BATCH;
		ndet = 0;
		__atomic_store_n(&done_detached, 0, __ATOMIC_RELAXED);
		for (i = 0; i < n; i++) {
			/* one in four detached: ids 1 mod 4 */
			uintptr_t id = (from + i) * 2 + ((from + i) % 4 == 1);

			if (id & 1) {
				e = pthread_create(&t[i], &det, worker,
						   (void *)id);
				ndet++;
			} else {
				e = pthread_create(&t[i], NULL, worker,
						   (void *)id);
			}
			if (e)
				fail("pthread_create #%lu: %s", from + i,
				     strerror(e));
		}
		for (i = 0; i < n; i++)
			if ((from + i) % 4 != 1)
				pthread_join(t[i], NULL);
		while (__atomic_load_n(&done_detached, __ATOMIC_ACQUIRE) < ndet)
			usleep(100);
		from += n;
	}
	pthread_attr_destroy(&det);
}

int main(int argc, char **argv)
{
	unsigned long total = arg_ul(argc, argv, 1, 10000), mid;
	long vsz0, rss0, vsz1, rss1, vsz2, rss2, rss_lim, vsz_lim;
	long dirty1, dirty2, grow;
	double t0 = now_s();
	int i;

	watchdog("thread_exit", 110);
	check_rseq_mode();
	if (pthread_key_create(&key, tsd_destructor))
		fail("pthread_key_create");
	if (read_statm(&vsz0, &rss0))
		fail("cannot read /proc/self/statm");
	mid = total / 10;
	run_threads(0, mid);
	usleep(20000); /* let detached threads finish exiting */
	read_statm(&vsz1, &rss1);
	dirty1 = slab_dirty_kb();
	run_threads(mid, total);
	usleep(20000);
	read_statm(&vsz2, &rss2);
	dirty2 = slab_dirty_kb();
	slab_validate();
	info("%lu threads in %.2fs; RSS %ld -> %ld -> %ld KiB, VSZ %ld -> "
	     "%ld -> %ld KiB (start, %lu threads, %lu threads); free memory "
	     "kept resident by slab %ld -> %ld KiB",
	     total, now_s() - t0, rss0, rss1, rss2, vsz0, vsz1, vsz2, mid,
	     total, dirty1, dirty2);

	/*
	 * 9000 threads between the two samples: 8 MiB of growth is less than
	 * 1 KiB per thread. Free pages slab keeps resident on purpose (up to
	 * its dirty_max) are not counted. The address space gets more room
	 * (arenas are reserved in big steps) but must still level off.
	 */
	rss_lim = 8 << 10;
	vsz_lim = 256 << 10;
	grow = (rss2 - dirty2) - (rss1 - dirty1);
	if (grow > rss_lim)
		fail("RSS grew by %ld KiB over %lu exited threads (%ld bytes "
		     "per thread): per-thread state is leaked",
		     grow, total - mid, grow * 1024 / (long)(total - mid));
	if (vsz2 - vsz1 > vsz_lim)
		fail("VSZ grew by %ld KiB over %lu exited threads: address "
		     "space is leaked",
		     vsz2 - vsz1, total - mid);
	for (i = 0; i < RING; i++)
		if (ring[i])
			lobj_free(ring[i], "ring leftover");
	return KSFT_PASS;
}
