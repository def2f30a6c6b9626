// SPDX-License-Identifier: MIT
/*
 * cross_thread - every object is freed by a thread other than its owner.
 *
 *   cross_thread [batches_per_producer]
 *
 * Phase 1: producers fill batches of patterned objects and push them on
 *          a bounded queue; consumers check, sometimes realloc, and free
 *          them (and the batch descriptor, also a remote free).
 * Phase 2: a ring: thread i sends to thread i+1 and frees what thread
 *          i-1 sent, so every thread is producer and consumer at once.
 * Phase 3: orphans: a thread allocates and exits; others free its objects
 *          after it is gone, while a fresh thread allocates.
 */
#include "stress.h"

#define BATCH 32

struct batch {
	struct batch *next;
	pid_t owner;
	int n;
	void *obj[BATCH];
	size_t size[BATCH];
};

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t more;
	pthread_cond_t room;
	struct batch *head, *tail;
	int len, max;
	int closed;
};

static pid_t gettid_(void)
{
	return syscall(SYS_gettid);
}

static void q_init(struct queue *q, int max)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->more, NULL);
	pthread_cond_init(&q->room, NULL);
	q->max = max;
}

static void q_push(struct queue *q, struct batch *b)
{
	pthread_mutex_lock(&q->lock);
	while (q->max && q->len >= q->max)
		pthread_cond_wait(&q->room, &q->lock);
	b->next = NULL;
	if (q->tail)
		q->tail->next = b;
	else
		q->head = b;
	q->tail = b;
	q->len++;
	pthread_cond_signal(&q->more);
	pthread_mutex_unlock(&q->lock);
}

/* Blocking pop; NULL once the queue is closed and empty. */
static struct batch *q_pop(struct queue *q, int wait)
{
	struct batch *b;

	pthread_mutex_lock(&q->lock);
	while (!q->head && !q->closed && wait)
		pthread_cond_wait(&q->more, &q->lock);
	b = q->head;
	if (b) {
		q->head = b->next;
		if (!q->head)
			q->tail = NULL;
		q->len--;
		pthread_cond_signal(&q->room);
	}
	pthread_mutex_unlock(&q->lock);
	return b;
}

static void q_close(struct queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = 1;
	pthread_cond_broadcast(&q->more);
	pthread_mutex_unlock(&q->lock);
}

static size_t obj_size(uint64_t *r)
{
	uint64_t k = rnd_below(r, 1000);

	if (k < 880)
		return rnd_below(r, 513);
	if (k < 990)
		return 512 + rnd_below(r, 16 << 10);
	if (k < 999)
		return (16 << 10) + rnd_below(r, 240 << 10);
	return (1 << 20) + rnd_below(r, 1 << 20);
}

static void *obj_make(size_t size)
{
	void *p = malloc(size);

	if (!p)
		fail("malloc(%zu): %s", size, strerror(errno));
	if (!ptr_aligned(p, 16))
		fail("malloc(%zu) = %p not 16-byte aligned", size, p);
	if (!from_slab(p))
		fail("malloc(%zu) = %p was served by libc, not slab", size, p);
	pat_fill(p, size, pat_seed(p, size));
	return p;
}

static struct batch *batch_make(uint64_t *r)
{
	struct batch *b = malloc(sizeof(*b));
	int i;

	if (!b)
		fail("malloc(batch)");
	b->owner = gettid_();
	b->n = 1 + rnd_below(r, BATCH);
	for (i = 0; i < b->n; i++) {
		b->size[i] = obj_size(r);
		b->obj[i] = obj_make(b->size[i]);
	}
	return b;
}

/* Check and dispose of a batch allocated by another thread. */
static void batch_consume(struct batch *b, uint64_t *r)
{
	pid_t me = gettid_();
	int i;

	if (b->owner == me)
		fail("batch from thread %d consumed by itself", me);
	for (i = 0; i < b->n; i++) {
		void *p = b->obj[i];
		size_t n = b->size[i];
		uint64_t k = rnd_below(r, 100);

		pat_check(p, n, n, pat_seed(p, n), "remote object");
		if (k < 15) {
			size_t nn = obj_size(r) + 1;
			void *q = realloc(p, nn);

			if (!q)
				fail("remote realloc(%p, %zu) failed", p, nn);
			pat_check(q, n, nn, pat_seed(p, n), "remote realloc");
			p = q;
			n = nn;
			pat_fill(p, n, pat_seed(p, n));
		}
		if (k < 30)
			free_sized(p, n);
		else
			free(p);
	}
	free(b);
}

/* Phase 1 */
static struct queue q1;
static unsigned long nbatches = 8000;

