/* SPDX-License-Identifier: MIT */
/*
 * glue.h - the only place that knows libc's allocator (__real_*) and the
 * differences between the libcs we run on.
 *
 * With -Wl,--wrap=X the linker resolves __real_X to libc's X. Every X
 * named here must be in wrap/wrap.list, or the link fails.
 */
#ifndef SLAB_GLUE_H
#define SLAB_GLUE_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

void *__real_malloc(size_t size);
void __real_free(void *ptr);
void *__real_calloc(size_t nmemb, size_t size);
void *__real_realloc(void *ptr, size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
int __real_posix_memalign(void **memptr, size_t align, size_t size);
size_t __real_malloc_usable_size(void *ptr);
int __real_malloc_trim(size_t pad);
ssize_t __real_getdelim(char **lineptr, size_t *n, int delim, FILE *stream);
ssize_t __real___getdelim(char **lineptr, size_t *n, int delim, FILE *stream);

/*
 * realloc(p, 0): glibc frees p and returns NULL; musl (and C17's other
 * reading) returns a new minimal object. Behave like the libc we link with.
 */
#ifdef __GLIBC__
#define SLAB_REALLOC_ZERO_FREES 1
#else
#define SLAB_REALLOC_ZERO_FREES 0
#endif

/*
 * glibc's libc.so reallocs the buffer passed to getline/getdelim with its
 * own realloc, which must never see a pointer of ours.
 */
#ifdef __GLIBC__
#define SLAB_LIBC_REALLOCS_GETLINE 1
#else
#define SLAB_LIBC_REALLOCS_GETLINE 0
#endif

/*
 * musl's calloc, aligned_alloc and posix_memalign call malloc, which a
 * static link wraps: they would get our object and then read musl's
 * metadata for it (a crash in __malloc_allzerop or get_meta). Only
 * musl's malloc, realloc and free may serve as the fallback there.
 */
#ifdef __GLIBC__
#define SLAB_LIBC_ALIGNED_FALLBACK 1
#else
#define SLAB_LIBC_ALIGNED_FALLBACK 0
#endif

/*
 * Run @stmt (a call into libc's allocator that serves a request for us)
 * with every signal blocked: a handler that forks while this thread holds
 * libc's malloc lock deadlocks inside libc's fork(), and our fallbacks
 * happen exactly when a fork is in progress or a handler is running.
 */
#define LIBC_CALL(stmt)                                    \
	do {                                               \
		sigset_t all_, old_;                       \
		int e_;                                    \
                                                           \
		sigfillset(&all_);                         \
		pthread_sigmask(SIG_BLOCK, &all_, &old_);  \
		stmt;                                      \
		e_ = errno;                                \
		pthread_sigmask(SIG_SETMASK, &old_, NULL); \
		errno = e_;                                \
	} while (0)

/* glibc exports its rseq registration (2.35+); weak: NULL elsewhere. */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
extern const unsigned int __rseq_flags __attribute__((weak));

#endif /* SLAB_GLUE_H */
