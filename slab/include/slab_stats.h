/* SPDX-License-Identifier: MIT */
/*
 * slab_stats.h - statistics of the slab allocator: the structs filled by
 * slab_stats_get() and the layout of the file a process publishes for
 * tools/slabinfo -p PID.
 *
 * The published file is /dev/shm/slab-<pid> (SLAB_OPTIONS=publish). Its
 * layout is fixed and versioned: struct slab_stats_file, then nr_caches
 * records of cache_size bytes. A reader copies it and retries while seq
 * is odd or changed during the copy (a seqlock), and compares pid and
 * start_time with /proc/<pid>/stat to tell a live file from a stale one.
 */
#ifndef SLAB_STATS_H
#define SLAB_STATS_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLAB_STATS_MAGIC    0x31534241424c5353ULL /* "SSLBABS1" */
#define SLAB_STATS_VERSION  2
#define SLAB_STATS_NAME_LEN 32
#define SLAB_STATS_PATH_FMT "/dev/shm/slab-%d"

/* One cache (kmalloc-N or a kmem_cache_create() cache). */
struct slab_cache_info {
	char name[SLAB_STATS_NAME_LEN];
	uint32_t object_size; /* bytes per object */
	uint32_t objs_per_slab;
	uint32_t pages_per_slab;
	uint32_t flags;        /* SLAB_INFO_* */
	uint64_t active_objs;  /* held by the program */
	uint64_t total_objs;   /* total_slabs * objs_per_slab */
	uint64_t active_slabs; /* slabs with an object out */
	uint64_t total_slabs;
	uint64_t cpu_cached;  /* free, in per-CPU or per-thread stacks */
	uint64_t depot_objs;  /* free, in the cache's depot */
	uint64_t refills;     /* batches moved to per-CPU/thread stacks */
	uint64_t drains;      /* batches moved back */
	uint64_t slabs_new;   /* slabs taken from the page heap */
	uint64_t slabs_freed; /* slabs given back to it */
	uint64_t alloc_fail;  /* refills that found no memory */
};

#define SLAB_INFO_KMALLOC 0x1u /* a size class of malloc() */
#define SLAB_INFO_NAMED   0x2u /* from kmem_cache_create() */

/* The whole allocator. */
struct slab_global_info {
	uint64_t arena_reserved;  /* address space reserved */
	uint64_t arena_committed; /* made accessible */
	uint64_t arena_used;      /* handed out at least once */
	uint64_t resident_est;    /* used - free clean (estimate) */
	uint64_t free_bytes;      /* free page runs */
	uint64_t dirty_bytes;     /* of which may be resident */
	uint64_t purged_bytes;    /* returned to the OS, cumulative */
	uint64_t slab_bytes;      /* in slabs of all caches */
	uint64_t large_nr;        /* live allocations > 256 KiB */
	uint64_t large_bytes;
	uint64_t libc_fallbacks; /* requests served by libc's malloc */
	uint64_t foreign_frees;  /* frees of libc's blocks passed to libc */
	uint32_t rseq_mode;      /* enum slab_rseq_mode */
	uint32_t nr_cpus;        /* per-CPU regions */
	char rseq_why[96];
	uint64_t cpu_cache;    /* bytes one per-CPU/thread cache may hold */
	uint64_t idle_drains;  /* idle per-CPU caches given back */
	uint64_t drained_objs; /* objects they held */
	uint64_t dirty_limit;  /* free resident bytes kept: dirty_max, or more
				 when the program reuses them (learnt) */
	uint64_t cap_steals;   /* stack capacities halved for others */
	int32_t membarrier;    /* 1 idle caches can be drained, -1 cannot,
				    0 not tried yet */
	uint32_t pad;
};

/* What the statistics say when slab was linked but served nothing. */
#define SLAB_NEVER_SERVED                                                     \
	"slab was linked in but served no allocation: every block came from " \
	"libc's malloc (C++'s operator new in libstdc++.so, and shared "      \
	"libraries, allocate from libc; see Documentation/usage.md)"

struct slab_stats_file {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size; /* sizeof(struct slab_stats_file) */
	uint32_t cache_size;  /* sizeof(struct slab_cache_info) */
	uint32_t nr_caches;   /* records that follow */
	uint32_t max_caches;  /* room in the file */
	int32_t pid;
	uint64_t start_time; /* field 22 of /proc/<pid>/stat */
	uint64_t seq;        /* odd while the writer is updating */
	uint64_t updated_ms; /* CLOCK_REALTIME of the last update */
	struct slab_global_info global;
	struct slab_cache_info caches[];
};

/*
 * Fill @g and up to @max cache records. Returns the number of caches
 * (which may exceed @max). Takes each cache's lock briefly.
 */
unsigned int slab_stats_get(struct slab_global_info *g,
			    struct slab_cache_info *caches, unsigned int max);
/* The slabinfo-style table, then the global figures. */
void slab_stats_print(FILE *f);

#ifdef __cplusplus
}
#endif
#endif /* SLAB_STATS_H */
