// SPDX-License-Identifier: MIT
/*
 * init.c - start-up on the first allocation, run-time options, fork.
 *
 * The first call into the allocator (from any thread) runs slab_init_slow()
 * under init_lock. Anything the start-up itself allocates (musl's
 * pthread_atfork calls malloc, which the static link wraps) sees either a
 * ready allocator or, while we are still inside, returns NULL so that the
 * wrapper falls back to libc.
 *
 * Options: SLAB_OPTIONS="opt,opt=value,..." read once at start:
 *   rseq=auto|on|off|fake|cpu   per-CPU layer (cpu: index by cpu_id even
 *                               where mm_cid is available)
 *   arena=SIZE                  address space to reserve (default 64g)
 *   dirty_max=SIZE              free resident memory kept (default 16m)
 *   purge_ms=N                  purge free memory older than N ms (1000)
 *   publish                     keep /dev/shm/slab-<pid> for slabinfo -p
 *   debug                       no per-CPU/per-thread stacks and no depot:
 *                               every free reaches its slab, so every
 *                               double free and every free of an object
 *                               that was never handed out is caught (slow;
 *                               the kernel's slab_debug=F)
 * SIZE takes k, m, g suffixes. Unknown or malformed options are reported
 * on stderr and ignored.
 *
 * Fork: the prepare handler takes every lock in lock order, so the child
 * starts consistent. If fork() is called by a signal handler that
 * interrupted this very thread inside the allocator (slab_tls.busy), we
 * cannot take locks it may hold; the child is then DEGRADED: it never takes
 * a lock again, serves new memory from libc and leaks frees of our objects
 * that miss the per-CPU stacks. The parent is unaffected.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "slab.h"

struct slab_options slab_opt = {
	.rseq = RSEQ_OPT_AUTO,
	.arena_size = 64UL << 30,
	.dirty_max = 16UL << 20,
	.purge_ms = 1000,
};
int slab_state;

static struct slock init_lock;
static __thread int in_init;
#define FORK_LOCK_MS 100

/*
 * Per thread: glibc may run the fork handlers of two forking threads at
 * the same time, and each parent handler must undo its own prepare.
 */
static __thread int fork_inside;           /* prepare found this thread busy */
static __thread unsigned long fork_locked; /* locks prepare took */

static int parse_size(const char *v, size_t len, size_t *out)
{
	size_t n = 0, i;
	unsigned int shift = 0;

	if (!len)
		return -1;
	for (i = 0; i < len && v[i] >= '0' && v[i] <= '9'; i++) {
		if (n > (SIZE_MAX - 9) / 10)
			return -1;
		n = n * 10 + (size_t)(v[i] - '0');
	}
	if (!i)
		return -1;
	if (i < len) {
		switch (v[i] | 0x20) {
		case 'k':
			shift = 10;
			break;
		case 'm':
			shift = 20;
			break;
		case 'g':
			shift = 30;
			break;
		default:
			return -1;
		}
		if (i + 1 != len)
			return -1;
	}
	if (n > SIZE_MAX >> shift)
		return -1;
	*out = n << shift;
	return 0;
}

static int match(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && !memcmp(s, word, len);
}

