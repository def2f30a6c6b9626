/* SPDX-License-Identifier: MIT */
/*
 * internal.h - contracts between the layers of slab, grouped by file.
 * Types live in types.h; libc specifics in glue.h; rseq asm in rseq.h.
 */
#ifndef SLAB_INTERNAL_H
#define SLAB_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "types.h"
#include "rseq.h"
#include "lock.h"

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define __hidden    __attribute__((visibility("hidden")))
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#define __noreturn     __attribute__((noreturn))
#define __printf(a, b) __attribute__((format(printf, a, b)))

#ifndef SLAB_DEBUG
#define SLAB_DEBUG 0
#endif

/* A 64-bit finaliser (splitmix64): secrets and hints from AT_RANDOM. */
static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* ---- init.c: start-up, options, fork handlers ---- */

struct slab_options {
	int rseq;              /* RSEQ_OPT_* */
	size_t arena_size;     /* bytes to reserve */
	size_t dirty_max;      /* free resident bytes kept before purging */
	unsigned int purge_ms; /* age after which free pages are purged */
	size_t cpu_cache;      /* bytes of objects a per-CPU cache may hold */
	unsigned int cpu_idle_ms; /* drain per-CPU caches idle this long */
	int publish;              /* keep /dev/shm/slab-<pid> up to date */
	int debug; /* no object caching: every free checked at its slab */
};
enum { RSEQ_OPT_AUTO, RSEQ_OPT_OFF, RSEQ_OPT_FAKE, RSEQ_OPT_CPU };

extern struct slab_options slab_opt __hidden;
/* 1 once the allocator is usable; 2 in a fork child that must not use it. */
extern int slab_state __hidden;
enum {
	SLAB_STATE_OFF = 0,
	SLAB_STATE_READY = 1,
	SLAB_STATE_DEGRADED = 2,
	SLAB_STATE_FAILED = 3
};

/* Start the allocator if needed. Returns 1 if it can serve requests. */
int slab_init_slow(void) __hidden;
struct slock *init_lock_of(void) __hidden;

/* ---- fork.c: the fork gate (see lock.h), deferred frees, handlers ---- */

/* Why a degraded fork child is degraded (for slab_rseq_mode()). */
extern const char *slab_degraded_why __hidden;
/* Register the pthread_atfork handlers; nonzero on failure. */
int fork_register(void) __hidden;
/* Free arena pointer @p later (gate closed, or inside a signal handler). */
void slab_defer_free(void *p) __hidden;
static inline int slab_ready(void)
{
	return likely(__atomic_load_n(&slab_state, __ATOMIC_ACQUIRE) ==
		      SLAB_STATE_READY) ||
	       slab_init_slow();
}

/* ---- stats.c: statistics, dumps, the published file ---- */

extern unsigned long slab_libc_fallbacks __hidden;
/* free() of a block of libc's (not in the arena), handed to libc. */
extern unsigned long slab_foreign_frees __hidden;
/* A request that libc's allocator served because we could not. */
static inline void slab_count_fallback(void)
{
	__atomic_fetch_add(&slab_libc_fallbacks, 1, __ATOMIC_RELAXED);
}
void stats_init(void) __hidden;
void stats_started(void) __hidden;
void stats_publish(int force) __hidden;
void stats_fork_child(void) __hidden;
static inline void stats_tick(void)
{
	if (unlikely(slab_opt.publish))
		stats_publish(0);
}

/*
 * A request no allocator can serve: more than a process's default address
 * space (128 TiB on x86-64 and aarch64). Refused with ENOMEM here rather
 * than handed to libc's malloc, which fails as well (and whose checkers,
 * ASan's allocator, warn on stderr).
 */
#define SLAB_SIZE_IMPOSSIBLE (1UL << 47)

/* ---- report.c: every message the allocator prints ---- */

