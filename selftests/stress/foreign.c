// SPDX-License-Identifier: MIT
/*
 * foreign - memory that libc allocates on our behalf.
 *
 * strdup, strndup, getline, getdelim, asprintf, vasprintf, open_memstream,
 * realpath, getcwd and scandir all hand back malloc'ed memory. Linked
 * dynamically against glibc that memory comes from glibc's malloc (a
 * "foreign" pointer for slab); in a static musl build the wrap reaches
 * libc's own calls, so it is slab's. Either way the wrapped free, realloc,
 * malloc_usable_size and free_sized must handle it, and getline/getdelim
 * must be able to grow a buffer that we allocated ourselves (or that libc
 * did).
 *
 * Built like most GNU code, with _GNU_SOURCE and -O2: glibc's
 * <bits/stdio.h> then turns getline() into an inline call of __getdelim(),
 * which must reach the wrap as well.
 */
#include "stress.h"

#include <dirent.h>

static int n_slab __maybe_unused, n_libc __maybe_unused;

/* Who allocated @p? Static musl: everything must be slab's. */
static void owner(const void *p, const char *what)
{
#ifdef WITH_SLAB
	int o = slab_owns(p);

	if (o)
		n_slab++;
	else
		n_libc++;
#ifndef __GLIBC__
	check(o == 1, "static musl: %s returned %p, not a slab object", what,
	      p);
#endif
#endif
	(void)p;
	(void)what;
}

static char *make_src(size_t len, int salt)
{
	char *s = malloc(len + 1);
	size_t i;

	if (!s)
		fail("malloc(%zu)", len + 1);
	for (i = 0; i < len; i++)
		s[i] = 'a' + (i * 7 + salt) % 26;
	s[len] = 0;
	return s;
}

static void test_strdup(void)
{
	static const size_t lens[] = { 0, 1, 15, 16, 100, 5000, 100000 };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		size_t len = lens[i];
		char *src = make_src(len, i), *s, *t;

		s = strdup(src);
		check(s && !strcmp(s, src), "strdup(%zu chars)", len);
		if (!s)
			continue;
		owner(s, "strdup");
		check(malloc_usable_size(s) >= len + 1,
		      "malloc_usable_size(strdup(%zu chars)) = %zu", len,
		      malloc_usable_size(s));
		/* grow through the wrapped realloc */
		t = realloc(s, opaque(3 * len + 10));
		check(t && !strncmp(t, src, len + 1),
		      "realloc(strdup(%zu chars)) lost the string", len);
		if (t) {
			memset(t + len, 'z', 2 * len + 9);
			t[3 * len + 9] = 0;
			s = t;
		}
		free(s);

		/* shrink */
		s = strdup(src);
		t = realloc(s, opaque(len / 2 + 1));
		check(t && !strncmp(t, src, len / 2),
		      "shrinking realloc(strdup(%zu chars))", len);
		free(t ? t : s);

		/* realloc(p, 0) on a foreign pointer follows the libc */
		s = strndup(src, len / 2);
		check(s && strlen(s) == len / 2, "strndup(%zu)", len / 2);
		owner(s, "strndup");
		t = realloc(s, opaque(0));
#ifdef __GLIBC__
		check(t == NULL, "realloc(strndup(), 0) = %p, want NULL", t);
#else
		check(t != NULL, "realloc(strndup(), 0) = NULL");
#endif
		free(t);

		s = strdup(src);
		free_sized(s, len + 1);
		free(src);
	}
}

/* Lines of these lengths; the last one has no newline. */
static const size_t line_len[] = {
	0,    1,     10,    119, 120,    121, 500, 4095,
	4096, 10000, 70000, 3,   200000, 0,   17,  300001,
};
#define NLINES ARRAY_SIZE(line_len)

static char line_char(size_t line, size_t i, int delim)
{
	char c = 'A' + (line * 13 + i) % 50;

	return c == delim ? '#' : c;
}

static FILE *make_file(int delim)
{
	FILE *f = tmpfile();
	size_t l, i;

	if (!f)
		fail("tmpfile: %s", strerror(errno));
	for (l = 0; l < NLINES; l++) {
		for (i = 0; i < line_len[l]; i++)
			fputc(line_char(l, i, delim), f);
		if (l + 1 < NLINES)
			fputc(delim, f);
	}
	rewind(f);
	return f;
}

