// SPDX-License-Identifier: MIT
/*
 * idle_drain - per-CPU and per-thread caches are bounded in bytes and
 * given back when idle.
 *
 *   idle_drain [seconds of the trim race, default 2]
 *
 * 1. A burst on every CPU: one thread pinned to each allowed CPU but the
 *    main thread's allocates and frees 3 * 128 objects of 40 sizes from
 *    16 B to 256 KiB, then exits. What the caches keep afterwards must be
 *    at most cpu_cache (SLAB_OPTIONS, default 2 MiB) per region; it was
 *    up to 9 MiB per region before the bound.
 * 2. Idleness (rseq indexed by cpu_id, two CPUs or more): the main thread
 *    keeps allocating on its own CPU; within a few scan periods the
 *    regions of the other CPUs must be drained by the idle scan: no
 *    object of the burst's sizes may stay cached. (With mm_cid the main
 *    thread may inherit a burst thread's region, so this runs in a child
 *    started with SLAB_OPTIONS=...,rseq=cpu,cpu_idle_ms=200.) With
 *    per-thread caches, the exited threads' caches must be empty at once,
 *    and those of threads that burst and then block (alive, idle) must
 *    be drained by the scan while the main thread works.
 * 3. malloc_trim(0) must give back everything cached (where membarrier
 *    works, or with per-thread caches) and return 1.
 * 4. A race: workers on every CPU allocate, fill, check and free random
 *    sizes while another thread calls malloc_trim() in a loop, stopping
 *    and draining regions that are in use. No block may be handed out
 *    twice or lose its contents; slab_validate() must pass at the end.
 * RSS after each phase is printed.
 */
#include "stress.h"

#ifndef WITH_SLAB
int main(void)
{
	printf("# idle_drain: needs slab (statistics and malloc_trim)\n");
	return KSFT_SKIP;
}
#else

#define NR_SIZES   40
#define BURST_OBJS (3 * 128)
#define MAIN_SIZE  48

static size_t sizes[NR_SIZES];
static int cpus[CPU_SETSIZE], ncpus;
static int main_cpu = -1;
static unsigned long long base_burst; /* cached before the burst */

struct totals {
	unsigned long long cached_bytes; /* in per-CPU/thread caches */
	unsigned long long burst_bytes;  /* of those, not the main size */
	struct slab_global_info g;
};

static void get_totals(struct totals *t)
{
	static struct slab_cache_info ci[256];
	unsigned int n, i;

	memset(t, 0, sizeof(*t));
	n = slab_stats_get(&t->g, ci, 256);
	if (n > 256)
		n = 256;
	for (i = 0; i < n; i++) {
		unsigned long long b = ci[i].cpu_cached * ci[i].object_size;

		if (!(ci[i].flags & SLAB_INFO_KMALLOC))
			continue;
		t->cached_bytes += b;
		if (ci[i].object_size != MAIN_SIZE)
			t->burst_bytes += b;
	}
}

static double pow_i(double b, int e)
{
	double r = 1;

	while (e-- > 0)
		r *= b;
	return r;
}

static long rss_kb(void)
{
	long vsz, rss;

	return read_statm(&vsz, &rss) ? -1 : rss;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		fail("sched_setaffinity(%d): %s", cpu, strerror(errno));
}

static void *burst(void *arg)
{
	static __thread void *objs[BURST_OBJS];
	unsigned int i, j;

	pin((int)(long)arg);
	for (i = 0; i < NR_SIZES; i++) {
		unsigned int n = sizes[i] > (64 << 10) ? 8 : BURST_OBJS;

		for (j = 0; j < n; j++) {
			objs[j] = malloc(opaque(sizes[i]));
			if (!objs[j])
				fail("malloc(%zu) = NULL", sizes[i]);
			memset(objs[j], 0x5a, sizes[i] < 256 ? sizes[i] : 256);
		}
		for (j = 0; j < n; j++)
			free(objs[j]);
	}
	return NULL;
}

