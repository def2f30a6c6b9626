// SPDX-License-Identifier: MIT
/*
 * double_free - a double free of a small object must be caught.
 *
 *   double_free
 *
 * With the default options (no SLAB_OPTIONS=debug), free(p); free(p) of a
 * small object must abort with a message that says "double free" (and
 * names the pointer), not park p twice in a cache so that the next two
 * mallocs of that size hand out the same object to two owners: the start
 * of a use-after-free that nothing would ever report. glibc's tcache
 * aborts ("free(): double free detected in tcache 2") and musl's mallocng
 * crashes on its metadata checks; the kernel's SLUB catches the naive case
 * with FREELIST_HARDENED.
 *
 * Every case runs in a child with stderr captured:
 *   - free(p); free(p) for sizes 16, 32, 100, 1000, 5000, 40000; then two
 *     mallocs of that size, and "same pointer handed out twice" with exit
 *     1 when they return the same pointer;
 *   - free(p); free(q); free(p) (another object freed in between), then
 *     three mallocs;
 *   - the whole sequence in a second thread;
 *   - (slab only) p freed by the main thread, then again by a second
 *     thread: glibc's tcache only looks in the freeing thread's cache and
 *     misses it, so the plain build skips this case.
 * The child must die by SIGABRT and, with slab, its stderr must contain
 * "double free" and the pointer (as %p prints it). Without slab any fatal
 * signal is accepted (mallocng's checks stop with SIGSEGV on x86-64, not
 * SIGABRT: its a_crash() is a "hlt").
 */
#include "stress.h"

#include <sys/mman.h>

struct dcase {
	const char *name;
	void (*fn)(size_t);
	size_t size;
	int slab_only;
};

/* The doubly freed pointer, in memory shared with the parent. */
static void **victim;

static void same_twice(void *a, void *b, const char *what)
{
	if (a == b) {
		errmsg("FAIL: ", "%s: same pointer handed out twice: %p", what,
		       a);
		_exit(KSFT_FAIL);
	}
}

static void simple(size_t n)
{
	void *p = malloc(opaque(n)), *q, *r;

	escape(p);
	*victim = p;
	free(p);
	free(p);
	q = malloc(opaque(n));
	r = malloc(opaque(n));
	escape(q);
	escape(r);
	same_twice(q, r, "free(p); free(p)");
}

static void between(size_t n)
{
	void *p = malloc(opaque(n)), *q = malloc(opaque(n)), *a, *b, *c;

	escape(p);
	escape(q);
	*victim = p;
	free(p);
	free(q);
	free(p);
	a = malloc(opaque(n));
	b = malloc(opaque(n));
	c = malloc(opaque(n));
	escape(a);
	escape(b);
	escape(c);
	same_twice(a, b, "free(p); free(q); free(p)");
	same_twice(a, c, "free(p); free(q); free(p)");
	same_twice(b, c, "free(p); free(q); free(p)");
}

static size_t thr_size;

static void *simple_thread(void *arg)
{
	(void)arg;
	simple(thr_size);
	between(thr_size);
	return NULL;
}

static void in_thread(size_t n)
{
	pthread_t t;

	thr_size = n;
	if (pthread_create(&t, NULL, simple_thread, NULL))
		_exit(3);
	pthread_join(t, NULL);
}

static void *volatile cross_p, *volatile cross_q, *volatile cross_r;

static void *cross_free(void *arg)
{
	free(cross_p);
	cross_q = malloc(opaque(thr_size));
	cross_r = malloc(opaque(thr_size));
	escape(cross_q);
	escape(cross_r);
	same_twice(cross_q, cross_r, "second thread");
	return arg;
}

static void cross_thread(size_t n)
{
	pthread_t t;
	void *q;

	thr_size = n;
	cross_p = malloc(opaque(n));
	*victim = cross_p;
	free(cross_p);
	if (pthread_create(&t, NULL, cross_free, NULL))
		_exit(3);
	pthread_join(t, NULL);
	q = malloc(opaque(n));
	escape(q);
	same_twice(q, cross_q, "main thread, then the second");
	same_twice(q, cross_r, "main thread, then the second");
}

static const struct dcase cases[] = {
	{ "free(p); free(p), 16 bytes", simple, 16, 0 },
	{ "free(p); free(p), 32 bytes", simple, 32, 0 },
	{ "free(p); free(p), 100 bytes", simple, 100, 0 },
	{ "free(p); free(p), 1000 bytes", simple, 1000, 0 },
	{ "free(p); free(p), 5000 bytes", simple, 5000, 0 },
	{ "free(p); free(p), 40000 bytes", simple, 40000, 0 },
	{ "free(p); free(q); free(p), 32 bytes", between, 32, 0 },
	{ "free(p); free(q); free(p), 1000 bytes", between, 1000, 0 },
	{ "in a second thread, 32 bytes", in_thread, 32, 0 },
	{ "in a second thread, 5000 bytes", in_thread, 5000, 0 },
	{ "freed by main, again by a thread, 32 bytes", cross_thread, 32, 1 },
};

static void run_one(void *arg)
{
	const struct dcase *c = arg;

	c->fn(c->size);
}

/* Run one case in a child; 0 when it was caught as it must be. */
static int run_case(const struct dcase *c)
{
	char out[4096], ptr[32];
	size_t len;
	int st;

	*victim = NULL;
	st = run_captured(run_one, (void *)c, out, sizeof(out));
	len = strlen(out);
	if (WIFEXITED(st)) {
		errmsg("FAIL: ", "%s: not caught: child exited %d%s%s", c->name,
		       WEXITSTATUS(st), len ? "; stderr: " : "", out);
		return 1;
	}
#ifdef WITH_SLAB
	snprintf(ptr, sizeof(ptr), "%p", *victim);
	if (WTERMSIG(st) == SIGABRT && strstr(out, "double free") &&
	    strstr(out, ptr)) {
		info("%s: caught: %s", c->name, out);
		return 0;
	}
	errmsg("FAIL: ",
	       "%s: child killed by signal %d (%s), want SIGABRT with "
	       "\"double free\" and %s on stderr; stderr: \"%s\"",
	       c->name, WTERMSIG(st), strsignal(WTERMSIG(st)), ptr, out);
	return 1;
#else
	(void)ptr;
	if (WTERMSIG(st) == SIGALRM) {
		errmsg("FAIL: ", "%s: child hung (SIGALRM)", c->name);
		return 1;
	}
	info("%s: caught: signal %d (%s)%s%s", c->name, WTERMSIG(st),
	     strsignal(WTERMSIG(st)), len ? ": " : "", out);
	return 0;
#endif
}

int main(void)
{
	unsigned int i, bad = 0, ran = 0;

	watchdog("double_free", 100);
	victim = mmap(NULL, sizeof(*victim), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (victim == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
#ifndef WITH_SLAB
		if (cases[i].slab_only) {
			note("%s: skipped without slab (libc misses it)",
			     cases[i].name);
			continue;
		}
#endif
		bad += run_case(&cases[i]);
		ran++;
	}
	if (bad)
		fail("%u of %u double frees not caught", bad, ran);
	info("%u double frees caught", ran);
	return KSFT_PASS;
}
