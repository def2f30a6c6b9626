// SPDX-License-Identifier: MIT
/*
 * wrap.c - the __wrap_* entry points that -Wl,--wrap=X routes X to.
 *
 * All of them live in this one object file, which slab-config's -u flag
 * pulls into every link: a static link wraps calls made by libc.a members
 * that are scanned after our archive (musl's valloc calls memalign), so
 * every entry point must be there whatever the program itself calls.
 *
 * Ownership: a pointer in the arena is ours (and is checked: a pointer that
 * is not an object start aborts with a message); any other pointer is
 * libc's and goes to __real_*. When we cannot serve a request (arena
 * exhausted or unavailable) libc's allocator serves it.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "glue.h"
#include "internal.h"
#include "slab.h"

#define __wrap_entry __attribute__((visibility("default")))

void *__wrap_malloc(size_t size) __wrap_entry;
void __wrap_free(void *p) __wrap_entry;
void *__wrap_calloc(size_t n, size_t size) __wrap_entry;
void *__wrap_realloc(void *p, size_t size) __wrap_entry;
void *__wrap_reallocarray(void *p, size_t n, size_t size) __wrap_entry;
void *__wrap_aligned_alloc(size_t align, size_t size) __wrap_entry;
int __wrap_posix_memalign(void **memptr, size_t align,
			  size_t size) __wrap_entry;
void *__wrap_memalign(size_t align, size_t size) __wrap_entry;
void *__wrap_valloc(size_t size) __wrap_entry;
void *__wrap_pvalloc(size_t size) __wrap_entry;
size_t __wrap_malloc_usable_size(void *p) __wrap_entry;
void __wrap_free_sized(void *p, size_t size) __wrap_entry;
int __wrap_malloc_trim(size_t pad) __wrap_entry;
void __wrap_free_aligned_sized(void *p, size_t align, size_t size) __wrap_entry;
ssize_t __wrap_getdelim(char **lineptr, size_t *n, int delim,
			FILE *stream) __wrap_entry;
ssize_t __wrap_getline(char **lineptr, size_t *n, FILE *stream) __wrap_entry;
ssize_t __wrap___getdelim(char **lineptr, size_t *n, int delim,
			  FILE *stream) __wrap_entry;

static int power_of_two(size_t x)
{
	return x && !(x & (x - 1));
}

void *__wrap_malloc(size_t size)
{
	return slab_malloc_or_libc(size);
}

/*
 * libc's pointer: out of line, so that the fast path above keeps no frame.
 * Once libc has served requests for us (during forks, in signal
 * handlers), its free runs with signals blocked too (glue.h). Not every
 * libc's free keeps errno (POSIX.1-2024 asks it).
 */
static __attribute__((noinline)) void libc_free(void *p)
{
	int e = errno;

	__atomic_fetch_add(&slab_foreign_frees, 1, __ATOMIC_RELAXED);
	if (unlikely(__atomic_load_n(&slab_libc_fallbacks, __ATOMIC_RELAXED)))
		LIBC_CALL(__real_free(p));
	else
		__real_free(p);
	errno = e;
}

void __wrap_free(void *p)
{
	if (likely(in_arena(p))) {
		slab_free(p);
		return;
	}
	if (p)
		libc_free(p);
}