/* Phase 1: returns the regions that may hold objects now. */
static unsigned int burst_everywhere(void)
{
	pthread_t th[CPU_SETSIZE];
	int i, n = 0;

	for (i = 0; i < ncpus; i++) {
		if (cpus[i] == main_cpu && ncpus > 1)
			continue;
		if (pthread_create(&th[n], NULL, burst, (void *)(long)cpus[i]))
			fail("pthread_create: %s", strerror(errno));
		n++;
	}
	while (n--)
		pthread_join(th[n], NULL);
	return (unsigned int)ncpus;
}

static void check_bound(const char *when, unsigned int regions)
{
	struct totals t;
	unsigned long long bound;

	get_totals(&t);
	if (t.g.rseq_mode == SLAB_RSEQ_OFF)
		regions = 1; /* the main thread's; exited threads flushed */
	bound = (unsigned long long)regions * t.g.cpu_cache;
	info("%s: %llu KiB cached in %u region(s), bound %llu KiB each, RSS %ld KiB",
	     when, t.cached_bytes >> 10, regions, t.g.cpu_cache >> 10,
	     rss_kb());
	check(t.cached_bytes <= bound,
	      "%s: %llu bytes cached, more than %u x cpu_cache (%llu)", when,
	      t.cached_bytes, regions, (unsigned long long)t.g.cpu_cache);
}

/* The main thread's work while others stay idle: misses, slow paths. */
static void main_work(void)
{
	void *objs[300];
	int i;

	for (i = 0; i < 300; i++)
		objs[i] = malloc(opaque(MAIN_SIZE));
	for (i = 0; i < 300; i++)
		free(objs[i]);
}

/* Per-thread caches: threads that burst, then block, alive. */
static pthread_mutex_t idle_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cv = PTHREAD_COND_INITIALIZER;
static int idle_release, idle_ready;

static void *burst_and_block(void *arg)
{
	burst(arg);
	pthread_mutex_lock(&idle_mu);
	idle_ready++;
	pthread_cond_broadcast(&idle_cv);
	while (!idle_release)
		pthread_cond_wait(&idle_cv, &idle_mu);
	pthread_mutex_unlock(&idle_mu);
	burst(arg); /* the drained cache works again */
	return NULL;
}

static void idle_threads_phase(void)
{
	pthread_t th[4];
	struct totals t;
	int i, n = 2;
	double end;

	idle_release = idle_ready = 0;
	for (i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, burst_and_block,
				   (void *)(long)cpus[i % ncpus]))
			fail("pthread_create: %s", strerror(errno));
	pthread_mutex_lock(&idle_mu);
	while (idle_ready < n)
		pthread_cond_wait(&idle_cv, &idle_mu);
	pthread_mutex_unlock(&idle_mu);
	get_totals(&t);
	info("%d threads blocked after a burst: %llu KiB of the burst's sizes cached, RSS %ld KiB",
	     n, (t.burst_bytes - base_burst) >> 10, rss_kb());
	if (t.g.membarrier < 0) {
		info("no membarrier here: idle threads' caches cannot be drained");
	} else {
		end = now_s() + 10;
		while (now_s() < end) {
			main_work();
			get_totals(&t);
			if (t.burst_bytes <= base_burst && t.g.idle_drains)
				break;
			usleep(2000);
		}
		info("after idleness: %llu KiB of the blocked threads' objects cached, %llu idle cache(s) drained (%llu objects), RSS %ld KiB",
		     (t.burst_bytes - base_burst) >> 10,
		     (unsigned long long)t.g.idle_drains,
		     (unsigned long long)t.g.drained_objs, rss_kb());
		check(t.g.idle_drains > 0,
		      "no idle thread's cache was drained in 10 s");
		check(t.burst_bytes <= base_burst,
		      "blocked threads' caches still hold %llu bytes after 10 s",
		      t.burst_bytes - base_burst);
	}
	pthread_mutex_lock(&idle_mu);
	idle_release = 1;
	pthread_cond_broadcast(&idle_cv);
	pthread_mutex_unlock(&idle_mu);
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	slab_validate();
}

