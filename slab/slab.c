// SPDX-License-Identifier: MIT
/*
 * slab.c - struct kmem_cache: slabs of one object size, their lists, the
 * depot, and the named-cache API.
 *
 * A slab is a SPAN_SLAB run from the page heap cut into nobj objects; its
 * freemap has a bit set for every object free *in the slab*. Objects that
 * left the slab (handed out, or parked in a per-CPU stack or the depot)
 * have their bit clear, so "bit already set" on return is a double free.
 *
 * Lists: full (no bit set), partial (some), empty (all; at most
 * EMPTY_KEEP kept, the rest go back to the page heap). The depot is a
 * bounded stack of free objects that skips the freemap work when objects
 * only travel between per-CPU stacks (producer/consumer).
 *
 * Locking: kmem_cache.lock protects the lists, the depot, the counters and
 * the freemap/inuse of the cache's slabs. New slabs are carved (and
 * constructed) outside it, so a constructor may allocate.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "slab.h"

/*
 * Empty slabs a cache keeps before giving them back: kmalloc caches keep
 * one (the per-CPU stacks and the depot already buffer), named caches a
 * few more, as the kernel's min_partial, so constructed objects are not
 * thrown away and rebuilt at every swing.
 */
#define EMPTY_KEEP             1
#define EMPTY_KEEP_NAMED       4
/*
 * Classes of one object per slab (from about 16 KiB) keep empty slabs up to
 * this many bytes: a server whose connections take and drop 16 KiB buffers
 * by the dozen would otherwise carve and release a slab (page-heap lock,
 * descriptor, page faults once purged) for nearly every buffer. They are
 * not hoarded: a CPU that refills another such class releases them
 * (flush_large() in percpu.c).
 */
#define EMPTY_KEEP_LARGE_BYTES (256UL << 10)

struct kmem_cache kmalloc_caches[NR_KMALLOC];
uint32_t kmalloc_size[NR_KMALLOC];
/*
 * Class of (size + 15) / 16 for sizes up to 1024. A constant, not computed
 * at start-up: threads racing into their first malloc read it before the
 * allocator is ready. kmalloc_init() checks it against kmalloc_size[].
 */
const uint8_t kmalloc_index_small[1024 / 16 + 1] = {
	0,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
	16, 16, 17, 17, 18, 18, 19, 19, 20, 20, 21, 21, 22, 22, 23, 23, 24,
	24, 24, 24, 25, 25, 25, 25, 26, 26, 26, 26, 27, 27, 27, 27, 28, 28,
	28, 28, 29, 29, 29, 29, 30, 30, 30, 30, 31, 31, 31, 31,
};
struct slock caches_lock;
struct kmem_cache *named_caches;
static struct kmem_cache *dead_caches; /* destroyed, for reuse */

/* Largest per-CPU stack for objects of @size: ~64 KiB, 2..256 objects. */
static unsigned int slot_capacity(size_t size)
{
	size_t cap = (64UL << 10) / size;

	return cap < 2 ? 2 : cap > 256 ? 256 : (unsigned int)cap;
}

/*
 * Pages per slab: the fewest that hold enough objects (8 small, 4 medium,
 * 1 large) with at most 1/8 of the slab lost at its tail.
 */
void slab_geometry(size_t size, uint16_t *npages, uint16_t *nobj)
{
	size_t min = size <= 1024 ? 8 : size <= 16384 ? 4 : 1;
	size_t np, n, bytes, best_np = 0, best_waste = ~0UL;

	for (np = 1; np <= SLAB_MAX_PAGES; np++) {
		bytes = np << PAGE_SHIFT;
		n = bytes / size;
		if (n > SLAB_MAX_OBJS)
			n = SLAB_MAX_OBJS;
		if (!n)
			continue;
		if (n >= min && (bytes - n * size) * 8 <= bytes)
			break;
		if ((bytes - n * size) * 16 / bytes < best_waste) {
			best_waste = (bytes - n * size) * 16 / bytes;
			best_np = np;
		}
	}
	if (np > SLAB_MAX_PAGES)
		np = best_np;
	n = (np << PAGE_SHIFT) / size;
	*npages = (uint16_t)np;
	*nobj = (uint16_t)(n > SLAB_MAX_OBJS ? SLAB_MAX_OBJS : n);
}

