/* SPDX-License-Identifier: MIT */
/*
 * stress.h - helpers shared by the slab stress selftests.
 *
 * Every program is a single translation unit that includes this header.
 * Built with -DWITH_SLAB (the runner's default) the programs link against
 * slab and use <slab.h>; without it they build against plain libc, which
 * is how the tests themselves are validated: slab-only checks are then
 * skipped or relaxed.
 *
 * Exit codes follow kselftest: 0 pass, 1 fail, 4 skip.
 */
#ifndef SELFTESTS_STRESS_H
#define SELFTESTS_STRESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

#define __maybe_unused __attribute__((unused))
#define ARRAY_SIZE(a)  (sizeof(a) / sizeof((a)[0]))

#ifdef WITH_SLAB
#include <slab.h>
#if defined(__has_include)
#if __has_include(<slab_stats.h>)
#include <slab_stats.h>
#define HAVE_SLAB_STATS 1
#endif
#endif
#else
/* Plain libc build: stand-ins so that the programs still compile. */
#define slab_owns(p) ((void)(p), -1)
#define slab_validate() \
	do {            \
	} while (0)
#define free_sized(p, n)            ((void)(n), free(p))
#define free_aligned_sized(p, a, n) ((void)(a), (void)(n), free(p))
#endif

#if !defined(__GLIBC__) && defined(WITH_SLAB)
/* musl does not declare pvalloc; slab provides __wrap_pvalloc. */
void *pvalloc(size_t size);
/* Nor malloc_trim; slab provides __wrap_malloc_trim. */
int malloc_trim(size_t pad);
#elif !defined(__GLIBC__)
/* Plain musl has no pvalloc at all. */
static inline void *pvalloc(size_t size)
{
	size_t pg = sysconf(_SC_PAGESIZE);

	if (size > SIZE_MAX - pg) {
		errno = ENOMEM;
		return NULL;
	}
	return memalign(pg, size ? (size + pg - 1) & ~(pg - 1) : pg);
}
#endif

/* The tests use pointers after failed or freeing reallocs on purpose. */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wuse-after-free"

/* Hide a pointer or value from the optimiser (calloc folding, DCE ...). */
static inline void escape(const void *p)
{
	__asm__ volatile("" : : "g"(p) : "memory");
}

static inline size_t opaque(size_t v)
{
	__asm__ volatile("" : "+r"(v));
	return v;
}

/* ------------------------------------------------------------------ */
/* Messages. Built on the stack and written with write(2): no malloc. */

static void __maybe_unused vmsg(int fd, const char *pfx, const char *fmt,
				va_list ap)
{
	char buf[1024];
	int n = 0;

	if (pfx)
		n = snprintf(buf, sizeof(buf), "%s", pfx);
	n += vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	while (n > 0) {
		ssize_t w = write(fd, buf, n);

		if (w <= 0)
			break;
		n -= w;
	}
}

static void __maybe_unused info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(STDOUT_FILENO, "info: ", fmt, ap);
	va_end(ap);
}

static void __maybe_unused note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(STDOUT_FILENO, "note: ", fmt, ap);
	va_end(ap);
}

static void __maybe_unused __attribute__((noreturn, format(printf, 3, 4)))
fail_at(const char *file, int line, const char *fmt, ...)
{
	char pfx[128];
	va_list ap;

	snprintf(pfx, sizeof(pfx), "FAIL: %s:%d: ", file, line);
	va_start(ap, fmt);
	vmsg(STDERR_FILENO, pfx, fmt, ap);
	va_end(ap);
	_exit(KSFT_FAIL);
}

#define fail(...) fail_at(__FILE__, __LINE__, __VA_ARGS__)

/* Non-fatal check: count and report, the program fails at the end. */
static int nr_errors __maybe_unused;

#define check(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			char __pfx[160];                                     \
			snprintf(__pfx, sizeof(__pfx), "FAIL: %s:%d: (%s) ", \
				 __FILE__, __LINE__, #cond);                 \
			errmsg(__pfx, __VA_ARGS__);                          \
			__atomic_add_fetch(&nr_errors, 1, __ATOMIC_RELAXED); \
		}                                                            \
	} while (0)