/* Phase 2: the main thread works on its CPU; the others stay idle. */
static void idle_phase(void)
{
	struct totals t;
	double end;

	get_totals(&t);
	if (t.g.rseq_mode == SLAB_RSEQ_OFF) {
		/* What the main thread cached before is still there. */
		check(t.burst_bytes <= base_burst,
		      "per-thread caches of exited threads still hold %llu bytes",
		      t.burst_bytes - base_burst);
		idle_threads_phase();
		return;
	}
	if (t.g.rseq_mode != SLAB_RSEQ_CPU_ID || ncpus < 2) {
		info("idle scan not checked here (mode %s, %d CPUs)",
		     rseq_mode_name(t.g.rseq_mode), ncpus);
		return;
	}
	if (t.g.membarrier < 0) {
		info("no membarrier here: idle regions cannot be drained");
		return;
	}
	end = now_s() + 10;
	while (now_s() < end) {
		/* More than a stack holds: the slow paths run (and scan). */
		main_work();
		get_totals(&t);
		if (t.burst_bytes == 0 && t.g.idle_drains)
			break;
		usleep(2000);
	}
	info("after idleness: %llu KiB of the burst's sizes cached, %llu idle region(s) drained (%llu objects), RSS %ld KiB",
	     t.burst_bytes >> 10, (unsigned long long)t.g.idle_drains,
	     (unsigned long long)t.g.drained_objs, rss_kb());
	/* Emptied slabs' pages go back once older than purge_ms (1 s). */
	end = now_s() + 1.5;
	while (now_s() < end) {
		main_work();
		usleep(2000);
	}
	info("1.5 s later (free pages older than purge_ms returned): RSS %ld KiB",
	     rss_kb());
	check(t.g.idle_drains > 0, "no idle region was drained in 10 s");
	check(t.burst_bytes == 0,
	      "%llu bytes of the idle CPUs' objects still cached after 10 s",
	      t.burst_bytes);
}

static void trim_phase(void)
{
	struct totals t;
	int r;

	r = malloc_trim(0);
	get_totals(&t);
	info("after malloc_trim: %llu KiB cached, RSS %ld KiB, returned %d",
	     t.cached_bytes >> 10, rss_kb(), r);
	if (t.g.rseq_mode != SLAB_RSEQ_OFF && t.g.membarrier < 0) {
		info("no membarrier here: malloc_trim cannot drain other CPUs");
		return;
	}
	if (t.g.rseq_mode == SLAB_RSEQ_FAKE)
		return;
	check(t.cached_bytes == 0, "malloc_trim left %llu bytes cached",
	      t.cached_bytes);
}

/* ---- phase 4: trims racing with allocations ---- */

#define RACE_SLOTS 256
static volatile int race_stop;

static void *race_worker(void *arg)
{
	long k = (long)arg;
	uint64_t r = rnd_seed((unsigned int)k + 11);
	unsigned char *blk[RACE_SLOTS] = { 0 };
	size_t len[RACE_SLOTS] = { 0 };
	unsigned long ops = 0;
	unsigned int i;

	pin(cpus[k % ncpus]);
	while (!race_stop || ops < 1000) {
		i = (unsigned int)(rnd_next(&r) % RACE_SLOTS);
		if (blk[i]) {
			size_t j, n = len[i] < 64 ? len[i] : 64;

			for (j = 0; j < n; j++)
				if (blk[i][j] != (unsigned char)(i + len[i]))
					fail("block %p (%zu bytes) lost its contents at %zu",
					     (void *)blk[i], len[i], j);
			free(blk[i]);
			blk[i] = NULL;
		} else {
			len[i] = 1 +
				 rnd_next(&r) % (rnd_next(&r) & 1 ? 256 : 4096);
			blk[i] = malloc(opaque(len[i]));
			if (!blk[i])
				fail("malloc(%zu) = NULL", len[i]);
			memset(blk[i], (unsigned char)(i + len[i]),
			       len[i] < 64 ? len[i] : 64);
		}
		ops++;
	}
	for (i = 0; i < RACE_SLOTS; i++)
		free(blk[i]);
	return (void *)ops;
}

