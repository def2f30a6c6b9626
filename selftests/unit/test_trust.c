// SPDX-License-Identifier: MIT
/*
 * test_trust.c - the defects of the trust review (issue 8), each checked
 * where a unit test can reach it: the mm_cid decision for every rseq size
 * and kernel feature size, the guards around the pagemap and below the
 * arena, double frees of cached objects, errno across free(), deferred
 * frees, the fork gate and its degraded child.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "glue.h"
#include "slab_stats.h"
#include "unit.h"

START_TEST(mm_cid_decision)
{
	/* Kernels before 6.3: no mm_cid whatever glibc's __rseq_size says. */
	ck_assert_int_eq(rseq_has_mm_cid(0, 32), 0);
	ck_assert_int_eq(rseq_has_mm_cid(0, 20), 0);
	ck_assert_int_eq(rseq_has_mm_cid(20, 32), 0); /* 5.x: 20 */
	ck_assert_int_eq(rseq_has_mm_cid(20, 20), 0);
	ck_assert_int_eq(rseq_has_mm_cid(27, 32), 0);
	/* 6.3+: the original 32-byte area holds mm_cid (20 means 32). */
	ck_assert_int_eq(rseq_has_mm_cid(28, 32), 1);
	ck_assert_int_eq(rseq_has_mm_cid(28, 20), 1);
	ck_assert_int_eq(rseq_has_mm_cid(33, 33), 1); /* Linux 7.0 */
	/* An area too small for the field. */
	ck_assert_int_eq(rseq_has_mm_cid(28, 24), 0);
	ck_assert_int_eq(rseq_has_mm_cid(28, 0), 0);
}
END_TEST

/* The mode this process runs in agrees with the kernel's feature size. */
START_TEST(mm_cid_mode_matches_kernel)
{
	const char *why;
	enum slab_rseq_mode m = slab_rseq_mode(&why);

	if (getauxval(27 /* AT_RSEQ_FEATURE_SIZE */) < 28)
		ck_assert_msg(m != SLAB_RSEQ_MM_CID,
			      "mm_cid mode on a kernel without mm_cid (%s)",
			      why);
}
END_TEST

static void write_at(void *arg)
{
	*(volatile char *)arg = 1;
}

/* SIGSEGV, or under ASan its report (ASan catches the signal). */
static int faulted(int st, const char *msg)
{
	return (WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) ||
	       (WIFEXITED(st) && WEXITSTATUS(st) && strstr(msg, "SEGV"));
}

/* The pagemap's length: the mapping that holds its first entry. */
static size_t pm_bytes(void)
{
	uintptr_t pm = (uintptr_t)slab_arena.pagemap, lo, hi;
	char line[256];
	size_t len = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= pm &&
		    pm < hi)
			len = hi - pm;
	fclose(f);
	ck_assert_uint_gt(len, 0);
	return len;
}

/* A write just outside the pagemap or just below the arena faults. */
START_TEST(pagemap_and_arena_guards)
{
	char msg[256];
	char *pm = (char *)slab_arena.pagemap;
	char *below = (char *)slab_arena.base - 1;
	int st;

	st = run_child(write_at, pm - 1, msg, sizeof(msg));
	ck_assert_msg(faulted(st, msg), "write below the pagemap: status %#x",
		      st);
	st = run_child(write_at, pm + pm_bytes(), msg, sizeof(msg));
	ck_assert_msg(faulted(st, msg), "write above the pagemap: status %#x",
		      st);
	st = run_child(write_at, below, msg, sizeof(msg));
	ck_assert_msg(faulted(st, msg), "write below the arena: status %#x",
		      st);
}
END_TEST

static void double_free(void *arg)
{
	size_t n = (size_t)arg;
	void *p = malloc(n), *q = malloc(n);

	free(p);
	free(q);
	free(p); /* p sits in this CPU's (or thread's) stack */
	_exit(0);
}

static void double_free_depot(void *arg)
{
	unsigned int c = size_to_class(48);
	unsigned long n = 4UL * slab_fast.slot_max[c], i;
	void **v = __real_malloc(n * sizeof(void *)), *p;

	(void)arg;
	for (i = 0; i < n; i++)
		v[i] = malloc(48);
	p = v[0];
	for (i = 0; i < n; i++)
		free(v[i]); /* p goes to the depot or its slab */
	free(p);
	_exit(0);
}

START_TEST(double_free_is_caught)
{
	static const size_t sizes[] = { 16, 32, 100, 1000, 5000, 40000 };
	unsigned int i;

	unit_outside();
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		ck_assert_aborts(double_free, (void *)sizes[i], "double free");
	ck_assert_aborts(double_free_depot, NULL, "double free");
}
END_TEST

/* The program's data holding the key is not a double free. */
START_TEST(key_in_live_data)
{
	uint64_t *p = malloc(64);

	p[1] = slab_fast.free_key;
	free(p); /* checked, found nowhere, freed */
	p = malloc(64);
	ck_assert_ptr_nonnull(p);
	free(p);
}
END_TEST

