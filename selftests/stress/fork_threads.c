// SPDX-License-Identifier: MIT
/*
 * fork_threads - fork while other threads hammer the allocator.
 *
 *   fork_threads [forks [threads]]      (default 300 forks, 4 threads)
 *
 * Worker threads allocate, check and free random objects without pause
 * and swap objects through a shared array. The main thread forks
 * repeatedly; each child inherits whatever state the allocator was in
 * (locks, per-CPU caches, objects of threads that do not exist in the
 * child) and must be able to: free the objects the workers left in the
 * shared array, allocate and free a lot, start a thread, fork again,
 * pass slab_validate(), and exit 0 (exit() or _exit()). A child that
 * hangs is killed by its own alarm; the parent has a watchdog too.
 */
#include "stress.h"

#define NSHARED 256
#define NLOCAL  128

struct sobj {
	size_t size;
	uint64_t seed;
	unsigned char data[];
};

static struct sobj *volatile shared[NSHARED];
static int stop;
static unsigned long nalloc, nlibc;

static size_t rsize(uint64_t *r)
{
	uint64_t k = rnd_below(r, 100);

	if (k < 80)
		return rnd_below(r, 1024);
	if (k < 97)
		return rnd_below(r, 32 << 10);
	return rnd_below(r, 512 << 10);
}

static struct sobj *sobj_new(uint64_t *r)
{
	size_t n = rsize(r);
	struct sobj *o = malloc(sizeof(*o) + n);

	if (!o)
		fail("malloc(%zu): %s", sizeof(*o) + n, strerror(errno));
	if (!ptr_aligned(o, 16))
		fail("malloc(%zu) = %p", sizeof(*o) + n, (void *)o);
	/*
	 * While a fork waits for the allocator to be quiescent, slow-path
	 * allocations go to libc (Documentation/design.md, "Fork"): count
	 * them, and require most allocations to be slab's (main()).
	 */
	__atomic_fetch_add(&nalloc, 1, __ATOMIC_RELAXED);
	if (!from_slab(o))
		__atomic_fetch_add(&nlibc, 1, __ATOMIC_RELAXED);
	o->size = n;
	o->seed = pat_seed(o, n);
	pat_fill(o->data, n, o->seed);
	return o;
}

static void sobj_free(struct sobj *o, const char *what)
{
	pat_check(o->data, o->size, o->size, o->seed, what);
	free(o);
}

/* @ops random operations on a private table, with shared swaps. */
static void churn(uint64_t *r, unsigned long ops, int use_shared)
{
	struct sobj *local[NLOCAL] = { NULL };
	unsigned long i;
	int s;

	for (i = 0; i < ops && !__atomic_load_n(&stop, __ATOMIC_RELAXED); i++) {
		struct sobj **l = &local[rnd_below(r, NLOCAL)], *old;

		if (!*l) {
			*l = sobj_new(r);
			continue;
		}
		if (use_shared && rnd_below(r, 10) == 0) {
			unsigned int k = rnd_below(r, NSHARED);

			old = __atomic_exchange_n(&shared[k], *l,
						  __ATOMIC_ACQ_REL);
			*l = NULL;
			if (old)
				sobj_free(old, "shared object");
			continue;
		}
		sobj_free(*l, "local object");
		*l = NULL;
	}
	for (s = 0; s < NLOCAL; s++)
		if (local[s])
			sobj_free(local[s], "local object");
}

static void *hammer(void *arg)
{
	uint64_t r = rnd_seed((uintptr_t)arg);

	while (!__atomic_load_n(&stop, __ATOMIC_RELAXED))
		churn(&r, 10000, 1);
	return NULL;
}

static void *child_thread(void *arg)
{
	uint64_t r = rnd_seed((uintptr_t)arg);

	churn(&r, 500, 0);
	return NULL;
}

static void child(int iter, struct sobj **mine, int nmine)
{
	uint64_t r = rnd_seed(1000 + iter);
	pthread_t t;
	int i, e;

	watchdog_what = "fork child";
	alarm(20);
	/* Objects of threads that do not exist here any more. */
	for (i = 0; i < NSHARED; i++) {
		if (shared[i]) {
			sobj_free(shared[i], "child: inherited shared object");
			shared[i] = NULL;
		}
	}
	for (i = 0; i < nmine; i++)
		if (mine[i])
			sobj_free(mine[i], "child: inherited main object");
	churn(&r, 800, 0);
	e = pthread_create(&t, NULL, child_thread, (void *)(uintptr_t)iter);
	if (e)
		fail("child: pthread_create: %s", strerror(e));
	churn(&r, 300, 0);
	pthread_join(t, NULL);
	if (iter % 16 == 0) {
		pid_t g = fork();
		int st;

		if (g < 0)
			fail("child: fork: %s", strerror(errno));
		if (g == 0) {
			churn(&r, 300, 0);
			_exit(0);
		}
		if (waitpid(g, &st, 0) != g || !WIFEXITED(st) ||
		    WEXITSTATUS(st))
			fail("grandchild failed: status 0x%x", st);
	}
	slab_validate();
	if (iter & 1)
		exit(0);
	_exit(0);
}

int main(int argc, char **argv)
{
	unsigned long nforks = arg_ul(argc, argv, 1, 300);
	unsigned long nthr = arg_ul(argc, argv, 2, 4);
	struct sobj *mine[64] = { NULL };
	uint64_t r = rnd_seed(77);
	double t0 = now_s();
	pthread_t *tid;
	unsigned long i;
	int e;

	watchdog("fork_threads", 100);
	check_rseq_mode();
	tid = calloc(nthr, sizeof(*tid));
	for (i = 0; i < nthr; i++) {
		e = pthread_create(&tid[i], NULL, hammer, (void *)i);
		if (e)
			fail("pthread_create: %s", strerror(e));
	}
	for (i = 0; i < nforks && now_s() - t0 < 4; i++) {
		int k = rnd_below(&r, 64), st;
		pid_t pid;

		if (mine[k])
			sobj_free(mine[k], "main object");
		mine[k] = sobj_new(&r);
		pid = fork();
		if (pid < 0)
			fail("fork: %s", strerror(errno));
		if (pid == 0)
			child(i, mine, 64);
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				fail("waitpid: %s", strerror(errno));
		if (WIFSIGNALED(st))
			fail("fork %lu: child killed by signal %d (%s)", i,
			     WTERMSIG(st), strsignal(WTERMSIG(st)));
		if (WEXITSTATUS(st))
			fail("fork %lu: child exited with %d", i,
			     WEXITSTATUS(st));
	}
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
	for (e = 0; e < (int)nthr; e++)
		pthread_join(tid[e], NULL);
	for (e = 0; e < NSHARED; e++)
		if (shared[e])
			sobj_free(shared[e], "shared leftover");
	for (e = 0; e < 64; e++)
		if (mine[e])
			sobj_free(mine[e], "main leftover");
	free(tid);
	slab_validate();
	info("%lu forks with %lu busy threads in %.2fs; %lu of %lu allocations served by libc during forks",
	     i, nthr, now_s() - t0, nlibc, nalloc);
	if (__atomic_load_n(&nlibc, __ATOMIC_RELAXED) * 10 >
	    __atomic_load_n(&nalloc, __ATOMIC_RELAXED))
		fail("%lu of %lu allocations were served by libc, not slab",
		     nlibc, nalloc);
	return KSFT_PASS;
}
