// SPDX-License-Identifier: MIT
/*
 * fork_stdio - fork() against stdio locks held around malloc.
 *
 *   fork_stdio [forks [forkers [secs]]]    (default 300 forks, 3 forkers,
 *                                           at most 5 s)
 *
 * The deadlock pattern of glibc's malloc/tst-malloc-fork-deadlock, written
 * for slab. libc's fork() takes its stdio list lock (glibc _IO_list_lock,
 * musl ofl_lock) and only then its own malloc locks; fflush(NULL) takes
 * the same list lock and then every FILE's lock in turn. A program may
 * call malloc with a FILE locked (flockfile(), or libc's own getline in a
 * static musl link, where getline's realloc is wrapped). An allocator
 * whose pthread_atfork prepare handler takes its locks runs before libc
 * takes the list lock, and closes the cycle:
 *
 *   locker:  holds FILE f, malloc() waits for an allocator lock
 *   forker:  holds the allocator locks (prepare), waits for the list lock
 *   flusher: holds the list lock, fflush(NULL) waits for FILE f
 *
 * Threads: a locker (flockfile on stdout or a FILE open on /dev/null,
 * then mallocs of 16 to 300000 bytes that miss the caches, some frees,
 * funlockfile), a reader (getline on an fmemopen() stream, buffer freed
 * often so that getline allocates again under the stream's lock), a
 * flusher (fflush(NULL) in a loop) and several forkers. Each child
 * allocates a little and _exit(0)s without touching stdio; a child that
 * has not exited after 10 s is killed and reported. A watchdog thread
 * reports "fork_stdio: deadlock: ..." with what each thread was doing and
 * _exit(1)s when no fork has completed for 10 s; alarm() backs it up.
 */
#include "stress.h"

#define NSLOTS      32
#define MAX_FORKERS 16
#define STALL_S     10
#define CHILD_S     10

enum { IDLE, IN_LOCKED, IN_MALLOC, IN_GETLINE, IN_FFLUSH, IN_FORK, IN_WAIT };

static const char *const state_name[] = {
	[IDLE] = "running",
	[IN_LOCKED] = "holds a FILE lock",
	[IN_MALLOC] = "in malloc/free with a FILE locked",
	[IN_GETLINE] = "in getline",
	[IN_FFLUSH] = "in fflush(NULL)",
	[IN_FORK] = "in fork()",
	[IN_WAIT] = "waiting for its child",
};

static int stop;
static volatile int state_locker, state_reader, state_flusher;
static volatile int state_forker[MAX_FORKERS];
static volatile pid_t child_pid[MAX_FORKERS];
static unsigned long forks_left, forks_done, children_hung, children_bad;
static unsigned long locker_iters, reader_lines, flushes;
static unsigned long nforkers;
static int forkers_done;
static FILE *devnull;
static double t_end;

static int flag(int *f)
{
	return __atomic_load_n(f, __ATOMIC_ACQUIRE);
}

static void set_state(volatile int *s, int v)
{
	__atomic_store_n(s, v, __ATOMIC_RELAXED);
}

