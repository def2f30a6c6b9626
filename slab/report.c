// SPDX-License-Identifier: MIT
/*
 * report.c - every message slab prints, and the futex lock's slow half.
 *
 * Messages go to stderr with one write(2) from a stack buffer: no stdio
 * locks, no allocation, usable from any state (even a corrupt heap).
 * A bug or a misuse is loud: one line naming the cause, then abort().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* Not every libc ships <linux/futex.h> (musl-gcc has no kernel headers). */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129

static void vreport(const char *prefix, const char *fmt, va_list ap)
{
	char buf[512];
	int n, m;
	int saved = errno;

	n = snprintf(buf, sizeof(buf), "slab: %s", prefix);
	if (n < 0 || n >= (int)sizeof(buf))
		n = 0;
	m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDERR_FILENO, buf, (size_t)n) < 0)
		n = 0;
	errno = saved;
}

void slab_bug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("BUG: ", fmt, ap);
	va_end(ap);
	abort();
}

void slab_misuse(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("", fmt, ap);
	va_end(ap);
	abort();
}

void slab_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport("warning: ", fmt, ap);
	va_end(ap);
}

void slock_outside(const struct slock *l)
{
	slab_bug("lock %p taken outside a slow section (fork gate bypassed)",
		 (const void *)l);
}

void slock_wait(struct slock *l)
{
	int c = 1;

	/* Mark contended, then sleep until we take it in state 2. */
	if (__atomic_load_n(&l->v, __ATOMIC_RELAXED) == 2)
		goto sleep;
	c = __atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE);
	while (c != 0) {
sleep:
		syscall(SYS_futex, &l->v, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
		c = __atomic_exchange_n(&l->v, 2, __ATOMIC_ACQUIRE);
	}
}

void slock_wake(struct slock *l)
{
	syscall(SYS_futex, &l->v, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