/* free() keeps errno on every path (POSIX.1-2024). */
START_TEST(free_keeps_errno)
{
	static const size_t sizes[] = { 1, 100, 5000, 300000, 8 << 20 };
	void *v[64];
	unsigned int i, k;

	unit_outside();
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		for (i = 0; i < 64; i++)
			v[i] = malloc(sizes[k]);
		for (i = 0; i < 64; i++) {
			errno = EILSEQ;
			free(v[i]);
			ck_assert_int_eq(errno, EILSEQ);
		}
	}
	errno = EILSEQ;
	free(__real_malloc(100)); /* libc's pointer */
	ck_assert_int_eq(errno, EILSEQ);
}
END_TEST

/* Frees while the gate is closed wait on the deferred list, then go. */
START_TEST(deferred_frees_drain)
{
	void *v[200];
	unsigned int i;

	for (i = 0; i < 200; i++)
		v[i] = malloc(i < 100 ? 200 : 400000);
	__atomic_fetch_add(&slab_gate_closed, 1, __ATOMIC_SEQ_CST);
	unit_outside();
	for (i = 0; i < 200; i++)
		free(v[i]);
	ck_assert_ptr_nonnull(slab_deferred);
	/* Allocations meanwhile come from libc after a short wait. */
	v[0] = malloc(300000);
	ck_assert_int_eq(slab_owns(v[0]), 0);
	free(v[0]);
	__atomic_fetch_sub(&slab_gate_closed, 1, __ATOMIC_SEQ_CST);
	free(malloc(1 << 20)); /* a slow path drains the list */
	ck_assert_ptr_null(slab_deferred);
}
END_TEST

static volatile int hold_inside;

static void *inside_thread(void *arg)
{
	(void)arg;
	ck_assert(slow_enter());
	while (__atomic_load_n(&hold_inside, __ATOMIC_ACQUIRE))
		usleep(1000);
	slow_exit();
	return NULL;
}

static void degraded_child(void *arg)
{
	const char *why;
	void *p;

	(void)arg;
	if (slab_rseq_mode(&why) != SLAB_RSEQ_UNINIT ||
	    !strstr(why, "timed out"))
		_exit(2);
	p = malloc(300000); /* libc's, no lock taken */
	if (!p || slab_owns(p))
		_exit(3);
	free(p);
	_exit(0);
}

/*
 * A thread stays inside the allocator across a fork: the fork handler
 * gives up at its deadline and the child is degraded, says why, and
 * still allocates (from libc).
 */
START_TEST(fork_deadline_degrades)
{
	char msg[512];
	pthread_t t;
	int st;

	unit_outside();
	hold_inside = 1;
	ck_assert_int_eq(pthread_create(&t, NULL, inside_thread, NULL), 0);
	while (!slab_gate[0].inside && !gate_stripe_of()->inside) {
		unsigned int i, n = 0;

		for (i = 0; i < GATE_STRIPES; i++)
			n += slab_gate[i].inside;
		if (n)
			break;
		usleep(1000);
	}
	st = run_child(degraded_child, NULL, msg, sizeof(msg));
	__atomic_store_n(&hold_inside, 0, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "child status %#x: %s", st, msg);
	/* The parent is unaffected. */
	ck_assert_int_eq(slab_state, SLAB_STATE_READY);
	free(malloc(300000));
}
END_TEST

/*
 * A program that allocates and then goes idle is shown as it is by its
 * published file (SLAB_OPTIONS=publish): within the 200 ms refresh, not
 * as it was at its last slow path (issue 8, defect 11).
 */
START_TEST(publish_idle_is_current)
{
	const struct slab_stats_file *f;
	char path[64], buf[32];
	uint64_t objs = 0;
	unsigned int i;
	int fds[2], fd, st;
	pid_t pid;
	ssize_t n;

	unit_outside();
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (!pid) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		setenv("SLAB_OPTIONS", "publish", 1);
		execl(unit_argv0, unit_argv0, "--probe-idle", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf));
	ck_assert_int_gt(n, 0);
	usleep(700 * 1000); /* idle for more than three refreshes */
	snprintf(path, sizeof(path), SLAB_STATS_PATH_FMT, (int)pid);
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	f = mmap(NULL, 1 << 20, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	ck_assert(f != MAP_FAILED);
	for (i = 0; i < f->nr_caches; i++)
		if (!strcmp(f->caches[i].name, "kmalloc-112"))
			objs = f->caches[i].active_objs;
	munmap((void *)f, 1 << 20);
	kill(pid, SIGTERM); /* no destructor runs: remove its file here */
	waitpid(pid, &st, 0);
	unlink(path);
	close(fds[0]);
	ck_assert_msg(objs >= 100000, "idle program shows %llu objects",
		      (unsigned long long)objs);
}
END_TEST

Suite *trust_suite(void)
{
	Suite *s = suite_create("trust");
	TCase *tc = unit_tcase("issue 8");

	tcase_add_test(tc, mm_cid_decision);
	tcase_add_test(tc, mm_cid_mode_matches_kernel);
	tcase_add_test(tc, pagemap_and_arena_guards);
	tcase_add_test(tc, double_free_is_caught);
	tcase_add_test(tc, key_in_live_data);
	tcase_add_test(tc, free_keeps_errno);
	tcase_add_test(tc, deferred_frees_drain);
	tcase_add_test(tc, fork_deadline_degrades);
	tcase_add_test(tc, publish_idle_is_current);
	suite_add_tcase(s, tc);
	return s;
}