static void parse_option(const char *opt, size_t len)
{
	const char *eq = memchr(opt, '=', len);
	size_t klen = eq ? (size_t)(eq - opt) : len;
	const char *v = eq ? eq + 1 : "";
	size_t vlen = eq ? len - klen - 1 : 0, n;

	if (match(opt, klen, "rseq")) {
		if (match(v, vlen, "auto") || match(v, vlen, "on"))
			slab_opt.rseq = RSEQ_OPT_AUTO;
		else if (match(v, vlen, "off"))
			slab_opt.rseq = RSEQ_OPT_OFF;
		else if (match(v, vlen, "fake"))
			slab_opt.rseq = RSEQ_OPT_FAKE;
		else if (match(v, vlen, "cpu"))
			slab_opt.rseq = RSEQ_OPT_CPU;
		else
			goto bad;
	} else if (match(opt, klen, "arena")) {
		if (parse_size(v, vlen, &n) || n < (256UL << 20))
			goto bad;
		slab_opt.arena_size = n;
	} else if (match(opt, klen, "dirty_max")) {
		if (parse_size(v, vlen, &n))
			goto bad;
		slab_opt.dirty_max = n;
	} else if (match(opt, klen, "debug")) {
		if (vlen && !match(v, vlen, "1") && !match(v, vlen, "on"))
			goto bad;
		slab_opt.debug = 1;
	} else if (match(opt, klen, "publish")) {
		if (match(v, vlen, "0") || match(v, vlen, "off"))
			slab_opt.publish = 0;
		else if (!vlen || match(v, vlen, "1") || match(v, vlen, "on"))
			slab_opt.publish = 1;
		else
			goto bad;
	} else if (match(opt, klen, "purge_ms")) {
		/* A plain number of milliseconds: no k/m/g suffix here. */
		if (!vlen || (v[vlen - 1] < '0' || v[vlen - 1] > '9') ||
		    parse_size(v, vlen, &n) || n > 3600000)
			goto bad;
		slab_opt.purge_ms = (unsigned int)n;
	} else {
		slab_warn("SLAB_OPTIONS: unknown option '%.*s' ignored",
			  (int)len, opt);
	}
	return;
bad:
	slab_warn("SLAB_OPTIONS: bad value in '%.*s' ignored", (int)len, opt);
}

static void parse_options(void)
{
	const char *s = getenv("SLAB_OPTIONS"), *e;

	if (!s)
		return;
	while (*s) {
		e = strchr(s, ',');
		if (!e)
			e = s + strlen(s);
		if (e > s)
			parse_option(s, (size_t)(e - s));
		s = *e ? e + 1 : e;
	}
}

/*
 * Every lock in lock order: caches_lock, named caches, kmalloc caches,
 * tcache_lock, the page heap, metadata. Calls @fn on the first @max of
 * them and stops early when it returns nonzero; returns how many it
 * visited. The named cache list is walked under caches_lock, which the
 * callers hold (or are about to release last).
 */
