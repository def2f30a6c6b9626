// SPDX-License-Identifier: MIT
/*
 * larson.c - server churn in the style of Larson and Krishnan's benchmark.
 *
 *   larson [THREADS [OPS [SLOTS]]]     defaults: 2 threads, 1000000 ops
 *                                      per thread, 1000 slots per thread
 *
 * Each thread owns SLOTS live objects and, OPS times, replaces a random
 * one with a new object of a random size: 16..1000 bytes nine times in
 * ten, 1001..8192 bytes otherwise. One replaced object in eight is not
 * freed by its thread but handed to another thread (a lock-free inbox per
 * thread), which frees it the next time it looks at its inbox (every 64
 * operations): the objects of a server that outlive the request, or the
 * connection, that made them. With one thread every object is freed
 * locally. An inbox holds at most SLOTS objects (the sender frees the
 * object itself when it is full), so that a thread that is descheduled
 * for a while does not make the others pile up memory for it.
 *
 * Each object carries its size and a magic number in its first bytes and
 * a check byte at its end; they are verified before every free.
 */
#include <sched.h>
#include <stdatomic.h>

#include "bench.h"

const char *bench_name = "larson";

#define SHARE_ONE_IN 8
#define INBOX_EVERY  64
#define SMALL_MAX    1000
#define LARGE_MAX    8192

/* The smallest object, 16 bytes; end is also the check byte at 16. */
struct obj {
	struct obj *next; /* link in an inbox */
	uint32_t size;
	uint16_t magic;
	uint8_t owner;
	uint8_t end;
};

#define MAGIC 0x5a17

struct worker {
	_Alignas(2 * CACHELINE) _Atomic(struct obj *) inbox;
	atomic_ulong pending; /* objects in the inbox */
	unsigned long id;
	uint64_t rng;
	struct obj **slots;
	unsigned long freed_remote;
};

static unsigned long nthreads, ops, nslots;
static struct worker *workers;
static atomic_ulong done;

static struct obj *obj_new(struct worker *w)
{
	size_t size = rng_next(&w->rng) % 10 ?
			      rng_range(&w->rng, 16, SMALL_MAX) :
			      rng_range(&w->rng, SMALL_MAX + 1, LARGE_MAX);
	struct obj *o = xmalloc(size);

	o->next = NULL;
	o->size = size;
	o->magic = MAGIC;
	o->owner = (uint8_t)w->id;
	((unsigned char *)o)[size - 1] = (unsigned char)size;
	return o;
}

static void obj_free(struct obj *o)
{
	if (o->magic != MAGIC ||
	    ((unsigned char *)o)[o->size - 1] != (unsigned char)o->size)
		die("object %p corrupted (size %u, magic %#x)", (void *)o,
		    o->size, o->magic);
	free(o);
}

static void inbox_push(struct worker *to, struct obj *o)
{
	struct obj *old = atomic_load_explicit(&to->inbox,
					       memory_order_relaxed);

	do {
		o->next = old;
	} while (!atomic_compare_exchange_weak_explicit(&to->inbox, &old, o,
							memory_order_release,
							memory_order_relaxed));
}

/* Only the owner takes from its inbox, and takes it whole: no ABA. */
static unsigned long inbox_drain(struct worker *w)
{
	struct obj *o, *next;
	unsigned long n = 0;

	o = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
	for (; o; o = next, n++) {
		next = o->next;
		obj_free(o);
	}
	if (n)
		atomic_fetch_sub_explicit(&w->pending, n, memory_order_relaxed);
	return n;
}

static void *larson_thread(void *arg)
{
	struct worker *w = arg;
	unsigned long i, k, to;

	for (k = 0; k < nslots; k++)
		w->slots[k] = obj_new(w);

	for (i = 0; i < ops; i++) {
		k = rng_next(&w->rng) % nslots;
		to = w->id;
		if (nthreads > 1 && rng_next(&w->rng) % SHARE_ONE_IN == 0)
			to = (w->id + 1 + rng_next(&w->rng) % (nthreads - 1)) %
			     nthreads;
		if (to != w->id &&
		    atomic_load_explicit(&workers[to].pending,
					 memory_order_relaxed) < nslots) {
			atomic_fetch_add_explicit(&workers[to].pending, 1,
						  memory_order_relaxed);
			inbox_push(&workers[to], w->slots[k]);
		} else {
			obj_free(w->slots[k]);
		}
		w->slots[k] = obj_new(w);
		if (i % INBOX_EVERY == 0)
			w->freed_remote += inbox_drain(w);
	}

	for (k = 0; k < nslots; k++)
		obj_free(w->slots[k]);
	/* Others may still send: drain until every thread is past its loop. */
	atomic_fetch_add(&done, 1);
	while (atomic_load(&done) < nthreads) {
		w->freed_remote += inbox_drain(w);
		sched_yield();
	}
	w->freed_remote += inbox_drain(w);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long t;

	usage_if(argc > 4, "[THREADS [OPS [SLOTS]]]");
	nthreads = arg_ulong(argc, argv, 1, 2, 1, BENCH_MAX_THREADS, "threads");
	ops = arg_ulong(argc, argv, 2, 1000000, 1, 1UL << 40, "ops");
	nslots = arg_ulong(argc, argv, 3, 1000, 1, 1UL << 24, "slots");

	workers = aligned_alloc(2 * CACHELINE, nthreads * sizeof(*workers));
	if (!workers)
		die("out of memory");
	memset(workers, 0, nthreads * sizeof(*workers));
	for (t = 0; t < nthreads; t++) {
		workers[t].id = t;
		workers[t].rng = rng_seed(t);
		workers[t].slots = xmalloc(nslots * sizeof(struct obj *));
	}
	run_threads(nthreads, larson_thread, workers, sizeof(*workers));
	for (t = 0; t < nthreads; t++) {
		/* A send after the owner's last drain lands here. */
		inbox_drain(&workers[t]);
		free(workers[t].slots);
	}
	free(workers);
	return 0;
}
