// SPDX-License-Identifier: MIT
/*
 * kmem_cache - the kernel-style object cache API.
 *
 * Argument checking, name copying, alignment, constructor semantics
 * (objects come back in their constructed state, the constructor never
 * runs on a live object), kmem_cache_zalloc, many threads sharing a cache
 * with cross-thread frees, destroy refusing a busy cache (-1/EBUSY and a
 * warning naming the cache and the count) and succeeding once everything
 * is freed - also when the frees happened on other threads and may still
 * sit in their caches - and, in children, aborts for frees into the
 * wrong cache.
 */
#include "stress.h"

#ifndef WITH_SLAB
int main(void)
{
	printf("kmem_cache: needs slab (build with -DWITH_SLAB)\n");
	return KSFT_SKIP;
}
#else

#define CTOR_MAGIC 0xc7041234deadbeefULL
#define PAYLOAD    184

struct tobj {
	uint64_t magic;
	uint64_t owner;
	unsigned char payload[PAYLOAD];
};

static unsigned long ctor_calls;

static void ctor(void *p)
{
	struct tobj *o = p;

	if (!ptr_aligned(p, 16))
		fail("ctor called on misaligned %p", p);
	/* A live object has owner != 0: the ctor must never see one. */
	if (o->magic == CTOR_MAGIC && o->owner)
		fail("ctor called on live object %p (owner %lu)", p,
		     (unsigned long)o->owner);
	o->magic = CTOR_MAGIC;
	o->owner = 0;
	memset(o->payload, 0, PAYLOAD);
	__atomic_add_fetch(&ctor_calls, 1, __ATOMIC_RELAXED);
}

/* Check the constructed state, then take the object into use. */
static void obj_get(struct tobj *o, uint64_t owner)
{
	size_t i;

	if (!o)
		fail("kmem_cache_alloc returned NULL: %s", strerror(errno));
	if (!ptr_aligned(o, 16))
		fail("object %p not 16-byte aligned", (void *)o);
	if (o->magic != CTOR_MAGIC || o->owner)
		fail("object %p not in constructed state: magic %llx owner "
		     "%llu",
		     (void *)o, (unsigned long long)o->magic,
		     (unsigned long long)o->owner);
	for (i = 0; i < PAYLOAD; i++)
		if (o->payload[i])
			fail("object %p: payload byte %zu is 0x%02x, not "
			     "constructed",
			     (void *)o, i, o->payload[i]);
	o->owner = owner;
	pat_fill(o->payload, PAYLOAD, owner);
}

/* Check the contents and put the object back in constructed state. */
static void obj_put(struct tobj *o)
{
	pat_check(o->payload, PAYLOAD, PAYLOAD, o->owner, "cache object");
	memset(o->payload, 0, PAYLOAD);
	o->owner = 0;
}

static void test_create_args(void)
{
	static const struct {
		size_t size, align;
		unsigned int flags;
	} bad[] = {
		{ 0, 0, 0 },
		{ 64, 3, 0 },
		{ 64, 24, 0 },
		{ 64, 8192, 0 },
		{ 64, 1 << 20, 0 },
		{ 64, 0, 0x80 },
		{ 64, 0, 0x80000000u },
		{ SIZE_MAX, 0, 0 },
		{ SIZE_MAX / 2 + 1, 0, 0 },
	};
	char name[32] = "stress-name";
	struct kmem_cache *c;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		errno = 0;
		c = kmem_cache_create("bad", bad[i].size, bad[i].align,
				      bad[i].flags, NULL);
		check(!c && (errno == EINVAL ||
			     (errno == ENOMEM && bad[i].size > (1u << 30))),
		      "kmem_cache_create(size %zu, align %zu, flags 0x%x) ="
		      " %p errno %d",
		      bad[i].size, bad[i].align, bad[i].flags, (void *)c,
		      errno);
		if (c)
			kmem_cache_destroy(c);
	}
	c = kmem_cache_create(name, 200, 0, 0, NULL);
	check(c != NULL, "kmem_cache_create(%s)", name);
	if (!c)
		return;
	strcpy(name, "overwritten");
	check(!strcmp(kmem_cache_name(c), "stress-name"),
	      "kmem_cache_name = \"%s\": name not copied", kmem_cache_name(c));
	check(kmem_cache_size(c) >= 200, "kmem_cache_size = %zu",
	      kmem_cache_size(c));
	check(kmem_cache_destroy(c) == 0, "destroy of an unused cache");
}

