// SPDX-License-Identifier: MIT
/*
 * main.c - the unit test runner and the helpers shared by the suites.
 *
 * One suite per layer (sizeclass, slab, pageheap, percpu, ownership,
 * kmem_cache, api). libcheck runs every test in a forked child (CK_FORK),
 * so each test starts from the allocator state of the runner and a test
 * that corrupts or aborts cannot disturb the next one. The binary is run
 * once per per-CPU mode: default, SLAB_OPTIONS=rseq=off, rseq=fake.
 *
 * Environment (libcheck): CK_RUN_SUITE, CK_RUN_CASE, CK_VERBOSITY,
 * CK_TIMEOUT_MULTIPLIER.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "unit.h"

int run_child(void (*fn)(void *), void *arg, char *msg, size_t len)
{
	int fds[2], status = -1;
	size_t got = 0;
	ssize_t n;
	char sink[256];
	pid_t pid;

	msg[0] = '\0';
	if (pipe(fds))
		ck_abort_msg("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		ck_abort_msg("fork: %s", strerror(errno));
	if (!pid) {
		struct rlimit no_core = { 0, 0 };

		setrlimit(RLIMIT_CORE, &no_core);
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		close(fds[1]);
		fn(arg);
		_exit(0);
	}
	close(fds[1]);
	for (;;) {
		if (got < len - 1)
			n = read(fds[0], msg + got, len - 1 - got);
		else
			n = read(fds[0], sink, sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (got < len - 1)
			got += (size_t)n;
	}
	msg[got] = '\0';
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

static int capture_fd = -1, saved_fd = -1;

void stderr_capture_begin(void)
{
	int fds[2];

	if (pipe(fds))
		ck_abort_msg("pipe: %s", strerror(errno));
	saved_fd = dup(STDERR_FILENO);
	dup2(fds[1], STDERR_FILENO);
	close(fds[1]);
	capture_fd = fds[0];
}

void stderr_capture_end(char *buf, size_t len)
{
	ssize_t n;

	dup2(saved_fd, STDERR_FILENO);
	close(saved_fd);
	n = read(capture_fd, buf, len - 1); /* the writer end is closed */
	buf[n > 0 ? n : 0] = '\0';
	close(capture_fd);
}

long rss_pages(void)
{
	long size = -1, rss = -1;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss;
}

enum slab_rseq_mode wanted_rseq_mode(void)
{
	const char *o = getenv("SLAB_OPTIONS");
	enum slab_rseq_mode want = SLAB_RSEQ_UNINIT;
	const char *p;

	/* The last rseq= option wins, as in init.c. */
	for (p = o; p && (p = strstr(p, "rseq=")); p += 5) {
		if (p != o && p[-1] != ',')
			continue;
		if (!strncmp(p + 5, "off", 3))
			want = SLAB_RSEQ_OFF;
		else if (!strncmp(p + 5, "fake", 4))
			want = SLAB_RSEQ_FAKE;
		else
			want = SLAB_RSEQ_UNINIT;
	}
	return want;
}

unsigned long my_tcache_count(int slot)
{
	if (!slab_tls.tcache || slot < 0)
		return 0;
	return *(uint32_t *)(slab_tls.tcache + slab_fast.slot_off[slot] - 8);
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;

	return x < y ? -1 : x > y;
}

static void check_stack(struct kmem_cache *s, int slot, const char *region,
			void **all, unsigned long *nr, unsigned long max)
{
	uint32_t cnt = *(const uint32_t *)(region + slab_fast.slot_off[slot] -
					   8);
	void *const *objs = (void *const *)(region + slab_fast.slot_off[slot]);
	uint32_t cap = *(const uint32_t *)(region + slab_fast.slot_off[slot] -
					   4);
	struct slab *sl;
	uint32_t i;

	/* count <= cap, except in a region stopped (cap 0) by a drainer. */
	REQUIREF(cap <= slab_fast.slot_max[slot], "slot %d cap %u max %u", slot,
		 cap, slab_fast.slot_max[slot]);
	REQUIREF(cnt <= slab_fast.slot_max[slot] && (!cap || cnt <= cap),
		 "slot %d count %u cap %u", slot, cnt, cap);
	for (i = 0; i < cnt; i++) {
		sl = virt_to_slab(objs[i]);
		REQUIREF(sl && sl->kind == SPAN_SLAB && sl->cache == s &&
				 span_contains(sl, objs[i]) &&
				 slab_obj_index(sl, objs[i]) >= 0,
			 "slot %d holds %p, not an object of %s", slot, objs[i],
			 s->name);
		REQUIRE(*nr < max);
		all[(*nr)++] = objs[i];
	}
}

