// SPDX-License-Identifier: MIT
/*
 * stats.c - statistics: collection, the table, the exit and signal dumps,
 * and the file published for tools/slabinfo -p PID.
 *
 * Nothing here runs on the rseq fast path. Counters are kept by the slow
 * paths under the cache lock (refills, drains, slabs, the objects out of
 * slabs); objects sitting in per-CPU and per-thread stacks are counted by
 * reading the stacks' counts, as the kernel derives its figures from slab
 * state. Reads of other CPUs' counts race with their owners: a figure may
 * be off by a batch, never torn in a way that matters.
 *
 * SLAB_STATS=stderr|1|PATH[,signal=SIG]: print the table at exit (to
 * stderr or PATH), and when SIG arrives. Both dumps format into a stack
 * buffer and write(2) it: no stdio, no allocation, no lock taken in the
 * signal handler (figures are read racily there).
 *
 * SLAB_OPTIONS=publish: keep /dev/shm/slab-<pid> up to date (at most every
 * PUBLISH_MS from slow paths, and every PUBLISH_MS from a publisher thread
 * that blocks all signals, so that an idle program is shown as it is);
 * removed at exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "slab.h"
#include "slab_stats.h"

#define PUBLISH_MS  200
#define PUBLISH_MAX (NR_KMALLOC + 64)

unsigned long slab_libc_fallbacks;
unsigned long slab_foreign_frees __attribute__((aligned(64))); /* own line */

static char stats_path[256]; /* "" : stderr */
static int stats_on, stats_signo;
static struct slab_stats_file *pub;
static size_t pub_size;
static uint64_t pub_last_ms;
static int pub_busy;
static int publisher_on; /* a publisher thread runs in this process */
static void publisher_start(void);

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void cache_info(struct kmem_cache *s, struct slab_cache_info *ci,
		       int lock)
{
	unsigned long out, cpu;

	memset(ci, 0, sizeof(*ci));
	if (lock)
		slock_lock(&s->lock);
	memcpy(ci->name, s->name, sizeof(ci->name));
	ci->name[sizeof(ci->name) - 1] = 0;
	ci->object_size = s->size;
	ci->objs_per_slab = s->nobj;
	ci->pages_per_slab = s->npages;
	ci->flags = s->flags & SLAB_KMALLOC ? SLAB_INFO_KMALLOC :
					      SLAB_INFO_NAMED;
	ci->total_slabs = s->nr_slabs;
	ci->active_slabs = s->partial.nr + s->full.nr;
	ci->total_objs = (uint64_t)s->nr_slabs * s->nobj;
	ci->depot_objs = s->depot_nr;
	ci->refills = s->stats.refills;
	ci->drains = s->stats.drains;
	ci->slabs_new = s->stats.slabs_new;
	ci->slabs_freed = s->stats.slabs_freed;
	ci->alloc_fail = s->stats.alloc_fail;
	out = s->active;
	if (lock)
		slock_unlock(&s->lock);
	cpu = percpu_cached(s->slot);
	ci->cpu_cached = cpu;
	ci->active_objs = out > cpu ? out - cpu : 0;
}