static void *producer(void *arg)
{
	uint64_t r = rnd_seed((uintptr_t)arg);
	unsigned long i;

	for (i = 0; i < nbatches; i++)
		q_push(&q1, batch_make(&r));
	return NULL;
}

static void *consumer(void *arg)
{
	uint64_t r = rnd_seed(100 + (uintptr_t)arg);
	struct batch *b;

	while ((b = q_pop(&q1, 1)))
		batch_consume(b, &r);
	return NULL;
}

/* Phase 2 */
#define RING 6
static struct queue ring[RING];

static void *ring_worker(void *arg)
{
	unsigned long id = (uintptr_t)arg, sent = 0, got = 0;
	uint64_t r = rnd_seed(200 + id);
	struct batch *b;

	while (sent < nbatches / 2 || got < nbatches / 2) {
		if (sent < nbatches / 2) {
			q_push(&ring[(id + 1) % RING], batch_make(&r));
			sent++;
		}
		while (got < nbatches / 2 &&
		       (b = q_pop(&ring[id], sent >= nbatches / 2))) {
			batch_consume(b, &r);
			got++;
			if (sent < nbatches / 2)
				break;
		}
	}
	return NULL;
}

/* Phase 3 */
#define ORPHANS 4000
static void *orphan[ORPHANS];
static size_t orphan_size[ORPHANS];

static void *orphan_maker(void *arg)
{
	uint64_t r = rnd_seed(300 + (uintptr_t)arg);
	int i;

	for (i = 0; i < ORPHANS; i++) {
		orphan_size[i] = obj_size(&r);
		orphan[i] = obj_make(orphan_size[i]);
	}
	return NULL;
}

static void *orphan_freer(void *arg)
{
	int half = (uintptr_t)arg, i;

	for (i = half; i < ORPHANS; i += 2) {
		pat_check(orphan[i], orphan_size[i], orphan_size[i],
			  pat_seed(orphan[i], orphan_size[i]), "orphan");
		free(orphan[i]);
	}
	return NULL;
}

static void *orphan_reuser(void *arg)
{
	uint64_t r = rnd_seed(400 + (uintptr_t)arg);
	void *keep[256];
	size_t ks[256];
	int i, j;

	for (j = 0; j < 8; j++) {
		for (i = 0; i < 256; i++) {
			ks[i] = obj_size(&r);
			keep[i] = obj_make(ks[i]);
		}
		for (i = 0; i < 256; i++) {
			pat_check(keep[i], ks[i], ks[i],
				  pat_seed(keep[i], ks[i]), "reuser");
			free(keep[i]);
		}
	}
	return NULL;
}

static void spawn(pthread_t *t, void *(*fn)(void *), unsigned long arg)
{
	int e = pthread_create(t, NULL, fn, (void *)arg);

	if (e)
		fail("pthread_create: %s", strerror(e));
}

int main(int argc, char **argv)
{
	pthread_t prod[4], cons[4], rt[RING], o[4];
	double t0 = now_s(), t1, t2;
	int i, round;

	nbatches = arg_ul(argc, argv, 1, nbatches);
	watchdog("cross_thread", 100);
	check_rseq_mode();

	q_init(&q1, 64);
	for (i = 0; i < 4; i++)
		spawn(&prod[i], producer, i);
	for (i = 0; i < 4; i++)
		spawn(&cons[i], consumer, i);
	for (i = 0; i < 4; i++)
		pthread_join(prod[i], NULL);
	q_close(&q1);
	for (i = 0; i < 4; i++)
		pthread_join(cons[i], NULL);
	slab_validate();
	t1 = now_s();

	for (i = 0; i < RING; i++)
		q_init(&ring[i], 0);
	for (i = 0; i < RING; i++)
		spawn(&rt[i], ring_worker, i);
	for (i = 0; i < RING; i++)
		pthread_join(rt[i], NULL);
	for (i = 0; i < RING; i++)
		if (ring[i].head)
			fail("ring queue %d not drained", i);
	slab_validate();
	t2 = now_s();

	for (round = 0; round < 10; round++) {
		spawn(&o[0], orphan_maker, round);
		pthread_join(o[0], NULL);
		spawn(&o[0], orphan_freer, 0);
		spawn(&o[1], orphan_freer, 1);
		spawn(&o[2], orphan_reuser, round);
		for (i = 0; i < 3; i++)
			pthread_join(o[i], NULL);
	}
	slab_validate();
	info("producer/consumer %.2fs, ring %.2fs, orphans %.2fs", t1 - t0,
	     t2 - t1, now_s() - t2);
	return KSFT_PASS;
}