static int cache_setup_geom(struct kmem_cache *s, const char *name, size_t size,
			    unsigned int flags, void (*ctor)(void *), int slot,
			    uint16_t npages, uint16_t nobj)
{
	unsigned int cap = slot_capacity(size);

	memset(s, 0, sizeof(*s));
	s->npages = npages;
	s->nobj = nobj;
	s->size = (uint32_t)size;
	s->magic = UINT64_MAX / size + 1;
	s->slot = (int16_t)slot;
	/* Batches go through MAX_BATCH-sized arrays on the stack. */
	s->batch = (uint16_t)(cap / 2 > MAX_BATCH ? MAX_BATCH :
			      cap / 2             ? cap / 2 :
						    1);
	s->flags = flags;
	s->ctor = ctor;
	/*
	 * Named caches have no per-CPU layer and no depot: every free reaches
	 * its slab, where a double free is caught at once.
	 */
	s->depot_cap = slot >= 0 && !slab_opt.debug ? cap : 0;
	if (s->depot_cap) {
		s->depot = meta_alloc(cap * sizeof(void *));
		if (!s->depot)
			return -1;
	}
	strncpy(s->name, name, sizeof(s->name) - 1);
	return 0;
}

int cache_setup(struct kmem_cache *s, const char *name, size_t size,
		unsigned int flags, void (*ctor)(void *), int slot)
{
	uint16_t npages, nobj;

	slab_geometry(size, &npages, &nobj);
	return cache_setup_geom(s, name, size, flags, ctor, slot, npages, nobj);
}

/*
 * The classes, their names and slab geometry come as constants
 * (kmalloc_table.c, generated): start-up formats and computes nothing
 * (164,000 instructions for a program that mallocs once, 104,000 of them
 * snprintf of the names, before). The unit test
 * sizeclass/table_matches_rules checks the table against the rules.
 */
int kmalloc_init(void)
{
	const struct kmalloc_class *k;
	unsigned int i;

	for (i = 0; i < NR_KMALLOC; i++) {
		k = &kmalloc_table[i];
		kmalloc_size[i] = k->size;
		if (cache_setup_geom(&kmalloc_caches[i], k->name, k->size,
				     SLAB_KMALLOC, NULL, (int)i, k->npages,
				     k->nobj))
			return -1;
		slab_fast.slot_max[i] = slot_capacity(k->size);
	}
	SLAB_BUG_ON(kmalloc_size[NR_KMALLOC - 1] != KMALLOC_MAX);
	return 0;
}

unsigned int caches_for_each(void (*fn)(struct kmem_cache *, void *), void *arg,
			     int lock)
{
	struct kmem_cache *s;
	unsigned int i, n = 0;

	for (i = 0; i < NR_KMALLOC; i++, n++)
		fn(&kmalloc_caches[i], arg);
	if (lock)
		slock_lock(&caches_lock);
	for (s = named_caches; s; s = s->next_named, n++)
		fn(s, arg);
	if (lock)
		slock_unlock(&caches_lock);
	return n;
}

static void slab_list_add(struct slab_list *l, struct slab *sl)
{
	sl->prev = NULL;
	sl->next = l->head;
	if (l->head)
		l->head->prev = sl;
	l->head = sl;
	/* Atomic: cache_trim_empty() peeks at empty.nr without the lock. */
	__atomic_store_n(&l->nr, l->nr + 1, __ATOMIC_RELAXED);
}

static void slab_list_del(struct slab_list *l, struct slab *sl)
{
	if (sl->prev)
		sl->prev->next = sl->next;
	else
		l->head = sl->next;
	if (sl->next)
		sl->next->prev = sl->prev;
	sl->next = sl->prev = NULL;
	__atomic_store_n(&l->nr, l->nr - 1, __ATOMIC_RELAXED);
}

static struct slab_list *list_of(struct kmem_cache *s, int which)
{
	return which == SL_PARTIAL ? &s->partial :
	       which == SL_FULL    ? &s->full :
				     &s->empty;
}

/* Move @sl to the list its inuse count calls for. */
static void slab_relist(struct kmem_cache *s, struct slab *sl)
{
	int want = !sl->inuse            ? SL_EMPTY :
		   sl->inuse == sl->nobj ? SL_FULL :
					   SL_PARTIAL;

	if (want == sl->on_list)
		return;
	if (sl->on_list != SL_NONE)
		slab_list_del(list_of(s, sl->on_list), sl);
	slab_list_add(list_of(s, want), sl);
	sl->on_list = (uint8_t)want;
}

