/* SPDX-License-Identifier: MIT */
/*
 * types.h - data structures shared by every layer of slab.
 *
 * Layers, bottom up (each in its own file, contract in internal.h):
 *   meta.c      bump allocator for out-of-band metadata (never in the arena)
 *   pageheap.c  the arena: reserved range, pagemap, page runs (spans)
 *   slab.c      struct kmem_cache: slabs carved from spans, partial lists,
 *               the depot of free objects; named caches
 *   percpu.c    per-CPU stacks (rseq) or per-thread stacks (fallback)
 *   malloc.c    size -> class, large runs, realloc, ownership checks
 *   wrap/wrap.c the __wrap_* entry points and libc semantics
 */
#ifndef SLAB_TYPES_H
#define SLAB_TYPES_H

#include <stddef.h>
#include <stdint.h>

#define PAGE_SHIFT 12
#define PAGE_SIZE  (1UL << PAGE_SHIFT)

/* Size classes: 16..128 by 16, then 8 classes per power of two. */
#define SLAB_MIN_ALIGN 16
#define NR_KMALLOC     96
#define KMALLOC_MAX    (256UL * 1024) /* largest slab-served size */

/* Per-CPU / per-thread cache region (see percpu.c). */
#define NR_CPU_SLOTS 128 /* kmalloc classes + named caches */
#define REGION_SHIFT 16
#define REGION_SIZE  (1UL << REGION_SHIFT)
#define REGION_SLOTS (REGION_SIZE / sizeof(void *))
#define MAX_BATCH    64
#define CACHELINE    64 /* x86-64; most aarch64 cores */

/* A slab holds at most this many objects (bitmap size). */
#define SLAB_MAX_OBJS  256
#define SLAB_MAX_PAGES 64

/*
 * Futex lock (three states: 0 free, 1 locked, 2 locked with waiters).
 * Only slow paths take locks.
 */
struct slock {
	int v;
};

enum span_kind {
	SPAN_NONE = 0, /* descriptor not in use */
	SPAN_FREE,     /* free run in the page heap */
	SPAN_LARGE,    /* one large allocation */
	SPAN_SLAB,     /* a slab of a kmem_cache */
	SPAN_KEPT,     /* a freed large run a thread keeps for reuse */
	SPAN_PURGING,  /* a free run being purged, outside the lock */
};

/*
 * struct slab - out-of-band descriptor of a run of arena pages (a span),
 * the kernel's struct slab/folio. The pagemap maps a page to it:
 *   SPAN_SLAB:  every page of the run
 *   SPAN_LARGE: first and last page (so does SPAN_KEPT)
 *   SPAN_FREE:  first and last page (for coalescing)
 * A lookup is valid only if kind is right and the page lies in
 * [start, start + npages): stale entries fail that check.
 */
struct slab {
	/*
	 * Hot: read by free() without a lock; constant while allocated. One
	 * cache line (descriptors are 64-byte aligned): nothing that a
	 * refill or drain writes may share it, or every free() on other
	 * CPUs would miss on it.
	 */
	uintptr_t start;
	uint32_t npages;
	uint8_t kind;
	uint8_t pad;
	int16_t slot;      /* per-CPU slot; -1 unless SPAN_SLAB */
	uint64_t magic;    /* SPAN_SLAB: kmem_cache.magic */
	uint32_t objs_end; /* SPAN_SLAB: nobj * size */
	uint32_t fast_end; /* objs_end if per-CPU slot, else 0 */
	uint16_t nobj;
	uint16_t pad2;
	uint32_t size;  /* SPAN_SLAB: object size */
	char *cpu_base; /* SPAN_SLAB: slab_fast.slot_base[slot] */
	struct kmem_cache *cache;
	/* Cold: written under the cache's or the page heap's lock. */
	uint16_t inuse;           /* objects not in freemap */
	uint16_t hint;            /* first freemap word with a bit set */
	uint8_t on_list;          /* SPAN_SLAB: SL_* below */
	struct slab *next, *prev; /* cache list or free bin */
	struct slab *lru_next, *lru_prev; /* dirty free spans, oldest last */
	uint64_t free_ms;                 /* SPAN_FREE: when it became dirty */
	uint32_t dirty_pages; /* may be resident, not zero (upper bound) */
	uint64_t freemap[SLAB_MAX_OBJS / 64]; /* bit set = free */
	size_t req;                           /* SPAN_LARGE: requested size */
} __attribute__((aligned(CACHELINE)));