/* Read the whole file through getdelim into *buf, checking each record. */
static void read_all(FILE *f, char **buf, size_t *n, int delim,
		     const char *what)
{
	size_t l, i;
	ssize_t r;

	rewind(f);
	for (l = 0; l < NLINES; l++) {
		size_t want = line_len[l] + (l + 1 < NLINES);

		r = delim == '\n' ? getline(buf, n, f) :
				    getdelim(buf, n, delim, f);
		check(r == (ssize_t)want, "%s: record %zu: got %zd, want %zu",
		      what, l, r, want);
		if (r != (ssize_t)want || !*buf)
			return;
		check(*n >= want + 1, "%s: record %zu: size %zu < %zu", what, l,
		      *n, want + 1);
		check(malloc_usable_size(*buf) >= want + 1,
		      "%s: buffer %p usable %zu < %zu", what, (void *)*buf,
		      malloc_usable_size(*buf), want + 1);
		for (i = 0; i < line_len[l]; i++)
			if ((*buf)[i] != line_char(l, i, delim))
				break;
		check(i == line_len[l], "%s: record %zu bad at %zu", what, l,
		      i);
		check((*buf)[want] == 0, "%s: record %zu not terminated", what,
		      l);
	}
	r = delim == '\n' ? getline(buf, n, f) : getdelim(buf, n, delim, f);
	check(r == -1, "%s: EOF: got %zd", what, r);
}

static void test_getline(void)
{
	static const int delims[] = { '\n', ',', 0 };
	size_t d;

	for (d = 0; d < ARRAY_SIZE(delims); d++) {
		int delim = delims[d];
		FILE *f = make_file(delim);
		char *buf, *t;
		size_t n;

		/* libc allocates */
		buf = NULL;
		n = 0;
		read_all(f, &buf, &n, delim, "NULL buffer");
		owner(buf, "getline(NULL)");
		t = realloc(buf, opaque(n + 100));
		check(t != NULL, "realloc of getline buffer");
		free(t ? t : buf);

		/* our small buffer, grown by libc */
		n = 4;
		buf = malloc(n);
		read_all(f, &buf, &n, delim, "malloc(4) buffer");
		free(buf);

		/* non-NULL buffer with *n == 0 */
		n = 0;
		buf = malloc(100);
		read_all(f, &buf, &n, delim, "n == 0 buffer");
		free(buf);

		/* a buffer from aligned_alloc */
		n = 64;
		buf = aligned_alloc(64, 64);
		read_all(f, &buf, &n, delim, "aligned_alloc buffer");
		free(buf);

		/* a buffer from strdup (libc's with glibc) */
		buf = strdup("x");
		n = 2;
		read_all(f, &buf, &n, delim, "strdup buffer");
		free_sized(buf, n);

		/* a buffer from a previous getline, reused */
		buf = NULL;
		n = 0;
		read_all(f, &buf, &n, delim, "first pass");
		read_all(f, &buf, &n, delim, "second pass");
		free(buf);
		fclose(f);
	}
}

static int __attribute__((format(printf, 2, 3)))
via_vasprintf(char **s, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(s, fmt, ap);
	va_end(ap);
	return r;
}

static void test_asprintf(void)
{
	static const int widths[] = { 0, 1, 50, 1000, 100000 };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(widths); i++) {
		char *s = NULL, *t;
		int w = widths[i], r, k;

		if (i & 1)
			r = via_vasprintf(&s, "<%0*d|%s>", w, 42, "tail");
		else
			r = asprintf(&s, "<%0*d|%s>", w, 42, "tail");
		check(r >= 0 && s, "asprintf width %d", w);
		if (r < 0 || !s)
			continue;
		owner(s, "asprintf");
		check(r == (w > 2 ? w : 2) + 7 && (int)strlen(s) == r,
		      "asprintf width %d returned %d", w, r);
		t = realloc(s, opaque(r + 100000));
		check(t != NULL, "realloc(asprintf buffer)");
		if (t) {
			s = t;
			for (k = 0; k < r; k++)
				if (!s[k])
					break;
			check(k == r && !strcmp(s + r - 6, "|tail>"),
			      "asprintf buffer lost by realloc");
			memset(s + r, 'q', 100000);
		}
		free(s);
	}
}