static void global_info(struct slab_global_info *g, int lock)
{
	struct pageheap_stats ph;
	const char *why;

	memset(g, 0, sizeof(*g));
	if (lock)
		pageheap_get_stats(&ph);
	else
		pageheap_peek_stats(&ph);
	g->arena_reserved = slab_arena.size;
	g->arena_committed = ph.committed;
	g->arena_used = ph.frontier;
	/*
	 * Kept runs (freed, held by a thread for its next large malloc) are
	 * free resident memory to the reader, not live allocations. They
	 * leave ph.large_* only when freed, after leaving the kept counts,
	 * so the subtraction cannot wrap; clamp anyway for the racy peek.
	 */
	if (ph.kept_bytes > ph.large_bytes || ph.kept_nr > ph.large_nr)
		ph.kept_bytes = ph.kept_nr = 0;
	g->free_bytes = ph.free_bytes + ph.kept_bytes;
	g->dirty_bytes = ph.dirty_bytes + ph.kept_bytes;
	g->purged_bytes = ph.purged_bytes;
	g->dirty_limit = ph.dirty_limit;
	g->resident_est = ph.frontier - (ph.free_bytes - ph.dirty_bytes);
	g->large_nr = ph.large_nr - ph.kept_nr;
	g->large_bytes = ph.large_bytes - ph.kept_bytes;
	g->libc_fallbacks = __atomic_load_n(&slab_libc_fallbacks,
					    __ATOMIC_RELAXED);
	g->foreign_frees = __atomic_load_n(&slab_foreign_frees,
					   __ATOMIC_RELAXED);
	g->rseq_mode = (uint32_t)percpu_mode(&why);
	g->nr_cpus = slab_fast.ncpus;
	strncpy(g->rseq_why, why, sizeof(g->rseq_why) - 1);
	g->cpu_cache = slab_opt.cpu_cache;
	g->idle_drains = __atomic_load_n(&percpu_stat.idle_drains,
					 __ATOMIC_RELAXED);
	g->drained_objs = __atomic_load_n(&percpu_stat.drained_objs,
					  __ATOMIC_RELAXED);
	g->cap_steals = __atomic_load_n(&percpu_stat.steals, __ATOMIC_RELAXED);
	g->membarrier = percpu_membarrier();
}

struct collect {
	struct slab_cache_info *out;
	unsigned int max, n;
	uint64_t slab_bytes;
	int lock; /* in a slow section: take the cache locks */
};

static void collect_one(struct kmem_cache *s, void *arg)
{
	struct collect *c = arg;
	struct slab_cache_info ci;

	cache_info(s, &ci, c->lock);
	c->slab_bytes += ci.total_slabs * ci.pages_per_slab * PAGE_SIZE;
	if (c->n < c->max)
		c->out[c->n] = ci;
	c->n++;
}

unsigned int slab_stats_get(struct slab_global_info *g,
			    struct slab_cache_info *caches, unsigned int max)
{
	struct collect c = { .out = caches, .max = caches ? max : 0 };

	if (slab_state != SLAB_STATE_READY) {
		if (g)
			memset(g, 0, sizeof(*g));
		return 0;
	}
	/* Racy figures rather than none in a signal handler or fork child. */
	c.lock = !slab_tls.busy && slow_enter();
	caches_for_each(collect_one, &c, c.lock);
	if (g) {
		global_info(g, c.lock);
		g->slab_bytes = c.slab_bytes;
	}
	if (c.lock)
		slow_exit();
	return c.n;
}

/* ---- the table, line by line, into a sink that never allocates ---- */

struct sink {
	int fd;   /* >= 0: write(2) */
	FILE *f;  /* else stdio */
	int lock; /* take locks while reading (not in a signal) */
	int all;  /* include caches that never had a slab */
	uint64_t slab_bytes, active_bytes;
};

static void __printf(2, 3) sink_printf(struct sink *k, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	if (k->fd >= 0) {
		if (write(k->fd, buf, (size_t)n) < 0)
			k->fd = -2;
	} else if (k->f) {
		fwrite(buf, 1, (size_t)n, k->f);
	}
}

static void print_one(struct kmem_cache *s, void *arg)
{
	struct sink *k = arg;
	struct slab_cache_info ci;
	uint64_t space, used;

	cache_info(s, &ci, k->lock);
	if (!k->all && !ci.total_slabs && !ci.slabs_new)
		return;
	space = ci.total_slabs * ci.pages_per_slab * PAGE_SIZE;
	used = ci.active_objs * ci.object_size;
	k->slab_bytes += space;
	k->active_bytes += used;
	sink_printf(k,
		    "%-18s %9llu %7u %9lluK %6llu/%llu %9llu %4u %3llu %3llu%%\n",
		    ci.name, (unsigned long long)ci.active_objs, ci.object_size,
		    (unsigned long long)(space >> 10),
		    (unsigned long long)ci.total_slabs,
		    (unsigned long long)(ci.total_slabs - ci.active_slabs),
		    (unsigned long long)(ci.cpu_cached + ci.depot_objs),
		    ci.objs_per_slab, (unsigned long long)ci.pages_per_slab,
		    (unsigned long long)(space ? used * 100 / space : 0));
}

