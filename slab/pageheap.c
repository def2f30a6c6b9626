// SPDX-License-Identifier: MIT
/*
 * pageheap.c - the arena and its page-level allocator.
 *
 * The arena is one reserved range (PROT_NONE, no commit charge) that we
 * make accessible from the bottom up in COMMIT_STEP chunks. Ownership of a
 * pointer is one subtraction and compare; the pagemap (one pointer per
 * arena page, a separate NORESERVE mapping) leads to the span descriptor.
 *
 * Free runs are kept coalesced (no two free runs touch), in bins by page
 * count (exact up to NR_BINS, one best-fit list above), and, while they may
 * hold resident pages ("dirty"), on an LRU list. Dirty runs are purged with
 * MADV_DONTNEED when they have been free for purge_ms or when the dirty
 * total passes dirty_max, so a program that frees memory sees its RSS fall
 * while one that reuses memory quickly pays no page faults.
 *
 * Kept runs: a thread keeps the last large run it freed (SPAN_KEPT, see
 * malloc.c) for its next large malloc. Such a run is neither an object nor
 * free: never coalesced, purged or handed out here, still counted in
 * ph.large_*; the statistics show it as free and dirty. At most
 * KEEP_MAX_PAGES a run and dirty_max / 2 bytes in all threads together.
 *
 * Locking: ph_lock protects everything here, including descriptors of free
 * runs, but not the kept counters (atomics: keeping takes no lock). It
 * nests inside kmem_cache locks and outside meta_lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#include "internal.h"

#define NR_BINS        128
#define COMMIT_STEP    (4UL << 20)
#define KEEP_MAX_PAGES 256 /* 1 MiB: larger runs go back at once */

struct slab_arena slab_arena;
static size_t arena_max; /* the arena may grow up to this (the pagemap's) */

static struct slock ph_lock;
static size_t committed;               /* bytes from base accessible */
static size_t frontier;                /* bytes from base ever carved */
static struct slab *bins[NR_BINS + 1]; /* [0]: runs above NR_BINS pages */
static struct slab *lru_head, *lru_tail;
static struct slab *desc_free;
static struct pageheap_stats ph;
/*
 * The size rule's budget, learnt (design.md, "Large allocations"):
 * dirty_max at first, raised when pages it purged were needed again at
 * once, halved back after DIRTY_DECAY purge periods without such a need.
 */
static size_t dirty_limit;
static uint64_t size_purge_ms;      /* the size rule last purged */
static uint64_t raised_ms;          /* dirty_limit last raised or halved */
#define DIRTY_LEARN_MAX (1UL << 30) /* at most 64 x 16 MiB */
#define DIRTY_DECAY     10
static size_t kept_bytes;     /* atomic: SPAN_KEPT runs */
static unsigned long kept_nr; /* atomic */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline size_t page_index(uintptr_t addr)
{
	return (addr - slab_arena.base) >> PAGE_SHIFT;
}

/*
 * Address space this process may still map: RLIMIT_AS minus what it maps
 * now (/proc/self/statm); SIZE_MAX without a limit.
 */