static void test_memstream(void)
{
	char *buf = NULL, *t;
	size_t len = 0, i;
	FILE *f;
	int ok = 1;

	f = open_memstream(&buf, &len);
	check(f != NULL, "open_memstream: %s", strerror(errno));
	if (!f)
		return;
	for (i = 0; i < 20000; i++)
		fprintf(f, "%06zu;", i);
	fflush(f);
	check(len == 140000, "open_memstream: len %zu after fflush", len);
	fprintf(f, "end");
	fclose(f);
	check(buf && len == 140003, "open_memstream: len %zu", len);
	if (!buf)
		return;
	owner(buf, "open_memstream");
	for (i = 0; i < 20000 && ok; i++) {
		char exp[8];

		snprintf(exp, sizeof(exp), "%06zu;", i);
		ok = !memcmp(buf + 7 * i, exp, 7);
	}
	check(ok, "open_memstream: content mismatch at record %zu", i - 1);
	t = realloc(buf, opaque(len + 1000000));
	check(t && !memcmp(t + len - 3, "end", 3),
	      "realloc(open_memstream buffer)");
	free(t ? t : buf);
}

static void test_paths(void)
{
	char *p, *q;
	struct dirent **list = NULL;
	int n, i;

	p = realpath(".", NULL);
	check(p && p[0] == '/', "realpath(., NULL)");
	if (p) {
		owner(p, "realpath");
		q = realloc(p, opaque(10000));
		check(q && q[0] == '/', "realloc(realpath buffer)");
		free(q ? q : p);
	}
	p = realpath("/", NULL);
	check(p && !strcmp(p, "/"), "realpath(/, NULL)");
	free(p);

	p = getcwd(NULL, 0);
	check(p && p[0] == '/', "getcwd(NULL, 0)");
	if (p) {
		owner(p, "getcwd");
		check(malloc_usable_size(p) > strlen(p),
		      "malloc_usable_size(getcwd buffer)");
	}
	free(p);

	n = scandir("/", &list, NULL, alphasort);
	check(n > 0, "scandir(/): %s", strerror(errno));
	for (i = 0; i < n; i++) {
		if (i == 0) {
			struct dirent *d = realloc(list[0], 4096);

			check(d != NULL, "realloc(scandir entry)");
			if (d)
				list[0] = d;
		}
		free(list[i]);
	}
	if (n >= 0) {
		owner(list, "scandir");
		free(list);
	}
}

/* libc memory allocated in one thread and freed in another */
#define XN 2000
static char *xs[XN];

static void *xalloc(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < XN; i++) {
		char num[32];

		snprintf(num, sizeof(num), "%d-%0*d", i, i % 300, i);
		xs[i] = strdup(num);
		if (!xs[i])
			fail("strdup");
	}
	return NULL;
}

static void *xfree(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < XN; i++) {
		char num[32];

		snprintf(num, sizeof(num), "%d-%0*d", i, i % 300, i);
		if (strcmp(xs[i], num))
			fail("strdup string %d changed: %s", i, xs[i]);
		if (i % 3 == 0)
			xs[i] = realloc(xs[i], 1000);
		free(xs[i]);
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t a, b;
	int r;

	for (r = 0; r < 5; r++) {
		pthread_create(&a, NULL, xalloc, NULL);
		pthread_join(a, NULL);
		pthread_create(&b, NULL, xfree, NULL);
		pthread_join(b, NULL);
	}
}

int main(void)
{
	watchdog("foreign", 100);
	check_rseq_mode();
	test_strdup();
	test_getline();
	test_asprintf();
	test_memstream();
	test_paths();
	test_threads();
	slab_validate();
#ifdef WITH_SLAB
	info("owners of libc-allocated memory: %d slab, %d libc", n_slab,
	     n_libc);
#endif
	if (nr_errors) {
		errmsg(NULL, "foreign: %d failed checks", nr_errors);
		return KSFT_FAIL;
	}
	info("foreign: all checks passed");
	return KSFT_PASS;
}