/* calloc() beyond the inline case: large, a miss, or libc's. */
static __attribute__((noinline)) void *calloc_slow(size_t n, size_t size,
						   size_t total)
{
	void *p;

	/* No rseq: this thread's stack (internal.h). */
	if (total <= 1024) {
		p = tcache_malloc(kmalloc_index_small[(total + 15) >> 4]);
		if (p)
			return memset(p, 0, total < 16 ? 16 : total);
	}
	p = slab_calloc(total);

	if (likely(p))
		return p;
	if (total >= SLAB_SIZE_IMPOSSIBLE) {
		errno = ENOMEM;
		return NULL;
	}
	slab_count_fallback();
	if (SLAB_LIBC_ALIGNED_FALLBACK) {
		LIBC_CALL(p = __real_calloc(n, size));
		return p;
	}
	LIBC_CALL(p = __real_malloc(total)); /* see glue.h */
	if (p)
		memset(p, 0, total);
	return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
	size_t total;
	void *p;

	if (unlikely(__builtin_mul_overflow(n, size, &total))) {
		errno = ENOMEM;
		return NULL;
	}
	/*
	 * Small: malloc's pop and a tail call to memset, no frame. At least
	 * 16 bytes (the smallest object) are cleared: that also clears the
	 * free key in word 1 (internal.h).
	 */
	if (likely(total <= 1024)) {
		unsigned int c = kmalloc_index_small[(total + 15) >> 4];

		rseq_pop_or_goto(&slab_fast, c, p, slow);
		return memset(p, 0, total < 16 ? 16 : total);
	}
slow:
	return calloc_slow(n, size, total);
}

void *__wrap_realloc(void *p, size_t size)
{
	size_t old;
	void *q;

	if (!p)
		return __wrap_malloc(size);
	if (!in_arena(p))
		return __real_realloc(p, size);
	if (!size && SLAB_REALLOC_ZERO_FREES) {
		slab_free(p);
		return NULL;
	}
	if (unlikely(slab_state != SLAB_STATE_READY)) {
		/* Degraded fork child: copy out to libc, leak ours. */
		old = slab_usable_op(p, "realloc");
		LIBC_CALL(q = __real_malloc(size));
		if (q)
			memcpy(q, p, old < size ? old : size);
		return q;
	}
	q = slab_resize_inplace(p, size, &old);
	if (q)
		return q;
	q = slab_malloc(size);
	if (!q && size >= SLAB_SIZE_IMPOSSIBLE) {
		errno = ENOMEM; /* @p stays valid */
		return NULL;
	}
	if (!q) {
		slab_count_fallback();
		LIBC_CALL(q = __real_malloc(size));
	}
	if (!q)
		return NULL;
	memcpy(q, p, old < size ? old : size);
	slab_free(p);
	return q;
}

void *__wrap_reallocarray(void *p, size_t n, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return __wrap_realloc(p, total);
}

/* @align is a power of two. */
static void *aligned(size_t align, size_t size)
{
	void *p = slab_memalign(align, size);

	if (likely(p))
		return p;
	if (!SLAB_LIBC_ALIGNED_FALLBACK || size >= SLAB_SIZE_IMPOSSIBLE) {
		/* musl (glue.h): the slow paths waited out a fork already. */
		errno = ENOMEM;
		return NULL;
	}
	slab_count_fallback();
	LIBC_CALL(p = __real_aligned_alloc(align > sizeof(void *) ?
						   align :
						   sizeof(void *),
					   size));
	return p;
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
	if (!power_of_two(align)) {
		errno = EINVAL; /* 0 too: not an alignment */
		return NULL;
	}
	return aligned(align, size);
}

void *__wrap_memalign(size_t align, size_t size)
{
	return __wrap_aligned_alloc(align, size);
}

static __attribute__((noinline)) int
posix_memalign_slow(void **memptr, size_t align, size_t size)
{
	void *p;

	if (!power_of_two(align) || align % sizeof(void *))
		return EINVAL;
	/* No rseq: this thread's stack (internal.h). */
	if (align <= SLAB_MIN_ALIGN && size <= KMALLOC_MAX) {
		p = tcache_malloc(size_to_class(size));
		if (p) {
			*memptr = p;
			return 0;
		}
	}
	p = slab_memalign(align, size);
	if (unlikely(!p) &&
	    (!SLAB_LIBC_ALIGNED_FALLBACK || size >= SLAB_SIZE_IMPOSSIBLE)) {
		return ENOMEM; /* see aligned() */
	} else if (unlikely(!p)) {
		int r;

		slab_count_fallback();
		LIBC_CALL(r = __real_posix_memalign(memptr, align, size));
		return r;
	}
	*memptr = p;
	return 0;
}

