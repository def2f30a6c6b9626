// SPDX-License-Identifier: MIT
/*
 * asan_user - a program built with -fsanitize=address and linked with
 * slab's flags (run_selftests.sh's asan mode, glibc).
 *
 * ASan's malloc is what slab's __real_ calls reach; blocks in slab's arena
 * would be invisible to it. slab must step aside at start-up with one
 * line on stderr, every block must be ASan's (slab_owns() says 0), and
 * ASan must catch a heap overflow by one byte and a use after free, as
 * it does without slab.
 */
#include "stress.h"

/* The child of run_captured(): this program again, with @arg. */
static void exec_self(void *arg)
{
	execl("/proc/self/exe", "asan_user", (const char *)arg, (char *)NULL);
	_exit(127);
}

/* Run this program with @arg, stderr captured into @buf. */
static int run_self(const char *arg, char *buf, size_t size)
{
	return run_captured(exec_self, (void *)arg, buf, size);
}

static int child(const char *what)
{
	char *p;

	if (!strcmp(what, "start")) {
		p = malloc(opaque(24));
		if (!p)
			return 2;
		escape(p);
#ifdef WITH_SLAB
		if (slab_owns(p) != 0)
			return 3; /* slab served it: ASan is blind to it */
#endif
		free(p);
		return 0;
	}
	if (!strcmp(what, "overflow")) {
		p = malloc(opaque(16));
		escape(p);
		p[opaque(16)] = 1;
		escape(p);
		free(p);
		return 0;
	}
	if (!strcmp(what, "uaf")) {
		p = malloc(opaque(100));
		escape(p);
		free(p);
		escape(p);
		return p[opaque(10)];
	}
	return 2;
}

int main(int argc, char **argv)
{
	static char out[16384];
	int st;

	if (argc > 1)
		return child(argv[1]);
	watchdog("asan_user", 60);
	st = run_self("start", out, sizeof(out));
	check(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "start: status %#x (3: slab served a block ASan cannot see)", st);
#ifdef WITH_SLAB
	check(strstr(out,
		     "slab: warning: AddressSanitizer in this program: slab steps aside"),
	      "start: no step-aside line on stderr: %s", out);
#endif
	info("start: %.200s", out);
	st = run_self("overflow", out, sizeof(out));
	check(!(WIFEXITED(st) && WEXITSTATUS(st) == 0) &&
		      strstr(out, "heap-buffer-overflow"),
	      "a heap overflow by one byte was not reported (status %#x): %.300s",
	      st, out);
	st = run_self("uaf", out, sizeof(out));
	check(!(WIFEXITED(st) && WEXITSTATUS(st) == 0) &&
		      strstr(out, "heap-use-after-free"),
	      "a use after free was not reported (status %#x): %.300s", st,
	      out);
	if (nr_errors)
		return KSFT_FAIL;
	info("ASan owns malloc and catches the overflow and the use after free");
	return KSFT_PASS;
}