static unsigned long for_each_lock(int (*fn)(struct slock *, void *), void *arg,
				   unsigned long max)
{
	struct slock *tail[3] = { tcache_lock_of(), pageheap_lock_of(),
				  meta_lock_of() };
	struct kmem_cache *s;
	unsigned long n = 0;
	unsigned int i;

	if (n == max || fn(&caches_lock, arg))
		return n;
	for (n++, s = named_caches; s; s = s->next_named, n++)
		if (n == max || fn(&s->lock, arg))
			return n;
	for (i = 0; i < NR_KMALLOC; i++, n++)
		if (n == max || fn(&kmalloc_caches[i].lock, arg))
			return n;
	for (i = 0; i < 3; i++, n++)
		if (n == max || fn(tail[i], arg))
			return n;
	return n;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * Take one lock, but give up at the deadline: the holder may be a thread
 * that is itself stuck in fork() (from a signal handler that interrupted
 * it inside the allocator) waiting for libc's fork lock, which our caller
 * holds. Blocking would deadlock both.
 */
struct try_lock {
	uint64_t deadline;
	int failed;
};

static int try_lock(struct slock *l, void *arg)
{
	struct try_lock *t = arg;

	while (!slock_trylock(l)) {
		if (mono_ms() > t->deadline) {
			t->failed = 1;
			return 1;
		}
		sched_yield();
	}
	return 0;
}

static int unlock_parent(struct slock *l, void *arg)
{
	(void)arg;
	if (l != &caches_lock) /* last: it guards the walk */
		slock_unlock(l);
	return 0;
}

static int unlock_child(struct slock *l, void *arg)
{
	(void)arg;
	slock_fork_child(l);
	return 0;
}

static void release(unsigned long n, int child)
{
	for_each_lock(child ? unlock_child : unlock_parent, NULL, n);
	if (!child && n)
		slock_unlock(&caches_lock);
}

static void fork_prepare(void)
{
	struct try_lock t = { 0, 0 };
	unsigned long got;

	if (slab_state != SLAB_STATE_READY)
		return;
	if (slab_tls.busy) {
		fork_inside = 1;
		return;
	}
	t.deadline = mono_ms() + FORK_LOCK_MS;
	got = for_each_lock(try_lock, &t, ~0UL);
	if (t.failed) {
		release(got, 0);
		fork_inside = 1; /* degraded child, no deadlock */
		return;
	}
	fork_locked = got;
}

static void fork_done(int child)
{
	if (child)
		stats_fork_child();
	if (fork_inside) {
		fork_inside = 0;
		if (child)
			__atomic_store_n(&slab_state, SLAB_STATE_DEGRADED,
					 __ATOMIC_RELEASE);
		return;
	}
	if (!fork_locked)
		return;
	release(fork_locked, child);
	fork_locked = 0;
}

static void fork_parent(void)
{
	fork_done(0);
}

static void fork_child(void)
{
	/*
	 * The handlers exist only once the allocator is READY (a degraded
	 * child that forks again is DEGRADED): OFF, or an empty class table,
	 * means the child did not get the parent's memory as it was.
	 */
	if (__atomic_load_n(&slab_state, __ATOMIC_ACQUIRE) == SLAB_STATE_OFF ||
	    !kmalloc_size[NR_KMALLOC - 1])
		slab_bug("fork child: the allocator's state is not the parent's (state %d, largest class %u): memory lost across fork()",
			 slab_state, kmalloc_size[NR_KMALLOC - 1]);
	fork_done(1);
}

static int start(void)
{
	parse_options();
	stats_init();
	if (kmalloc_init())
		return -1;
	if (pageheap_init(slab_opt.arena_size))
		return -1;
	return percpu_init();
}

int slab_init_slow(void)
{
	static int atfork_done, in_init_publish;
	int st = __atomic_load_n(&slab_state, __ATOMIC_ACQUIRE);

	if (st == SLAB_STATE_READY)
		return 1;
	if (st != SLAB_STATE_OFF || in_init)
		return 0;
	in_init = 1;
	slock_lock(&init_lock);
	if (slab_state == SLAB_STATE_OFF)
		__atomic_store_n(&slab_state,
				 start() ? SLAB_STATE_FAILED : SLAB_STATE_READY,
				 __ATOMIC_RELEASE);
	slock_unlock(&init_lock);
	/* May allocate (musl): after READY, and outside init_lock. */
	if (slab_state == SLAB_STATE_READY &&
	    !__atomic_exchange_n(&atfork_done, 1, __ATOMIC_ACQ_REL) &&
	    pthread_atfork(fork_prepare, fork_parent, fork_child))
		slab_warn(
			"pthread_atfork failed: fork from threads may deadlock");
	if (slab_state == SLAB_STATE_READY &&
	    !__atomic_exchange_n(&in_init_publish, 1, __ATOMIC_ACQ_REL))
		stats_started(); /* first publication, if asked */
	in_init = 0;
	return slab_state == SLAB_STATE_READY;
}

enum slab_rseq_mode slab_rseq_mode(const char **why)
{
	if (slab_state == SLAB_STATE_OFF)
		slab_ready();
	if (slab_state != SLAB_STATE_READY) {
		if (why)
			*why = slab_state == SLAB_STATE_DEGRADED ?
				       "fork child of a thread inside the allocator" :
				       "allocator not running";
		return SLAB_RSEQ_UNINIT;
	}
	return percpu_mode(why);
}

void slab_validate(void)
{
	struct kmem_cache *s;
	unsigned int i;

	if (slab_state != SLAB_STATE_READY)
		return;
	pageheap_validate();
	for (i = 0; i < NR_KMALLOC; i++)
		cache_validate(&kmalloc_caches[i]);
	slock_lock(&caches_lock);
	for (s = named_caches; s; s = s->next_named)
		cache_validate(s);
	slock_unlock(&caches_lock);
}
