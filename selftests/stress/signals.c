// SPDX-License-Identifier: MIT
/*
 * signals - allocate while being shot at with signals.
 *
 *   signals [seconds [threads]]        (default 3 s, 4 threads)
 *
 * Worker threads allocate, fill, check and free (and realloc) in a loop
 * while a killer thread sends SIGUSR1 (no SA_RESTART) and SIGUSR2
 * (SA_RESTART) to them with pthread_kill as fast as it can. Signals land
 * inside rseq critical sections, inside locks, inside system calls made
 * by the allocator (futex waits then return EINTR). The handlers only do
 * async-signal-safe work: they count, scribble on their own stack, make
 * a system call that fails, and restore errno. Every worker must see
 * signals, keep its contents intact and end with a valid heap.
 */
#include "stress.h"

#define SLOTS 256

struct wk {
	pthread_t tid;
	uint64_t rnd;
	unsigned long ops;
	volatile unsigned long sigs;
	void *p[SLOTS];
	size_t n[SLOTS];
};

static __thread struct wk *self;
static __thread volatile unsigned long tls_sigs;
static volatile int stop;

static void handler(int sig)
{
	int saved = errno;
	volatile unsigned char buf[512];
	unsigned int i, sum = 0;

	(void)sig;
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = i ^ sig;
	for (i = 0; i < sizeof(buf); i++)
		sum += buf[i];
	/* xor with sig permutes each run of 256 bytes */
	if (sum != 2 * (255 * 256 / 2))
		_exit(5);
	if (write(-1, "", 0) != -1) /* sets errno to EBADF */
		_exit(3);
	if (self) {
		tls_sigs++;
		self->sigs++;
	}
	errno = saved;
}

static size_t wsize(uint64_t *r)
{
	uint64_t k = rnd_below(r, 1000);

	if (k < 800)
		return rnd_below(r, 512);
	if (k < 980)
		return rnd_below(r, 16 << 10);
	if (k < 998)
		return rnd_below(r, 256 << 10);
	return (1 << 20) + rnd_below(r, 2 << 20);
}

static void *worker(void *arg)
{
	struct wk *w = arg;
	int s;

	self = w;
	while (!stop) {
		int i = rnd_below(&w->rnd, SLOTS);
		uint64_t k = rnd_below(&w->rnd, 100);

		w->ops++;
		if (!w->p[i]) {
			size_t n = wsize(&w->rnd);

			errno = 0;
			w->p[i] = k < 80 ? malloc(n) :
				  k < 90 ? calloc(1, n) :
					   aligned_alloc(64, n);
			if (!w->p[i])
				fail("allocation of %zu failed: %s", n,
				     strerror(errno));
			if (!from_slab(w->p[i]))
				fail("allocation of %zu = %p was served by "
				     "libc, not slab",
				     n, w->p[i]);
			if (k >= 80 && k < 90 &&
			    zero_walk(w->p[i], n) != (size_t)-1)
				fail("calloc(%zu) not zeroed", n);
			w->n[i] = n;
			pat_fill(w->p[i], n, pat_seed(w->p[i], n));
		} else if (k < 10) {
			size_t n = wsize(&w->rnd) + 1;
			void *q;

			pat_check(w->p[i], w->n[i], w->n[i],
				  pat_seed(w->p[i], w->n[i]), "before realloc");
			q = realloc(w->p[i], n);
			if (!q)
				fail("realloc(%zu) failed", n);
			pat_check(q, w->n[i], n, pat_seed(w->p[i], w->n[i]),
				  "after realloc");
			w->p[i] = q;
			w->n[i] = n;
			pat_fill(q, n, pat_seed(q, n));
		} else {
			pat_check(w->p[i], w->n[i], w->n[i],
				  pat_seed(w->p[i], w->n[i]), "before free");
			free(w->p[i]);
			w->p[i] = NULL;
		}
		if (k == 99) {
			/* failure paths must set errno despite the handler */
			errno = 0;
			if (malloc(opaque(SIZE_MAX - 100)) || errno != ENOMEM)
				fail("malloc(huge) under signals: errno %d",
				     errno);
		}
	}
	for (s = 0; s < SLOTS; s++) {
		if (!w->p[s])
			continue;
		pat_check(w->p[s], w->n[s], w->n[s], pat_seed(w->p[s], w->n[s]),
			  "at exit");
		free(w->p[s]);
	}
	if (tls_sigs != w->sigs)
		fail("TLS signal count %lu != %lu", tls_sigs, w->sigs);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long secs = arg_ul(argc, argv, 1, 3);
	unsigned long nthr = arg_ul(argc, argv, 2, 4), i, sent = 0;
	unsigned long tot_ops = 0, tot_sigs = 0;
	struct sigaction sa;
	struct wk *w;
	double t0;

	watchdog("signals", 60 + secs);
	check_rseq_mode();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR2, &sa, NULL);

	w = calloc(nthr, sizeof(*w));
	if (!w)
		fail("calloc");
	for (i = 0; i < nthr; i++) {
		w[i].rnd = rnd_seed(i);
		if (pthread_create(&w[i].tid, NULL, worker, &w[i]))
			fail("pthread_create");
	}
	/* The main thread is the killer. */
	t0 = now_s();
	while (now_s() - t0 < secs) {
		for (i = 0; i < nthr; i++) {
			int e = pthread_kill(w[i].tid,
					     sent & 1 ? SIGUSR2 : SIGUSR1);

			if (e)
				fail("pthread_kill: %s", strerror(e));
			sent++;
		}
		if (sent % 64 == 0)
			sched_yield();
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
	info("%lu ops, %lu signals sent, %lu handled, in %.2fs", tot_ops, sent,
	     tot_sigs, now_s() - t0);
	return KSFT_PASS;
}
