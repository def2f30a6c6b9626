// SPDX-License-Identifier: MIT
/*
 * fork.c - fork safety: the slow-section gate, deferred frees and the
 * pthread_atfork handlers.
 *
 * The gate (lock.h): every lock of ours is taken inside a slow section,
 * and each thread in one is counted in a stripe of slab_gate. The prepare
 * handler closes the gate, then waits until every stripe reads zero. From
 * then until the fork returns, no thread is inside the allocator and none
 * can enter: every lock is free, every structure consistent, and the
 * forking thread holds no lock of ours while libc's fork() takes its own
 * (stdio's list lock, then its malloc's). A thread that meets the closed
 * gate never waits for the fork, so a thread that holds a FILE lock and
 * allocates cannot close a cycle with fflush(NULL) and fork(): malloc is
 * served by libc's allocator (fork() orders its locks itself) and frees
 * are pushed on a lock-free list, drained after the fork.
 *
 * The wait ends at a deadline: a thread inside the allocator may itself be
 * in fork() from a signal handler, waiting for libc's atfork lock that our
 * caller holds, or be stopped or starved of CPU. The child is then
 * degraded: it never enters a slow section again (the gate stays closed),
 * serves new memory from libc and leaks the frees that miss the per-CPU
 * stacks. So is the child of a thread that forks from a signal handler
 * that interrupted it inside a slow section. The parent is never affected.
 *
 * The handlers are registered before the allocator starts (init.c), so no
 * fork can copy a half-done start-up: prepare closes the gate, and
 * start-up runs inside a slow section like everything else.
 */
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "slab.h"

#define FORK_WAIT_MS       100
#define FORK_ALLOC_WAIT_MS 10

struct gate_stripe slab_gate[GATE_STRIPES];
int slab_gate_closed;
void *slab_deferred;
const char *slab_degraded_why = "";
static int fork_closing; /* prepare handlers still waiting for quiescence */
static unsigned long fork_gen; /* gates closed so far */

/*
 * Per thread, glibc may run the handlers of two forking threads at once;
 * and per fork: a signal handler may fork while this thread is inside
 * fork() already (fork2 in selftests/stress/fork_signal.c). Handlers run
 * in LIFO order in one thread, so a stack of prepares suffices.
 */
#define FORK_NEST 8
struct fork_level {
	int closed;          /* prepare closed the gate */
	const char *degrade; /* why the child is degraded; NULL: it is not */
};
static __thread struct fork_level fork_stack[FORK_NEST];
static __thread unsigned int fork_depth;

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static unsigned long gate_inside(void)
{
	unsigned long n = 0;
	unsigned int i;

	for (i = 0; i < GATE_STRIPES; i++)
		n += __atomic_load_n(&slab_gate[i].inside, __ATOMIC_SEQ_CST);
	return n;
}

/*
 * For an allocation that libc can serve instead: wait a little for a fork
 * to finish (forks are quick; libc's allocator is not async-signal-safe
 * in a thread that a signal handler forks from), but not for ever: this
 * thread may hold a FILE lock that the fork waits for (fork.c, top).
 */
int slow_enter_alloc(void)
{
	static __thread unsigned long gave_up; /* fork_gen + 1 */
	uint64_t deadline = 0;

	for (;;) {
		if (slow_enter())
			return 1;
		if (__atomic_load_n(&slab_state, __ATOMIC_ACQUIRE) !=
			    SLAB_STATE_READY ||
		    fork_depth)
			return 0; /* fork_depth: a handler on the forking thread */
		/*
		 * While a prepare handler waits for quiescence (at most
		 * FORK_WAIT_MS) no cycle through this thread is possible:
		 * wait. The clock starts once the forker is in libc's fork().
		 */
		if (__atomic_load_n(&fork_closing, __ATOMIC_ACQUIRE)) {
			deadline = 0;
		} else if (gave_up ==
			   __atomic_load_n(&fork_gen, __ATOMIC_RELAXED) + 1) {
			return 0; /* gave up on this fork already */
		} else if (!deadline) {
			deadline = mono_ms() + FORK_ALLOC_WAIT_MS;
		} else if (mono_ms() > deadline) {
			gave_up = __atomic_load_n(&fork_gen, __ATOMIC_RELAXED) +
				  1;
			return 0;
		}
		sched_yield();
	}
}