static void test_align(void)
{
	static const struct {
		size_t size, align;
		unsigned int flags;
		size_t want;
	} t[] = {
		{ 1, 0, 0, 16 },
		{ 24, 0, 0, 16 },
		{ 100, 16, 0, 16 },
		{ 100, 64, 0, 64 },
		{ 40, 0, SLAB_HWCACHE_ALIGN, 64 },
		{ 33, 256, 0, 256 },
		{ 5000, 4096, 0, 4096 },
		{ 1, 4096, SLAB_HWCACHE_ALIGN, 4096 },
		{ 70000, 32, SLAB_POISON, 32 },
	};
	void *o[300];
	size_t i, j, k;

	for (i = 0; i < ARRAY_SIZE(t); i++) {
		struct kmem_cache *c = kmem_cache_create("align", t[i].size,
							 t[i].align, t[i].flags,
							 NULL);
		check(c != NULL, "kmem_cache_create(%zu, %zu, 0x%x)", t[i].size,
		      t[i].align, t[i].flags);
		if (!c)
			continue;
		for (k = 0; k < 3; k++) {
			for (j = 0; j < ARRAY_SIZE(o); j++) {
				o[j] = kmem_cache_alloc(c);
				check(o[j] && ptr_aligned(o[j], t[i].want),
				      "cache(%zu, %zu, 0x%x) object %p not "
				      "%zu-aligned",
				      t[i].size, t[i].align, t[i].flags, o[j],
				      t[i].want);
				if (!o[j])
					break;
				pat_fill(o[j], t[i].size,
					 pat_seed(o[j], t[i].size));
			}
			while (j-- > 0) {
				pat_check(o[j], t[i].size, t[i].size,
					  pat_seed(o[j], t[i].size),
					  "aligned cache object");
				kmem_cache_free(c, o[j]);
			}
		}
		check(kmem_cache_destroy(c) == 0, "destroy align cache");
	}
}

static void test_ctor(void)
{
	struct kmem_cache *c;
	struct tobj **o;
	unsigned long c1, c2;
	int n = 5000, i;

	c = kmem_cache_create("ctor", sizeof(struct tobj), 0, 0, ctor);
	check(c != NULL, "kmem_cache_create with ctor");
	if (!c)
		return;
	o = malloc(n * sizeof(*o));
	for (i = 0; i < n; i++) {
		o[i] = kmem_cache_alloc(c);
		obj_get(o[i], 1000 + i);
	}
	c1 = ctor_calls;
	check(c1 >= (unsigned long)n,
	      "ctor ran %lu times for %d live "
	      "objects",
	      c1, n);
	for (i = 0; i < n; i++) {
		obj_put(o[i]);
		kmem_cache_free(c, o[i]);
	}
	for (i = 0; i < n; i++) {
		o[i] = kmem_cache_alloc(c);
		obj_get(o[i], 7000 + i);
	}
	c2 = ctor_calls - c1;
	info("ctor: %lu calls for the first %d objects, %lu for the next %d",
	     c1, n, c2, n);
	if (c2 >= (unsigned long)n / 2)
		note("ctor ran again for %lu reused objects (slabs released "
		     "and carved again?)",
		     c2);
	for (i = 0; i < n; i++) {
		obj_put(o[i]);
		kmem_cache_free(c, o[i]);
	}
	free(o);
	check(kmem_cache_destroy(c) == 0, "destroy ctor cache");

	/* zalloc, after the objects were dirtied */
	c = kmem_cache_create("zalloc", 300, 0, 0, NULL);
	if (!c)
		return;
	o = malloc(1000 * sizeof(*o));
	for (i = 0; i < 1000; i++) {
		o[i] = kmem_cache_alloc(c);
		if (o[i])
			memset(o[i], 0xff, 300);
	}
	for (i = 0; i < 1000; i++)
		kmem_cache_free(c, o[i]);
	for (i = 0; i < 1000; i++) {
		size_t bad;

		o[i] = kmem_cache_zalloc(c);
		check(o[i] != NULL, "kmem_cache_zalloc");
		if (!o[i])
			break;
		escape(o[i]);
		bad = zero_walk(o[i], 300);
		check(bad == (size_t)-1,
		      "kmem_cache_zalloc object %p not "
		      "zero at %zu",
		      (void *)o[i], bad);
	}
	while (i-- > 0)
		kmem_cache_free(c, o[i]);
	free(o);
	check(kmem_cache_destroy(c) == 0, "destroy zalloc cache");
}

/* ---- threads sharing a cache ---- */

#define XS 128
static struct kmem_cache *shared_cache;
static struct tobj *volatile xslot[XS];

