// SPDX-License-Identifier: MIT
/*
 * fork_signal - fork() from a signal handler that interrupted malloc.
 *
 *   fork_signal [variant [iterations]]
 *
 * Modelled on glibc's malloc/tst-mallocfork2.c and tst-mallocfork3.c.
 * A SIGUSR1 handler forks; the child _exit(0)s at once (or, in the
 * -child variants, first calls malloc and free when the signal did not
 * interrupt the allocator in that thread); the handler waitpid()s for it.
 * Meanwhile the interrupted code allocates and frees in a loop, so the
 * fork lands inside malloc/free (and its fork handlers inside fork).
 *
 *   fork2         single-threaded process, fork(), signals from 3 other
 *                 processes synchronised through a process-shared
 *                 barrier so that they arrive during fork/free/malloc
 *   fork2-child   the same, the child allocates before _exit
 *   fork3         multi-threaded: 3 sender threads, a thread allocating
 *                 with the signal blocked, handler uses _Fork()
 *   mtfork        3 threads allocate, another thread pthread_kill()s
 *                 them; the handler calls fork() (fork handlers run in
 *                 the interrupted thread, maybe inside malloc)
 *   mtfork-child  the same, the child allocates before _exit
 *   all           (default) each of the above in its own process
 *
 * The children of the -child variants only allocate when the signal hit
 * the interrupted thread at a "safe point" (a busy loop outside any libc
 * call): a child forked while its thread held a libc lock (musl takes
 * one in pthread_barrier_wait) or while it was inside malloc itself can
 * deadlock in any allocator.
 *
 * The mtfork variants ask more than POSIX and glibc or musl malloc give
 * (fork() is only async-signal-safe in glibc in single-threaded
 * processes): slab must not take, in its fork handlers, a lock that the
 * interrupted thread may hold. Plain libc builds skip them.
 *
 * Nothing may deadlock: every variant runs under a watchdog, and every
 * child under its own alarm.
 */
#include "stress.h"

#include <sys/mman.h>
#include <sys/prctl.h>

#define NOBJ     1009
#define MAXSIZE  70000
#define NSENDERS 3

static struct {
	pthread_barrier_t barrier;
	volatile int safe;          /* the main thread is at its safe point */
	volatile unsigned int spun; /* safe points passed */
} * sh;
static pthread_barrier_t tbarrier;
static int use_Fork, child_malloc;
static volatile int stop;
static int error_indicator, n_forks, n_in_alloc, *n_child_malloc;
static __thread volatile sig_atomic_t in_alloc, safe_point;
static __thread volatile unsigned int handled; /* signals handled */

static void say(const char *s)
{
	if (write(STDERR_FILENO, s, strlen(s)) < 0)
		_exit(3);
}

static void child_work(int was_in_alloc, int was_safe)
{
	watchdog_what = "child of a fork in a signal handler";
	alarm(10);
	if (child_malloc && was_safe && !was_in_alloc) {
		void *a = malloc(opaque(1000));
		void *b = malloc(opaque(100000));
		void *c = calloc(opaque(10), opaque(100));

		if (!a || !b || !c)
			_exit(7);
		memset(a, 1, 1000);
		memset(b, 2, 100000);
		free(a);
		free(c);
		b = realloc(b, opaque(300000));
		if (!b)
			_exit(8);
		free(b);
		__atomic_add_fetch(n_child_malloc, 1, __ATOMIC_RELAXED);
	}
	_exit(0);
}

static void sigusr1_handler(int sig)
{
	int saved = errno, was = in_alloc, safe = safe_point, st;
	pid_t pid;

	(void)sig;
	pid = use_Fork ? _Fork() : fork();
	if (pid < 0) {
		say("error: fork in signal handler failed\n");
		__atomic_store_n(&error_indicator, 1, __ATOMIC_RELAXED);
		errno = saved;
		return;
	}
	if (pid == 0)
		child_work(was, safe);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			say("error: waitpid in signal handler failed\n");
			__atomic_store_n(&error_indicator, 1, __ATOMIC_RELAXED);
			errno = saved;
			return;
		}
	}
	if (st != 0) {
		if (WIFSIGNALED(st))
			say("error: child of the handler's fork: signal\n");
		else
			say("error: child of the handler's fork: status\n");
		__atomic_store_n(&error_indicator, 1, __ATOMIC_RELAXED);
	}
	__atomic_add_fetch(&n_forks, 1, __ATOMIC_RELAXED);
	handled++;
	if (was)
		__atomic_add_fetch(&n_in_alloc, 1, __ATOMIC_RELAXED);
	errno = saved;
}

static void set_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sigusr1_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

