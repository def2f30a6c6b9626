// SPDX-License-Identifier: MIT
/*
 * counters.c - the allocator's statistics add up after known workloads.
 *
 * One process, no test framework: every check prints a line on failure,
 * the exit status says whether all held. Figures come from
 * slab_stats_get() before and after each workload, so objects that the C
 * library allocated for itself do not matter: only the difference is
 * checked, and nothing allocates between the two measurements.
 *
 *   kmalloc   N objects of one class raise its active_objs by exactly N,
 *             freeing them brings it back
 *   threads   objects allocated by a thread that has exited still count
 *   named     a kmem_cache_create() cache: listed, flagged, counted,
 *             gone after kmem_cache_destroy()
 *   large     allocations above 256 KiB in large_nr and large_bytes
 *   totals    slab_bytes is the sum over the caches; every cache's
 *             figures are consistent
 *   mode      the rseq mode matches slab_rseq_mode() (and SLAB_OPTIONS)
 *   print     slab_stats_print() writes the table
 *   dumps     SLAB_STATS=PATH writes the table at exit; SLAB_STATS=stderr,
 *             signal=USR2 on the signal and at exit; signal=USR2 alone
 *             only on the signal (child processes of this program)
 *
 * Exit status: 0 all checks passed, 1 a check failed, 3 only checks that
 * a known allocator bug breaks failed (reported as TODO by run.sh).
 *
 * usage: counters             run the checks
 *        counters child N     (internal) keep N objects, raise SIGUSR2 if
 *                             SLAB_STATS asks for it, write "MARK", exit
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slab.h"
#include "slab_stats.h"

#define MAX_CACHES 512
#define OBJ_SIZE   200 /* kmalloc-208 */
#define OBJ_NR     1000
#define THREAD_NR  300
#define NAMED_SIZE 72
#define NAMED_NR   50
#define CHILD_NR   777
#define PAGE       4096ULL
#define DUMP_SLACK 64 /* objects of the class the C library may hold */
#define KNOWN_BUG_2 \
	"per-thread caches (rseq=off) are not counted in cpu_cached, so active_objs includes them"

static struct slab_global_info g0, g1;
static struct slab_cache_info c0[MAX_CACHES], c1[MAX_CACHES];
static unsigned int n0, n1;
static int failed, known_failed, checks;
static void *objs[OBJ_NR];
static enum slab_rseq_mode mode;