static void print_table(struct sink *k)
{
	struct slab_global_info g;

	sink_printf(k, "slab statistics, pid %d\n", (int)getpid());
	sink_printf(k, "%-18s %9s %7s %10s %8s %9s %4s %3s %4s\n", "Name",
		    "Objects", "Objsize", "Space", "Slabs/Em", "Cached", "O/S",
		    "Pgs", "%Ef");
	caches_for_each(print_one, k, k->lock);
	global_info(&g, k->lock);
	sink_printf(k,
		    "slabs %lluK, in use %lluK; large %llu (%lluK); "
		    "arena reserved %lluM, used %lluK, free %lluK (dirty %lluK), "
		    "returned %lluK, kept up to %lluK; libc fallbacks %llu, "
		    "frees of libc's blocks %llu\n",
		    (unsigned long long)(k->slab_bytes >> 10),
		    (unsigned long long)(k->active_bytes >> 10),
		    (unsigned long long)g.large_nr,
		    (unsigned long long)(g.large_bytes >> 10),
		    (unsigned long long)(g.arena_reserved >> 20),
		    (unsigned long long)(g.arena_used >> 10),
		    (unsigned long long)(g.free_bytes >> 10),
		    (unsigned long long)(g.dirty_bytes >> 10),
		    (unsigned long long)(g.purged_bytes >> 10),
		    (unsigned long long)(g.dirty_limit >> 10),
		    (unsigned long long)g.libc_fallbacks,
		    (unsigned long long)g.foreign_frees);
	if (!g.arena_used)
		sink_printf(k, "%s\n", SLAB_NEVER_SERVED);
	sink_printf(k, "per-CPU layer: %s (%s), %u regions\n",
		    g.rseq_mode == SLAB_RSEQ_CPU_ID ? "rseq, cpu_id" :
		    g.rseq_mode == SLAB_RSEQ_MM_CID ? "rseq, mm_cid" :
		    g.rseq_mode == SLAB_RSEQ_FAKE   ? "rseq, fake area" :
						      "per-thread caches",
		    g.rseq_why, g.nr_cpus);
	sink_printf(k,
		    "per-CPU caches: at most %lluK each; idle ones given back: %llu (%llu objects)%s; capacities moved: %llu\n",
		    (unsigned long long)(g.cpu_cache >> 10),
		    (unsigned long long)g.idle_drains,
		    (unsigned long long)g.drained_objs,
		    g.membarrier < 0 ? ", not possible here (no membarrier)" :
				       "",
		    (unsigned long long)g.cap_steals);
}

void slab_stats_print(FILE *f)
{
	struct sink k = { .fd = -1, .f = f };

	if (slab_state != SLAB_STATE_READY) {
		fprintf(f, "slab: allocator not running\n");
		return;
	}
	/*
	 * No lock while writing to @f: a thread that holds f's lock may
	 * wait for one of ours (kmem_cache_create() inside flockfile()),
	 * and I/O may block for long. The figures are read racily, as in
	 * the signal dump.
	 */
	k.lock = 0;
	print_table(&k);
}

static void dump_fd(int fd, int lock)
{
	struct sink k = { .fd = fd, .lock = lock };

	print_table(&k);
}

/* Dumps go to stderr or are appended to SLAB_STATS's file. */
static void dump(void)
{
	int fd = STDERR_FILENO;

	if (stats_path[0]) {
		fd = open(stats_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			  0644);
		if (fd < 0) {
			slab_warn("SLAB_STATS: cannot open %s: %s", stats_path,
				  strerror(errno));
			return;
		}
	}
	dump_fd(fd, 0); /* no lock across write(2): see slab_stats_print() */
	if (fd != STDERR_FILENO)
		close(fd);
}