static void *mt_worker(void *arg)
{
	uint64_t r = rnd_seed((uintptr_t)arg), id = ((uintptr_t)arg + 1) << 32;
	struct tobj *mine[64] = { NULL };
	int i, k;

	for (i = 0; i < 60000; i++) {
		struct tobj **m = &mine[rnd_below(&r, 64)], *old;

		if (!*m) {
			*m = kmem_cache_alloc(shared_cache);
			obj_get(*m, ++id);
		} else if (rnd_below(&r, 4) == 0) {
			old = __atomic_exchange_n(&xslot[rnd_below(&r, XS)], *m,
						  __ATOMIC_ACQ_REL);
			*m = NULL;
			if (old) {
				obj_put(old);
				kmem_cache_free(shared_cache, old);
			}
		} else {
			obj_put(*m);
			kmem_cache_free(shared_cache, *m);
			*m = NULL;
		}
	}
	for (k = 0; k < 64; k++) {
		if (mine[k]) {
			obj_put(mine[k]);
			kmem_cache_free(shared_cache, mine[k]);
		}
	}
	return NULL;
}

static void test_threads(void)
{
	pthread_t t[4];
	int i;

	shared_cache = kmem_cache_create("mt", sizeof(struct tobj), 0, 0, ctor);
	check(shared_cache != NULL, "create mt cache");
	if (!shared_cache)
		return;
	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, mt_worker, (void *)(uintptr_t)i);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < XS; i++) {
		if (xslot[i]) {
			obj_put(xslot[i]);
			kmem_cache_free(shared_cache, xslot[i]);
			xslot[i] = NULL;
		}
	}
	check(kmem_cache_destroy(shared_cache) == 0,
	      "destroy mt cache "
	      "after all objects were freed on other threads: errno %d",
	      errno);
}

/* ---- destroy ---- */

static char captured[8192];

/* Call kmem_cache_destroy with stderr captured. */
static int destroy_captured(struct kmem_cache *c, int *err)
{
	int pfd[2], saved, r;
	ssize_t n;

	if (pipe(pfd))
		fail("pipe");
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(pfd[1], STDERR_FILENO);
	errno = 0;
	r = kmem_cache_destroy(c);
	*err = errno;
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(pfd[1]);
	n = read(pfd[0], captured, sizeof(captured) - 1);
	captured[n > 0 ? n : 0] = 0;
	close(pfd[0]);
	return r;
}

static struct kmem_cache *remote_cache;
static void *remote_obj[1000];

static void *remote_alloc(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < 1000; i++)
		remote_obj[i] = kmem_cache_alloc(remote_cache);
	return NULL;
}

static void *remote_free(void *arg)
{
	int i;

	for (i = (uintptr_t)arg; i < 1000; i += 2)
		kmem_cache_free(remote_cache, remote_obj[i]);
	return NULL;
}

static void test_destroy(void)
{
	struct kmem_cache *c;
	void *o[37];
	pthread_t t[3];
	int i, r, err;
	char num[16];

	c = kmem_cache_create("busy-cache-xyz", 96, 0, 0, NULL);
	check(c != NULL, "create busy cache");
	if (!c)
		return;
	for (i = 0; i < 37; i++)
		o[i] = kmem_cache_alloc(c);
	r = destroy_captured(c, &err);
	check(r == -1 && err == EBUSY,
	      "destroy with 37 live objects = %d "
	      "errno %d, want -1/EBUSY",
	      r, err);
	snprintf(num, sizeof(num), "%d", 37);
	check(strstr(captured, "busy-cache-xyz") && strstr(captured, num),
	      "destroy warning must name the cache and the count 37: \"%s\"",
	      captured);
	if (r == 0)
		return; /* the cache is gone, do not touch it */
	/* still alive and usable */
	o[0] = (kmem_cache_free(c, o[0]), kmem_cache_alloc(c));
	check(o[0] != NULL, "alloc from a cache whose destroy was refused");
	for (i = 0; i < 36; i++)
		kmem_cache_free(c, o[i]);
	r = destroy_captured(c, &err);
	check(r == -1 && err == EBUSY && strstr(captured, "1"),
	      "destroy with 1 live object = %d errno %d: \"%s\"", r, err,
	      captured);
	if (r == 0)
		return;
	kmem_cache_free(c, o[36]);
	r = destroy_captured(c, &err);
	check(r == 0, "destroy after freeing everything = %d errno %d: \"%s\"",
	      r, err, captured);

	/* objects freed on other threads, which then exited */
	remote_cache = kmem_cache_create("remote", 512, 0, 0, NULL);
	check(remote_cache != NULL, "create remote cache");
	if (!remote_cache)
		return;
	pthread_create(&t[0], NULL, remote_alloc, NULL);
	pthread_join(t[0], NULL);
	pthread_create(&t[1], NULL, remote_free, (void *)0);
	pthread_create(&t[2], NULL, remote_free, (void *)1);
	pthread_join(t[1], NULL);
	pthread_join(t[2], NULL);
	r = destroy_captured(remote_cache, &err);
	check(r == 0, "destroy after remote frees = %d errno %d: \"%s\"", r,
	      err, captured);
}

