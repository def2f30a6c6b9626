// SPDX-License-Identifier: MIT
/*
 * meta.c - memory for metadata: span descriptors, kmem_cache structs,
 * depots, per-CPU and per-thread regions. Kept out of the arena so that a
 * program overrunning an object cannot reach it, and never returned to
 * the OS (descriptors are recycled by their owners' free lists), so that a
 * stale pointer to a descriptor stays readable.
 *
 * Chunks come from mmap; a bump pointer carves them under meta_lock, the
 * innermost lock of the allocator.
 */
#include <sys/mman.h>

#include "internal.h"

#define META_CHUNK (2UL << 20)

static struct slock meta_lock;
static char *meta_cur, *meta_end;

static void *meta_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void *meta_alloc(size_t size)
{
	char *p;

	size = (size + 63) & ~63UL;
	if (size >= META_CHUNK / 4)
		return meta_map(size); /* zeroed by the kernel */
	slock_lock(&meta_lock);
	if ((size_t)(meta_end - meta_cur) < size) {
		p = meta_map(META_CHUNK);
		if (!p) {
			slock_unlock(&meta_lock);
			return NULL;
		}
		meta_cur = p;
		meta_end = p + META_CHUNK;
	}
	p = meta_cur;
	meta_cur += size;
	slock_unlock(&meta_lock);
	return p;
}

struct slock *meta_lock_of(void)
{
	return &meta_lock;
}
