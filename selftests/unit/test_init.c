// SPDX-License-Identifier: MIT
/*
 * test_init.c - start-up options (init.c): SLAB_OPTIONS is read once, so
 * each case runs the test binary again (--probe-options) with its own
 * environment and reads what the new process reports on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"

static void probe_child(void *arg)
{
	const char *opts = arg;
	char *argv[] = { (char *)unit_argv0, (char *)"--probe-options", NULL };

	if (opts)
		setenv("SLAB_OPTIONS", opts, 1);
	else
		unsetenv("SLAB_OPTIONS");
	execv(unit_argv0, argv);
	_exit(127);
}

/* Run the probe with SLAB_OPTIONS=@opts; its stderr lands in @out. */
static void probe(const char *opts, char *out, size_t len)
{
	int st = run_child(probe_child, (void *)opts, out, len);

	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "probe '%s': status %#x: %s", opts ? opts : "", st, out);
	ck_assert_msg(strstr(out, "probe: state=1 "), "probe '%s': %s",
		      opts ? opts : "", out);
}

#define has(out, s)   ck_assert_msg(strstr(out, s), "no \"%s\" in: %s", s, out)
#define hasnt(out, s) ck_assert_msg(!strstr(out, s), "\"%s\" in: %s", s, out)

START_TEST(defaults)
{
	char out[2048];

	probe(NULL, out, sizeof(out));
	has(out, " rseq_opt=0 ");
	has(out, " dirty_max=16777216 ");
	has(out, " purge_ms=1000");
	hasnt(out, "warning");
	probe("", out, sizeof(out));
	hasnt(out, "warning");
}
END_TEST

START_TEST(good_options)
{
	char out[2048];

	probe("arena=1g,dirty_max=4m,purge_ms=50,rseq=off", out, sizeof(out));
	hasnt(out, "warning");
	has(out, " rseq_opt=1 mode=4 ");
	has(out, " arena=1073741824 ");
	has(out, " dirty_max=4194304 ");
	has(out, " purge_ms=50");

	/* Upper-case suffixes, empty items, the last value wins. */
	probe(",dirty_max=2M,,dirty_max=3K,rseq=fake,", out, sizeof(out));
	hasnt(out, "warning");
	has(out, " dirty_max=3072 ");
	has(out, " rseq_opt=2 mode=3 ");
	probe("dirty_max=0,rseq=on,arena=256m,purge_ms=3600000", out,
	      sizeof(out));
	hasnt(out, "warning");
	has(out, " rseq_opt=0 ");
	has(out, " arena=268435456 ");
	has(out, " dirty_max=0 ");
	has(out, " purge_ms=3600000");
	probe("rseq=cpu", out, sizeof(out));
	hasnt(out, "warning");
	has(out, " rseq_opt=3 ");
}
END_TEST

START_TEST(bad_options)
{
	char out[4096];

	probe("foo,rseq=maybe,arena=1m,dirty_max=12q,purge_ms=3600001,"
	      "dirty_max=,arena=99999999999999999999g,purge_ms=5x",
	      out, sizeof(out));
	has(out, "unknown option 'foo' ignored");
	has(out, "bad value in 'rseq=maybe' ignored");
	has(out, "bad value in 'arena=1m' ignored");
	has(out, "bad value in 'dirty_max=12q' ignored");
	has(out, "bad value in 'purge_ms=3600001' ignored");
	has(out, "bad value in 'dirty_max=' ignored");
	has(out, "bad value in 'arena=99999999999999999999g' ignored");
	has(out, "bad value in 'purge_ms=5x' ignored");
	/* Defaults kept. */
	has(out, " rseq_opt=0 ");
	has(out, " dirty_max=16777216 ");
	has(out, " purge_ms=1000");
}
END_TEST

Suite *init_suite(void)
{
	Suite *s = suite_create("init");
	TCase *tc = unit_tcase("options");

	tcase_add_test(tc, defaults);
	tcase_add_test(tc, good_options);
	tcase_add_test(tc, bad_options);
	suite_add_tcase(s, tc);
	return s;
}