static void cache_validate_locked(struct kmem_cache *s);

/* Carve and construct a new slab; no cache lock held. */
static struct slab *new_slab(struct kmem_cache *s)
{
	struct slab *sl = pageheap_alloc(s->npages, 1, SPAN_SLAB);
	unsigned int i;

	if (!sl)
		return NULL;
	sl->cache = s;
	sl->slot = s->slot;
	sl->size = s->size;
	sl->magic = s->magic;
	sl->nobj = s->nobj;
	sl->objs_end = (uint32_t)s->nobj * s->size;
	/* Copies for free(): one cache line tells it all. */
	if (s->slot >= 0)
		sl->cpu_base = slab_fast.slot_base[s->slot];
	/* Last: free()'s fast path takes the slab by this alone. */
	sl->fast_end = s->slot >= 0 ? sl->objs_end : 0;
	sl->inuse = 0;
	sl->hint = 0;
	sl->on_list = SL_NONE;
	memset(sl->freemap, 0, sizeof(sl->freemap));
	for (i = 0; i < sl->nobj; i++)
		sl->freemap[i / 64] |= 1ULL << (i % 64);
	if (s->ctor)
		for (i = 0; i < sl->nobj; i++)
			s->ctor((void *)(sl->start + (size_t)i * s->size));
	return sl;
}

/* Take up to @n objects out of @sl. */
/*
 * Reorder @n objects taken from one slab in address order so that any two
 * taken one after the other are at least a cache line apart: group them by
 * index modulo @stride. A per-CPU stack hands its objects out in this
 * order, and consecutive objects often go to different threads (two threads
 * taking turns on one CPU, or a thread allocating for others); neighbours
 * in one line would make their cores fight over it (false sharing).
 */
/*
 * Objects of @size (< CACHELINE) taken @stride apart share no line: enough
 * to cover a line, plus one when objects straddle line boundaries.
 */
static unsigned long line_stride(unsigned long size)
{
	return (CACHELINE + size - 1) / size + (CACHELINE % size != 0);
}

static void spread_lines(void **out, unsigned long n, unsigned long stride)
{
	void *tmp[MAX_BATCH];
	unsigned long i, g, k = 0;

	if (n <= 2 || n > MAX_BATCH)
		return;
	for (g = 0; g < stride; g++)
		for (i = g; i < n; i += stride)
			tmp[k++] = out[i];
	memcpy(out, tmp, n * sizeof(void *));
}

static unsigned long slab_take(struct kmem_cache *s, struct slab *sl,
			       void **out, unsigned long n)
{
	unsigned long got = 0;
	unsigned int w;
	uint64_t bits;

	for (w = sl->hint; w < SLAB_MAX_OBJS / 64 && got < n; w++) {
		bits = sl->freemap[w];
		while (bits && got < n) {
			unsigned int b = (unsigned int)__builtin_ctzll(bits);

			bits &= bits - 1;
			out[got++] = (void *)(sl->start +
					      (size_t)(w * 64 + b) * s->size);
		}
		sl->freemap[w] = bits;
		if (bits)
			break;
	}
	sl->hint = (uint16_t)(w < SLAB_MAX_OBJS / 64 ? w : 0);
	sl->inuse += (uint16_t)got;
	if (s->size < CACHELINE)
		spread_lines(out, got, line_stride(s->size));
	return got;
}

/* Return one object to its slab; @s's lock held. */
static void slab_put(struct kmem_cache *s, void *p)
{
	struct slab *sl = virt_to_slab(p);
	long idx;
	uint64_t bit;

	if (unlikely(!sl || sl->kind != SPAN_SLAB || !span_contains(sl, p) ||
		     sl->cache != s))
		slab_misuse("free of %p: not an object of cache %s", p,
			    s->name);
	idx = slab_obj_index(sl, p);
	if (unlikely(idx < 0))
		slab_misuse("free of %p: not the start of an object of cache %s",
			    p, s->name);
	bit = 1ULL << (idx % 64);
	if (unlikely(sl->freemap[idx / 64] & bit))
		slab_misuse("double free of %p (cache %s)", p, s->name);
	SLAB_BUG_ON(!sl->inuse);
	sl->freemap[idx / 64] |= bit;
	if (idx / 64 < sl->hint)
		sl->hint = (uint16_t)(idx / 64);
	sl->inuse--;
	slab_relist(s, sl);
}