static void bump(unsigned long *c)
{
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

static unsigned long get(unsigned long *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* Sizes that miss the small-object caches often: 16 .. 300000. */
static size_t rsize(uint64_t *r)
{
	switch (rnd_below(r, 4)) {
	case 0:
		return 16 + rnd_below(r, 256);
	case 1:
		return 16 + rnd_below(r, 32 << 10);
	default:
		return 16 + rnd_below(r, 300000 - 16);
	}
}

static void *locker(void *arg)
{
	uint64_t r = rnd_seed(1);
	void *slot[NSLOTS] = { NULL };
	unsigned int i, k, n;
	FILE *f;

	(void)arg;
	while (!flag(&stop)) {
		f = rnd_below(&r, 2) ? stdout : devnull;
		flockfile(f);
		set_state(&state_locker, IN_MALLOC);
		n = 1 + rnd_below(&r, 4);
		for (i = 0; i < n; i++) {
			k = rnd_below(&r, NSLOTS);
			free(slot[k]);
			slot[k] = malloc(rsize(&r));
			if (!slot[k])
				fail("locker: malloc failed");
			*(volatile char *)slot[k] = 1;
		}
		set_state(&state_locker, IN_LOCKED);
		funlockfile(f);
		set_state(&state_locker, IDLE);
		bump(&locker_iters);
	}
	for (k = 0; k < NSLOTS; k++)
		free(slot[k]);
	return NULL;
}

static char text[64 << 10];

static void *reader(void *arg)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *m;

	(void)arg;
	m = fmemopen(text, strlen(text), "r");
	if (!m)
		fail("fmemopen: %s", strerror(errno));
	while (!flag(&stop)) {
		set_state(&state_reader, IN_GETLINE);
		len = getline(&line, &cap, m);
		set_state(&state_reader, IDLE);
		if (len < 0) {
			rewind(m);
			continue;
		}
		bump(&reader_lines);
		/* A fresh buffer: the next getline allocates again. */
		if (reader_lines % 2 == 0) {
			free(line);
			line = NULL;
			cap = 0;
		}
	}
	free(line);
	fclose(m);
	return NULL;
}

static void *flusher(void *arg)
{
	(void)arg;
	while (!flag(&stop)) {
		set_state(&state_flusher, IN_FFLUSH);
		fflush(NULL);
		set_state(&state_flusher, IDLE);
		bump(&flushes);
	}
	return NULL;
}

static void child(unsigned long id)
{
	uint64_t r = rnd_seed(1000 + id);
	void *p[8];
	int i;

	for (i = 0; i < 8; i++) {
		p[i] = malloc(rsize(&r));
		if (!p[i])
			_exit(3);
		memset(p[i], 0x5a, 16);
	}
	for (i = 0; i < 8; i++)
		free(p[i]);
	_exit(0);
}

static int take_fork(void)
{
	unsigned long n = __atomic_load_n(&forks_left, __ATOMIC_RELAXED);

	do {
		if (!n || flag(&stop) || now_s() > t_end)
			return 0;
	} while (!__atomic_compare_exchange_n(&forks_left, &n, n - 1, 0,
					      __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	return 1;
}

/* Reap child @pid; kill it when it has not exited after CHILD_S. */
static void reap(pid_t pid)
{
	double t0 = now_s();
	pid_t w;
	int st;

	while ((w = waitpid(pid, &st, WNOHANG)) != pid) {
		if (w < 0 && errno != EINTR)
			fail("waitpid: %s", strerror(errno));
		if (now_s() - t0 > CHILD_S) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			bump(&children_hung);
			errmsg("FAIL: ", "child %d hung (killed after %d s)",
			       (int)pid, CHILD_S);
			return;
		}
		usleep(200);
	}
	if (WIFSIGNALED(st)) {
		bump(&children_bad);
		errmsg("FAIL: ", "child %d killed by signal %d (%s)", (int)pid,
		       WTERMSIG(st), strsignal(WTERMSIG(st)));
	} else if (WEXITSTATUS(st)) {
		bump(&children_bad);
		errmsg("FAIL: ", "child %d exited with %d", (int)pid,
		       WEXITSTATUS(st));
	}
}

static void *forker(void *arg)
{
	unsigned long id = (uintptr_t)arg, n = 0;
	pid_t pid;

	while (take_fork()) {
		set_state(&state_forker[id], IN_FORK);
		pid = fork();
		if (pid < 0)
			fail("fork: %s", strerror(errno));
		if (pid == 0)
			child(id * 100000 + n);
		child_pid[id] = pid;
		set_state(&state_forker[id], IN_WAIT);
		reap(pid);
		child_pid[id] = 0;
		set_state(&state_forker[id], IDLE);
		bump(&forks_done);
		n++;
	}
	return NULL;
}

static void deadlock(const char *why)
{
	char buf[1024];
	unsigned long i;
	int n;

	n = snprintf(buf, sizeof(buf),
		     "fork_stdio: deadlock: %s; %lu forks done; locker %s "
		     "(%lu iterations), reader %s (%lu lines), flusher %s "
		     "(%lu flushes)",
		     why, get(&forks_done), state_name[state_locker],
		     get(&locker_iters), state_name[state_reader],
		     get(&reader_lines), state_name[state_flusher],
		     get(&flushes));
	for (i = 0; i < nforkers && n < (int)sizeof(buf) - 64; i++)
		n += snprintf(buf + n, sizeof(buf) - n, "; forker %lu %s", i,
			      state_name[state_forker[i]]);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, n) < 0)
		_exit(3);
	for (i = 0; i < nforkers; i++)
		if (child_pid[i] > 0)
			kill(child_pid[i], SIGKILL);
	_exit(KSFT_FAIL);
}

