/* SPDX-License-Identifier: MIT */
/*
 * lock.h - a small futex lock for slow paths (never on the rseq fast path).
 *
 * States: 0 free, 1 locked, 2 locked and maybe waiters. No allocation, no
 * libc dependency beyond syscall(), safe to re-initialise in a fork child.
 * Each lock taken by a thread is counted in slab_tls.busy so that fork
 * handlers and signal re-entry can tell that this thread is inside us.
 */
#ifndef SLAB_LOCK_H
#define SLAB_LOCK_H

#include "types.h"

extern __thread struct slab_tls slab_tls __attribute__((visibility("hidden")));

void slock_wait(struct slock *l);
void slock_wake(struct slock *l);

static inline void slock_init(struct slock *l)
{
	l->v = 0;
}

static inline void slock_lock(struct slock *l)
{
	int c = 0;

	slab_tls.busy++;
	if (__atomic_compare_exchange_n(&l->v, &c, 1, 0, __ATOMIC_ACQUIRE,
					__ATOMIC_RELAXED))
		return;
	slock_wait(l);
}

static inline int slock_trylock(struct slock *l)
{
	int c = 0;

	if (!__atomic_compare_exchange_n(&l->v, &c, 1, 0, __ATOMIC_ACQUIRE,
					 __ATOMIC_RELAXED))
		return 0;
	slab_tls.busy++;
	return 1;
}

static inline void slock_unlock(struct slock *l)
{
	if (__atomic_exchange_n(&l->v, 0, __ATOMIC_RELEASE) == 2)
		slock_wake(l);
	slab_tls.busy--;
}

/* In a fork child: the lock was taken by the prepare handler; reset it. */
static inline void slock_fork_child(struct slock *l)
{
	l->v = 0;
	slab_tls.busy--;
}

static inline int slock_held(const struct slock *l)
{
	return __atomic_load_n(&l->v, __ATOMIC_RELAXED) != 0;
}

#endif /* SLAB_LOCK_H */