#define CHECK(cond, ...) check(!!(cond), 0, __LINE__, #cond, __VA_ARGS__)
/* A check that a known allocator bug breaks in rseq=off mode. */
#define CHECK_BUG2(cond, ...)                                                 \
	check(!!(cond), mode == SLAB_RSEQ_OFF ? KNOWN_BUG_2 : NULL, __LINE__, \
	      #cond, __VA_ARGS__)

static void __attribute__((format(printf, 5, 6)))
check(int ok, const char *bug, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	checks++;
	if (ok)
		return;
	fprintf(stderr, "counters.c:%d: check failed: %s\n  ", line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (bug) {
		fprintf(stderr, "  (known allocator bug: %s)\n", bug);
		known_failed++;
	} else {
		failed++;
	}
}

static void die(const char *what)
{
	fprintf(stderr, "counters: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void snap0(void)
{
	n0 = slab_stats_get(&g0, c0, MAX_CACHES);
}

static void snap1(void)
{
	n1 = slab_stats_get(&g1, c1, MAX_CACHES);
}

static const struct slab_cache_info *find(const struct slab_cache_info *c,
					  unsigned int n, const char *name)
{
	unsigned int i;

	for (i = 0; i < n && i < MAX_CACHES; i++)
		if (!strcmp(c[i].name, name))
			return &c[i];
	return NULL;
}

/* The kmalloc class that serves @size: the smallest one that fits. */
static const char *class_of(size_t size)
{
	static char name[SLAB_STATS_NAME_LEN];
	unsigned int i, best = ~0u;

	for (i = 0; i < n0 && i < MAX_CACHES; i++)
		if ((c0[i].flags & SLAB_INFO_KMALLOC) &&
		    c0[i].object_size >= size &&
		    (best == ~0u || c0[i].object_size < c0[best].object_size))
			best = i;
	if (best == ~0u) {
		fprintf(stderr, "counters: no kmalloc class for %zu bytes\n",
			size);
		exit(1);
	}
	memcpy(name, c0[best].name, sizeof(name));
	return name;
}

static long long active_delta(const char *name)
{
	const struct slab_cache_info *a = find(c0, n0, name);
	const struct slab_cache_info *b = find(c1, n1, name);

	if (!a || !b) {
		fprintf(stderr, "counters: cache %s missing\n", name);
		exit(1);
	}
	return (long long)b->active_objs - (long long)a->active_objs;
}

static void test_kmalloc(void)
{
	const char *cls;
	long long d;
	int i;

	snap0();
	cls = class_of(OBJ_SIZE);
	snap0();
	for (i = 0; i < OBJ_NR; i++)
		if (!(objs[i] = malloc(OBJ_SIZE)))
			die("malloc");
	snap1();
	d = active_delta(cls);
	CHECK_BUG2(d == OBJ_NR,
		   "%d mallocs of %d bytes: %s active_objs rose by %lld",
		   OBJ_NR, OBJ_SIZE, cls, d);
	CHECK(g1.slab_bytes >= g0.slab_bytes,
	      "slab_bytes fell from %llu to %llu while allocating",
	      (unsigned long long)g0.slab_bytes,
	      (unsigned long long)g1.slab_bytes);

	snap0();
	for (i = 0; i < OBJ_NR; i++)
		free(objs[i]);
	snap1();
	d = active_delta(cls);
	CHECK_BUG2(d == -OBJ_NR, "%d frees: %s active_objs changed by %lld",
		   OBJ_NR, cls, d);
}

static void *thread_alloc(void *arg)
{
	void **v = arg;
	int i;

	for (i = 0; i < THREAD_NR; i++)
		if (!(v[i] = malloc(OBJ_SIZE)))
			die("malloc");
	return NULL;
}

static void test_threads(void)
{
	const char *cls = class_of(OBJ_SIZE);
	pthread_t t;
	long long d;
	int i;

	/* The thread's own start-up (stack, TLS) must not be measured. */
	snap0();
	errno = pthread_create(&t, NULL, thread_alloc, objs);
	if (errno)
		die("pthread_create");
	pthread_join(t, NULL);
	snap1();
	d = active_delta(cls);
	CHECK(d == THREAD_NR,
	      "a thread that exited kept %d objects: %s active_objs rose by %lld",
	      THREAD_NR, cls, d);
	snap0();
	for (i = 0; i < THREAD_NR; i++)
		free(objs[i]);
	snap1();
	d = active_delta(cls);
	CHECK_BUG2(d == -THREAD_NR,
		   "freeing another thread's %d objects: %s active_objs changed by %lld",
		   THREAD_NR, cls, d);
}

static void test_named(void)
{
	const struct slab_cache_info *c;
	struct kmem_cache *s;
	int i;

	s = kmem_cache_create("counters-obj", NAMED_SIZE, 0, 0, NULL);
	if (!s)
		die("kmem_cache_create");
	for (i = 0; i < NAMED_NR; i++)
		if (!(objs[i] = kmem_cache_alloc(s)))
			die("kmem_cache_alloc");
	snap1();
	c = find(c1, n1, "counters-obj");
	CHECK(c, "kmem_cache_create(\"counters-obj\") is not listed");
	if (c) {
		CHECK(c->flags == SLAB_INFO_NAMED, "counters-obj flags 0x%x",
		      c->flags);
		CHECK(c->object_size == kmem_cache_size(s) &&
			      c->object_size >= NAMED_SIZE,
		      "counters-obj object_size %u, kmem_cache_size %zu",
		      c->object_size, kmem_cache_size(s));
		CHECK(c->active_objs == NAMED_NR,
		      "counters-obj: %d objects allocated, active_objs %llu",
		      NAMED_NR, (unsigned long long)c->active_objs);
		CHECK(c->cpu_cached == 0,
		      "counters-obj (no per-CPU layer): cpu_cached %llu",
		      (unsigned long long)c->cpu_cached);
		CHECK(c->total_slabs >= 1 && c->slabs_new >= c->total_slabs,
		      "counters-obj: total_slabs %llu, slabs_new %llu",
		      (unsigned long long)c->total_slabs,
		      (unsigned long long)c->slabs_new);
	}
	for (i = 0; i < NAMED_NR; i++)
		kmem_cache_free(s, objs[i]);
	snap1();
	c = find(c1, n1, "counters-obj");
	CHECK(c && c->active_objs == 0,
	      "counters-obj: all objects freed, active_objs %llu",
	      c ? (unsigned long long)c->active_objs : 0ULL);
	CHECK(!kmem_cache_destroy(s), "kmem_cache_destroy: %s",
	      strerror(errno));
	snap1();
	CHECK(!find(c1, n1, "counters-obj"),
	      "counters-obj still listed after kmem_cache_destroy()");
}

static void test_large(void)
{
	static const size_t sizes[] = { (1 << 20) + 100, 300 << 10,
					(5 << 20) + 1 };
	void *p[3];
	unsigned long long bytes = 0;
	unsigned int i;

	snap0();
	for (i = 0; i < 3; i++) {
		p[i] = malloc(sizes[i]);
		if (!p[i])
			die("malloc");
		bytes += (sizes[i] + PAGE - 1) / PAGE * PAGE;
	}
	snap1();
	CHECK(g1.large_nr - g0.large_nr == 3,
	      "3 large allocations: large_nr went from %llu to %llu",
	      (unsigned long long)g0.large_nr, (unsigned long long)g1.large_nr);
	CHECK(g1.large_bytes - g0.large_bytes == bytes,
	      "3 large allocations of %llu bytes (page-rounded): large_bytes went from %llu to %llu",
	      bytes, (unsigned long long)g0.large_bytes,
	      (unsigned long long)g1.large_bytes);
	for (i = 0; i < 3; i++)
		free(p[i]);
	snap1();
	CHECK(g1.large_nr == g0.large_nr && g1.large_bytes == g0.large_bytes,
	      "after freeing them: large_nr %llu (was %llu), large_bytes %llu (was %llu)",
	      (unsigned long long)g1.large_nr, (unsigned long long)g0.large_nr,
	      (unsigned long long)g1.large_bytes,
	      (unsigned long long)g0.large_bytes);
}

static void test_totals(void)
{
	unsigned long long sum = 0, out;
	unsigned int i, kmalloc = 0, n;
	const struct slab_cache_info *c;

	snap1();
	n = slab_stats_get(NULL, NULL, 0);
	CHECK(n == n1, "slab_stats_get(NULL, NULL, 0) = %u, with buffers %u", n,
	      n1);
	CHECK(n1 <= MAX_CACHES, "%u caches", n1);
	for (i = 0; i < n1 && i < MAX_CACHES; i++) {
		c = &c1[i];
		sum += c->total_slabs * c->pages_per_slab * PAGE;
		kmalloc += !!(c->flags & SLAB_INFO_KMALLOC);
		out = c->active_objs + c->cpu_cached + c->depot_objs;
		CHECK(c->total_objs == c->total_slabs * c->objs_per_slab,
		      "%s: total_objs %llu, total_slabs %llu * objs_per_slab %u",
		      c->name, (unsigned long long)c->total_objs,
		      (unsigned long long)c->total_slabs, c->objs_per_slab);
		CHECK(out <= c->total_objs,
		      "%s: active %llu + cpu_cached %llu + depot %llu > total_objs %llu",
		      c->name, (unsigned long long)c->active_objs,
		      (unsigned long long)c->cpu_cached,
		      (unsigned long long)c->depot_objs,
		      (unsigned long long)c->total_objs);
		CHECK(c->active_slabs <= c->total_slabs,
		      "%s: active_slabs %llu > total_slabs %llu", c->name,
		      (unsigned long long)c->active_slabs,
		      (unsigned long long)c->total_slabs);
		CHECK(c->slabs_new - c->slabs_freed == c->total_slabs,
		      "%s: slabs_new %llu - slabs_freed %llu != total_slabs %llu",
		      c->name, (unsigned long long)c->slabs_new,
		      (unsigned long long)c->slabs_freed,
		      (unsigned long long)c->total_slabs);
		CHECK(c->objs_per_slab * (unsigned long long)c->object_size <=
			      c->pages_per_slab * PAGE,
		      "%s: %u objects of %u bytes do not fit %u pages", c->name,
		      c->objs_per_slab, c->object_size, c->pages_per_slab);
	}
	CHECK(sum == g1.slab_bytes,
	      "sum of the caches' slab memory %llu != slab_bytes %llu", sum,
	      (unsigned long long)g1.slab_bytes);
	CHECK(kmalloc == 96, "%u kmalloc caches", kmalloc);
	CHECK(g1.arena_used <= g1.arena_committed &&
		      g1.arena_committed <= g1.arena_reserved,
	      "arena used %llu, committed %llu, reserved %llu",
	      (unsigned long long)g1.arena_used,
	      (unsigned long long)g1.arena_committed,
	      (unsigned long long)g1.arena_reserved);
	CHECK(g1.slab_bytes + g1.large_bytes + g1.free_bytes == g1.arena_used,
	      "slab %llu + large %llu + free %llu != arena used %llu",
	      (unsigned long long)g1.slab_bytes,
	      (unsigned long long)g1.large_bytes,
	      (unsigned long long)g1.free_bytes,
	      (unsigned long long)g1.arena_used);
	CHECK(g1.dirty_bytes <= g1.free_bytes, "dirty %llu > free %llu",
	      (unsigned long long)g1.dirty_bytes,
	      (unsigned long long)g1.free_bytes);
}

static void test_mode(void)
{
	const char *why = NULL, *opts = getenv("SLAB_OPTIONS");

	snap1();
	mode = slab_rseq_mode(&why);
	CHECK(g1.rseq_mode == (uint32_t)mode,
	      "rseq_mode %u, slab_rseq_mode() %d", g1.rseq_mode, (int)mode);
	CHECK(why && !strncmp(g1.rseq_why, why, sizeof(g1.rseq_why) - 1),
	      "rseq_why '%.96s', slab_rseq_mode() says '%s'", g1.rseq_why,
	      why ? why : "(null)");
	if (opts && strstr(opts, "rseq=off"))
		CHECK(mode == SLAB_RSEQ_OFF, "SLAB_OPTIONS=%s but rseq mode %d",
		      opts, (int)mode);
	CHECK(g1.nr_cpus > 0 || mode == SLAB_RSEQ_OFF, "nr_cpus %u",
	      g1.nr_cpus);
}

/* Read all of @path (or die). */
static char *slurp(const char *path)
{
	static char buf[1 << 20];
	ssize_t n, len = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		die(path);
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - (size_t)len)) > 0)
		len += n;
	close(fd);
	buf[len] = 0;
	return buf;
}

/* Objects of @name in the table starting at @text (-1: no line). */
static long long table_objects(const char *text, const char *name)
{
	size_t len = strlen(name);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, name, len) && p[len] == ' ')
			return strtoll(p + len, NULL, 10);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

