// SPDX-License-Identifier: MIT
/*
 * holder.c - a process for selftests/slabinfo/run.sh to look at.
 *
 * NR_THREADS threads each allocate and keep SMALL_NR objects of SMALL_SIZE
 * bytes (kmalloc-112) and LARGE_NR objects of LARGE_SIZE bytes
 * (kmalloc-3072), then block. The main thread then makes the allocator
 * publish figures that include all of them: publication happens only from
 * the allocator's slow paths and at most every 200 ms, so it sleeps 300 ms
 * and then, every 100 ms, allocates and frees a batch of CHURN_NR objects
 * of CHURN_SIZE bytes (kmalloc-512), which refills and drains that class's
 * per-CPU stack. After CHURN_READY rounds it creates the file named by
 * argv[1] (written to a temporary name and renamed, so that it appears
 * complete) holding its PID, and keeps churning.
 *
 * SIGTERM or SIGINT makes it exit(0), so the allocator's destructors run
 * and remove /dev/shm/slab-<pid>.
 *
 * With "exec" as argv[2], it first forks a child that allocates (so that
 * it publishes its own file) and then execs "sleep 60": a file that no
 * process updates any more. The ready file then holds both PIDs.
 *
 * usage: holder READY_FILE [exec]
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define NR_THREADS  4
#define SMALL_SIZE  100
#define SMALL_NR    1000
#define LARGE_SIZE  3000
#define LARGE_NR    500
#define CHURN_SIZE  500
#define CHURN_NR    200
#define CHURN_READY 3

static volatile sig_atomic_t stop;
static pthread_barrier_t allocated;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "holder: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR && !stop)
		;
}

static void *keeper(void *arg)
{
	static void *small[NR_THREADS][SMALL_NR], *large[NR_THREADS][LARGE_NR];
	long t = (long)arg;
	int i;

	for (i = 0; i < SMALL_NR; i++) {
		small[t][i] = malloc(SMALL_SIZE);
		if (!small[t][i])
			die("malloc");
		memset(small[t][i], (int)t, SMALL_SIZE);
	}
	for (i = 0; i < LARGE_NR; i++) {
		large[t][i] = malloc(LARGE_SIZE);
		if (!large[t][i])
			die("malloc");
		memset(large[t][i], (int)t, LARGE_SIZE);
	}
	pthread_barrier_wait(&allocated);
	/* Keep the objects (and this thread's caches) until the end. */
	for (;;)
		pause();
	return NULL;
}

static pid_t child;

/* A child that publishes, then runs a program without slab. */
static void fork_exec(void)
{
	void *p[CHURN_NR];
	int i;

	child = fork();
	if (child < 0)
		die("fork");
	if (child)
		return;
	/*
	 * A child publishes no sooner than 200 ms after the fork (the
	 * allocator starts before main(), so the child does not start it
	 * and publish at once): churn, wait, churn again.
	 */
	for (i = 0; i < CHURN_NR; i++)
		p[i] = malloc(CHURN_SIZE);
	for (i = 0; i < CHURN_NR; i++)
		free(p[i]);
	sleep_ms(300);
	for (i = 0; i < CHURN_NR; i++)
		p[i] = malloc(CHURN_SIZE);
	for (i = 0; i < CHURN_NR; i++)
		free(p[i]);
	execlp("sleep", "sleep", "60", (char *)NULL);
	_exit(127);
}

static void write_ready(const char *path)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		die(tmp);
	if (child)
		fprintf(f, "%d %d\n", (int)getpid(), (int)child);
	else
		fprintf(f, "%d\n", (int)getpid());
	if (fclose(f) || rename(tmp, path))
		die(path);
}

int main(int argc, char **argv)
{
	void *churn[CHURN_NR];
	struct sigaction sa;
	pthread_t tid;
	int round, i;
	long t;

	if (argc < 2 || (argc > 2 && strcmp(argv[2], "exec"))) {
		fprintf(stderr, "usage: holder READY_FILE [exec]\n");
		return 2;
	}
	if (argc > 2)
		fork_exec();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	pthread_barrier_init(&allocated, NULL, NR_THREADS + 1);
	for (t = 0; t < NR_THREADS; t++) {
		errno = pthread_create(&tid, NULL, keeper, (void *)t);
		if (errno)
			die("pthread_create");
	}
	pthread_barrier_wait(&allocated);
	sleep_ms(300);

	for (round = 0; !stop; round++) {
		for (i = 0; i < CHURN_NR; i++) {
			churn[i] = malloc(CHURN_SIZE);
			if (!churn[i])
				die("malloc");
		}
		for (i = 0; i < CHURN_NR; i++)
			free(churn[i]);
		if (round + 1 == CHURN_READY)
			write_ready(argv[1]);
		sleep_ms(100);
	}
	if (child) {
		kill(child, SIGTERM);
		waitpid(child, NULL, 0);
	}
	exit(0);
}