static void *race_trimmer(void *arg)
{
	unsigned long n = 0;

	(void)arg;
	while (!race_stop) {
		malloc_trim(0);
		n++;
		usleep(500);
	}
	return (void *)n;
}

static void race_phase(double seconds)
{
	pthread_t w[16], tr;
	int nw = ncpus * 2 > 16 ? 16 : ncpus * 2, i;
	unsigned long ops = 0, trims;
	void *ret;

	race_stop = 0;
	for (i = 0; i < nw; i++)
		if (pthread_create(&w[i], NULL, race_worker, (void *)(long)i))
			fail("pthread_create: %s", strerror(errno));
	if (pthread_create(&tr, NULL, race_trimmer, NULL))
		fail("pthread_create: %s", strerror(errno));
	usleep((useconds_t)(seconds * 1e6));
	race_stop = 1;
	for (i = 0; i < nw; i++) {
		pthread_join(w[i], &ret);
		ops += (unsigned long)ret;
	}
	pthread_join(tr, &ret);
	trims = (unsigned long)ret;
	slab_validate();
	info("race: %d workers, %lu operations, %lu trims, no corruption", nw,
	     ops, trims);
	check(trims > 0, "the trimmer never ran");
}

static void run(double race_s)
{
	unsigned int regions;
	struct totals t;

	check_rseq_mode();
	get_totals(&t);
	base_burst = t.burst_bytes;
	regions = burst_everywhere();
	check_bound("after a burst on every CPU", regions);
	idle_phase();
	trim_phase();
	/* The bound holds for the main thread's own cache too. */
	pin(main_cpu);
	burst((void *)(long)main_cpu);
	check_bound("after a burst on the main thread", regions);
	trim_phase();
	race_phase(race_s);
}

int main(int argc, char **argv)
{
	const char *opts = getenv("SLAB_OPTIONS");
	double race_s = argc > 1 ? atof(argv[1]) : 2;
	cpu_set_t set, all;
	char buf[512];
	int i, status;
	pid_t pid;

	watchdog("idle_drain", 120);
	/* 16 B to 256 KiB, about 28% apart. */
	for (i = 0; i < NR_SIZES; i++)
		sizes[i] = (size_t)(16 * pow_i(1.28, i));
	if (sched_getaffinity(0, sizeof(set), &set))
		fail("sched_getaffinity: %s", strerror(errno));
	all = set;
	for (i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			cpus[ncpus++] = i;
	main_cpu = cpus[0];
	pin(main_cpu);
	run(race_s);

	if (nr_errors || getenv("IDLE_DRAIN_CHILD"))
		return nr_errors ? KSFT_FAIL : KSFT_PASS;
	/*
	 * Again with a bound that binds (capacities move between classes),
	 * and, unless caches are per thread, cpu_id indexing and a short scan
	 * period for phase 2.
	 */
	snprintf(buf, sizeof(buf), "%s%scpu_cache=256k%s", opts ? opts : "",
		 opts && *opts ? "," : "",
		 opts && (strstr(opts, "rseq=off") || strstr(opts, "debug")) ?
			 ",cpu_idle_ms=200" :
			 ",rseq=cpu,cpu_idle_ms=200");
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (!pid) {
		sched_setaffinity(0, sizeof(all), &all);
		setenv("SLAB_OPTIONS", buf, 1);
		setenv("IDLE_DRAIN_CHILD", "1", 1);
		unsetenv("SLAB_SELFTEST_RSEQ");
		execv("/proc/self/exe", argv);
		fail("execv: %s", strerror(errno));
	}
	if (waitpid(pid, &status, 0) != pid)
		fail("waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != KSFT_PASS)
		fail("the SLAB_OPTIONS=%s run failed (status %#x)", buf,
		     status);
	info("SLAB_OPTIONS=%s: passed", buf);
	return KSFT_PASS;
}
#endif
