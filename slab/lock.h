/* SPDX-License-Identifier: MIT */
/*
 * lock.h - a small futex lock for slow paths (never on the rseq fast path),
 * and the slow section that every lock is taken in.
 *
 * Lock states: 0 free, 1 locked, 2 locked and maybe waiters. No allocation,
 * no libc dependency beyond syscall(). Each lock held by a thread counts in
 * slab_tls.busy, so that a signal handler that lands inside the allocator
 * can tell (it then serves from libc or defers its free).
 *
 * Slow sections (slow_enter() .. slow_exit()) are the fork gate: every lock
 * is taken inside one, and the fork prepare handler closes the gate and
 * waits until no thread is inside any. It then holds no lock of ours, so
 * no thread ever waits for the forking thread, whatever libc locks that
 * thread takes after us (stdio's list lock): see Documentation/design.md,
 * "Fork". A thread that finds the gate closed does not wait either: its
 * caller serves it from libc or defers the free. Entering costs one atomic
 * add on a cache line shared by few threads; nested sections cost nothing.
 * The outermost section also keeps errno: no system call made inside the
 * allocator changes what the program sees (free() must not, POSIX.1-2024).
 */
#ifndef SLAB_LOCK_H
#define SLAB_LOCK_H

#include <errno.h>
#include <stdint.h>

#include "types.h"

extern __thread struct slab_tls slab_tls __attribute__((visibility("hidden")));

void slock_wait(struct slock *l) __attribute__((visibility("hidden")));
void slock_wake(struct slock *l) __attribute__((visibility("hidden")));
/* A lock taken outside a slow section: an allocator bug, aborts. */
void slock_outside(const struct slock *l)
	__attribute__((noreturn, visibility("hidden")));

/* ---- the fork gate (fork.c) ---- */

#define GATE_SHIFT   5
#define GATE_STRIPES (1U << GATE_SHIFT)

struct gate_stripe {
	unsigned long inside; /* threads in a slow section */
} __attribute__((aligned(64)));

extern struct gate_stripe slab_gate[GATE_STRIPES]
	__attribute__((visibility("hidden")));
/* Nonzero while a fork waits for quiescence, forever in a degraded child. */
extern int slab_gate_closed __attribute__((visibility("hidden")));
/* Lock-free stack of frees that could not enter a slow section. */
extern void *slab_deferred __attribute__((visibility("hidden")));
void slab_deferred_drain(void) __attribute__((visibility("hidden")));

static inline struct gate_stripe *gate_stripe_of(void)
{
	uint64_t a = (uint64_t)(uintptr_t)&slab_tls;

	/* Threads' TLS blocks are far apart: a multiplicative hash. */
	return &slab_gate[(a * 0x9e3779b97f4a7c15ULL) >> (64 - GATE_SHIFT)];
}

/*
 * Enter a slow section; 0 if the gate is closed (a fork is in progress, or
 * this is a degraded fork child): take no lock then. The stripe is counted
 * before the gate is read and the fork handler closes the gate before it
 * reads the stripes (both sequentially consistent): one of the two sees
 * the other.
 */
static inline int slow_enter(void)
{
	struct slab_tls *t = &slab_tls;
	struct gate_stripe *g;
	int e;

	if (t->slow) {
		t->slow++;
		return 1;
	}
	e = errno;
	g = gate_stripe_of();
	/*
	 * gating marks the instructions where this thread may be counted in
	 * its stripe while slow says otherwise: a fork from a signal handler
	 * that lands there cannot wait for itself (fork.c). A handler that
	 * allocates there enters a section of its own, counted on its own.
	 */
	t->gating++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_fetch_add(&g->inside, 1, __ATOMIC_SEQ_CST);
	if (__builtin_expect(__atomic_load_n(&slab_gate_closed,
					     __ATOMIC_SEQ_CST),
			     0)) {
		__atomic_fetch_sub(&g->inside, 1, __ATOMIC_RELEASE);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		t->gating--;
		return 0;
	}
	t->slow = 1;
	/* After slow: a handler landing here nests and leaves it alone. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t->saved_errno = e;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t->gating--;
	return 1;
}

static inline void slow_exit(void)
{
	struct slab_tls *t = &slab_tls;
	int e;

	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (t->slow > 1) {
		t->slow--;
		return;
	}
	e = t->saved_errno;
	t->gating++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t->slow = 0;
	__atomic_fetch_sub(&gate_stripe_of()->inside, 1, __ATOMIC_RELEASE);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t->gating--;
	if (__builtin_expect(!!__atomic_load_n(&slab_deferred,
					       __ATOMIC_RELAXED),
			     0) &&
	    !t->busy)
		slab_deferred_drain();
	errno = e;
}

/* The same, but wait while a fork is in progress; 0 in a degraded child. */
int slow_enter_wait(void) __attribute__((visibility("hidden")));
/* For an allocation: wait out a fork's prepare, then up to 10 ms; 0: libc. */
int slow_enter_alloc(void) __attribute__((visibility("hidden")));

/* ---- the lock ---- */

static inline void slock_init(struct slock *l)
{
	l->v = 0;
}

static inline void busy_inc(void)
{
	slab_tls.busy++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static inline void busy_dec(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	slab_tls.busy--;
}

static inline void slock_lock(struct slock *l)
{
	int c = 0;

	if (__builtin_expect(!slab_tls.slow, 0))
		slock_outside(l);
	busy_inc();
	if (__atomic_compare_exchange_n(&l->v, &c, 1, 0, __ATOMIC_ACQUIRE,
					__ATOMIC_RELAXED))
		return;
	slock_wait(l);
}

static inline int slock_trylock(struct slock *l)
{
	int c = 0;

	if (__builtin_expect(!slab_tls.slow, 0))
		slock_outside(l);
	busy_inc();
	if (__atomic_compare_exchange_n(&l->v, &c, 1, 0, __ATOMIC_ACQUIRE,
					__ATOMIC_RELAXED))
		return 1;
	busy_dec();
	return 0;
}

static inline void slock_unlock(struct slock *l)
{
	if (__atomic_exchange_n(&l->v, 0, __ATOMIC_RELEASE) == 2)
		slock_wake(l);
	busy_dec();
}

static inline int slock_held(const struct slock *l)
{
	return __atomic_load_n(&l->v, __ATOMIC_RELAXED) != 0;
}

#endif /* SLAB_LOCK_H */