_Static_assert(__builtin_offsetof(struct slab, inuse) <= CACHELINE,
	       "free()'s fields of struct slab fit one cache line");

enum { SL_NONE, SL_PARTIAL, SL_FULL, SL_EMPTY };

/* A doubly linked list of slabs with a count. */
struct slab_list {
	struct slab *head;
	unsigned long nr;
};

struct kmem_cache_stats {
	unsigned long refills, drains; /* batches with per-CPU layer */
	unsigned long slabs_new, slabs_freed;
	unsigned long alloc_fail;
};

/*
 * struct kmem_cache - one object size. Its lock protects every field below
 * it and the freemap/inuse/list fields of its slabs.
 * Lock order: caches_lock -> kmem_cache.lock -> pageheap lock -> meta lock.
 */
struct kmem_cache {
	struct slock lock; /* a line of its own: see the alignment below */
	uint32_t size;     /* object size (stride) */
	/*
	 * ceil(2^64 / size). For an offset off < 2^32 into a slab:
	 * off is a multiple of size iff off * magic mod 2^64 < magic, and
	 * off / size is the high half of the 128-bit off * magic (Lemire,
	 * Kaser and Kurz, "Faster remainder by direct computation", 2019).
	 */
	uint64_t magic;
	uint16_t nobj;   /* objects per slab */
	uint16_t npages; /* pages per slab */
	int16_t slot;    /* per-CPU slot, -1: central only */
	uint16_t batch;  /* objects moved per refill/drain */
	unsigned int flags;
	void (*ctor)(void *);
	struct slab_list partial, full, empty;
	unsigned long nr_slabs;
	unsigned long active; /* objects handed out (incl. caches) */
	void **depot;         /* free objects not in any slab map */
	unsigned int depot_nr, depot_cap;
	struct kmem_cache_stats stats;
	struct kmem_cache *next_named; /* list of named caches */
	char name[32];
} __attribute__((aligned(CACHELINE))); /* neighbours' locks apart */

/* Internal kmem_cache flags beyond the public ones. */
#define SLAB_KMALLOC 0x100u
#define SLAB_DEAD    0x200u

/*
 * Per-CPU (or per-thread) cache region, REGION_SIZE bytes, all zeroes when
 * new (a valid, empty state). It starts with a REGION_HDR-byte header
 * (struct region_hdr); slot s (a kmalloc class) owns, at byte offset
 * slot_off[s]:
 *	u32 count at -8, u32 cap at -4, then room for void *objs[slot_max[s]]
 * objs[0 .. count) are free objects, the top one at objs[count - 1].
 * cap is this region's capacity of the stack (0: refuse, see percpu.c);
 * count <= cap whenever cap != 0.
 */
#define REGION_HDR 64
struct region_hdr {
	uint32_t stopped; /* a drainer owns the region (percpu.c) */
	uint32_t pad;
	uint64_t committed; /* about sum of cap * size (percpu.c) */
};

struct slab_fast {
	char *percpu_base; /* region of cpu c at base + (c << REGION_SHIFT) */
	uint32_t ncpus;    /* 0: fast path disabled */
	uint32_t pad;
	uint64_t free_key; /* in every cached free object (internal.h) */
	uint32_t slot_off[NR_CPU_SLOTS];
	uint32_t slot_max[NR_CPU_SLOTS]; /* largest capacity of each stack */
	char *slot_base[NR_CPU_SLOTS];   /* percpu_base + slot_off */
};

/* Per-thread state (percpu.c). */
enum { TS_NEW, TS_RSEQ, TS_TCACHE, TS_DEAD };
struct slab_tls {
	uint8_t state;
	uint8_t registered; /* we registered rseq for this thread */
	uint8_t hooked;     /* thread_exit() will run at thread exit */
	uint16_t busy;      /* locks held + non-restartable sections */
	uint16_t slow;      /* slow-section depth (lock.h, the fork gate) */
	uint16_t gating;    /* entering or leaving the outermost section */
	uint8_t draining;   /* in slab_deferred_drain() */
	uint8_t ticks;      /* slow calls, for the idle scan (percpu.c) */
	uint64_t nogrow[2]; /* classes whose growth was refused lately */
	int saved_errno;    /* errno at the outermost slow_enter() */
	char *tcache;       /* fallback per-thread region */
	struct slab *kept;  /* SPAN_KEPT run for the next large malloc */
};

#endif /* SLAB_TYPES_H */