static void __maybe_unused __attribute__((format(printf, 2, 3)))
errmsg(const char *pfx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(STDERR_FILENO, pfx, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Random numbers: xorshift64*, one state per thread. */

static inline uint64_t rnd_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static inline uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return n ? rnd_next(s) % n : 0;
}

static inline uint64_t rnd_seed(uint64_t salt)
{
	uint64_t s = 0x9e3779b97f4a7c15ULL * (salt + 1);
	const char *env = getenv("SELFTEST_SEED");

	if (env)
		s ^= strtoull(env, NULL, 0) * 0xbf58476d1ce4e5b9ULL;
	return s ? s : 1;
}

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* ------------------------------------------------------------------ */
/*
 * Content patterns. The pattern depends on the address and size at fill
 * time (the seed) and on the offset. Objects up to PAT_FULL bytes are
 * filled entirely; larger ones get their first and last 4 KiB plus a
 * 64-byte stripe every KiB, which keeps 8 MiB objects cheap while still
 * catching overlaps and metadata written anywhere page sized.
 */
#define PAT_FULL   (16u << 10)
#define PAT_EDGE   4096u
#define PAT_STRIDE 1024u
#define PAT_STRIPE 64u

static inline uint64_t pat_seed(const void *p, size_t size)
{
	return mix64((uintptr_t)p ^ ((uint64_t)size << 20) ^ 0x5eedULL);
}

static inline uint64_t pat_word(uint64_t seed, size_t off)
{
	return seed ^ ((off >> 3) * 0x9e3779b97f4a7c15ULL);
}

static inline uint8_t pat_byte(uint64_t seed, size_t off)
{
	return pat_word(seed, off & ~(size_t)7) >> ((off & 7) * 8);
}

/* Fill (fill != 0) or check [from, to); returns first bad offset or -1. */
static size_t __maybe_unused pat_span(unsigned char *p, size_t from, size_t to,
				      uint64_t seed, int fill)
{
	size_t o = from;

	while (o < to && (o & 7)) {
		if (fill)
			p[o] = pat_byte(seed, o);
		else if (p[o] != pat_byte(seed, o))
			return o;
		o++;
	}
	for (; o + 8 <= to; o += 8) {
		uint64_t *w = (uint64_t *)(p + o);

		if (fill)
			*w = pat_word(seed, o);
		else if (*w != pat_word(seed, o))
			break;
	}
	for (; o < to; o++) {
		if (fill)
			p[o] = pat_byte(seed, o);
		else if (p[o] != pat_byte(seed, o))
			return o;
	}
	return (size_t)-1;
}

/*
 * Walk the regions that a fill of @size bytes covers, clipped to @limit,
 * filling or checking them.
 */
static size_t __maybe_unused pat_walk(void *ptr, size_t size, size_t limit,
				      uint64_t seed, int fill)
{
	unsigned char *p = ptr;
	size_t bad, o, tail;

	if (limit > size)
		limit = size;
	if (size <= PAT_FULL)
		return pat_span(p, 0, limit, seed, fill);
	bad = pat_span(p, 0, limit < PAT_EDGE ? limit : PAT_EDGE, seed, fill);
	if (bad != (size_t)-1)
		return bad;
	tail = (size - PAT_EDGE) & ~(size_t)7;
	for (o = PAT_EDGE; o + PAT_STRIPE <= tail && o < limit;
	     o += PAT_STRIDE) {
		size_t end = o + PAT_STRIPE < limit ? o + PAT_STRIPE : limit;

		bad = pat_span(p, o, end, seed, fill);
		if (bad != (size_t)-1)
			return bad;
	}
	if (tail < limit)
		return pat_span(p, tail, limit, seed, fill);
	return (size_t)-1;
}

static inline void pat_fill(void *p, size_t size, uint64_t seed)
{
	pat_walk(p, size, size, seed, 1);
}

/* Check, reporting and failing on mismatch. */
#define pat_check(p, size, limit, seed, what)                              \
	do {                                                               \
		size_t __bad = pat_walk((p), (size), (limit), (seed), 0);  \
		if (__bad != (size_t)-1) {                                 \
			const unsigned char *__b = (const void *)(p);      \
			fail("%s: object %p size %zu corrupted at offset " \
			     "%zu: found 0x%02x expected 0x%02x",          \
			     (what), (void *)(p), (size_t)(size), __bad,   \
			     __b[__bad], pat_byte((seed), __bad));         \
		}                                                          \
	} while (0)

/* Every byte of the pattern regions must be zero (calloc). */
static size_t __maybe_unused zero_walk(const void *ptr, size_t size)
{
	const unsigned char *p = ptr;
	size_t o;

	if (size <= PAT_FULL * 4) {
		for (o = 0; o < size; o++)
			if (p[o])
				return o;
		return (size_t)-1;
	}
	for (o = 0; o < PAT_EDGE; o++)
		if (p[o])
			return o;
	for (o = PAT_EDGE; o < size; o += 509)
		if (p[o])
			return o;
	for (o = size - PAT_EDGE; o < size; o++)
		if (p[o])
			return o;
	return (size_t)-1;
}

/* ------------------------------------------------------------------ */
/* Time, memory, watchdog. */

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Resident and virtual size in KiB from /proc/self/statm. */
static int __maybe_unused read_statm(long *vsz_kb, long *rss_kb)
{
	char buf[256];
	long vsz, rss;
	ssize_t n;
	int fd;

	fd = open("/proc/self/statm", O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	if (sscanf(buf, "%ld %ld", &vsz, &rss) != 2)
		return -1;
	*vsz_kb = vsz * (sysconf(_SC_PAGESIZE) / 1024);
	*rss_kb = rss * (sysconf(_SC_PAGESIZE) / 1024);
	return 0;
}

static const char *watchdog_what __maybe_unused = "test";

static void __maybe_unused watchdog_fire(int sig)
{
	char buf[256];
	int n;

	(void)sig;
	n = snprintf(buf, sizeof(buf),
		     "FAIL: watchdog: %s did not finish in time "
		     "(deadlock or livelock?)\n",
		     watchdog_what);
	if (write(STDERR_FILENO, buf, n) < 0)
		_exit(3);
	_exit(KSFT_FAIL);
}

/* Fail the test if it is still running after @secs seconds. */
static void __maybe_unused watchdog(const char *what, unsigned int secs)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = watchdog_fire;
	sigaction(SIGALRM, &sa, NULL);
	watchdog_what = what;
	alarm(secs);
}

static inline int nr_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	return CPU_COUNT(&set);
}

