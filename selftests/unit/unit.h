/* SPDX-License-Identifier: MIT */
/*
 * unit.h - shared helpers of the unit tests (check framework).
 *
 * The tests link the library's objects into one wrapped binary: the
 * malloc family of the test (and of libcheck) is slab's, and the hidden
 * internals (internal.h) resolve in the static link.
 *
 * A passing ck_assert*() allocates (libcheck reports every mark point to
 * its parent), which can move allocator state between the two halves of a
 * comparison. Tests that compare allocator counters use REQUIRE(), which
 * does nothing on success and calls ck_abort_msg() on failure.
 */
#ifndef SLAB_UNIT_H
#define SLAB_UNIT_H

#include <check.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

#include "glue.h"
#include "internal.h"
#include "slab.h"

#define REQUIRE(cond)                                                  \
	do {                                                           \
		if (unlikely(!(cond)))                                 \
			ck_abort_msg("requirement failed: %s", #cond); \
	} while (0)

#define REQUIREF(cond, fmt, ...)                                            \
	do {                                                                \
		if (unlikely(!(cond)))                                      \
			ck_abort_msg("requirement failed: %s: " fmt, #cond, \
				     ##__VA_ARGS__);                        \
	} while (0)

/* Per-test time limit (seconds); libcheck's multiplier env still applies. */
#define UNIT_TIMEOUT 120

/*
 * run_child - run @fn(@arg) in a forked child with stderr captured.
 * Returns the wait status; the child's stderr (truncated, NUL-terminated)
 * lands in @msg. A child that returns from @fn exits with status 0.
 */
int run_child(void (*fn)(void *), void *arg, char *msg, size_t len);

/*
 * Expect @fn(@arg) to abort (SIGABRT) with a message containing @needle.
 * The check is made by the calling test (file and line of the caller).
 */
#define ck_assert_aborts(fn, arg, needle)                                         \
	do {                                                                      \
		char __msg[1024];                                                 \
		int __st = run_child((fn), (arg), __msg, sizeof(__msg));          \
                                                                                  \
		ck_assert_msg(WIFSIGNALED(__st) && WTERMSIG(__st) == SIGABRT,     \
			      "%s: expected SIGABRT, got status %#x; stderr: %s", \
			      #fn, __st, __msg);                                  \
		ck_assert_msg(strstr(__msg, (needle)) != NULL,                    \
			      "%s: stderr lacks \"%s\": %s", #fn, (needle),       \
			      __msg);                                             \
	} while (0)

/*
 * Capture what the allocator writes to stderr between the two calls (at
 * most a pipe's worth) into @buf.
 */
void stderr_capture_begin(void);
void stderr_capture_end(char *buf, size_t len);

/* Pages resident in this process (/proc/self/statm). */
long rss_pages(void);

/* The mode SLAB_OPTIONS asks for: SLAB_RSEQ_OFF/FAKE, or 0 (default). */
enum slab_rseq_mode wanted_rseq_mode(void);

/* Objects of kmalloc slot @slot in this thread's tcache (rseq=off). */
unsigned long my_tcache_count(int slot);

/*
 * Check the per-CPU regions and this thread's tcache for slot @slot: every
 * count within the slot's capacity, every object a valid object start of
 * kmalloc_caches[@slot], no object twice (also against the depot).
 * Returns the number of objects found; aborts the test on a violation.
 */
unsigned long percpu_check_slot(int slot);

/* Run the global validators of the allocator (abort on corruption). */
void unit_validate_all(void);

/* Fixture: start the allocator, and validate everything after the test. */
void unit_setup(void);
void unit_teardown(void);
/* Leave the slow section the fixture entered (fork, errno, signal tests). */
void unit_outside(void);

/* A TCase with the standard fixture and timeout. */
TCase *unit_tcase(const char *name);

/* The test binary, for tests that run it again (--probe-options). */
extern const char *unit_argv0;

Suite *init_suite(void);
Suite *sizeclass_suite(void);
Suite *slab_suite(void);
Suite *pageheap_suite(void);
Suite *percpu_suite(void);
Suite *ownership_suite(void);
Suite *kmem_cache_suite(void);
Suite *api_suite(void);
Suite *trust_suite(void);

#endif /* SLAB_UNIT_H */
