/* SPDX-License-Identifier: MIT */
/*
 * slab.h - public interface of the slab allocator.
 *
 * Programs linked with `tools/slab-config --ldflags` get the malloc family
 * redirected without including anything. This header is for programs that
 * want more: named object caches in the kernel's style, the C23 sized frees
 * (which libc headers of Debian 12 do not declare yet) and introspection.
 */
#ifndef SLAB_SLAB_H
#define SLAB_SLAB_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kmem_cache;

/* kmem_cache_create() flags. */
#define SLAB_HWCACHE_ALIGN 0x1u /* align objects to 64 bytes */
#define SLAB_POISON        0x2u /* fill freed objects with 0x6b */

/*
 * Create a cache of objects of @size bytes aligned to @align (0 means the
 * default of 16; otherwise a power of two up to 4096). @ctor, if given, runs
 * once per object when a slab is carved, and objects must be handed back in
 * their constructed state, as in the kernel. @name is copied.
 * Returns NULL with errno EINVAL (bad size, align or flags) or ENOMEM.
 */
struct kmem_cache *kmem_cache_create(const char *name, size_t size,
				     size_t align, unsigned int flags,
				     void (*ctor)(void *));
void *kmem_cache_alloc(struct kmem_cache *s);
void *kmem_cache_zalloc(struct kmem_cache *s);
/* Aborts with a message if @obj does not belong to @s. */
void kmem_cache_free(struct kmem_cache *s, void *obj);
/*
 * Destroy an empty cache. If objects are still allocated, prints a warning
 * naming the cache and the count and leaves the cache alive (returns -1,
 * errno EBUSY), as the kernel refuses to free slabs in use.
 */
int kmem_cache_destroy(struct kmem_cache *s);
const char *kmem_cache_name(const struct kmem_cache *s);
size_t kmem_cache_size(const struct kmem_cache *s);

/* C23 sized deallocation; libc may not declare them yet. */
void free_sized(void *ptr, size_t size);
void free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* How the per-CPU layer runs in this process. */
enum slab_rseq_mode {
	SLAB_RSEQ_UNINIT = 0, /* allocator not started yet */
	SLAB_RSEQ_CPU_ID,     /* rseq, caches indexed by cpu_id */
	SLAB_RSEQ_MM_CID,     /* rseq, caches indexed by mm_cid */
	SLAB_RSEQ_FAKE,       /* test mode: rseq code, hand-filled area */
	SLAB_RSEQ_OFF,        /* fallback: per-thread caches */
};
enum slab_rseq_mode slab_rseq_mode(const char **why);

/* Is @ptr an object start handed out by slab (not libc)? */
int slab_owns(const void *ptr);

/* Check every internal invariant; aborts with a message on corruption. */
void slab_validate(void);

/*
 * Give back what the caches hold: every per-CPU cache (idle or not), the
 * calling thread's cache, the caches' empty slabs and depots, then the
 * free pages to the OS. malloc_trim() calls it. Returns 1 if anything
 * was given back.
 */
int slab_trim(void);

#ifdef __cplusplus
}
#endif
#endif /* SLAB_SLAB_H */