static inline unsigned long arg_ul(int argc, char **argv, int i,
				   unsigned long def)
{
	if (argc > i && argv[i][0])
		return strtoul(argv[i], NULL, 0);
	return def;
}

static inline int ptr_aligned(const void *p, size_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
}

/*
 * Was @p handed out by slab? A healthy process never needs libc's malloc:
 * slab falls back to it only when it cannot serve a request.
 */
static inline int from_slab(const void *p)
{
#ifdef WITH_SLAB
	return slab_owns(p) == 1;
#else
	(void)p;
	return 1;
#endif
}

/* Free memory slab keeps resident on purpose (KiB), when it says. */
static inline long slab_dirty_kb(void)
{
#ifdef HAVE_SLAB_STATS
	struct slab_global_info g;

	memset(&g, 0, sizeof(g));
	slab_stats_get(&g, NULL, 0);
	return g.dirty_bytes >> 10;
#else
	return 0;
#endif
}

/* ------------------------------------------------------------------ */
/* rseq mode check. */

/* Does the kernel offer rseq to this process (not filtered, not valgrind)? */
static int __maybe_unused kernel_has_rseq(void)
{
#ifdef SYS_rseq
	long r = syscall(SYS_rseq, NULL, 0, 0, 0);

	/* Registered or not, a NULL area gives EINVAL when rseq exists. */
	return !(r == -1 && (errno == ENOSYS || errno == EPERM));
#else
	return 0;
#endif
}

static const char __maybe_unused *rseq_mode_name(int m)
{
#ifdef WITH_SLAB
	switch (m) {
	case SLAB_RSEQ_UNINIT:
		return "uninit";
	case SLAB_RSEQ_CPU_ID:
		return "cpu_id";
	case SLAB_RSEQ_MM_CID:
		return "mm_cid";
	case SLAB_RSEQ_FAKE:
		return "fake";
	case SLAB_RSEQ_OFF:
		return "off";
	}
#endif
	(void)m;
	return "?";
}

