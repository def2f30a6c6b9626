// SPDX-License-Identifier: MIT
/*
 * prodcons.c - producers allocate, consumers free.
 *
 *   prodcons [THREADS [OBJECTS]]   defaults: 2 threads, 1000000 objects
 *                                  per producer
 *
 * THREADS (even) threads form THREADS/2 producer/consumer pairs joined by
 * a single-producer single-consumer ring of 1024 pointers. The producer
 * allocates OBJECTS objects of 16..512 bytes (one in 64 of 513..4096),
 * stamps each with a sequence number and pushes it; the consumer checks
 * the stamp and frees it. Every object is therefore freed by another
 * thread than the one that allocated it, and the producer never gets one
 * back through its own frees: an allocator must move the memory freed on
 * one side back to the other, or let it pile up.
 *
 * A side that finds the ring full (or empty) spins briefly, then yields
 * the CPU: with more threads than cores that is most of the waiting.
 */
#include <sched.h>
#include <stdatomic.h>

#include "bench.h"

const char *bench_name = "prodcons";

#define RING_SIZE 1024 /* a power of two */
#define SPINS     64

struct item {
	uint64_t seq;
	uint64_t pair;
};

struct ring {
	_Alignas(2 * CACHELINE) atomic_ulong head; /* consumer's */
	_Alignas(2 * CACHELINE) atomic_ulong tail; /* producer's */
	_Alignas(2 * CACHELINE) struct item *slot[RING_SIZE];
};

struct role {
	_Alignas(2 * CACHELINE) struct ring *ring;
	unsigned long pair;
	int producer;
};

static unsigned long nobjs;

static void wait_a_bit(unsigned int *spins)
{
	if (++*spins < SPINS)
		__asm__ __volatile__("" ::: "memory");
	else
		sched_yield();
}

static void produce(struct ring *r, unsigned long pair)
{
	unsigned long tail = 0, i;
	uint64_t rng = rng_seed(pair);
	unsigned int spins;
	struct item *it;
	size_t size;

	for (i = 0; i < nobjs; i++) {
		size = rng_next(&rng) % 64 ? rng_range(&rng, 16, 512) :
					     rng_range(&rng, 513, 4096);
		it = xmalloc(size);
		it->seq = i;
		it->pair = pair;
		spins = 0;
		while (tail - atomic_load_explicit(&r->head,
						   memory_order_acquire) ==
		       RING_SIZE)
			wait_a_bit(&spins);
		r->slot[tail % RING_SIZE] = it;
		atomic_store_explicit(&r->tail, ++tail, memory_order_release);
	}
}

static void consume(struct ring *r, unsigned long pair)
{
	unsigned long head = 0, tail = 0, i;
	unsigned int spins;
	struct item *it;

	for (i = 0; i < nobjs; i++) {
		spins = 0;
		while (head == tail) {
			tail = atomic_load_explicit(&r->tail,
						    memory_order_acquire);
			if (head == tail)
				wait_a_bit(&spins);
		}
		it = r->slot[head % RING_SIZE];
		if (it->seq != i || it->pair != pair)
			die("pair %lu: object %lu has stamp %llu/%llu", pair, i,
			    (unsigned long long)it->pair,
			    (unsigned long long)it->seq);
		free(it);
		atomic_store_explicit(&r->head, ++head, memory_order_release);
	}
}

static void *prodcons_thread(void *arg)
{
	struct role *role = arg;

	if (role->producer)
		produce(role->ring, role->pair);
	else
		consume(role->ring, role->pair);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long nthreads, npairs, p;
	struct ring *rings;
	struct role *roles;

	usage_if(argc > 3, "[THREADS [OBJECTS]]");
	nthreads = arg_ulong(argc, argv, 1, 2, 2, BENCH_MAX_THREADS, "threads");
	nobjs = arg_ulong(argc, argv, 2, 1000000, 1, 1UL << 40, "objects");
	if (nthreads % 2)
		die("the thread count must be even (producer/consumer pairs)");
	npairs = nthreads / 2;

	rings = aligned_alloc(2 * CACHELINE, npairs * sizeof(*rings));
	roles = aligned_alloc(2 * CACHELINE, nthreads * sizeof(*roles));
	if (!rings || !roles)
		die("out of memory");
	memset(rings, 0, npairs * sizeof(*rings));
	/* Even roles produce, odd ones consume; the main thread produces. */
	for (p = 0; p < nthreads; p++) {
		roles[p].ring = &rings[p / 2];
		roles[p].pair = p / 2;
		roles[p].producer = !(p % 2);
	}
	run_threads(nthreads, prodcons_thread, roles, sizeof(*roles));
	free(roles);
	free(rings);
	return 0;
}
