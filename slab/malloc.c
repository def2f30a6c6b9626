// SPDX-License-Identifier: MIT
/*
 * malloc.c - the malloc family on top of the caches and the page heap:
 * large and aligned requests, the checks on pointers that free() is given,
 * resizing in place, calloc's zeroing.
 *
 * Sizes up to KMALLOC_MAX go to the kmalloc caches; larger ones are page
 * runs (SPAN_LARGE) aligned as asked. Aligned requests up to a page are
 * served by the class of round_up(size, align): every class that is a
 * multiple of the alignment is at a multiple of it in a page-aligned slab,
 * so the waste is below the alignment (plus the class rounding).
 *
 * A thread keeps the last large run it freed (slab_tls.kept, SPAN_KEPT) and
 * serves its next large malloc from it when the size is close (the run is
 * at most a quarter larger than needed): no page-heap lock, and pages that
 * are warm in this core's cache rather than in the core of whichever
 * thread freed a run last. A loop of 300 KB buffers in two threads ran
 * 1.2x slower than mimalloc without it. Kept runs are bounded (see
 * pageheap_keep()) and go back when the thread exits or keeps another.
 */
#include <errno.h>
#include <string.h>

#include "glue.h"
#include "internal.h"

/* Mark this thread inside the allocator: a signal handler must not race. */
static void tls_enter(struct slab_tls *t)
{
	t->busy++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static void tls_leave(struct slab_tls *t)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	t->busy--;
}

/*
 * Detach this thread's kept run, made SPAN_LARGE again; NULL if none. Call
 * inside tls_enter(): a signal handler that allocates between a read of
 * slab_tls.kept and the busy mark would take (or free) the same run.
 */
static struct slab *kept_detach(struct slab_tls *t)
{
	struct slab *s = t->kept;

	if (s) {
		t->kept = NULL;
		pageheap_unkeep(s);
	}
	return s;
}

/* This thread's kept run if it fits @npages closely; NULL otherwise. */
static struct slab *large_take(size_t npages)
{
	struct slab_tls *t = &slab_tls;
	struct slab *s;

	if (!t->kept)
		return NULL; /* racy peek; read again below */
	tls_enter(t);
	s = kept_detach(t);
	if (s && (s->npages < npages || s->npages - npages > npages / 4)) {
		pageheap_free(s);
		s = NULL;
	}
	tls_leave(t);
	return s;
}

/* Keep large run @s (being freed) for this thread; 0: free it instead. */
static int large_keep(struct slab *s)
{
	struct slab_tls *t = &slab_tls;
	struct slab *old;

	/* Only threads whose exit hook will give the run back. */
	if (!percpu_thread_hooked())
		return 0;
	if (!pageheap_keep(s))
		return 0;
	tls_enter(t);
	old = kept_detach(t);
	if (old)
		pageheap_free(old);
	t->kept = s;
	tls_leave(t);
	return 1;
}

void slab_large_release(void)
{
	struct slab_tls *t = &slab_tls;
	struct slab *s;

	if (!t->kept || slab_state != SLAB_STATE_READY)
		return;
	tls_enter(t);
	s = kept_detach(t);
	if (s)
		pageheap_free(s);
	tls_leave(t);
}

void *slab_alloc_large(size_t size, size_t align)
{
	struct slab *s;
	size_t npages, align_pages = 1;

	if (!slab_ready() || slab_tls.busy)
		return NULL;
	if (size > SIZE_MAX - PAGE_SIZE)
		return NULL;
	npages = (size + PAGE_SIZE - 1) >> PAGE_SHIFT;
	if (!npages)
		npages = 1;
	if (align > PAGE_SIZE)
		align_pages = align >> PAGE_SHIFT;
	if (!slow_enter_alloc())
		return NULL; /* a fork in progress: libc serves it */
	s = align_pages == 1 ? large_take(npages) : NULL;
	if (!s)
		s = pageheap_alloc(npages, align_pages, SPAN_LARGE);
	slow_exit();
	if (!s)
		return NULL;
	s->req = size;
	return (void *)s->start;
}

/* malloc_slow() beyond this thread's stack: refills, large runs, libc. */
static __attribute__((noinline)) void *malloc_slower(size_t size)
{
	void *p;

	if (size <= KMALLOC_MAX)
		p = cache_alloc_slow(&kmalloc_caches[size_to_class(size)]);
	else
		p = slab_alloc_large(size, 0);
	if (SLAB_DEBUG && p && slab_usable_arena(p) < size)
		slab_bug("malloc_slow(%zu) gave %p of %zu bytes", size, p,
			 slab_usable_arena(p));
	if (likely(p))
		return p;
	if (size >= SLAB_SIZE_IMPOSSIBLE) {
		errno = ENOMEM;
		return NULL;
	}
	slab_count_fallback();
	LIBC_CALL(p = __real_malloc(size));
	return p;
}

void *malloc_slow(size_t size)
{
	void *p;

	/* No rseq: this thread's stack, inline and with no frame. */
	if (likely(size <= KMALLOC_MAX)) {
		p = tcache_malloc(size_to_class(size));
		if (p)
			return p;
	}
	return malloc_slower(size);
}