unsigned long percpu_check_slot(int slot)
{
	struct kmem_cache *s = &kmalloc_caches[slot];
	unsigned long max, nr = 0, cached = 0, i;
	unsigned int c;
	void **all;

	max = (unsigned long)(slab_fast.ncpus + 1) * slab_fast.slot_max[slot] +
	      s->depot_cap;
	all = __real_malloc(max * sizeof(void *));
	REQUIRE(all);
	for (c = 0; c < slab_fast.ncpus; c++)
		check_stack(s, slot,
			    slab_fast.percpu_base + ((size_t)c << REGION_SHIFT),
			    all, &nr, max);
	if (slab_tls.tcache)
		check_stack(s, slot, slab_tls.tcache, all, &nr, max);
	/* Per-CPU stacks and live per-thread stacks (only ours here). */
	cached = nr;
	REQUIRE(cached == percpu_cached(slot));
	slock_lock(&s->lock);
	for (i = 0; i < s->depot_nr && nr < max; i++)
		all[nr++] = s->depot[i];
	slock_unlock(&s->lock);
	qsort(all, nr, sizeof(void *), cmp_ptr);
	for (i = 1; i < nr; i++)
		REQUIREF(all[i] != all[i - 1], "%p cached twice in slot %d",
			 all[i], slot);
	__real_free(all);
	return cached;
}

void unit_validate_all(void)
{
	int i;

	slab_validate();
	for (i = 0; i < NR_KMALLOC; i++)
		percpu_check_slot(i);
}

/*
 * Test bodies call the layers' internals, which take locks: they run
 * inside a slow section (lock.h), as the allocator's own entry points do.
 * Tests that must run outside one (fork, errno) call unit_outside().
 */
static __thread int unit_inside;

void unit_setup(void)
{
	free(malloc(1));
	ck_assert_int_eq(slab_state, SLAB_STATE_READY);
	ck_assert(slow_enter());
	unit_inside = 1;
}

void unit_outside(void)
{
	if (unit_inside)
		slow_exit();
	unit_inside = 0;
}

void unit_teardown(void)
{
	/* An abort below is reported at this line: the validators failed. */
	mark_point();
	if (!unit_inside)
		ck_assert(slow_enter());
	unit_validate_all();
	slow_exit();
	unit_inside = 0;
}

TCase *unit_tcase(const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, unit_setup, unit_teardown);
	tcase_set_timeout(tc, UNIT_TIMEOUT);
	return tc;
}

static const char *mode_name(enum slab_rseq_mode m)
{
	switch (m) {
	case SLAB_RSEQ_CPU_ID:
		return "rseq (cpu_id)";
	case SLAB_RSEQ_MM_CID:
		return "rseq (mm_cid)";
	case SLAB_RSEQ_FAKE:
		return "fake rseq";
	case SLAB_RSEQ_OFF:
		return "per-thread caches";
	default:
		return "not running";
	}
}

const char *unit_argv0;

/*
 * unit-tests --probe-idle: allocate 100,000 objects of 100 bytes at once,
 * say so on stdout, then sit idle for 3 s (test_trust.c reads what this
 * process publishes meanwhile).
 */
static int probe_idle(void)
{
	static void *v[100000];
	unsigned int i;

	for (i = 0; i < 100000; i++)
		v[i] = malloc(100);
	printf("allocated\n");
	fflush(stdout);
	sleep(3);
	return !v[99999];
}

/* unit-tests --probe-options: start, print the options in force, exit. */
static int probe_options(void)
{
	const char *why = "";
	int mode;

	free(malloc(1));
	mode = slab_rseq_mode(&why);
	fprintf(stderr,
		"probe: state=%d rseq_opt=%d mode=%d arena=%zu dirty_max=%zu purge_ms=%u\n",
		slab_state, slab_opt.rseq, mode, slab_arena.size,
		slab_opt.dirty_max, slab_opt.purge_ms);
	return 0;
}

int main(int argc, char **argv)
{
	struct rlimit no_core = { 0, 0 };
	enum slab_rseq_mode mode;
	const char *why = "";
	SRunner *sr;
	int failed;

	unit_argv0 = argv[0];
	if (argc > 1 && !strcmp(argv[1], "--probe-options"))
		return probe_options();
	if (argc > 1 && !strcmp(argv[1], "--probe-idle"))
		return probe_idle();
	/* Tests that expect an abort must not leave core files behind. */
	setrlimit(RLIMIT_CORE, &no_core);
	free(malloc(1));
	mode = slab_rseq_mode(&why);
	printf("unit: SLAB_OPTIONS=%s: %s, %s\n",
	       getenv("SLAB_OPTIONS") ? getenv("SLAB_OPTIONS") : "",
	       mode_name(mode), why);
	fflush(stdout);

	sr = srunner_create(sizeclass_suite());
	srunner_add_suite(sr, init_suite());
	srunner_add_suite(sr, slab_suite());
	srunner_add_suite(sr, pageheap_suite());
	srunner_add_suite(sr, percpu_suite());
	srunner_add_suite(sr, ownership_suite());
	srunner_add_suite(sr, kmem_cache_suite());
	srunner_add_suite(sr, api_suite());
	srunner_add_suite(sr, trust_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