int slow_enter_wait(void)
{
	for (;;) {
		if (slow_enter())
			return 1;
		if (__atomic_load_n(&slab_state, __ATOMIC_ACQUIRE) ==
			    SLAB_STATE_DEGRADED ||
		    fork_depth)
			return 0;
		sched_yield();
	}
}

/*
 * Free @p (an arena pointer the program freed) later: the gate is closed
 * or a signal handler interrupted this thread inside the allocator. Its
 * first word links the list; a push is one compare-and-swap, safe in a
 * signal handler. Nothing is checked here: the drain frees it normally.
 */
void slab_defer_free(void *p)
{
	void *old = __atomic_load_n(&slab_deferred, __ATOMIC_RELAXED);

	do
		*(void **)p = old;
	while (!__atomic_compare_exchange_n(&slab_deferred, &old, p, 1,
					    __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED));
}

/*
 * Out of line here: gcc 12's UBSan reported a null slab_tls in the copy
 * of slow_enter()/slow_exit() inlined into slab_deferred_drain() (the
 * address is the thread's TLS block, never null; not seen elsewhere).
 */
static __attribute__((noinline)) int slow_enter_noinline(void)
{
	return slow_enter();
}

static __attribute__((noinline)) void slow_exit_noinline(void)
{
	slow_exit();
}

/*
 * One deferred free, inside a slow section. A kmalloc object is checked
 * for a double free in full (the fast path could not: another copy of
 * it may have been cached meanwhile, or be later on this list). A named
 * cache's object gets back what the link overwrote: its constructed
 * state, or its poison.
 */
static void deferred_free_one(void *p)
{
	struct slab *sl = virt_to_slab(p);
	struct kmem_cache *s;

	if (sl && sl->kind == SPAN_SLAB && span_contains(sl, p)) {
		s = sl->cache;
		if (sl->fast_end && slab_obj_index(sl, p) >= 0 &&
		    ((uint64_t *)p)[1] == slab_fast.free_key)
			slab_double_free_check(sl, p);
		else if (s->slot < 0 && s->ctor)
			s->ctor(p);
		else if (s->slot < 0 && (s->flags & SLAB_POISON))
			memset(p, 0x6b, sizeof(void *));
	}
	slab_free_arena(p);
}

void slab_deferred_drain(void)
{
	void *p, *next;

	if (slab_tls.draining || slab_tls.busy ||
	    __atomic_load_n(&slab_state, __ATOMIC_ACQUIRE) != SLAB_STATE_READY)
		return;
	if (!slow_enter_noinline())
		return;
	slab_tls.draining = 1;
	while ((p = __atomic_exchange_n(&slab_deferred, NULL,
					__ATOMIC_ACQUIRE))) {
		for (; p; p = next) {
			next = *(void **)p;
			if (next == p)
				slab_misuse("double free of %p (freed twice while a fork was in progress)",
					    p);
			deferred_free_one(p);
		}
	}
	slab_tls.draining = 0;
	slow_exit_noinline();
}

/*
 * Every global lock, for the child's check: init_lock, caches_lock,
 * drain_lock, tcache_lock, the page heap, metadata, named caches, kmalloc
 * caches (not the per-thread regions' drain locks). Returns the first one
 * held, NULL if none.
 */
static struct slock *held_lock(void)
{
	struct slock *tail[] = { init_lock_of(),     &caches_lock,
				 drain_lock_of(),    tcache_lock_of(),
				 pageheap_lock_of(), meta_lock_of() };
	struct kmem_cache *s;
	unsigned int i;

	for (i = 0; i < sizeof(tail) / sizeof(tail[0]); i++)
		if (slock_held(tail[i]))
			return tail[i];
	for (s = named_caches; s; s = s->next_named)
		if (slock_held(&s->lock))
			return &s->lock;
	for (i = 0; i < NR_KMALLOC; i++)
		if (slock_held(&kmalloc_caches[i].lock))
			return &kmalloc_caches[i].lock;
	return NULL;
}