static int count_str(const char *text, const char *s)
{
	int n = 0;

	while ((text = strstr(text, s))) {
		n++;
		text++;
	}
	return n;
}

static void test_print(void)
{
	char path[] = "/tmp/slab-counters-XXXXXX", *text;
	const char *cls = class_of(OBJ_SIZE);
	long long n;
	FILE *f;
	int fd, i;

	fd = mkstemp(path);
	if (fd < 0 || !(f = fdopen(fd, "w")))
		die("mkstemp");
	for (i = 0; i < OBJ_NR; i++)
		if (!(objs[i] = malloc(OBJ_SIZE)))
			die("malloc");
	slab_stats_print(f);
	if (fclose(f))
		die(path);
	text = slurp(path);
	unlink(path);
	n = table_objects(text, cls);
	CHECK(strstr(text, "Name") && strstr(text, "Objects"),
	      "slab_stats_print: no header in\n%s", text);
	CHECK_BUG2(n >= OBJ_NR && n <= OBJ_NR + DUMP_SLACK,
		   "slab_stats_print: %d objects of %s held, line says %lld",
		   OBJ_NR, cls, n);
	for (i = 0; i < OBJ_NR; i++)
		free(objs[i]);
}

/* Run "counters child" with SLAB_STATS=@stats, stderr to @err. */
static int run_child(const char *self, const char *stats, const char *err)
{
	char nr[16];
	pid_t pid;
	int st, fd;

	snprintf(nr, sizeof(nr), "%d", CHILD_NR);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(126);
		setenv("SLAB_STATS", stats, 1);
		execl(self, self, "child", nr, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void check_table(const char *what, const char *text, const char *cls)
{
	long long n = table_objects(text, cls);

	CHECK(strstr(text, "slab statistics, pid") &&
		      strstr(text, "per-CPU layer:"),
	      "%s: not a statistics table:\n%s", what, text);
	CHECK_BUG2(n >= CHILD_NR && n <= CHILD_NR + DUMP_SLACK,
		   "%s: the child held %d objects of %s, its line says %lld",
		   what, CHILD_NR, cls, n);
}

static void test_dumps(const char *self)
{
	char dump[] = "/tmp/slab-counters-XXXXXX", err[64], *text, *mark;
	const char *cls = class_of(OBJ_SIZE);
	int fd, rc;

	fd = mkstemp(dump);
	if (fd < 0)
		die("mkstemp");
	close(fd);
	snprintf(err, sizeof(err), "%s.err", dump);

	/* SLAB_STATS=PATH: the table at exit, in PATH. */
	rc = run_child(self, dump, err);
	CHECK(rc == 0, "child with SLAB_STATS=%s exited with %d", dump, rc);
	text = slurp(dump);
	check_table("SLAB_STATS=PATH", text, cls);
	CHECK(count_str(text, "slab statistics, pid") == 1,
	      "SLAB_STATS=PATH: %d tables, expected 1",
	      count_str(text, "slab statistics, pid"));

	/* stderr,signal=USR2: on the signal, then at exit. */
	rc = run_child(self, "stderr,signal=USR2", err);
	CHECK(rc == 0,
	      "child with SLAB_STATS=stderr,signal=USR2 exited with %d", rc);
	text = slurp(err);
	mark = strstr(text, "MARK\n");
	CHECK(mark, "SLAB_STATS=stderr,signal=USR2: no MARK in\n%s", text);
	if (mark) {
		*mark = 0;
		check_table("SLAB_STATS=stderr,signal=USR2 (signal)", text,
			    cls);
		check_table("SLAB_STATS=stderr,signal=USR2 (exit)", mark + 5,
			    cls);
	}

	/* signal=USR2 alone: on the signal only. */
	rc = run_child(self, "signal=USR2", err);
	CHECK(rc == 0, "child with SLAB_STATS=signal=USR2 exited with %d", rc);
	text = slurp(err);
	mark = strstr(text, "MARK\n");
	CHECK(mark && !strstr(mark, "slab statistics, pid"),
	      "SLAB_STATS=signal=USR2: a table after MARK (at exit):\n%s",
	      text);
	if (mark) {
		*mark = 0;
		check_table("SLAB_STATS=signal=USR2", text, cls);
	}
	unlink(dump);
	unlink(err);
}

static int child(int nr)
{
	const char *stats = getenv("SLAB_STATS");
	int i;

	for (i = 0; i < nr && i < OBJ_NR; i++)
		if (!(objs[i] = malloc(OBJ_SIZE)))
			return 1;
	if (stats && strstr(stats, "signal=USR2"))
		raise(SIGUSR2);
	if (write(STDERR_FILENO, "MARK\n", 5) != 5)
		return 1;
	return 0; /* exit() with the objects held: the dump shows them */
}

int main(int argc, char **argv)
{
	void *volatile warmup;

	if (argc == 3 && !strcmp(argv[1], "child"))
		return child(atoi(argv[2]));

	/*
	 * Start the allocator (through a volatile pointer: the compiler may
	 * drop a malloc/free pair), and let stdio allocate its buffers now.
	 */
	warmup = malloc(1);
	free(warmup);
	printf("counters: SLAB_OPTIONS=%s\n",
	       getenv("SLAB_OPTIONS") ? getenv("SLAB_OPTIONS") : "");
	fflush(stdout);
	test_mode();
	test_kmalloc();
	test_threads();
	test_named();
	test_large();
	test_totals();
	test_print();
	test_dumps("/proc/self/exe");
	test_totals();

	printf("counters: %d checks, %d failed, %d failed by a known allocator bug (rseq mode %d)\n",
	       checks, failed, known_failed, (int)mode);
	if (failed)
		return 1;
	return known_failed ? 3 : 0;
}