/* One step of the tst-mallocfork loop: maybe fork, free, malloc. */
static void step(void **objects, uint64_t *r, int do_fork_ok)
{
	int slot = rnd_below(r, NOBJ);
	size_t size = rnd_below(r, MAXSIZE);
	int st;

	if (child_malloc) {
		/* the signals sent after the barrier land here */
		volatile unsigned int spin;

		unsigned int seen = handled;

		safe_point = 1;
		if (sh) {
			/* fork2: the senders wait for this; wait for them */
			sh->safe = 1;
			for (spin = 0; spin < 2000000 && handled == seen;
			     spin++)
				;
			sh->safe = 0;
			sh->spun++;
		} else {
			for (spin = 0; spin < 100000; spin++)
				;
		}
		safe_point = 0;
	}
	if (do_fork_ok && rnd_below(r, 7) == 0) {
		pid_t pid = use_Fork ? _Fork() : fork();

		if (pid < 0)
			fail("fork: %s", strerror(errno));
		if (pid == 0)
			_exit(0);
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				fail("waitpid: %s", strerror(errno));
		if (st)
			fail("child exited with status 0x%x", st);
	}
	in_alloc = 1;
	free(objects[slot]);
	objects[slot] = malloc(size);
	in_alloc = 0;
	if (!objects[slot])
		fail("malloc(%zu): %s", size, strerror(errno));
	/* a little content check: first and last bytes */
	if (size) {
		((unsigned char *)objects[slot])[0] = slot;
		((unsigned char *)objects[slot])[size - 1] = slot;
	}
}

static void free_all(void **objects)
{
	int i;

	for (i = 0; i < NOBJ; i++)
		free(objects[i]);
}

/* ---- fork2: single-threaded, signals from other processes ---- */

static void sender_process(pid_t target)
{
	uint64_t r = rnd_seed(getpid());
	unsigned int it;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != target)
		_exit(0);
	for (it = 0;; it++) {
		volatile unsigned int spin, n;

		pthread_barrier_wait(&sh->barrier);
		if (child_malloc) {
			/* aim at this iteration's safe point */
			while (!sh->safe && sh->spun < it + 1)
				sched_yield();
		} else {
			/* spread the arrivals over fork, free and malloc */
			n = rnd_below(&r, 4000);
			for (spin = 0; spin < n; spin++)
				;
		}
		if (kill(target, SIGUSR1))
			_exit(1);
		pthread_barrier_wait(&sh->barrier);
	}
}

static void run_fork2(unsigned long iters)
{
	static void *objects[NOBJ];
	pid_t senders[NSENDERS], me = getpid();
	pthread_barrierattr_t attr;
	uint64_t r = rnd_seed(2);
	unsigned long i;
	int k;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	pthread_barrierattr_init(&attr);
	pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_barrier_init(&sh->barrier, &attr, NSENDERS + 1);
	set_handler();
	for (k = 0; k < NSENDERS; k++) {
		senders[k] = fork();
		if (senders[k] < 0)
			fail("fork: %s", strerror(errno));
		if (senders[k] == 0)
			sender_process(me);
	}
	for (i = 0; i < iters; i++) {
		pthread_barrier_wait(&sh->barrier);
		step(objects, &r, 1);
		pthread_barrier_wait(&sh->barrier);
		if (error_indicator)
			fail("error in signal handler (iteration %lu)", i);
	}
	for (k = 0; k < NSENDERS; k++) {
		kill(senders[k], SIGKILL);
		waitpid(senders[k], NULL, 0);
	}
	free_all(objects);
}

/* ---- fork3 and mtfork: threads ---- */

static void *sender_thread(void *arg)
{
	pthread_t target = *(pthread_t *)arg;

	while (!stop) {
		pthread_barrier_wait(&tbarrier);
		if (!stop)
			pthread_kill(target, SIGUSR1);
		pthread_barrier_wait(&tbarrier);
	}
	return NULL;
}

static void *noise_thread(void *arg)
{
	static __thread void *objects[NOBJ];
	uint64_t r = rnd_seed((uintptr_t)arg);
	unsigned long n = 0;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	while (!stop) {
		step(objects, &r, 0);
		if (++n % 64 == 0)
			usleep(100); /* leave the CPUs to the barrier */
	}
	free_all(objects);
	return NULL;
}