unsigned long cache_refill(struct kmem_cache *s, void **out, unsigned long n)
{
	unsigned long got, k;
	struct slab *sl;

	slock_lock(&s->lock);
	got = n < s->depot_nr ? n : s->depot_nr;
	s->depot_nr -= (unsigned int)got;
	if (got)
		memcpy(out, s->depot + s->depot_nr, got * sizeof(void *));
	/* Count as we go: the lock is dropped below to carve a slab. */
	s->active += got;
	while (got < n) {
		sl = s->partial.head ? s->partial.head : s->empty.head;
		if (!sl) {
			slock_unlock(&s->lock);
			sl = new_slab(s);
			slock_lock(&s->lock);
			if (!sl)
				break;
			s->nr_slabs++;
			s->stats.slabs_new++;
			slab_relist(s, sl);
			continue;
		}
		k = slab_take(s, sl, out + got, n - got);
		SLAB_BUG_ON(!k);
		got += k;
		s->active += k;
		slab_relist(s, sl);
	}
	s->stats.refills++;
	if (!got)
		s->stats.alloc_fail++;
	if (SLAB_DEBUG) {
		cache_validate_locked(s);
		for (k = 0; k < got; k++)
			if (!virt_to_slab(out[k]) ||
			    virt_to_slab(out[k])->cache != s)
				slab_bug("refill of %s gave %p (%lu of %lu)",
					 s->name, out[k], k, got);
	}
	slock_unlock(&s->lock);
	stats_tick();
	return got;
}

/*
 * Detach empty slabs beyond @keep under the cache lock; the caller hands
 * the list to release_slabs() after dropping it.
 */
static struct slab *take_empty(struct kmem_cache *s, unsigned long keep)
{
	struct slab *release = NULL, *sl;

	while (s->empty.nr > keep) {
		sl = s->empty.head;
		slab_list_del(&s->empty, sl);
		sl->on_list = SL_NONE;
		s->nr_slabs--;
		s->stats.slabs_freed++;
		sl->next = release;
		release = sl;
	}
	return release;
}

static void release_slabs(struct slab *release)
{
	struct slab *sl;

	while (release) {
		sl = release;
		release = sl->next;
		pageheap_free(sl);
	}
}

static void drain(struct kmem_cache *s, void **objs, unsigned long n,
		  int use_depot)
{
	struct slab *release = NULL, *sl;
	unsigned long put, i;
	unsigned int keep;

	slock_lock(&s->lock);
	put = use_depot ? s->depot_cap - s->depot_nr : 0;
	if (put > n)
		put = n;
	if (SLAB_DEBUG)
		for (i = 0; i < n; i++) {
			sl = virt_to_slab(objs[i]);
			if (!sl || sl->cache != s || sl->kind != SPAN_SLAB ||
			    slab_obj_index(sl, objs[i]) < 0)
				slab_bug("drain of %p to %s: slab %p kind %d cache %s",
					 objs[i], s->name, (void *)sl,
					 sl ? sl->kind : -1,
					 sl && sl->cache ? sl->cache->name :
							   "-");
		}
	if (put)
		memcpy(s->depot + s->depot_nr, objs, put * sizeof(void *));
	s->depot_nr += (unsigned int)put;
	for (i = put; i < n; i++)
		slab_put(s, objs[i]);
	if (unlikely(s->active < n))
		slab_misuse("cache %s: more objects freed than allocated (double free of %p?)",
			    s->name, objs[n - 1]);
	s->active -= n;
	s->stats.drains++;
	/* A one-object slab kept empty would only hoard its pages. */
	keep = s->slot < 0 ? EMPTY_KEEP_NAMED : EMPTY_KEEP;
	if (s->slot >= 0 && s->nobj == 1)
		keep = (unsigned int)(EMPTY_KEEP_LARGE_BYTES /
				      ((size_t)s->npages << PAGE_SHIFT));
	release = take_empty(s, keep);
	if (SLAB_DEBUG)
		cache_validate_locked(s);
	slock_unlock(&s->lock);
	release_slabs(release);
	pageheap_tick();
	stats_tick();
}

void cache_drain(struct kmem_cache *s, void **objs, unsigned long n)
{
	drain(s, objs, n, 1);
}