static void cycles(int from, int to)
{
	int i, j;

	for (i = from; i < to; i++) {
		char name[32];
		struct kmem_cache *c;
		void *o[20];

		snprintf(name, sizeof(name), "cycle-%d", i);
		c = kmem_cache_create(name, 16 + (i % 50) * 24, 0, 0, NULL);
		if (!c)
			fail("kmem_cache_create #%d: %s", i, strerror(errno));
		for (j = 0; j < 20; j++)
			o[j] = kmem_cache_alloc(c);
		for (j = 0; j < 20; j++)
			kmem_cache_free(c, o[j]);
		if (kmem_cache_destroy(c))
			fail("kmem_cache_destroy #%d: %s", i, strerror(errno));
	}
}

/*
 * Caches come and go: after a warm-up of 2000 cycles, 20000 more must not
 * grow the resident size by more than 2 MiB (about 100 bytes a cycle).
 * Runs first, while the process holds little free memory that slab could
 * keep resident and purge at will.
 */
static void test_cycles(void)
{
	long v0, r0, v1, r1, v2, r2, grow;

	read_statm(&v0, &r0);
	cycles(0, 2000);
	read_statm(&v1, &r1);
	cycles(2000, 22000);
	read_statm(&v2, &r2);
	grow = r2 - r1;
	info("create/destroy cycles: RSS %ld -> %ld (2000) -> %ld KiB "
	     "(22000); free memory kept resident by slab %ld KiB",
	     r0, r1, r2, slab_dirty_kb());
	check(grow < 2 << 10,
	      "RSS grew by %ld KiB over 20000 create/destroy cycles (%ld "
	      "bytes a cycle): kmem_cache_destroy leaks",
	      grow, grow * 1024 / 20000);
}

/* ---- misuse, in children ---- */

static void wrong_cache(void *arg)
{
	size_t sz2 = (uintptr_t)arg;
	struct kmem_cache *a = kmem_cache_create("cache-a", 64, 0, 0, NULL);
	struct kmem_cache *b = kmem_cache_create("cache-b", sz2, 0, 0, NULL);
	void *o;

	if (!a || !b)
		_exit(2);
	o = kmem_cache_alloc(a);
	kmem_cache_free(b, o);
}

static void malloc_into_cache(void *arg)
{
	struct kmem_cache *a = kmem_cache_create("cache-a", 64, 0, 0, NULL);
	void *o = malloc(64);

	(void)arg;
	if (!a || !o)
		_exit(2);
	kmem_cache_free(a, o);
}

static void interior_into_cache(void *arg)
{
	struct kmem_cache *a = kmem_cache_create("cache-a", 128, 0, 0, NULL);
	char *o;

	(void)arg;
	if (!a)
		_exit(2);
	o = kmem_cache_alloc(a);
	kmem_cache_free(a, o + 16);
}

static void test_misuse(void)
{
	check(expect_abort("kmem_cache_free into another cache of the same "
			   "size",
			   wrong_cache, (void *)64, NULL) == 0,
	      "free into the wrong cache (same size)");
	check(expect_abort("kmem_cache_free into another cache of another "
			   "size",
			   wrong_cache, (void *)200, NULL) == 0,
	      "free into the wrong cache (other size)");
	check(expect_abort("kmem_cache_free of a malloc object",
			   malloc_into_cache, NULL, NULL) == 0,
	      "kmem_cache_free of a malloc object");
	check(expect_abort("kmem_cache_free of an interior pointer",
			   interior_into_cache, NULL, NULL) == 0,
	      "kmem_cache_free of an interior pointer");
}

int main(void)
{
	watchdog("kmem_cache", 100);
	check_rseq_mode();
	test_cycles();
	test_create_args();
	test_align();
	test_ctor();
	test_threads();
	test_destroy();
	test_misuse();
	slab_validate();
	if (nr_errors) {
		errmsg(NULL, "kmem_cache: %d failed checks", nr_errors);
		return KSFT_FAIL;
	}
	info("kmem_cache: all checks passed");
	return KSFT_PASS;
}
#endif
