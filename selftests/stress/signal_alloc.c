// SPDX-License-Identifier: MIT
/*
 * signal_alloc - signal handlers that allocate, landing in allocations.
 *
 *   signal_alloc [seconds [threads]]        (default 3 s, 2 threads)
 *
 * POSIX does not let a handler call malloc(), but programs do, and the
 * allocator must then neither crash nor hand one block out twice: when a
 * handler interrupts the thread inside slab, slab serves it from libc or
 * leaks what it frees. Workers loop over large blocks (the run a thread
 * keeps for its next large malloc is the target: 300 KiB, taken and kept
 * again on every turn) and small ones, checking their contents; a killer
 * thread sends them SIGUSR1, whose handler allocates a large block that
 * the kept run does not fit (so it takes and frees that run), a calloc'd
 * block that must read as zeroes, and a small one, and frees them all.
 */
#include "stress.h"

struct wk {
	pthread_t tid;
	uint64_t rnd;
	unsigned long ops;
	volatile unsigned long sigs;
};

static __thread struct wk *self;
static volatile int stop;

static void handler(int sig)
{
	int saved = errno;
	unsigned char *p, *q, *r;

	(void)sig;
	p = malloc(900 << 10);
	q = calloc(1, 270000);
	r = malloc(48);
	if (p)
		memset(p, 0xa5, 900 << 10);
	if (q && zero_walk(q, 270000) != (size_t)-1)
		fail("calloc(270000) in a handler: not zeroed");
	if (r)
		memset(r, 0x5a, 48);
	free(r);
	free(q);
	free(p);
	if (self)
		self->sigs++;
	errno = saved;
}

static void *worker(void *arg)
{
	struct wk *w = arg;
	unsigned char *big, *small;
	size_t n;

	self = w;
	while (!stop) {
		n = (300 << 10) - rnd_below(&w->rnd, 4096);
		big = rnd_below(&w->rnd, 4) ? malloc(n) : calloc(1, n);
		small = malloc(1 + rnd_below(&w->rnd, 200));
		if (!big || !small)
			fail("allocation failed under signals");
		pat_fill(big, n, pat_seed(big, n));
		pat_fill(small, 1, pat_seed(small, 1));
		pat_check(big, n, n, pat_seed(big, n), "large block");
		pat_check(small, 1, 1, pat_seed(small, 1), "small block");
		free(small);
		free(big);
		w->ops++;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long secs = arg_ul(argc, argv, 1, 3);
	unsigned long nthr = arg_ul(argc, argv, 2, 2), i, sent = 0;
	unsigned long tot_ops = 0, tot_sigs = 0;
	struct sigaction sa;
	struct wk *w;
	double t0;

	watchdog("signal_alloc", 60 + secs);
	check_rseq_mode();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);

	w = calloc(nthr, sizeof(*w));
	if (!w)
		fail("calloc");
	for (i = 0; i < nthr; i++) {
		w[i].rnd = rnd_seed(i);
		if (pthread_create(&w[i].tid, NULL, worker, &w[i]))
			fail("pthread_create");
	}
	t0 = now_s();
	while (now_s() - t0 < secs) {
		for (i = 0; i < nthr; i++) {
			int e = pthread_kill(w[i].tid, SIGUSR1);

			if (e)
				fail("pthread_kill: %s", strerror(e));
			sent++;
		}
		usleep(20);
	}
	stop = 1;
	for (i = 0; i < nthr; i++) {
		pthread_join(w[i].tid, NULL);
		tot_ops += w[i].ops;
		tot_sigs += w[i].sigs;
		if (w[i].sigs == 0)
			fail("worker %lu got no signals", i);
	}
	free(w);
	slab_validate();
	info("%lu loops, %lu signals sent, %lu handled, in %.2fs", tot_ops,
	     sent, tot_sigs, now_s() - t0);
	return KSFT_PASS;
}