/*
 * A thread that makes no progress for STALL_S seconds (no fork completed,
 * no locked malloc round, no line read, no fflush) means a deadlock:
 * report who is where, and exit.
 */
static void *watcher(void *arg)
{
	static const char *const what[] = { "fork", "locked malloc round",
					    "getline", "fflush(NULL)" };
	unsigned long *ctr[] = { &forks_done, &locker_iters, &reader_lines,
				 &flushes };
	unsigned long last[ARRAY_SIZE(ctr)], cur;
	double since[ARRAY_SIZE(ctr)], t;
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	char why[128];
	unsigned int i;

	(void)arg;
	for (i = 0; i < ARRAY_SIZE(ctr); i++) {
		last[i] = ~0UL;
		since[i] = now_s();
	}
	for (;;) {
		nanosleep(&ts, NULL);
		t = now_s();
		for (i = 0; i < ARRAY_SIZE(ctr); i++) {
			cur = get(ctr[i]);
			if (cur != last[i]) {
				last[i] = cur;
				since[i] = t;
			}
			/* The forkers stop first, when their work is done. */
			if (i == 0 && flag(&forkers_done))
				since[i] = t;
			if (t - since[i] > STALL_S) {
				snprintf(why, sizeof(why),
					 "no %s completed for %d s", what[i],
					 STALL_S);
				deadlock(why);
			}
		}
	}
	return NULL;
}

static void alarm_fire(int sig)
{
	(void)sig;
	deadlock("alarm: test did not finish in time");
}

int main(int argc, char **argv)
{
	unsigned long forks = arg_ul(argc, argv, 1, 300);
	unsigned long secs = arg_ul(argc, argv, 3, 5), i;
	pthread_t tl, tr, tf, tw, tc[MAX_FORKERS];
	struct sigaction sa;
	size_t off = 0;
	uint64_t r = rnd_seed(7);
	int e;

	nforkers = arg_ul(argc, argv, 2, 3);
	if (nforkers < 1)
		nforkers = 1;
	if (nforkers > MAX_FORKERS)
		nforkers = MAX_FORKERS;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = alarm_fire;
	sigaction(SIGALRM, &sa, NULL);
	alarm(secs + 3 * STALL_S);
	check_rseq_mode();

	/* Lines of 0 to 2000 characters for getline. */
	while (off < sizeof(text) - 2100) {
		size_t len = rnd_below(&r, 2000);

		memset(text + off, 'a' + (int)rnd_below(&r, 26), len);
		off += len;
		text[off++] = '\n';
	}
	text[off] = 0;
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		fail("fopen(/dev/null): %s", strerror(errno));

	forks_left = forks;
	t_end = now_s() + secs;
	if ((e = pthread_create(&tw, NULL, watcher, NULL)) ||
	    (e = pthread_create(&tl, NULL, locker, NULL)) ||
	    (e = pthread_create(&tr, NULL, reader, NULL)) ||
	    (e = pthread_create(&tf, NULL, flusher, NULL)))
		fail("pthread_create: %s", strerror(e));
	for (i = 0; i < nforkers; i++) {
		e = pthread_create(&tc[i], NULL, forker, (void *)(uintptr_t)i);
		if (e)
			fail("pthread_create: %s", strerror(e));
	}
	for (i = 0; i < nforkers; i++)
		pthread_join(tc[i], NULL);
	__atomic_store_n(&forkers_done, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	pthread_join(tl, NULL);
	pthread_join(tr, NULL);
	pthread_join(tf, NULL);
	fclose(devnull);
	if (children_hung || children_bad)
		fail("%lu of %lu children hung, %lu failed", children_hung,
		     forks_done, children_bad);
	info("%lu forks by %lu threads; %lu locked-malloc rounds, %lu getline "
	     "lines, %lu fflush(NULL)",
	     forks_done, nforkers, locker_iters, reader_lines, flushes);
	return KSFT_PASS;
}