/*
 * Report slab's per-CPU mode and compare it with what the runner expects
 * (SLAB_SELFTEST_RSEQ=on|off). "on" means: rseq mode when the kernel has
 * rseq, the fallback when it has not. Call it after a first malloc.
 */
static void __maybe_unused check_rseq_mode(void)
{
#ifdef WITH_SLAB
	const char *why = NULL;
	const char *want = getenv("SLAB_SELFTEST_RSEQ");
	int has = kernel_has_rseq();
	void *p = malloc(opaque(24));
	int m;

	escape(p);
	free(p);
	m = slab_rseq_mode(&why);
	info("rseq mode %s (%s), kernel rseq %s", rseq_mode_name(m),
	     why ? why : "-", has ? "yes" : "no");
	if (m == SLAB_RSEQ_UNINIT)
		fail("slab_rseq_mode() is UNINIT after malloc()");
	if (!want)
		return;
	if (!strcmp(want, "off") && m != SLAB_RSEQ_OFF)
		fail("SLAB_OPTIONS=%s but rseq mode is %s",
		     getenv("SLAB_OPTIONS") ?: "", rseq_mode_name(m));
	if (!strcmp(want, "on") && has && m != SLAB_RSEQ_CPU_ID &&
	    m != SLAB_RSEQ_MM_CID)
		fail("kernel has rseq but mode is %s (%s)", rseq_mode_name(m),
		     why ? why : "no reason given");
	if (!strcmp(want, "on") && !has && m != SLAB_RSEQ_OFF)
		fail("kernel has no rseq but mode is %s", rseq_mode_name(m));
#endif
}

/* ------------------------------------------------------------------ */
/*
 * Run @fn(@arg) in a child (no core file, SIGABRT default, 20 s alarm)
 * with its stderr captured into @out (@cap bytes, NUL-terminated, the
 * trailing newline dropped). Returns the child's wait status.
 */
static int __maybe_unused run_captured(void (*fn)(void *), void *arg, char *out,
				       size_t cap)
{
	size_t len = 0;
	int pfd[2], st;
	pid_t pid;

	if (pipe(pfd))
		fail("pipe: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (pid == 0) {
		struct rlimit rl = { 0, 0 };

		setrlimit(RLIMIT_CORE, &rl);
		signal(SIGABRT, SIG_DFL);
		alarm(20);
		close(pfd[0]);
		dup2(pfd[1], STDERR_FILENO);
		close(pfd[1]);
		fn(arg);
		_exit(0);
	}
	close(pfd[1]);
	for (;;) {
		ssize_t n = read(pfd[0], out + len, cap - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
		if (len == cap - 1)
			len = cap / 2; /* keep reading, keep head */
	}
	out[len] = 0;
	close(pfd[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			fail("waitpid: %s", strerror(errno));
	while (len && out[len - 1] == '\n')
		out[--len] = 0;
	return st;
}

/*
 * Run @fn in a child with stderr captured and expect SIGABRT plus a
 * message containing "slab" (with slab; any fatal signal without it).
 * Returns 0 when it did, 1 when the child exited normally (@status_out
 * gets the exit code), -1 on any other outcome (reported).
 */
static int __maybe_unused expect_abort(const char *what, void (*fn)(void *),
				       void *arg, int *status_out)
{
	char out[4096];
	size_t len;
	int st = run_captured(fn, arg, out, sizeof(out));

	len = strlen(out);
	if (WIFEXITED(st)) {
		if (status_out)
			*status_out = WEXITSTATUS(st);
		if (len)
			info("%s: child exited %d, stderr: %s", what,
			     WEXITSTATUS(st), out);
		return 1;
	}
#ifdef WITH_SLAB
	if (WTERMSIG(st) == SIGABRT && strstr(out, "slab")) {
		info("%s: aborted as expected: %s", what, out);
		return 0;
	}
	errmsg("FAIL: ",
	       "%s: child killed by signal %d (%s), want SIGABRT "
	       "with a message containing \"slab\"; stderr: \"%s\"",
	       what, WTERMSIG(st), strsignal(WTERMSIG(st)), out);
	return -1;
#else
	info("%s: child killed by signal %d (%s): %s", what, WTERMSIG(st),
	     strsignal(WTERMSIG(st)), out);
	return 0;
#endif
}

#endif /* SELFTESTS_STRESS_H */