void *slab_memalign(size_t align, size_t size)
{
	size_t r;

	if (align <= SLAB_MIN_ALIGN)
		return slab_malloc(size);
	if (align <= PAGE_SIZE && size <= KMALLOC_MAX) {
		r = ((size ? size : 1) + align - 1) & ~(align - 1);
		if (r <= KMALLOC_MAX)
			return kmalloc_class(size_to_class(r));
	}
	return slab_alloc_large(size, align);
}

void *slab_calloc(size_t size)
{
	struct slab *s;
	void *p;

	if (size <= KMALLOC_MAX) {
		p = slab_malloc(size);
		if (p)
			memset(p, 0, size);
		return p;
	}
	p = slab_alloc_large(size, 0);
	if (!p)
		return NULL;
	s = virt_to_slab(p);
	/* Pages never handed out, or purged since, read as zero already. */
	if (s->dirty_pages)
		memset(p, 0, size);
	return p;
}

/*
 * The large run (live or kept) that holds @p on one of its interior pages,
 * which the pagemap does not map: walk back to a page that starts a run
 * holding @p. Only for error messages; bounded to 1 GiB of pages.
 */
static struct slab *large_run_around(const void *p)
{
	size_t page = ((uintptr_t)p - slab_arena.base) >> PAGE_SHIFT;
	size_t stop = page > (1UL << 18) ? page - (1UL << 18) : 0;
	struct slab *sl;

	while (page-- > stop) {
		sl = slab_arena.pagemap[page];
		if (sl && (sl->kind == SPAN_LARGE || sl->kind == SPAN_KEPT) &&
		    span_contains(sl, p))
			return sl;
	}
	return NULL;
}

void slab_bad_pointer(const char *op, const void *p)
{
	struct slab *sl = virt_to_slab(p);

	if (!sl || !span_contains(sl, p)) {
		struct slab *run = large_run_around(p);

		if (run)
			sl = run;
	}

	if (sl && span_contains(sl, p)) {
		if (sl->kind == SPAN_SLAB)
			slab_misuse("%s(%p): not the start of an object (cache %s, object size %u)",
				    op, p, sl->cache->name, sl->cache->size);
		if (sl->kind == SPAN_LARGE)
			slab_misuse("%s(%p): pointer inside the large allocation at %p",
				    op, p, (void *)sl->start);
		if (sl->kind == SPAN_FREE || sl->kind == SPAN_KEPT ||
		    sl->kind == SPAN_PURGING)
			slab_misuse("%s(%p): memory is free (double free or never allocated)",
				    op, p);
	}
	slab_misuse("%s(%p): pointer into the slab arena that is not an allocated object (double free?)",
		    op, p);
}

void slab_free_arena(void *p)
{
	struct slab *sl;
	struct kmem_cache *s;

	sl = arena_object(p);
	if (!sl)
		slab_bad_pointer("free", p);
	if (sl->kind == SPAN_SLAB && sl->cache->slot >= 0) {
		cache_free(sl->cache, p);
		return;
	}
	/*
	 * Inside a signal handler that interrupted this thread in the
	 * allocator, while a fork is in progress, or in a degraded fork
	 * child: no lock may be taken, free it later.
	 */
	if (slab_tls.busy || !slow_enter()) {
		slab_defer_free(p);
		return;
	}
	if (sl->kind == SPAN_SLAB) {
		s = sl->cache;
		cache_drain(s, &p, 1);
	} else if (!large_keep(sl)) {
		pageheap_free(sl); /* a large run */
	}
	slow_exit();
}

void slab_free_sized_other(void *p, size_t size)
{
	size_t usable = slab_usable_op(p, "free_sized");

	if (size > usable)
		slab_misuse("free_sized(%p, %zu): object is only %zu bytes", p,
			    size, usable);
	slab_free(p);
}

size_t slab_usable_arena(const void *p)
{
	return slab_usable_op(p, "malloc_usable_size");
}

size_t slab_usable_op(const void *p, const char *op)
{
	struct slab *sl = arena_object(p);

	if (!sl)
		slab_bad_pointer(op, p);
	if (sl->kind == SPAN_SLAB)
		return sl->cache->size;
	return (size_t)sl->npages << PAGE_SHIFT;
}

void *slab_resize_inplace(void *p, size_t size, size_t *old)
{
	struct slab *sl = virt_to_slab(p);
	size_t npages;

	*old = slab_usable_op(p, "realloc"); /* validates p */
	if (sl->kind == SPAN_SLAB) {
		/* Stay unless the object would waste more than half. */
		if (size <= *old && (size >= *old / 2 || *old <= 16) &&
		    sl->cache->slot >= 0)
			return p;
		return NULL;
	}
	if (size <= KMALLOC_MAX / 2 || size > SIZE_MAX - PAGE_SIZE ||
	    slab_state != SLAB_STATE_READY || slab_tls.busy)
		return NULL;
	npages = (size + PAGE_SIZE - 1) >> PAGE_SHIFT;
	if (!slow_enter())
		return NULL;
	if (npages <= sl->npages) {
		pageheap_shrink(sl, npages);
		sl->req = size;
	} else if (pageheap_grow(sl, npages)) {
		sl->req = size;
	} else {
		p = NULL;
	}
	slow_exit();
	return p;
}