static void stats_signal(int sig)
{
	int saved = errno;

	(void)sig;
	if (slab_state == SLAB_STATE_READY)
		dump();
	errno = saved;
}

/* ---- the published file ---- */

static uint64_t proc_start_time(void)
{
	char buf[1024], *p;
	unsigned long long v = 0;
	int fd, field;
	long n;

	fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* Field 3 follows ") "; start time is field 22. */
	for (field = 2; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	while (*p >= '0' && *p <= '9')
		v = v * 10 + (unsigned long long)(*p++ - '0');
	return v;
}

static int publish_open(void)
{
	char path[64];
	int fd;
	void *m;

	snprintf(path, sizeof(path), SLAB_STATS_PATH_FMT, (int)getpid());
	pub_size = sizeof(struct slab_stats_file) +
		   PUBLISH_MAX * sizeof(struct slab_cache_info);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)pub_size)) {
		slab_warn("cannot create %s (%s): statistics not published",
			  path, strerror(errno));
		if (fd >= 0)
			close(fd);
		slab_opt.publish = 0;
		return -1;
	}
	m = mmap(NULL, pub_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		unlink(path);
		slab_opt.publish = 0;
		return -1;
	}
	pub = m;
	pub->magic = SLAB_STATS_MAGIC;
	pub->version = SLAB_STATS_VERSION;
	pub->header_size = sizeof(struct slab_stats_file);
	pub->cache_size = sizeof(struct slab_cache_info);
	pub->max_caches = PUBLISH_MAX;
	pub->pid = (int32_t)getpid();
	pub->start_time = proc_start_time();
	return 0;
}

void stats_publish(int force)
{
	struct collect c;
	uint64_t now = realtime_ms();
	int child_first = 0;

	if (!force && now - pub_last_ms < PUBLISH_MS)
		return;
	if (__atomic_exchange_n(&pub_busy, 1, __ATOMIC_ACQUIRE))
		return;
	if (slab_tls.busy || slab_state != SLAB_STATE_READY)
		goto out;
	if (!slow_enter())
		goto out;
	if (!pub && publish_open()) {
		slow_exit();
		goto out;
	}
	child_first = !__atomic_load_n(&publisher_on, __ATOMIC_ACQUIRE);
	pub_last_ms = now;
	__atomic_store_n(&pub->seq, pub->seq + 1, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	c = (struct collect){ .out = pub->caches, .max = PUBLISH_MAX };
	caches_for_each(collect_one, &c, 1);
	global_info(&pub->global, 1);
	pub->global.slab_bytes = c.slab_bytes;
	pub->nr_caches = c.n < PUBLISH_MAX ? c.n : PUBLISH_MAX;
	pub->updated_ms = now;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&pub->seq, pub->seq + 1, __ATOMIC_RELEASE);
	slow_exit();
out:
	__atomic_store_n(&pub_busy, 0, __ATOMIC_RELEASE);
	/*
	 * A fork child's first publication, outside every lock of ours (it
	 * may be inside a slow section: a fork elsewhere in the child then
	 * waits for this pthread_create(), which waits for nothing of ours).
	 */
	if (child_first && !slab_tls.busy)
		publisher_start();
}

/* ---- start-up, exit, fork ---- */

static int parse_signal(const char *v)
{
	static const struct {
		const char *name;
		int sig;
	} sigs[] = { { "USR1", SIGUSR1 },   { "USR2", SIGUSR2 },
		     { "HUP", SIGHUP },     { "PWR", SIGPWR },
		     { "WINCH", SIGWINCH }, { "URG", SIGURG } };
	unsigned int i;
	char *end;
	long n;

	if (!strncmp(v, "SIG", 3))
		v += 3;
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (!strcmp(v, sigs[i].name))
			return sigs[i].sig;
	n = strtol(v, &end, 10);
	if (*v && !*end && n > 0 && n < 65)
		return (int)n;
	return -1;
}