void cache_release(struct kmem_cache *s, void **objs, unsigned long n)
{
	drain(s, objs, n, 0);
}

void cache_trim_empty(struct kmem_cache *s)
{
	struct slab *release;

	if (!__atomic_load_n(&s->empty.nr, __ATOMIC_RELAXED))
		return; /* racy peek: the common case takes no lock */
	slock_lock(&s->lock);
	release = take_empty(s, 0);
	slock_unlock(&s->lock);
	release_slabs(release);
}

void cache_shrink(struct kmem_cache *s)
{
	struct slab *release;

	slock_lock(&s->lock);
	while (s->depot_nr)
		slab_put(s, s->depot[--s->depot_nr]);
	release = take_empty(s, 0);
	slock_unlock(&s->lock);
	release_slabs(release);
}

static unsigned long validate_list(struct kmem_cache *s, struct slab_list *l,
				   int which)
{
	unsigned long nr = 0, inuse = 0;
	unsigned int i, free_bits;
	struct slab *sl;

	for (sl = l->head; sl; sl = sl->next, nr++) {
		SLAB_BUG_ON(sl->cache != s || sl->kind != SPAN_SLAB);
		SLAB_BUG_ON(sl->on_list != which || sl->nobj != s->nobj);
		SLAB_BUG_ON(virt_to_slab((void *)sl->start) != sl);
		for (i = 0, free_bits = 0; i < SLAB_MAX_OBJS / 64; i++)
			free_bits += (unsigned int)__builtin_popcountll(
				sl->freemap[i]);
		SLAB_BUG_ON(free_bits + sl->inuse != sl->nobj);
		SLAB_BUG_ON(which == SL_EMPTY && sl->inuse);
		SLAB_BUG_ON(which == SL_FULL && sl->inuse != sl->nobj);
		SLAB_BUG_ON(which == SL_PARTIAL &&
			    (!sl->inuse || sl->inuse == sl->nobj));
		inuse += sl->inuse;
	}
	SLAB_BUG_ON(nr != l->nr);
	return inuse;
}

/* Lists match inuse; objects out of slabs = active + depot. Locked. */
static void cache_validate_locked(struct kmem_cache *s)
{
	unsigned long inuse;
	unsigned int i;

	inuse = validate_list(s, &s->partial, SL_PARTIAL) +
		validate_list(s, &s->full, SL_FULL) +
		validate_list(s, &s->empty, SL_EMPTY);
	SLAB_BUG_ON(s->partial.nr + s->full.nr + s->empty.nr != s->nr_slabs);
	if (inuse != s->active + s->depot_nr)
		slab_bug("cache %s: %lu objects out of slabs, %lu active + %u in depot",
			 s->name, inuse, s->active, s->depot_nr);
	SLAB_BUG_ON(s->depot_nr > s->depot_cap);
	for (i = 0; i < s->depot_nr; i++) {
		struct slab *sl = virt_to_slab(s->depot[i]);

		SLAB_BUG_ON(!sl || sl->cache != s ||
			    slab_obj_index(sl, s->depot[i]) < 0);
	}
}

int cache_holds_free(struct kmem_cache *s, const void *p)
{
	struct slab *sl = virt_to_slab(p);
	unsigned int i;
	long idx;
	int ret = 0;

	slock_lock(&s->lock);
	for (i = 0; i < s->depot_nr && !ret; i++)
		if (s->depot[i] == p)
			ret = 1;
	if (!ret && sl && sl->kind == SPAN_SLAB && sl->cache == s) {
		idx = slab_obj_index(sl, p);
		if (idx >= 0 && (sl->freemap[idx / 64] & (1ULL << (idx % 64))))
			ret = 2;
	}
	slock_unlock(&s->lock);
	return ret;
}

void cache_validate(struct kmem_cache *s)
{
	slock_lock(&s->lock);
	cache_validate_locked(s);
	slock_unlock(&s->lock);
}

/* ---- named caches: the kernel's object cache API ---- */

