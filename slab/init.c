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
 *   cpu_cache=SIZE              objects one per-CPU or per-thread cache
 *                               may hold, in bytes (default 2m)
 *   cpu_idle_ms=N               give back per-CPU caches unused for N ms
 *                               (default 1000; 0: never)
 *   publish                     keep /dev/shm/slab-<pid> for slabinfo -p
 *   debug                       no per-CPU/per-thread stacks and no depot:
 *                               every free reaches its slab, so every
 *                               double free and every free of an object
 *                               that was never handed out is caught (slow;
 *                               the kernel's slab_debug=F)
 * SIZE takes k, m, g suffixes. Unknown or malformed options are reported
 * on stderr and ignored.
 *
 * Start-up runs from a constructor (before main(), while the process is
 * most likely single-threaded), or at the first allocation if that comes
 * earlier; the fork handlers (fork.c) are registered before it, and it
 * runs inside a slow section, so a fork never copies it half done.
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
	.cpu_cache = 2UL << 20,
	.cpu_idle_ms = 1000,
};
int slab_state;

static struct slock init_lock;
static __thread int in_init;

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

/* A plain number of milliseconds, at most an hour: no k/m/g suffix. */
static int parse_ms(const char *v, size_t len, size_t *out)
{
	if (!len || v[len - 1] < '0' || v[len - 1] > '9' ||
	    parse_size(v, len, out) || *out > 3600000)
		return -1;
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
		if (parse_size(v, vlen, &n) || n < ARENA_MIN_BYTES)
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
		if (parse_ms(v, vlen, &n))
			goto bad;
		slab_opt.purge_ms = (unsigned int)n;
	} else if (match(opt, klen, "cpu_idle_ms")) {
		if (parse_ms(v, vlen, &n))
			goto bad;
		slab_opt.cpu_idle_ms = (unsigned int)n;
	} else if (match(opt, klen, "cpu_cache")) {
		if (parse_size(v, vlen, &n) || n > (1UL << 30))
			goto bad;
		slab_opt.cpu_cache = n;
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
 * A program built with -fsanitize=address and linked with our flags:
 * ASan's malloc (which our __real_ calls reach) tracks every block, ours
 * would be invisible to it. Step aside: every request goes to ASan. Not
 * when slab itself is built with ASan (the unit tests check it so).
 */
#if !defined(__SANITIZE_ADDRESS__) && defined(__has_feature)
#if __has_feature(address_sanitizer)
#define __SANITIZE_ADDRESS__ 1
#endif
#endif
#ifndef __SANITIZE_ADDRESS__
extern void __asan_init(void) __attribute__((weak));
static int asan_program(void)
{
	return &__asan_init != NULL;
}
#else
static int asan_program(void)
{
	return 0;
}
#endif

static int start(void)
{
	if (asan_program()) {
		slab_warn(
			"AddressSanitizer in this program: slab steps aside, ASan's allocator serves every request");
		return -1;
	}
	parse_options();
	stats_init();
	if (kmalloc_init())
		return -1;
	if (pageheap_init(slab_opt.arena_size))
		return -1;
	return percpu_init();
}

/*
 * The fork handlers go in before the allocator ever takes a lock, so that
 * no fork can copy a start-up in progress. musl's pthread_atfork calls
 * malloc (ours, in a static link): in_init sends it to libc. While another
 * thread registers, this one is served by libc too rather than waiting.
 * 1: registered (or failed, with a warning); 0: not yet, use libc.
 */
static int atfork_ready(void)
{
	static int atfork; /* 0 not yet, 1 in progress, 2 done */
	unsigned long before, after;
	int z = 0;

	if (__atomic_load_n(&atfork, __ATOMIC_ACQUIRE) == 2)
		return 1;
	if (!__atomic_compare_exchange_n(&atfork, &z, 1, 0, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE))
		return z == 2;
	/*
	 * musl's pthread_atfork mallocs its record from libc (in_init):
	 * not a fallback the program should see counted.
	 */
	before = __atomic_load_n(&slab_libc_fallbacks, __ATOMIC_RELAXED);
	in_init = 1;
	if (fork_register())
		slab_warn(
			"pthread_atfork failed: a fork child may inherit a locked allocator");
	in_init = 0;
	after = __atomic_load_n(&slab_libc_fallbacks, __ATOMIC_RELAXED);
	if (after > before)
		__atomic_fetch_sub(&slab_libc_fallbacks, after - before,
				   __ATOMIC_RELAXED);
	__atomic_store_n(&atfork, 2, __ATOMIC_RELEASE);
	return 1;
}

int slab_init_slow(void)
{
	static int in_init_publish;
	int st = __atomic_load_n(&slab_state, __ATOMIC_ACQUIRE);

	if (st == SLAB_STATE_READY)
		return 1;
	if (st != SLAB_STATE_OFF || in_init || slab_tls.busy)
		return 0;
	if (!atfork_ready() || !slow_enter())
		return 0; /* libc serves this one */
	in_init = 1;
	slock_lock(&init_lock);
	if (slab_state == SLAB_STATE_OFF)
		__atomic_store_n(&slab_state,
				 start() ? SLAB_STATE_FAILED : SLAB_STATE_READY,
				 __ATOMIC_RELEASE);
	slock_unlock(&init_lock);
	in_init = 0;
	slow_exit();
	if (slab_state == SLAB_STATE_READY &&
	    !__atomic_exchange_n(&in_init_publish, 1, __ATOMIC_ACQ_REL))
		stats_started(); /* first publication, if asked */
	return slab_state == SLAB_STATE_READY;
}

/*
 * Start while the process is most likely single-threaded, before main():
 * start-up then never races with a fork, and the first malloc is cheap.
 */
__attribute__((constructor)) static void slab_start(void)
{
	slab_ready();
}

struct slock *init_lock_of(void)
{
	return &init_lock;
}

enum slab_rseq_mode slab_rseq_mode(const char **why)
{
	if (slab_state == SLAB_STATE_OFF)
		slab_ready();
	if (slab_state != SLAB_STATE_READY) {
		if (why)
			*why = slab_state == SLAB_STATE_DEGRADED ?
				       slab_degraded_why :
				       "allocator not running";
		return SLAB_RSEQ_UNINIT;
	}
	return percpu_mode(why);
}

static void validate_one(struct kmem_cache *s, void *arg)
{
	(void)arg;
	cache_validate(s);
}

static void shrink_one(struct kmem_cache *s, void *arg)
{
	(void)arg;
	cache_shrink(s);
}

void slab_validate(void)
{
	if (slab_state != SLAB_STATE_READY)
		return;
	if (!slow_enter_alloc())
		return;
	pageheap_validate();
	caches_for_each(validate_one, NULL, 1);
	slow_exit();
}

int slab_trim(void)
{
	struct pageheap_stats before, after;
	unsigned long objs;

	if (slab_state != SLAB_STATE_READY || slab_tls.busy)
		return 0;
	if (!slow_enter_alloc())
		return 0;
	pageheap_get_stats(&before);
	objs = percpu_trim();
	slab_large_release();
	caches_for_each(shrink_one, NULL, 1);
	pageheap_purge(1);
	pageheap_get_stats(&after);
	slow_exit();
	return objs || after.purged_bytes != before.purged_bytes;
}