static void fork_prepare(void)
{
	struct fork_level *f = &fork_stack[fork_depth < FORK_NEST ?
						   fork_depth :
						   FORK_NEST - 1];
	uint64_t deadline;

	fork_depth++;
	f->closed = 0;
	f->degrade = NULL;
	if (__atomic_load_n(&slab_state, __ATOMIC_ACQUIRE) ==
	    SLAB_STATE_DEGRADED)
		return; /* the gate is closed for good */
	if (slab_tls.slow || slab_tls.gating || fork_depth > FORK_NEST) {
		/* fork() from a signal handler that interrupted us inside. */
		f->degrade = "fork child of a thread inside the allocator";
		return;
	}
	__atomic_fetch_add(&fork_gen, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&fork_closing, 1, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&slab_gate_closed, 1, __ATOMIC_SEQ_CST);
	f->closed = 1;
	deadline = mono_ms() + FORK_WAIT_MS;
	while (gate_inside()) {
		if (mono_ms() > deadline) {
			f->degrade = "fork child: the fork handler timed out waiting for threads inside the allocator (stopped, starved of CPU, or forking from a signal handler)";
			break;
		}
		sched_yield();
	}
	__atomic_fetch_sub(&fork_closing, 1, __ATOMIC_SEQ_CST);
}

/* The level prepare pushed, popped. */
static struct fork_level fork_pop(void)
{
	struct fork_level f = { 0, NULL };

	if (!fork_depth)
		return f; /* handlers registered during this fork */
	fork_depth--;
	if (fork_depth < FORK_NEST)
		f = fork_stack[fork_depth];
	return f;
}

static void fork_parent(void)
{
	struct fork_level f = fork_pop();

	if (f.closed)
		__atomic_fetch_sub(&slab_gate_closed, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&slab_deferred, __ATOMIC_RELAXED))
		slab_deferred_drain();
}

static void fork_child(void)
{
	struct fork_level f = fork_pop();
	struct slock *l;
	int st = __atomic_load_n(&slab_state, __ATOMIC_ACQUIRE);

	stats_fork_child();
	/* Only this thread is left: its outer forks have no other child. */
	if (f.degrade || st == SLAB_STATE_DEGRADED || fork_depth) {
		slab_degraded_why = f.degrade ?
					    f.degrade :
				    fork_depth ?
					    "fork child of a thread inside fork()" :
					    slab_degraded_why;
		__atomic_store_n(&slab_gate_closed, 1, __ATOMIC_SEQ_CST);
		if (st == SLAB_STATE_READY)
			__atomic_store_n(&slab_state, SLAB_STATE_DEGRADED,
					 __ATOMIC_RELEASE);
		else if (st == SLAB_STATE_OFF)
			__atomic_store_n(&slab_state, SLAB_STATE_FAILED,
					 __ATOMIC_RELEASE);
		return;
	}
	/*
	 * One thread now, and it was not inside: the other threads' marks
	 * (some may have been between counting and reading the gate) are
	 * gone with them, and every lock must be free.
	 */
	memset(slab_gate, 0, sizeof(slab_gate));
	fork_closing = 0;
	l = held_lock();
	if (l)
		slab_bug("fork child: lock %p held although no thread was inside the allocator",
			 (void *)l);
	if (st == SLAB_STATE_READY && !kmalloc_caches[NR_KMALLOC - 1].size)
		slab_bug("fork child: the allocator's state is not the parent's (largest class %u)",
			 kmalloc_caches[NR_KMALLOC - 1].size);
	__atomic_store_n(&slab_gate_closed, 0, __ATOMIC_SEQ_CST);
	/*
	 * The per-thread stacks and kept runs of the threads that did not
	 * survive stay as they are, lost: they are not gated (a push or pop
	 * may be half done in the copy), and handing their objects out again
	 * gave one object two owners. glibc leaves its tcaches so too.
	 */
	if (__atomic_load_n(&slab_deferred, __ATOMIC_RELAXED))
		slab_deferred_drain();
}

int fork_register(void)
{
	return pthread_atfork(fork_prepare, fork_parent, fork_child);
}
