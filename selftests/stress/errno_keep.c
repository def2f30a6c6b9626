// SPDX-License-Identifier: MIT
/*
 * errno_keep - free() must not change errno.
 *
 *   errno_keep [threads [rounds]]    (default 8 threads, 20 rounds and 1 s
 *                                     at least)
 *
 * POSIX.1-2024 requires free() to preserve errno, glibc does since 2.33
 * and musl's mallocng saves it around its own madvise/munmap calls:
 * programs such as "p = strdup(s); if (!f()) { free(p); return -errno; }"
 * rely on it. An allocator clobbers errno when a system call inside free
 * fails or returns early: madvise(MADV_DONTNEED) on mlock'ed pages is
 * refused with EINVAL, and FUTEX_WAIT on a contended lock returns EAGAIN
 * when the lock word changed in between.
 *
 * errno is set to a value no system call returns just before every free
 * (and free_sized) and checked right after, for: small objects of every
 * class, large (> 256 KiB) and huge (64 MiB) blocks, calloc'd, realloc'd
 * and aligned ones, free(NULL); 40 MiB of mlock'ed large blocks freed
 * together, which takes the allocator's free resident memory past its
 * 16 MiB dirty_max and makes it purge locked pages (skipped with a note
 * when mlock is not permitted); and several threads that free batches of
 * small and large objects at once, so that frees contend for the locks.
 * Whether a successful malloc or realloc keeps errno is not checked: the
 * standards allow them to change it.
 */
#include "stress.h"

#include <sys/mman.h>

#define MAGIC1 12345
#define MAGIC2 EILSEQ

static unsigned long nr_frees;

/* free @p with errno = @magic; report a change with @what and @size. */
static void free_check(void *p, size_t size, int magic, int sized,
		       const char *what)
{
	int e;

	errno = magic;
	if (sized)
		free_sized(p, size);
	else
		free(p);
	e = errno;
	__atomic_add_fetch(&nr_frees, 1, __ATOMIC_RELAXED);
	if (e == magic)
		return;
	/* Report the first few; count them all. */
	if (__atomic_add_fetch(&nr_errors, 1, __ATOMIC_RELAXED) <= 20)
		errmsg("FAIL: ",
		       "%s(%s of %zu bytes) changed errno from %d to %d (%s)",
		       sized ? "free_sized" : "free", what, size, magic, e,
		       strerror(e));
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		fail("malloc(%zu): %s", n, strerror(errno));
	memset(p, 0xa5, n < 4096 ? n : 4096);
	return p;
}

static void single_objects(void)
{
	static const size_t sizes[] = {
		0,        1,        8,       16,        24,
		32,       48,       64,      96,        100,
		128,      192,      256,     384,       512,
		1000,     1024,     2048,    4000,      4096,
		5000,     8192,     16384,   40000,     65536,
		100000,   131072,   200000,  256 << 10, (256 << 10) + 1,
		300000,   1 << 20,  3 << 20, 8 << 20,   (8 << 20) + 12345,
		32 << 20, 64 << 20,
	};
	unsigned int i, k;
	void *p, *q;

	free_check(NULL, 0, MAGIC1, 0, "NULL");
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		size_t n = sizes[i];

		for (k = 0; k < 2; k++) {
			free_check(xmalloc(n), n, k ? MAGIC2 : MAGIC1, k,
				   "malloc");
			p = calloc(1, n);
			if (!p)
				fail("calloc(%zu)", n);
			free_check(p, n, MAGIC1, k, "calloc");
		}
		p = xmalloc(n / 2 + 1);
		q = realloc(p, n + 1);
		if (!q)
			fail("realloc(%zu)", n + 1);
		free_check(q, n + 1, MAGIC2, 0, "realloc");
		if (posix_memalign(&p, 4096, n))
			fail("posix_memalign(4096, %zu)", n);
		free_check(p, n, MAGIC1, 0, "posix_memalign");
		/* The same size again: a block freed before is reused. */
		p = xmalloc(n);
		q = xmalloc(n);
		free_check(q, n, MAGIC1, 0, "malloc");
		free_check(p, n, MAGIC2, 1, "malloc");
	}
	/* Enough of one small class to fill and spill every cache level. */
	{
		void *v[4096];

		for (i = 0; i < ARRAY_SIZE(v); i++)
			v[i] = xmalloc(64);
		for (i = 0; i < ARRAY_SIZE(v); i++)
			free_check(v[i], 64, MAGIC1, i & 1, "malloc");
	}
}