static void run_fork3(unsigned long iters)
{
	static void *objects[NOBJ];
	pthread_t self = pthread_self(), snd[NSENDERS], noise[1];
	uint64_t r = rnd_seed(3);
	unsigned long i;
	int k;

	use_Fork = 1;
	set_handler();
	pthread_barrier_init(&tbarrier, NULL, NSENDERS + 1);
	for (k = 0; k < NSENDERS; k++)
		if (pthread_create(&snd[k], NULL, sender_thread, &self))
			fail("pthread_create");
	for (k = 0; k < 1; k++)
		if (pthread_create(&noise[k], NULL, noise_thread,
				   (void *)(uintptr_t)k))
			fail("pthread_create");
	for (i = 0; i < iters; i++) {
		pthread_barrier_wait(&tbarrier);
		step(objects, &r, 1);
		if (i + 1 == iters)
			stop = 1;
		pthread_barrier_wait(&tbarrier);
		if (error_indicator)
			fail("error in signal handler (iteration %lu)", i);
	}
	for (k = 0; k < NSENDERS; k++)
		pthread_join(snd[k], NULL);
	for (k = 0; k < 1; k++)
		pthread_join(noise[k], NULL);
	free_all(objects);
}

#define NWORKERS 3

static void *mt_worker(void *arg)
{
	static __thread void *objects[NOBJ];
	uint64_t r = rnd_seed(10 + (uintptr_t)arg);

	while (!stop)
		step(objects, &r, 0);
	free_all(objects);
	return NULL;
}

static void run_mtfork(unsigned long iters)
{
	pthread_t w[NWORKERS];
	unsigned long i;
	int k;

	set_handler();
	for (k = 0; k < NWORKERS; k++)
		if (pthread_create(&w[k], NULL, mt_worker,
				   (void *)(uintptr_t)k))
			fail("pthread_create");
	for (i = 0; i < iters; i++) {
		pthread_kill(w[i % NWORKERS], SIGUSR1);
		usleep(200);
		if (error_indicator)
			fail("error in signal handler (signal %lu)", i);
	}
	stop = 1;
	for (k = 0; k < NWORKERS; k++)
		pthread_join(w[k], NULL);
}

static const char *const variants[] = {
	"fork2", "fork2-child", "fork3", "mtfork", "mtfork-child",
};

static void run_variant(const char *v, unsigned long iters)
{
	double t0 = now_s();

	watchdog(v, 20);
	check_rseq_mode();
#ifndef WITH_SLAB
	if (!strncmp(v, "mtfork", 6)) {
		info("%s: skipped, libc malloc does not support it", v);
		return;
	}
#endif
	n_child_malloc = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (n_child_malloc == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	child_malloc = strstr(v, "-child") != NULL;
	if (!strcmp(v, "fork2"))
		run_fork2(iters ? iters : 1500);
	else if (!strcmp(v, "fork2-child"))
		run_fork2(iters ? iters : 400);
	else if (!strcmp(v, "fork3"))
		run_fork3(iters ? iters : 600);
	else if (!strncmp(v, "mtfork", 6))
		run_mtfork(iters ? iters : 2000);
	else
		fail("unknown variant %s", v);
	if (error_indicator)
		fail("%s: error in signal handler", v);
	slab_validate();
	info("%s: %d forks in handler (%d interrupted malloc/free, %d "
	     "children allocated) in %.2fs",
	     v, n_forks, n_in_alloc, *n_child_malloc, now_s() - t0);
	/*
	 * Children allocate only when the signal hit a safe point; with few
	 * forks (each fork from a handler may wait out another thread's
	 * fork, 100 ms in slab) none may have: inconclusive, not a failure.
	 */
	if (child_malloc && !*n_child_malloc)
		info("%s: no child allocated in %d forks: inconclusive", v,
		     n_forks);
}

int main(int argc, char **argv)
{
	const char *v = argc > 1 ? argv[1] : "all";
	unsigned long iters = arg_ul(argc, argv, 2, 0);
	int failed = 0;
	size_t i;

	if (strcmp(v, "all")) {
		run_variant(v, iters);
		return KSFT_PASS;
	}
	/* Each variant in its own process, started before any thread. */
	for (i = 0; i < ARRAY_SIZE(variants); i++) {
		pid_t pid;
		int st;

		fflush(NULL);
		pid = fork();
		if (pid < 0)
			fail("fork: %s", strerror(errno));
		if (pid == 0) {
			run_variant(variants[i], iters);
			fflush(NULL);
			_exit(KSFT_PASS);
		}
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				fail("waitpid: %s", strerror(errno));
		if (st) {
			errmsg("FAIL: ", "variant %s: %s %d", variants[i],
			       WIFSIGNALED(st) ? "killed by signal" :
						 "exit status",
			       WIFSIGNALED(st) ? WTERMSIG(st) :
						 WEXITSTATUS(st));
			failed++;
		}
	}
	return failed ? KSFT_FAIL : KSFT_PASS;
}
