// SPDX-License-Identifier: MIT
/*
 * fork_large - fork() while threads churn large blocks.
 *
 *   fork_large [forks [threads]]        (default 30 forks, 6 threads)
 *
 * Threads allocate, touch, sometimes realloc, and free blocks of 256 KiB
 * to 1.3 MiB (and small ones) while the main thread forks; each child
 * callocs and checks 200 such blocks, starts a thread of its own and
 * exits. A child that has not exited after 20 s is killed and reported.
 *
 * Found by an adversarial review (2026-11-26): 1 in 8 to 5 in 6 runs hung
 * a child. The cause (issue 8): the first allocation of a thread could
 * start the allocator while the main thread forked, and the fork handlers
 * were registered only after start-up and took no start-up lock, so the
 * child inherited init_lock held and the allocator half started (what
 * looked like "reverted pages" was the state before start-up). Start-up
 * now runs before main() inside a slow section, with the handlers in
 * place first (Documentation/design.md, "Fork and signals"). In the
 * default run since; also on Linux 6.1 under qemu (.ci/qemu-kernel).
 */
#include "stress.h"

static volatile int stop;

static void *churn(void *arg)
{
	uint64_t r = rnd_seed((uintptr_t)arg);
	void *small[64] = { 0 };
	unsigned char *p, *q;
	size_t n;
	int i;

	while (!stop) {
		n = (256 << 10) + 1 + rnd_below(&r, 1 << 20);
		p = rnd_below(&r, 2) ? malloc(n) : calloc(1, n);
		if (!p)
			fail("malloc(%zu)", n);
		p[0] = 1;
		p[n - 1] = 2;
		if (rnd_below(&r, 4) == 0) {
			q = realloc(p, n + rnd_below(&r, 300000));
			if (!q || q[0] != 1)
				fail("realloc lost the contents");
			p = q;
		}
		free(p);
		i = (int)rnd_below(&r, 64);
		free(small[i]);
		small[i] = malloc(rnd_below(&r, 2000));
	}
	for (i = 0; i < 64; i++)
		free(small[i]);
	return NULL;
}

static void child(int f)
{
	uint64_t r = rnd_seed(1000 + f);
	unsigned char *p;
	pthread_t t;
	size_t n;
	int k;

	for (k = 0; k < 200; k++) {
		n = (256 << 10) + 1 + rnd_below(&r, 1 << 20);
		p = calloc(1, n);
		if (!p || zero_walk(p, n) != (size_t)-1)
			_exit(3);
		memset(p, 9, n);
		free(p);
		free(malloc(rnd_below(&r, 5000)));
	}
	stop = 0;
	if (pthread_create(&t, NULL, churn, (void *)99L))
		_exit(4);
	usleep(1000);
	stop = 1;
	pthread_join(t, NULL);
	_exit(0);
}

int main(int argc, char **argv)
{
	unsigned long forks = arg_ul(argc, argv, 1, 30);
	unsigned long nthr = arg_ul(argc, argv, 2, 6), i;
	pthread_t tid[64];
	unsigned long f, hung = 0, bad = 0;
	double t0;
	pid_t pid;
	int st;

	if (nthr > 64)
		nthr = 64;
	watchdog("fork_large", 60 + 25 * forks);
	for (i = 0; i < nthr; i++)
		if (pthread_create(&tid[i], NULL, churn, (void *)(uintptr_t)i))
			fail("pthread_create");
	for (f = 0; f < forks; f++) {
		pid = fork();
		if (pid < 0)
			fail("fork: %s", strerror(errno));
		if (!pid)
			child((int)f);
		t0 = now_s();
		while (waitpid(pid, &st, WNOHANG) == 0) {
			if (now_s() - t0 > 20) {
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
				hung++;
				note("child %lu hung (killed after 20 s)", f);
				break;
			}
			usleep(1000);
		}
		if (!WIFSIGNALED(st) && (!WIFEXITED(st) || WEXITSTATUS(st)))
			bad++;
	}
	stop = 1;
	for (i = 0; i < nthr; i++)
		pthread_join(tid[i], NULL);
	if (hung || bad)
		fail("%lu of %lu children hung, %lu failed", hung, forks, bad);
	info("%lu forks with %lu busy threads", forks, nthr);
	return KSFT_PASS;
}