/* An allocator bug (corrupted metadata): message + abort(). */
void slab_bug(const char *fmt, ...) __printf(1, 2) __noreturn __hidden;
/* Misuse by the program (bad free ...): message + abort(). */
void slab_misuse(const char *fmt, ...) __printf(1, 2) __noreturn __hidden;
/* Run-time condition worth knowing (fallback taken ...). */
void slab_warn(const char *fmt, ...) __printf(1, 2) __hidden;
#define SLAB_BUG_ON(cond)                                                 \
	do {                                                              \
		if (unlikely(cond))                                       \
			slab_bug("%s:%d: %s", __FILE__, __LINE__, #cond); \
	} while (0)

/* ---- meta.c: out-of-band metadata ---- */

/* Zeroed, 64-byte aligned memory that is never freed. NULL: no memory. */
void *meta_alloc(size_t size) __hidden;
struct slock *meta_lock_of(void) __hidden;

/* ---- pageheap.c: the arena, the pagemap and page runs ---- */

struct slab_arena {
	uintptr_t base;        /* 0 until reserved: no pointer is ours */
	size_t size;           /* bytes reserved */
	struct slab **pagemap; /* one entry per arena page */
};
extern struct slab_arena slab_arena __hidden;

struct pageheap_stats {
	size_t committed; /* bytes made accessible (mprotect) */
	size_t frontier;  /* bytes handed out at least once */
	size_t free_bytes, dirty_bytes;
	size_t large_bytes; /* in SPAN_LARGE runs (SPAN_KEPT too in ph) */
	unsigned long large_nr;
	size_t kept_bytes; /* SPAN_KEPT runs (stats only) */
	unsigned long kept_nr;
	size_t purged_bytes;      /* given back to the OS, cumulative */
	size_t dirty_limit;       /* dirty_max, or what reuse taught */
	unsigned long extensions; /* arena grown in place (RLIMIT_AS) */
};

/* Smallest arena (and arena= option) accepted. */
#define ARENA_MIN_BYTES (4UL << 20)
/* Reserve the arena: at most @size bytes, fewer under RLIMIT_AS. */
int pageheap_init(size_t size) __hidden;
/*
 * A run of @npages pages whose start is aligned to @align_pages (a power of
 * two), typed @kind (SPAN_SLAB maps every page, SPAN_LARGE first and last).
 * NULL when the arena is exhausted or the OS refuses memory.
 */
struct slab *pageheap_alloc(size_t npages, size_t align_pages,
			    int kind) __hidden;
/* Give a run back; it may be purged (MADV_DONTNEED) now or later. */
void pageheap_free(struct slab *s) __hidden;
/* Shrink a SPAN_LARGE run in place to @npages (>= 1). */
void pageheap_shrink(struct slab *s, size_t npages) __hidden;
/* Grow a SPAN_LARGE run in place if the pages after it are free. */
int pageheap_grow(struct slab *s, size_t npages) __hidden;
/*
 * Mark large run @s (freed by its owner) SPAN_KEPT for a thread to reuse,
 * if it is small enough and the kept total stays within bounds; 0: not
 * kept, free it. pageheap_unkeep() makes a kept run SPAN_LARGE again.
 */
int pageheap_keep(struct slab *s) __hidden;
void pageheap_unkeep(struct slab *s) __hidden;
/* Purge free dirty runs: all of them, or those older than purge_ms. */
void pageheap_purge(int all) __hidden;
/* Purge aged runs if any; cheap, called from slow paths. */
void pageheap_tick(void) __hidden;
void pageheap_get_stats(struct pageheap_stats *st) __hidden;
/* Without the lock, for a signal handler: figures may be inconsistent. */
void pageheap_peek_stats(struct pageheap_stats *st) __hidden;
void pageheap_validate(void) __hidden;
struct slock *pageheap_lock_of(void) __hidden;

/*
 * virt_to_slab - the descriptor of the run holding @p, or NULL when @p is
 * not in the arena. The caller checks kind and range (stale entries).
 */
static __always_inline struct slab *virt_to_slab(const void *p)
{
	uintptr_t off = (uintptr_t)p - slab_arena.base;

	if (unlikely(off >= slab_arena.size))
		return NULL;
	return slab_arena.pagemap[off >> PAGE_SHIFT];
}

static __always_inline int in_arena(const void *p)
{
	return (uintptr_t)p - slab_arena.base < slab_arena.size;
}

static __always_inline int span_contains(const struct slab *s, const void *p)
{
	return (uintptr_t)p - s->start < ((uintptr_t)s->npages << PAGE_SHIFT);
}

/* ---- sizeclass: size -> kmalloc class ---- */

extern uint32_t kmalloc_size[NR_KMALLOC] __hidden;

/* Class of sizes 0..1024 by (size + 15) / 16: one load. */
extern const uint8_t kmalloc_index_small[1024 / 16 + 1] __hidden;

/* Class index for 0 <= size <= KMALLOC_MAX. */
static __always_inline unsigned int size_to_class(size_t size)
{
	unsigned int k, shift;

	if (likely(size <= 1024))
		return kmalloc_index_small[(size + 15) >> 4];
	k = 63 - (unsigned int)__builtin_clzl(size - 1); /* 2^k < size */
	shift = k - 3;
	return (k - 7) * 8 + (unsigned int)((size - 1) >> shift);
}

/* ---- slab.c: kmem_cache, slabs, depot ---- */

extern struct kmem_cache kmalloc_caches[NR_KMALLOC] __hidden;
extern struct slock caches_lock __hidden; /* named cache list */
extern struct kmem_cache *named_caches __hidden;

int kmalloc_init(void) __hidden;
/* One kmalloc class as a constant (slab/kmalloc_table.c, generated). */
struct kmalloc_class {
	uint32_t size;
	uint16_t npages, nobj;
	char name[16];
};
extern const struct kmalloc_class kmalloc_table[NR_KMALLOC] __hidden;
/* Pages and objects per slab for objects of @size. */
void slab_geometry(size_t size, uint16_t *npages, uint16_t *nobj) __hidden;
/* Set up @s for objects of @size bytes; slot -1: no per-CPU layer. */
int cache_setup(struct kmem_cache *s, const char *name, size_t size,
		unsigned int flags, void (*ctor)(void *), int slot) __hidden;
/* Take up to @n free objects (locked). Returns how many (0: no memory). */
unsigned long cache_refill(struct kmem_cache *s, void **out,
			   unsigned long n) __hidden;
/* Return @n objects (locked); detects double frees as they reach a slab. */
void cache_drain(struct kmem_cache *s, void **objs, unsigned long n) __hidden;
/* The same, straight to the slabs (not the depot): their pages may go. */
void cache_release(struct kmem_cache *s, void **objs, unsigned long n) __hidden;
/* Give @s's empty slabs back to the page heap (no lock if it has none). */
void cache_trim_empty(struct kmem_cache *s) __hidden;
/* Give empty slabs and the depot back to the page heap. */
void cache_shrink(struct kmem_cache *s) __hidden;
/*
 * Call @fn for every cache: the kmalloc classes, then the named caches
 * (under caches_lock if @lock; without it, a racy walk for dumps). Returns
 * how many.
 */
unsigned int caches_for_each(void (*fn)(struct kmem_cache *, void *), void *arg,
			     int lock) __hidden;
void cache_validate(struct kmem_cache *s) __hidden;
/* Is @p free in @s: 1 in the depot, 2 in its slab, 0 no (locked). */
int cache_holds_free(struct kmem_cache *s, const void *p) __hidden;

/* Object index of @p in slab @sl, or -1 if @p is not an object start. */
static __always_inline long slab_obj_index(const struct slab *sl, const void *p)
{
	uint64_t off = (uintptr_t)p - sl->start;

	if (unlikely(off >= sl->objs_end || off * sl->magic >= sl->magic))
		return -1;
	return (long)(((unsigned __int128)off * sl->magic) >> 64);
}

/*
 * The descriptor of the live object that starts at @p (a slab object or a
 * large run), or NULL if @p, in the arena, is not one. Racy for a bad
 * pointer only: a live object's descriptor does not change under it.
 */
static inline struct slab *arena_object(const void *p)
{
	struct slab *sl = virt_to_slab(p);

	if (!sl)
		return NULL;
	if (sl->kind == SPAN_SLAB)
		return slab_obj_index(sl, p) >= 0 ? sl : NULL;
	return sl->kind == SPAN_LARGE && (uintptr_t)p == sl->start ? sl : NULL;
}

/* ---- percpu.c: per-CPU (rseq) and per-thread caches ---- */

extern struct slab_fast slab_fast __hidden;

int percpu_init(void) __hidden;
/* Slow paths behind rseq_pop/rseq_push failures. NULL: no memory. */
void *cache_alloc_slow(struct kmem_cache *s) __hidden;
void cache_free_slow(struct kmem_cache *s, void *p) __hidden;
enum slab_rseq_mode percpu_mode(const char **why) __hidden;
/*
 * Does the kernel keep mm_cid in an rseq area registered with @rseq_size
 * bytes (glibc's __rseq_size: 20 and 32 mean the original 32-byte area),
 * given getauxval(AT_RSEQ_FEATURE_SIZE)? Old kernels (before 6.3) have no
 * mm_cid and leave the field as the registrant wrote it.
 */
int rseq_has_mm_cid(unsigned long feature_size,
		    unsigned int rseq_size) __hidden;
/*
 * Double free: @p, a kmalloc object being freed, carries the free key.
 * Aborts if it is already free (a per-CPU or per-thread stack, the depot,
 * its slab); returns 1 if not (the program's data matched the key), 0 if
 * the depot and slab could not be checked (no slow section possible).
 */
int slab_double_free_check(struct slab *sl, void *p) __hidden;
/* free() of @p that holds the key: check it, then free it. */
void slab_free_keyed(struct slab *sl, void *p) __hidden;
struct slock *tcache_lock_of(void) __hidden;
struct slock *drain_lock_of(void) __hidden;
/*
 * Set the calling thread up if it is new; 1 if its exit hook will run (so
 * that what it keeps goes back when it exits).
 */
int percpu_thread_hooked(void) __hidden;
/* Objects cached in the per-CPU and per-thread layers for slot @slot. */
unsigned long percpu_cached(int slot) __hidden;
/* Idle per-CPU regions given back (percpu.c). */
struct percpu_stats {
	unsigned long idle_drains;  /* regions drained by another thread */
	unsigned long drained_objs; /* objects they gave back */
	unsigned long steals;       /* capacities halved for another class */
};
extern struct percpu_stats percpu_stat __hidden;
/* Drain per-CPU regions idle since the last scan (publisher thread). */
void percpu_scan_idle(void) __hidden;
/* malloc_trim(): drain every region and this thread's cache; in a slow
 * section. Returns the objects given back. */
unsigned long percpu_trim(void) __hidden;
/* 1 membarrier usable, -1 not, 0 not tried yet. */
int percpu_membarrier(void) __hidden;

/* A cache with a per-CPU slot: rseq pop, else the slow path. */
static inline void *cache_alloc(struct kmem_cache *s)
{
	void *p;

	rseq_pop_or_goto(&slab_fast, (unsigned int)s->slot, p, slow);
	return p;
slow:
	return cache_alloc_slow(s);
}

/*
 * The free key: every kmalloc object in a per-CPU or per-thread stack or
 * in a depot holds slab_fast.free_key (a per-process secret) in its second
 * word; malloc clears it before handing the object out. free() of an
 * object that holds it is checked (slab_double_free_check()): glibc's
 * tcache does the same. Objects are at least 16 bytes.
 */
static __always_inline void obj_clear_key(void *p)
{
	((uint64_t *)p)[1] = 0;
}

static __always_inline void *kmalloc_class(unsigned int c)
{
	void *p;

	rseq_pop_or_goto(&slab_fast, c, p, slow);
	obj_clear_key(p);
	return p;
slow:
	return cache_alloc_slow(&kmalloc_caches[c]);
}

static inline void cache_free(struct kmem_cache *s, void *p)
{
	rseq_push_or_goto(&slab_fast, (unsigned int)s->slot, p, slow);
	return;
slow:
	cache_free_slow(s, p);
}

/* ---- malloc.c: the malloc family on top of the caches ---- */

/* NULL: no memory here (caller may fall back to libc). */
void *slab_alloc_large(size_t size, size_t align) __hidden;
/* Give this thread's kept large run back to the page heap (thread exit). */
void slab_large_release(void) __hidden;
void *slab_memalign(size_t align, size_t size) __hidden;
/* @p is in the arena: free it or report misuse. No free-key check. */
void slab_free_arena(void *p) __hidden;
size_t slab_usable_arena(const void *p) __hidden;
/* The same, naming @op (the caller) if @p is not an object start. */
size_t slab_usable_op(const void *p, const char *op) __hidden;
/*
 * Resize @p (in the arena) in place if its slab object or page run allows;
 * returns @p, or NULL with *@old set to its usable size.
 */
void *slab_resize_inplace(void *p, size_t size, size_t *old) __hidden;
/* Zeroed memory; skips the memset for never-used page runs. */
void *slab_calloc(size_t size) __hidden;
/* Report a pointer that is in the arena but is not an object start. */
void slab_bad_pointer(const char *op, const void *p) __noreturn __hidden;

static __always_inline void *slab_malloc(size_t size)
{
	if (likely(size <= KMALLOC_MAX))
		return kmalloc_class(size_to_class(size));
	return slab_alloc_large(size, 0);
}

/*
 * malloc() proper: like slab_malloc(), but the slow path (refill, large
 * runs, libc when we have no memory) is one tail call, so the fast path
 * keeps no frame.
 */
void *malloc_slow(size_t size) __hidden;
static __always_inline void *slab_malloc_or_libc(size_t size)
{
	unsigned int c;
	void *p;

	if (likely(size <= 1024))
		c = kmalloc_index_small[(size + 15) >> 4];
	else if (size <= KMALLOC_MAX)
		c = size_to_class(size);
	else
		goto slow;
	rseq_pop_or_goto(&slab_fast, c, p, slow);
	obj_clear_key(p);
	if (SLAB_DEBUG && (!virt_to_slab(p) || virt_to_slab(p)->slot != (int)c))
		slab_bug("malloc(%zu): popped %p from slot %u, its slab has slot %d",
			 size, p, c,
			 virt_to_slab(p) ? virt_to_slab(p)->slot : -9);
	return p;
slow:
	return malloc_slow(size);
}

/*
 * Free a pointer known to be in the arena: the common case (an object of a
 * kmalloc cache with a per-CPU slot) inline, the rest out of line.
 */
static __always_inline void slab_free(void *p)
{
	struct slab *sl = virt_to_slab(p);
	uint64_t key;
	uintptr_t off;

	/*
	 * Everything the check reads is in the descriptor's first line.
	 * fast_end is nonzero only for slabs of caches with a per-CPU slot
	 * (0 for free, large and named-cache runs): one range check takes
	 * both "is such a slab" and "inside its objects".
	 */
	if (likely(sl)) {
		off = (uintptr_t)p - sl->start;
		if (unlikely(off >= sl->fast_end ||
			     (uint64_t)off * sl->magic >= sl->magic))
			goto other;
		if (SLAB_DEBUG &&
		    (sl->kind != SPAN_SLAB || sl->slot != sl->cache->slot ||
		     sl->size != sl->cache->size))
			slab_bug("free(%p): slab %p kind %d slot %d size %u, cache %s slot %d",
				 p, (void *)sl, sl->kind, sl->slot, sl->size,
				 sl->cache->name, sl->cache->slot);
		key = slab_fast.free_key;
		if (unlikely(((uint64_t *)p)[1] == key))
			goto keyed; /* a tail call: no frame here */
		((uint64_t *)p)[1] = key;
		rseq_push_base_or_goto(&slab_fast, sl->cpu_base, p, slow);
		return;
	}
other:
	slab_free_arena(p);
	return;
slow:
	cache_free_slow(sl->cache, p);
	return;
keyed:
	slab_free_keyed(sl, p);
}

/*
 * The per-thread stacks (fallback: no rseq) as the same inline code as
 * the rseq path, on this thread's region, under busy (a signal handler
 * that interrupts it finds busy set and is served by libc). The counts
 * are stored atomically: statistics and the double-free check read them
 * racily. NULL / 0: empty / full, or not this thread's mode.
 */
static __always_inline void *tcache_pop_fast(struct slab_tls *t,
					     unsigned int slot)
{
	char *r = t->tcache;
	uint32_t *cnt, n;
	void *p = NULL;

	if (unlikely(!r) || unlikely(t->busy))
		return NULL;
	cnt = (uint32_t *)(r + slab_fast.slot_off[slot] - 8);
	busy_inc();
	/* Relaxed atomics (plain moves): a drainer may stop the region. */
	n = __atomic_load_n(&cnt[0], __ATOMIC_RELAXED) - 1;
	if (likely(n < __atomic_load_n(&cnt[1], __ATOMIC_RELAXED))) {
		p = __atomic_load_n(&((void **)(cnt + 2))[n], __ATOMIC_RELAXED);
		__atomic_store_n(cnt, n, __ATOMIC_RELAXED);
	}
	busy_dec();
	return p;
}

/* malloc() of class @slot from this thread's stack; NULL: go slow. */
static __always_inline void *tcache_malloc(unsigned int slot)
{
	void *p;

	if (unlikely(__atomic_load_n(&slab_state, __ATOMIC_RELAXED) !=
		     SLAB_STATE_READY))
		return NULL;
	p = tcache_pop_fast(&slab_tls, slot);
	if (p)
		obj_clear_key(p);
	return p;
}

static __always_inline int tcache_push_fast(struct slab_tls *t,
					    unsigned int slot, void *p)
{
	char *r = t->tcache;
	uint32_t *cnt, n;
	int ok = 0;

	if (unlikely(!r) || unlikely(t->busy))
		return 0;
	cnt = (uint32_t *)(r + slab_fast.slot_off[slot] - 8);
	busy_inc();
	n = __atomic_load_n(&cnt[0], __ATOMIC_RELAXED);
	if (likely(n < __atomic_load_n(&cnt[1], __ATOMIC_RELAXED))) {
		__atomic_store_n(&((void **)(cnt + 2))[n], p, __ATOMIC_RELAXED);
		__atomic_store_n(cnt, n + 1, __ATOMIC_RELAXED);
		ok = 1;
	}
	busy_dec();
	return ok;
}

/* free_sized() of what slab_free_class() did not take: checked, freed. */
void slab_free_sized_other(void *p, size_t size) __hidden;

/*
 * free_sized() of arena pointer @p: the size names the class, so the
 * stack's address comes from the class table, not from the descriptor:
 * the push does not wait for the descriptor's load, only the (predicted)
 * check does. The check is free()'s plus "the slab is of that class";
 * anything else (a wrong size, an aligned or large block) goes to
 * slab_free_sized_other(). Every exit is a tail call: no frame.
 */
static __always_inline void slab_free_class(void *p, size_t size)
{
	unsigned int c = size_to_class(size);
	struct slab *sl = virt_to_slab(p);
	uintptr_t off;
	uint64_t key;

	if (unlikely(!sl))
		goto other;
	off = (uintptr_t)p - sl->start;
	if (unlikely(off >= sl->fast_end || sl->slot != (int16_t)c ||
		     (uint64_t)off * sl->magic >= sl->magic))
		goto other;
	key = slab_fast.free_key;
	if (unlikely(((uint64_t *)p)[1] == key))
		goto keyed;
	((uint64_t *)p)[1] = key;
	rseq_push_or_goto(&slab_fast, c, p, slow);
	return;
other:
	slab_free_sized_other(p, size);
	return;
slow:
	cache_free_slow(&kmalloc_caches[c], p);
	return;
keyed:
	slab_free_keyed(sl, p);
}

#endif /* SLAB_INTERNAL_H */