static size_t as_available(void)
{
	struct rlimit rl;
	char buf[64];
	size_t used = 0;
	long n;
	int fd, i;

	if (getrlimit(RLIMIT_AS, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return SIZE_MAX;
	fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		for (i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; i++)
			used = used * 10 + (size_t)(buf[i] - '0');
		used <<= PAGE_SHIFT;
	}
	return rl.rlim_cur > used ? rl.rlim_cur - used : 0;
}

/*
 * Where to ask for the arena: a random spot in [16 TiB, 48 TiB), far
 * below the mmap area and above the program and its heap, so that the
 * arena can grow in place (MAP_FIXED_NOREPLACE). Only a hint: the kernel
 * picks another address when the spot is taken or out of range.
 */
static void *arena_hint(void)
{
	const unsigned char *r = (const void *)getauxval(AT_RANDOM);
	uint64_t x = (uint64_t)(uintptr_t)&ph;

	if (sizeof(void *) < 8)
		return NULL;
	if (r) {
		uint64_t a;

		memcpy(&a, r + 4, 8);
		x ^= a;
	}
	x = mix64(x);
	return (void *)(uintptr_t)((16ULL << 40) + ((x % 8192) << 32));
}

static void *reserve(void *at, size_t len, int flags)
{
	return mmap(at, len, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | flags, -1, 0);
}

int pageheap_init(size_t size)
{
	size_t first, max = size & ~(COMMIT_STEP - 1), avail, pm_len;
	void *p = MAP_FAILED, *hint;
	char *map;

	/*
	 * Under RLIMIT_AS (ulimit -v), start with a quarter of what is
	 * left and grow in place when it is full; the pagemap covers the
	 * most the arena can ever be (1/512 of it).
	 */
	avail = as_available();
	if (avail != SIZE_MAX && max > (avail & ~(COMMIT_STEP - 1)))
		max = avail & ~(COMMIT_STEP - 1);
	if (max < ARENA_MIN_BYTES)
		max = ARENA_MIN_BYTES;
	first = avail == SIZE_MAX ? max : (avail / 4) & ~(COMMIT_STEP - 1);
	if (first > max)
		first = max;
	if (first < ARENA_MIN_BYTES)
		first = ARENA_MIN_BYTES;

	/*
	 * The pagemap sits between two PROT_NONE guard pages, so that no
	 * overrun or underrun of a neighbouring mapping (the arena among
	 * them) can rewrite a descriptor pointer.
	 */
	pm_len = ((max >> PAGE_SHIFT) * sizeof(struct slab *) + PAGE_SIZE - 1) &
		 ~(PAGE_SIZE - 1);
	map = reserve(NULL, pm_len + 2 * PAGE_SIZE, 0);
	if (map == MAP_FAILED ||
	    mprotect(map + PAGE_SIZE, pm_len, PROT_READ | PROT_WRITE)) {
		if (map != MAP_FAILED)
			munmap(map, pm_len + 2 * PAGE_SIZE);
		slab_warn("cannot map the pagemap (%zu KiB): %s; using libc's malloc",
			  pm_len >> 10, strerror(errno));
		return -1;
	}
	/* One PROT_NONE page below the arena, never made accessible. */
	hint = arena_hint();
	for (; first >= ARENA_MIN_BYTES; first /= 2) {
		first &= ~(COMMIT_STEP - 1);
		p = reserve(hint, first + PAGE_SIZE, 0);
		if (p != MAP_FAILED)
			break;
	}
	if (p == MAP_FAILED) {
		munmap(map, pm_len + 2 * PAGE_SIZE);
		slab_warn("cannot reserve an arena of %lu MiB (%s); using libc's malloc",
			  ARENA_MIN_BYTES >> 20, strerror(errno));
		return -1;
	}
	arena_max = max;
	slab_arena.pagemap = (struct slab **)(map + PAGE_SIZE);
	slab_arena.size = first;
	/* Publish base last: from now on in_arena() may say yes. */
	__atomic_store_n(&slab_arena.base, (uintptr_t)p + PAGE_SIZE,
			 __ATOMIC_RELEASE);
	return 0;
}

/*
 * The arena is full below @need bytes: reserve the range right after it
 * (doubling it, or as much as fits, at least @need). ph_lock held.
 */
static int arena_extend(size_t need)
{
	size_t cur = slab_arena.size, min, ext;
	char *at = (char *)slab_arena.base + cur;
	void *q;

	if (need > arena_max)
		return 0;
	min = (need - cur + COMMIT_STEP - 1) & ~(COMMIT_STEP - 1);
	ext = cur > min ? cur : min;
	if (ext > arena_max - cur)
		ext = arena_max - cur;
	for (;;) {
		q = reserve(at, ext, MAP_FIXED_NOREPLACE);
		if (q == at) {
			__atomic_store_n(&slab_arena.size, cur + ext,
					 __ATOMIC_RELEASE);
			ph.extensions++;
			return 1;
		}
		/* Kernels before 4.17 take the flag as a plain hint. */
		if (q != MAP_FAILED)
			munmap(q, ext);
		if (ext == min)
			return 0;
		ext = ((ext / 2) & ~(COMMIT_STEP - 1)) > min ?
			      (ext / 2) & ~(COMMIT_STEP - 1) :
			      min;
	}
}

static struct slab *desc_get(void)
{
	struct slab *s = desc_free;

	if (s) {
		desc_free = s->next;
		return s;
	}
	return meta_alloc(sizeof(*s));
}

static void desc_put(struct slab *s)
{
	s->kind = SPAN_NONE;
	s->slot = -1;
	s->fast_end = 0;
	s->next = desc_free;
	desc_free = s;
}

static struct slab **bin_of(size_t npages)
{
	return &bins[npages <= NR_BINS ? npages : 0];
}

static void list_del(struct slab **head, struct slab *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		*head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next = s->prev = NULL;
}

static void list_add(struct slab **head, struct slab *s)
{
	s->prev = NULL;
	s->next = *head;
	if (*head)
		(*head)->prev = s;
	*head = s;
}

static void lru_del(struct slab *s)
{
	if (s->lru_prev)
		s->lru_prev->lru_next = s->lru_next;
	else
		lru_head = s->lru_next;
	if (s->lru_next)
		s->lru_next->lru_prev = s->lru_prev;
	else
		__atomic_store_n(&lru_tail, s->lru_prev, __ATOMIC_RELAXED);
	s->lru_next = s->lru_prev = NULL;
}

/*
 * Newest first: purge_locked() ages runs out from the tail, so a run goes
 * in after every run that became dirty later than it did (a merged run
 * carries its oldest part's time, a split part its whole's). Freshly
 * freed runs go at the head at once; older ones are placed from the
 * tail, where they belong.
 */
static void lru_add(struct slab *s)
{
	struct slab *n = lru_tail;

	if (!lru_head || s->free_ms >= lru_head->free_ms) {
		s->lru_prev = NULL;
		s->lru_next = lru_head;
		if (lru_head)
			lru_head->lru_prev = s;
		else
			__atomic_store_n(&lru_tail, s, __ATOMIC_RELAXED);
		lru_head = s;
		return;
	}
	while (n->free_ms < s->free_ms)
		n = n->lru_prev; /* stops at the head at the latest */
	s->lru_prev = n;
	s->lru_next = n->lru_next;
	if (n->lru_next)
		n->lru_next->lru_prev = s;
	else
		__atomic_store_n(&lru_tail, s, __ATOMIC_RELAXED);
	n->lru_next = s;
}

static void map_range(struct slab *s, size_t first, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		slab_arena.pagemap[first + i] = s;
}

/* Point the pagemap at @s as its kind requires. */
static void map_span(struct slab *s)
{
	size_t first = page_index(s->start);

	if (s->kind == SPAN_SLAB) {
		map_range(s, first, s->npages);
		return;
	}
	slab_arena.pagemap[first] = s;
	slab_arena.pagemap[first + s->npages - 1] = s;
}

/* Take free run @s off the bins and the LRU. */
static void free_del(struct slab *s)
{
	list_del(bin_of(s->npages), s);
	ph.free_bytes -= (size_t)s->npages << PAGE_SHIFT;
	if (s->dirty_pages) {
		lru_del(s);
		ph.dirty_bytes -= (size_t)s->dirty_pages << PAGE_SHIFT;
	}
}

/* Put free run @s (start, npages, dirty_pages, free_ms set) in place. */
static void free_add(struct slab *s)
{
	s->kind = SPAN_FREE;
	s->slot = -1;
	s->fast_end = 0;
	map_span(s);
	list_add(bin_of(s->npages), s);
	ph.free_bytes += (size_t)s->npages << PAGE_SHIFT;
	if (s->dirty_pages) {
		lru_add(s);
		ph.dirty_bytes += (size_t)s->dirty_pages << PAGE_SHIFT;
	}
}

/*
 * Purging is two steps so that no madvise() runs under ph_lock (every
 * slab refill, drain and large allocation of every thread waits on it):
 * purge_take() (locked) takes a dirty free run off the bins and the LRU
 * and marks it SPAN_PURGING, which nothing allocates or merges; then
 * purge_finish() (unlocked) purges the taken runs and puts them back,
 * clean, under the lock again.
 */
static void purge_take(struct slab *s, struct slab **taken)
{
	size_t len = (size_t)s->npages << PAGE_SHIFT;

	/* madvise() outside the arena would wipe someone else's memory. */
	SLAB_BUG_ON(s->kind != SPAN_FREE ||
		    s->start - slab_arena.base >= slab_arena.size ||
		    len > slab_arena.size - (s->start - slab_arena.base));
	free_del(s);
	ph.purged_bytes += (size_t)s->dirty_pages << PAGE_SHIFT;
	__atomic_store_n(&s->kind, SPAN_PURGING, __ATOMIC_RELAXED);
	s->next = *taken;
	*taken = s;
}

/* Without ph_lock: purge what purge_take() took, then give it back. */
static struct slab *coalesce(struct slab *s);

static void purge_finish(struct slab *taken)
{
	struct slab *s, *next;

	if (!taken)
		return;
	for (s = taken; s; s = s->next) {
		/*
		 * A clean run must read as zeroes (calloc relies on it). The
		 * kernel refuses MADV_DONTNEED on locked pages (mlock): zero
		 * them instead.
		 */
		if (madvise((void *)s->start, (size_t)s->npages << PAGE_SHIFT,
			    MADV_DONTNEED))
			memset((void *)s->start, 0,
			       (size_t)s->npages << PAGE_SHIFT);
	}
	slock_lock(&ph_lock);
	for (s = taken; s; s = next) {
		next = s->next;
		SLAB_BUG_ON(s->kind != SPAN_PURGING);
		s->dirty_pages = 0;
		s->kind = SPAN_FREE;
		free_add(coalesce(s));
	}
	slock_unlock(&ph_lock);
}

/*
 * Called with ph_lock held; the runs to purge go on @taken for
 * purge_finish() once the lock is dropped. @keep, the run a large
 * allocation just left, is spared by the size threshold (not by age): a
 * program that frees and allocates a huge block in a loop then reuses
 * resident pages instead of paying madvise and a page fault per page on
 * every pair.
 */
static uint64_t purge_period(void)
{
	return slab_opt.purge_ms ? slab_opt.purge_ms : 1000;
}

/* The size rule's budget now; halves back towards dirty_max with time. */
static size_t dirty_budget(uint64_t now)
{
	if (dirty_limit <= slab_opt.dirty_max || !slab_opt.dirty_max)
		return dirty_limit = slab_opt.dirty_max;
	if (now - raised_ms > DIRTY_DECAY * purge_period()) {
		dirty_limit /= 2;
		if (dirty_limit < slab_opt.dirty_max)
			dirty_limit = slab_opt.dirty_max;
		raised_ms = now;
	}
	return dirty_limit;
}

/*
 * A free run was handed out with @fresh bytes that fault in (purged).
 * Soon after the size rule purged, that is the program's working set
 * coming back: keep more dirty pages from now on (what was dirty plus
 * what it needed, or the budget if more, and a quarter), up to
 * DIRTY_LEARN_MAX.
 * dirty_max=0 asks for everything back at once and learns nothing.
 */
static void learn_reuse(size_t fresh, uint64_t now)
{
	size_t want;

	if (!fresh || !slab_opt.dirty_max || !size_purge_ms ||
	    now - size_purge_ms > purge_period())
		return;
	/* What would have spared the purge, and a quarter more. */
	want = ph.dirty_bytes + fresh;
	if (want < dirty_limit)
		want = dirty_limit;
	want += want / 4;
	if (want > DIRTY_LEARN_MAX)
		want = DIRTY_LEARN_MAX > slab_opt.dirty_max ?
			       DIRTY_LEARN_MAX :
			       slab_opt.dirty_max;
	if (want > dirty_limit) {
		dirty_limit = want;
		raised_ms = now;
	}
}

static void purge_locked(int all, struct slab *keep, struct slab **taken)
{
	struct slab *v, *prev;
	uint64_t now = now_ms();
	size_t budget = dirty_budget(now);

	if (all || ph.dirty_bytes > budget) {
		size_t target = all ? 0 : budget / 2;

		for (v = lru_tail; v && ph.dirty_bytes > target; v = prev) {
			prev = v->lru_prev;
			/* dirty_max=0 asks for everything back at once. */
			if (v != keep || all || !slab_opt.dirty_max)
				purge_take(v, taken);
		}
		if (!all)
			size_purge_ms = now;
	}
	if (!lru_tail)
		return;
	while (lru_tail && now - lru_tail->free_ms >= slab_opt.purge_ms)
		purge_take(lru_tail, taken);
}

/*
 * From slow paths, no lock held: purge runs older than purge_ms even when
 * the page heap itself sees no traffic. Reads the LRU tail racily (a
 * descriptor is never unmapped); takes the lock only when there is work.
 */
void pageheap_tick(void)
{
	struct slab *t = __atomic_load_n(&lru_tail, __ATOMIC_RELAXED);
	struct slab *taken = NULL;

	if (!t || now_ms() - __atomic_load_n(&t->free_ms, __ATOMIC_RELAXED) <
			  slab_opt.purge_ms)
		return;
	if (!slock_trylock(&ph_lock))
		return;
	purge_locked(0, NULL, &taken);
	slock_unlock(&ph_lock);
	purge_finish(taken);
}

void pageheap_purge(int all)
{
	struct slab *taken = NULL;

	slock_lock(&ph_lock);
	purge_locked(all, NULL, &taken);
	slock_unlock(&ph_lock);
	purge_finish(taken);
}

static struct slab *find_free(size_t npages)
{
	struct slab *s, *best = NULL;
	size_t i;

	for (i = npages; i <= NR_BINS; i++)
		if (bins[i])
			return bins[i];
	for (s = bins[0]; s; s = s->next)
		if (s->npages >= npages && (!best || s->npages < best->npages))
			best = s;
	return best;
}

/*
 * Carve a new run of @npages from the top of the arena, together with the
 * free run that ends at the top, if any (runs stay coalesced).
 */
static struct slab *grow(size_t npages)
{
	size_t len, want;
	struct slab *s, *top = NULL;

	if (frontier) {
		top = slab_arena.pagemap[(frontier >> PAGE_SHIFT) - 1];
		if (top &&
		    __atomic_load_n(&top->kind, __ATOMIC_RELAXED) ==
			    SPAN_FREE &&
		    top->start + ((size_t)top->npages << PAGE_SHIFT) ==
			    slab_arena.base + frontier &&
		    top->npages < npages)
			npages -= top->npages;
		else
			top = NULL;
	}
	len = npages << PAGE_SHIFT;

	if (npages > (slab_arena.size - frontier) >> PAGE_SHIFT &&
	    (npages > (arena_max - frontier) >> PAGE_SHIFT ||
	     !arena_extend(frontier + len)))
		return NULL;
	if (frontier + len > committed) {
		want = (frontier + len - committed + COMMIT_STEP - 1) &
		       ~(COMMIT_STEP - 1);
		if (want > slab_arena.size - committed)
			want = slab_arena.size - committed;
		if (mprotect((void *)(slab_arena.base + committed), want,
			     PROT_READ | PROT_WRITE))
			return NULL;
		committed += want;
	}
	if (top) {
		free_del(top);
		top->npages += (uint32_t)npages;
		frontier += len;
		return top;
	}
	s = desc_get();
	if (!s)
		return NULL;
	s->start = slab_arena.base + frontier;
	s->npages = (uint32_t)npages;
	s->dirty_pages = 0;
	frontier += len;
	return s;
}

/* Split the first @npages off free-list-detached run @s; rest goes free. */
static int split_tail(struct slab *s, size_t npages)
{
	struct slab *t;

	if (s->npages == npages)
		return 0;
	t = desc_get();
	if (!t)
		return -1;
	t->start = s->start + (npages << PAGE_SHIFT);
	t->npages = (uint32_t)(s->npages - npages);
	/* Which pages are dirty is not known: bound each part. */
	t->dirty_pages = s->dirty_pages < t->npages ? s->dirty_pages :
						      t->npages;
	__atomic_store_n(&t->free_ms, s->free_ms, __ATOMIC_RELAXED);
	s->npages = (uint32_t)npages;
	if (s->dirty_pages > npages)
		s->dirty_pages = (uint32_t)npages;
	free_add(t);
	return 0;
}

struct slab *pageheap_alloc(size_t npages, size_t align_pages, int kind)
{
	struct slab *s, *h, *taken = NULL;
	size_t len, head;
	uintptr_t a;

	if (!npages || npages > UINT32_MAX ||
	    align_pages > slab_arena.size >> PAGE_SHIFT)
		return NULL;
	len = npages + (align_pages > 1 ? align_pages - 1 : 0);
	if (len > UINT32_MAX)
		return NULL;
	slock_lock(&ph_lock);
	s = find_free(len);
	if (s) {
		free_del(s);
		/* Pages never used (grow() below) are not a purge's fault. */
		if (size_purge_ms && s->dirty_pages < s->npages)
			learn_reuse((size_t)(s->npages - s->dirty_pages)
					    << PAGE_SHIFT,
				    now_ms());
	} else {
		s = grow(len);
	}
	if (!s)
		goto fail;
	/* Not free any more: coalesce() below must not take it. */
	s->kind = (uint8_t)kind;
	if (align_pages > 1) {
		a = (s->start + (align_pages << PAGE_SHIFT) - 1) &
		    ~((align_pages << PAGE_SHIFT) - 1);
		head = (a - s->start) >> PAGE_SHIFT;
		if (head) {
			h = desc_get();
			if (!h) {
				free_add(coalesce(s));
				goto fail;
			}
			/*
			 * Field by field: h may be a recycled descriptor that
			 * pageheap_tick() still peeks at (free_ms, atomic).
			 */
			h->start = s->start;
			h->npages = (uint32_t)head;
			h->dirty_pages = s->dirty_pages < head ?
						 s->dirty_pages :
						 (uint32_t)head;
			__atomic_store_n(&h->free_ms, s->free_ms,
					 __ATOMIC_RELAXED);
			s->start = a;
			s->npages -= (uint32_t)head;
			if (s->dirty_pages > s->npages)
				s->dirty_pages = s->npages;
			free_add(coalesce(h));
		}
	}
	if (split_tail(s, npages)) {
		free_add(coalesce(s));
		goto fail;
	}
	s->kind = (uint8_t)kind;
	s->slot = -1; /* new_slab() sets a slab's slot */
	s->fast_end = 0;
	s->next = s->prev = s->lru_next = s->lru_prev = NULL;
	map_span(s);
	if (kind == SPAN_LARGE) {
		ph.large_bytes += npages << PAGE_SHIFT;
		ph.large_nr++;
	}
	if (lru_tail)
		purge_locked(0, NULL, &taken);
	slock_unlock(&ph_lock);
	purge_finish(taken);
	if (SLAB_DEBUG)
		pageheap_validate();
	return s;
fail:
	slock_unlock(&ph_lock);
	return NULL;
}

/*
 * @s takes in dirty free run @n: the merged run became dirty when its
 * oldest dirty part did, so old dirty pages still age out.
 */
static void merge_stamp(struct slab *s, const struct slab *n)
{
	if (n->dirty_pages && (!s->dirty_pages || n->free_ms < s->free_ms))
		__atomic_store_n(&s->free_ms, n->free_ms, __ATOMIC_RELAXED);
}

/* Merge free run @s with free neighbours; returns the merged run. */
static struct slab *coalesce(struct slab *s)
{
	size_t first = page_index(s->start);
	uintptr_t end = s->start + ((size_t)s->npages << PAGE_SHIFT);
	struct slab *n;

	if (first) {
		n = slab_arena.pagemap[first - 1];
		if (n &&
		    __atomic_load_n(&n->kind, __ATOMIC_RELAXED) == SPAN_FREE &&
		    n->start + ((size_t)n->npages << PAGE_SHIFT) == s->start) {
			free_del(n);
			merge_stamp(s, n);
			s->start = n->start;
			s->npages += n->npages;
			s->dirty_pages += n->dirty_pages;
			desc_put(n);
		}
	}
	if (end - slab_arena.base < frontier) {
		n = slab_arena.pagemap[page_index(end)];
		if (n &&
		    __atomic_load_n(&n->kind, __ATOMIC_RELAXED) == SPAN_FREE &&
		    n->start == end) {
			free_del(n);
			merge_stamp(s, n);
			s->npages += n->npages;
			s->dirty_pages += n->dirty_pages;
			desc_put(n);
		}
	}
	return s;
}

void pageheap_free(struct slab *s)
{
	struct slab *taken = NULL;
	int large;

	slock_lock(&ph_lock);
	SLAB_BUG_ON(s->kind != SPAN_SLAB && s->kind != SPAN_LARGE);
	large = s->kind == SPAN_LARGE;
	if (large) {
		ph.large_bytes -= (size_t)s->npages << PAGE_SHIFT;
		ph.large_nr--;
	}
	s->kind = SPAN_FREE;
	s->slot = -1;
	s->fast_end = 0;
	s->dirty_pages = s->npages;
	__atomic_store_n(&s->free_ms, now_ms(), __ATOMIC_RELAXED);
	s = coalesce(s);
	free_add(s);
	purge_locked(0, large ? s : NULL, &taken);
	slock_unlock(&ph_lock);
	purge_finish(taken);
	if (SLAB_DEBUG)
		pageheap_validate();
}

int pageheap_keep(struct slab *s)
{
	size_t b = (size_t)s->npages << PAGE_SHIFT;

	SLAB_BUG_ON(s->kind != SPAN_LARGE);
	if (s->npages > KEEP_MAX_PAGES)
		return 0;
	if (__atomic_add_fetch(&kept_bytes, b, __ATOMIC_RELAXED) >
	    slab_opt.dirty_max / 2) {
		__atomic_sub_fetch(&kept_bytes, b, __ATOMIC_RELAXED);
		return 0;
	}
	__atomic_add_fetch(&kept_nr, 1, __ATOMIC_RELAXED);
	/* Its pages were in use: calloc() must clear them. */
	s->dirty_pages = s->npages;
	/* Atomic: coalesce() reads a neighbour's kind under ph_lock only. */
	__atomic_store_n(&s->kind, SPAN_KEPT, __ATOMIC_RELAXED);
	return 1;
}

void pageheap_unkeep(struct slab *s)
{
	SLAB_BUG_ON(s->kind != SPAN_KEPT);
	__atomic_store_n(&s->kind, SPAN_LARGE, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&kept_nr, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&kept_bytes, (size_t)s->npages << PAGE_SHIFT,
			   __ATOMIC_RELAXED);
}

void pageheap_shrink(struct slab *s, size_t npages)
{
	struct slab *t, *taken = NULL;

	if (npages >= s->npages || !npages)
		return;
	slock_lock(&ph_lock);
	t = desc_get();
	if (t) {
		ph.large_bytes -= (size_t)(s->npages - npages) << PAGE_SHIFT;
		t->start = s->start + (npages << PAGE_SHIFT);
		t->npages = s->npages - (uint32_t)npages;
		__atomic_store_n(&t->free_ms, now_ms(), __ATOMIC_RELAXED);
		t->dirty_pages = t->npages;
		s->npages = (uint32_t)npages;
		map_span(s);
		t->kind = SPAN_FREE;
		t = coalesce(t);
		free_add(t);
		purge_locked(0, NULL, &taken);
	}
	slock_unlock(&ph_lock);
	purge_finish(taken);
}

int pageheap_grow(struct slab *s, size_t npages)
{
	uintptr_t end = s->start + ((size_t)s->npages << PAGE_SHIFT);
	size_t more = npages - s->npages;
	struct slab *n;
	int ok = 0;

	if (npages <= s->npages)
		return 1;
	if (npages > UINT32_MAX)
		return 0;
	slock_lock(&ph_lock);
	if (end - slab_arena.base >= frontier)
		goto out;
	n = slab_arena.pagemap[page_index(end)];
	if (!n || n->kind != SPAN_FREE || n->start != end || n->npages < more)
		goto out;
	free_del(n);
	if (n->npages > more) {
		n->start += more << PAGE_SHIFT;
		n->npages -= (uint32_t)more;
		if (n->dirty_pages > n->npages)
			n->dirty_pages = n->npages;
		free_add(n);
	} else {
		desc_put(n);
	}
	/* The old last page no longer ends the run; it may be stale. */
	s->npages = (uint32_t)npages;
	ph.large_bytes += more << PAGE_SHIFT;
	map_span(s);
	ok = 1;
out:
	slock_unlock(&ph_lock);
	return ok;
}

void pageheap_peek_stats(struct pageheap_stats *st)
{
	*st = ph;
	st->dirty_limit = dirty_limit > slab_opt.dirty_max ? dirty_limit :
							     slab_opt.dirty_max;
	st->committed = committed;
	st->frontier = frontier;
	st->kept_bytes = __atomic_load_n(&kept_bytes, __ATOMIC_RELAXED);
	st->kept_nr = __atomic_load_n(&kept_nr, __ATOMIC_RELAXED);
}

void pageheap_get_stats(struct pageheap_stats *st)
{
	slock_lock(&ph_lock);
	pageheap_peek_stats(st);
	slock_unlock(&ph_lock);
}

/*
 * Walk the arena in address order: every page up to the frontier belongs
 * to exactly one run, free runs are coalesced and on their bin, and the
 * byte counts add up.
 */
void pageheap_validate(void)
{
	size_t i = 0, npages, free_b = 0, dirty_b = 0;
	struct slab *s, *prev = NULL, *b;
	int found;

	slock_lock(&ph_lock);
	npages = frontier >> PAGE_SHIFT;
	while (i < npages) {
		s = slab_arena.pagemap[i];
		SLAB_BUG_ON(!s ||
			    s->start != slab_arena.base + (i << PAGE_SHIFT));
		SLAB_BUG_ON(!s->npages || i + s->npages > npages);
		SLAB_BUG_ON(s->kind != SPAN_FREE && s->kind != SPAN_SLAB &&
			    s->kind != SPAN_LARGE && s->kind != SPAN_KEPT &&
			    s->kind != SPAN_PURGING);
		SLAB_BUG_ON(slab_arena.pagemap[i + s->npages - 1] != s);
		if (s->kind == SPAN_FREE) {
			SLAB_BUG_ON(prev && prev->kind == SPAN_FREE);
			free_b += (size_t)s->npages << PAGE_SHIFT;
			SLAB_BUG_ON(s->dirty_pages > s->npages);
			dirty_b += (size_t)s->dirty_pages << PAGE_SHIFT;
			found = 0;
			for (b = *bin_of(s->npages); b && !found; b = b->next)
				found = b == s;
			SLAB_BUG_ON(!found);
		}
		prev = s;
		i += s->npages;
	}
	for (i = 0; i <= NR_BINS; i++)
		for (b = bins[i]; b; b = b->next)
			SLAB_BUG_ON(b->kind != SPAN_FREE ||
				    slab_arena.pagemap[page_index(b->start)] !=
					    b);
	if (free_b != ph.free_bytes || dirty_b != ph.dirty_bytes)
		slab_bug("page heap counts: free %zu (counted %zu), dirty %zu (counted %zu)",
			 ph.free_bytes, free_b, ph.dirty_bytes, dirty_b);
	slock_unlock(&ph_lock);
}

struct slock *pageheap_lock_of(void)
{
	return &ph_lock;
}