int __wrap_posix_memalign(void **memptr, size_t align, size_t size)
{
	void *p;

	/* Every object is 16-aligned: malloc's pop, inline, no frame. */
	if (likely(align == 16 || align == 8) && likely(size <= 1024)) {
		unsigned int c = kmalloc_index_small[(size + 15) >> 4];

		rseq_pop_or_goto(&slab_fast, c, p, slow);
		obj_clear_key(p);
		*memptr = p;
		return 0;
	}
slow:
	return posix_memalign_slow(memptr, align, size);
}

void *__wrap_valloc(size_t size)
{
	return aligned(PAGE_SIZE, size);
}

void *__wrap_pvalloc(size_t size)
{
	if (size > SIZE_MAX - (PAGE_SIZE - 1)) {
		errno = ENOMEM;
		return NULL;
	}
	size = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	return aligned(PAGE_SIZE, size ? size : PAGE_SIZE);
}

size_t __wrap_malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	if (in_arena(p))
		return slab_usable_arena(p);
	return __real_malloc_usable_size(p);
}

/*
 * glibc's malloc_trim() gives its arenas' free memory back; we do the same
 * for ours, then let glibc trim the foreign blocks it still owns. musl has
 * no malloc_trim(): the wrapped name gives such programs one that works.
 */
int __wrap_malloc_trim(size_t pad)
{
	int r = slab_trim();

#ifdef __GLIBC__
	r |= __real_malloc_trim(pad);
#else
	(void)pad;
#endif
	return r;
}

void __wrap_free_sized(void *p, size_t size)
{
	if (likely(in_arena(p))) {
		if (likely(size <= KMALLOC_MAX))
			slab_free_class(p, size);
		else
			slab_free_sized_other(p, size);
		return;
	}
	if (p)
		libc_free(p);
}

void __wrap_free_aligned_sized(void *p, size_t align, size_t size)
{
	if (likely(in_arena(p))) {
		if (align <= SLAB_MIN_ALIGN && power_of_two(align) &&
		    likely(size <= KMALLOC_MAX)) {
			slab_free_class(p, size);
			return;
		}
		if ((uintptr_t)p & (align - 1))
			slab_misuse("free_aligned_sized(%p, %zu, %zu): pointer is not so aligned",
				    p, align, size);
		slab_free_sized_other(p, size);
		return;
	}
	if (p)
		libc_free(p);
}

/* Hand libc a NULL buffer instead of ours (see below). */
static void getdelim_prepare(char **lineptr, size_t *n, FILE *stream)
{
	if (SLAB_LIBC_REALLOCS_GETLINE && lineptr && n && stream && *lineptr &&
	    in_arena(*lineptr)) {
		__wrap_free(*lineptr);
		*lineptr = NULL;
		*n = 0;
	}
}

ssize_t __wrap___getdelim(char **lineptr, size_t *n, int delim, FILE *stream)
{
	getdelim_prepare(lineptr, n, stream);
	return __real___getdelim(lineptr, n, delim, stream);
}

ssize_t __wrap_getdelim(char **lineptr, size_t *n, int delim, FILE *stream)
{
	/*
	 * glibc's libc.so grows the buffer with its own realloc, which must
	 * not see ours: hand it a NULL buffer instead (getdelim overwrites
	 * the contents anyway). In a static musl link getdelim's realloc is
	 * wrapped and needs nothing.
	 */
	if (SLAB_LIBC_REALLOCS_GETLINE && lineptr && n && stream && *lineptr &&
	    in_arena(*lineptr)) {
		__wrap_free(*lineptr);
		*lineptr = NULL;
		*n = 0;
	}
	return __real_getdelim(lineptr, n, delim, stream);
}

ssize_t __wrap_getline(char **lineptr, size_t *n, FILE *stream)
{
	return __wrap_getdelim(lineptr, n, '\n', stream);
}

/* Public introspection helpers. */
int slab_owns(const void *p)
{
	return p && in_arena(p) && arena_object(p);
}