struct kmem_cache *kmem_cache_create(const char *name, size_t size,
				     size_t align, unsigned int flags,
				     void (*ctor)(void *))
{
	struct kmem_cache *s;

	if (!name || !size || size > KMALLOC_MAX || (align & (align - 1)) ||
	    align > PAGE_SIZE ||
	    (flags & ~(SLAB_HWCACHE_ALIGN | SLAB_POISON))) {
		errno = EINVAL;
		return NULL;
	}
	if ((flags & SLAB_POISON) && ctor) {
		errno = EINVAL; /* poison would destroy constructed state */
		return NULL;
	}
	if (!slab_ready() || slab_tls.busy || !slow_enter_alloc()) {
		errno = ENOMEM;
		return NULL;
	}
	if (flags & SLAB_HWCACHE_ALIGN && align < 64)
		align = 64;
	if (align < SLAB_MIN_ALIGN)
		align = SLAB_MIN_ALIGN;
	size = (size + align - 1) & ~(align - 1);
	slock_lock(&caches_lock);
	s = dead_caches;
	if (s)
		dead_caches = s->next_named;
	slock_unlock(&caches_lock);
	if (!s)
		s = meta_alloc(sizeof(*s));
	if (s && !cache_setup(s, name, size, flags, ctor, -1)) {
		slock_lock(&caches_lock);
		s->next_named = named_caches;
		named_caches = s;
		slock_unlock(&caches_lock);
	} else {
		s = NULL;
	}
	slow_exit();
	if (!s)
		errno = ENOMEM;
	return s;
}

void *kmem_cache_alloc(struct kmem_cache *s)
{
	void *p = NULL;

	if (!s || (s->flags & SLAB_DEAD))
		slab_misuse("kmem_cache_alloc(%p): not a live cache",
			    (void *)s);
	/*
	 * No libc fallback for a cache's objects: wait out a fork as an
	 * allocation does (then ENOMEM: this thread may hold a FILE lock that
	 * the fork waits for), as do a degraded fork child and a signal
	 * handler that interrupted this thread inside the allocator.
	 */
	if (!slab_tls.busy && slow_enter_alloc()) {
		if (!cache_refill(s, &p, 1))
			p = NULL;
		slow_exit();
	}
	if (!p)
		errno = ENOMEM;
	return p;
}

void *kmem_cache_zalloc(struct kmem_cache *s)
{
	void *p = kmem_cache_alloc(s);

	if (p)
		memset(p, 0, s->size);
	return p;
}

void kmem_cache_free(struct kmem_cache *s, void *p)
{
	struct slab *sl;

	if (!p)
		return;
	sl = arena_object(p);
	if (!s || !sl || sl->kind != SPAN_SLAB || sl->cache != s)
		slab_misuse("kmem_cache_free(%s, %p): not an object of this cache",
			    s ? s->name : "NULL", p);
	if (s->flags & SLAB_POISON)
		memset(p, 0x6b, s->size);
	if (slab_tls.busy || !slow_enter()) {
		slab_defer_free(p);
		return;
	}
	cache_drain(s, &p, 1);
	slow_exit();
}

int kmem_cache_destroy(struct kmem_cache *s)
{
	struct kmem_cache **pp;
	unsigned long active;

	if (!s)
		return 0;
	if (slab_tls.busy || !slow_enter_alloc()) {
		errno = EAGAIN; /* a fork in progress, or a degraded child */
		return -1;
	}
	slab_deferred_drain(); /* frees deferred from signal handlers */
	slock_lock(&caches_lock);
	slock_lock(&s->lock);
	active = s->active;
	slock_unlock(&s->lock);
	if (active) {
		slock_unlock(&caches_lock);
		slow_exit();
		slab_warn("kmem_cache_destroy(%s): %lu objects still in use; cache left alive",
			  s->name, active);
		errno = EBUSY;
		return -1;
	}
	for (pp = &named_caches; *pp; pp = &(*pp)->next_named) {
		if (*pp == s) {
			*pp = s->next_named;
			break;
		}
	}
	slock_unlock(&caches_lock);
	cache_shrink(s);
	SLAB_BUG_ON(s->nr_slabs);
	/*
	 * The struct stays mapped (meta memory) and goes on a list for the
	 * next kmem_cache_create(): late use of a destroyed cache is caught
	 * until then, as in the kernel, not after.
	 */
	s->flags |= SLAB_DEAD;
	slock_lock(&caches_lock);
	s->next_named = dead_caches;
	dead_caches = s;
	slock_unlock(&caches_lock);
	slow_exit();
	return 0;
}

const char *kmem_cache_name(const struct kmem_cache *s)
{
	return s->name;
}

size_t kmem_cache_size(const struct kmem_cache *s)
{
	return s->size;
}