void stats_init(void)
{
	const char *s = getenv("SLAB_STATS"), *e;
	char tok[256];
	size_t len;
	int sig;

	while (s && *s) {
		e = strchr(s, ',');
		len = e ? (size_t)(e - s) : strlen(s);
		if (len >= sizeof(tok))
			len = sizeof(tok) - 1;
		memcpy(tok, s, len);
		tok[len] = 0;
		s = e ? e + 1 : NULL;
		if (!strncmp(tok, "signal=", 7)) {
			sig = parse_signal(tok + 7);
			if (sig < 0)
				slab_warn("SLAB_STATS: unknown signal '%s' ignored",
					  tok + 7);
			else
				stats_signo = sig;
		} else if (!strcmp(tok, "1") || !strcmp(tok, "stderr") ||
			   !strcmp(tok, "yes")) {
			stats_on = 1;
			stats_path[0] = 0;
		} else if (tok[0] == '/' || tok[0] == '.') {
			int fd = open(tok,
				      O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				      0644);

			if (fd < 0) {
				slab_warn("SLAB_STATS: cannot create %s: %s",
					  tok, strerror(errno));
				continue;
			}
			close(fd);
			stats_on = 1;
			memcpy(stats_path, tok, len + 1);
		} else if (strcmp(tok, "0") && tok[0]) {
			slab_warn("SLAB_STATS: '%s' ignored (expected stderr, 1, a path starting with / or ., or signal=SIG)",
				  tok);
		}
	}
	if (stats_signo && !stats_on)
		stats_on = 2; /* signal only: no dump at exit */
	if (stats_signo) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = stats_signal;
		sa.sa_flags = SA_RESTART;
		sigemptyset(&sa.sa_mask);
		if (sigaction(stats_signo, &sa, NULL))
			slab_warn("SLAB_STATS: cannot catch signal %d",
				  stats_signo);
	}
}

/* After start-up completes (the publish path takes locks). */
/*
 * The publisher: with SLAB_OPTIONS=publish a thread of ours refreshes the
 * file every PUBLISH_MS, so that slabinfo -p shows a program that went
 * idle (a server waiting for requests) as it is, not as it was at its
 * last slow path. It blocks every signal (it never runs the program's
 * handlers) and only sleeps and publishes. A fork child, which has no
 * such thread, starts its own at its first publication.
 */

static void *publisher(void *arg)
{
	struct timespec ts = { 0, PUBLISH_MS * 1000000L };

	(void)arg;
	for (;;) {
		nanosleep(&ts, NULL);
		percpu_scan_idle();
		stats_publish(1);
	}
	return NULL;
}

static void publisher_start(void)
{
	pthread_attr_t a;
	sigset_t all, old;
	pthread_t t;
	int e;

	if (__atomic_exchange_n(&publisher_on, 1, __ATOMIC_ACQ_REL))
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, 128 << 10);
	e = pthread_create(&t, &a, publisher, NULL);
	pthread_attr_destroy(&a);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e)
		slab_warn("SLAB_OPTIONS=publish: cannot start the publisher thread (%s): the file is refreshed from slow paths only",
			  strerror(e));
}

void stats_started(void)
{
	if (slab_opt.publish) {
		stats_publish(1);
		publisher_start();
	}
}

__attribute__((destructor)) static void stats_exit(void)
{
	char path[64];

	if (slab_state != SLAB_STATE_READY)
		return;
	if (stats_on == 1)
		dump();
	if (pub) {
		snprintf(path, sizeof(path), SLAB_STATS_PATH_FMT,
			 (int)pub->pid);
		if (pub->pid == (int32_t)getpid())
			unlink(path);
	}
}

/* The child must not write its parent's file: it publishes its own. */
void stats_fork_child(void)
{
	if (pub) {
		munmap(pub, pub_size);
		pub = NULL;
	}
	/*
	 * Not before PUBLISH_MS: a child that calls exec() at once (no
	 * destructor runs then) leaves no file behind.
	 */
	pub_last_ms = realtime_ms();
	pub_busy = 0;
	publisher_on = 0; /* the parent's thread is not in the child */
}