/*
 * 40 MiB of 1 MiB blocks, each mlock'ed, then freed together: at the
 * latest when the free resident total passes 16 MiB the allocator gives
 * memory back, and madvise(MADV_DONTNEED) fails with EINVAL on them.
 */
#define NLOCKED 40

static void locked_blocks(void)
{
	struct rlimit rl;
	void *v[NLOCKED];
	size_t n = 1 << 20;
	unsigned int i, locked = 0;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)(NLOCKED + 8) * n) {
		struct rlimit want = rl;

		want.rlim_cur = (rlim_t)(NLOCKED + 8) * n;
		if (want.rlim_max != RLIM_INFINITY &&
		    want.rlim_max < want.rlim_cur)
			want.rlim_max = want.rlim_cur; /* root only */
		setrlimit(RLIMIT_MEMLOCK, &want);
	}
	for (i = 0; i < NLOCKED; i++) {
		v[i] = xmalloc(n);
		memset(v[i], 0x3c, n);
		if (mlock(v[i], n) == 0)
			locked++;
	}
	if (!locked)
		note("mlock refused (%s): the locked-pages case is skipped",
		     strerror(errno));
	else if (locked < NLOCKED)
		note("mlock: only %u of %u blocks locked", locked, NLOCKED);
	for (i = 0; i < NLOCKED; i++)
		free_check(v[i], n, i & 1 ? MAGIC2 : MAGIC1, i & 2,
			   "mlock'ed block");
	/* Allocate over them again and free: purges of a reused run. */
	for (i = 0; i < NLOCKED; i++) {
		v[i] = xmalloc(n);
		memset(v[i], 0x3d, n);
	}
	for (i = 0; i < NLOCKED; i++)
		free_check(v[i], n, MAGIC1, 0, "block over mlock'ed pages");
	info("locked-pages case: %u of %u blocks of %zu KiB mlock'ed", locked,
	     NLOCKED, n >> 10);
	/* The freed pages stay locked in the allocator's mapping: unlock. */
	if (locked)
		munlockall();
}

/*
 * Threads, more of them than CPUs: each round allocates a batch of small
 * and large blocks and frees it back to back. Large ones take the page
 * heap's lock on both sides, with short critical sections: a waiter that
 * marks the lock contended and is overtaken by the unlock before it sleeps
 * gets EAGAIN from FUTEX_WAIT. Rounds go on for at least a second.
 */
#define BATCH 16

static unsigned long rounds;
static double t_end;
static int errors0; /* before the threads: stop at their first error */

static int new_errors(void)
{
	return __atomic_load_n(&nr_errors, __ATOMIC_RELAXED) != errors0;
}

static void *contend(void *arg)
{
	uint64_t r = rnd_seed((uintptr_t)arg);
	void *v[BATCH];
	size_t sz[BATCH];
	unsigned long k;
	unsigned int i;

	for (k = 0; k < rounds || (now_s() < t_end && !new_errors()); k++) {
		for (i = 0; i < BATCH; i++) {
			uint64_t x = rnd_below(&r, 100);

			sz[i] = x < 40 ? rnd_below(&r, 2048) :
				x < 50 ? rnd_below(&r, 64 << 10) :
					 (256 << 10) + rnd_below(&r, 1 << 20);
			v[i] = xmalloc(sz[i]);
		}
		for (i = 0; i < BATCH; i++)
			free_check(v[i], sz[i], (i & 1) ? MAGIC2 : MAGIC1,
				   i & 2, "threaded");
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long nthr = arg_ul(argc, argv, 1, 8), i;
	pthread_t tid[64];
	int e;

	rounds = arg_ul(argc, argv, 2, 20);
	if (nthr > 64)
		nthr = 64;
	watchdog("errno_keep", 60);
	check_rseq_mode();
	single_objects();
	info("single objects: %lu frees", nr_frees);
	locked_blocks();
	if (nthr) {
		t_end = now_s() + 1;
		errors0 = nr_errors;
		for (i = 0; i < nthr; i++) {
			e = pthread_create(&tid[i], NULL, contend,
					   (void *)(uintptr_t)(i + 1));
			if (e)
				fail("pthread_create: %s", strerror(e));
		}
		for (i = 0; i < nthr; i++)
			pthread_join(tid[i], NULL);
	}
	slab_validate();
	if (nr_errors)
		fail("%d of %lu frees changed errno", nr_errors, nr_frees);
	info("%lu frees, errno kept by every one (%lu threads)", nr_frees,
	     nthr);
	return KSFT_PASS;
}
