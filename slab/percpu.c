// SPDX-License-Identifier: MIT
/*
 * percpu.c - the layer above the caches: per-CPU stacks driven by rseq,
 * or per-thread stacks when rseq is not available.
 *
 * Mode (one per process, chosen at start):
 *   glibc registered rseq (__rseq_size > 0): use its area, every thread.
 *   otherwise we register a 32-byte TLS area per thread on first use and
 *   unregister it from a pthread key destructor, before the thread's TLS
 *   goes away (musl frees it before the exit syscall).
 *   rseq unavailable (ENOSYS under valgrind, seccomp, old kernels), refused,
 *   or SLAB_OPTIONS=rseq=off: per-thread stacks of the same layout
 *   ("tcache"), flushed by the same destructor.
 *   rseq=fake: the rseq code runs on a hand-filled area of the first thread
 *   (index 0) without kernel registration: only that thread uses region 0,
 *   so it is safe; other threads use tcaches. For instruction counting.
 *
 * Caches are indexed by mm_cid when the kernel maintains it in the area we
 * read (our own registration with AT_RSEQ_FEATURE_SIZE >= 28, or glibc's
 * __rseq_size >= 28), else by cpu_id; regions are sized for the possible
 * CPUs, and untouched regions cost no memory.
 *
 * A thread exiting ends in TS_DEAD: later calls (other key destructors)
 * take the locked path and never re-register.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "glue.h"
#include "internal.h"
#include "slab.h"

#ifndef AT_RSEQ_FEATURE_SIZE
#define AT_RSEQ_FEATURE_SIZE 27
#endif
#ifndef SYS_rseq
#define SYS_rseq 334
#endif
#define RSEQ_FLAG_UNREGISTER 1

struct slab_fast slab_fast __attribute__((aligned(64)));
__thread struct slab_tls slab_tls;
/* cpu_id and mm_cid read ~0 until the kernel fills them: "unregistered". */
__thread struct rseq_area slab_rseq_area __hidden = {
	.cpu_id = ~0U,
	.mm_cid = ~0U,
};

static enum slab_rseq_mode mode;
static const char *mode_why = "not started";
static int self_register;
static unsigned int nr_cpus;
static pthread_key_t thread_key;
static int have_key;
static struct slock tcache_lock;
static char *tcache_pool; /* recycled per-thread regions */
static char *tcache_all;  /* every region ever made, for statistics */

/* Bookkeeping at the end of a per-thread region, past the last stack. */
struct tcache_meta {
	char *next_all;
	int live;
};
#define TCACHE_META(r) \
	((struct tcache_meta *)((r) + REGION_SIZE - sizeof(struct tcache_meta)))

static char *thread_pointer(void)
{
#ifdef __x86_64__
	char *tp;

	asm("movq %%fs:0, %0" : "=r"(tp));
	return tp;
#else
	return NULL;
#endif
}

static long rseq_syscall(struct rseq_area *rs, int flags)
{
	return syscall(SYS_rseq, rs, sizeof(*rs), flags, RSEQ_SIG);
}

/* Highest possible CPU + 1, from sysfs ("0-63" or "0,2-5"). */
static unsigned int possible_cpus(void)
{
	char buf[256];
	long n = 0, max = -1, v = 0;
	int fd, i, in_num = 0;

	fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	for (i = 0; i < n; i++) {
		if (buf[i] >= '0' && buf[i] <= '9') {
			v = v * 10 + (buf[i] - '0');
			in_num = 1;
		} else {
			if (in_num && v > max)
				max = v;
			v = 0;
			in_num = 0;
		}
	}
	if (in_num && v > max)
		max = v;
	if (max < 0)
		max = sysconf(_SC_NPROCESSORS_CONF) - 1;
	if (max < 0)
		max = 0;
	if (max > 65535)
		max = 65535;
	return (unsigned int)max + 1;
}

static void layout_slots(void)
{
	uint32_t off = 8;
	unsigned int i;

	for (i = 0; i < NR_CPU_SLOTS; i++) {
		slab_fast.slot_off[i] = off;
		if (i < NR_KMALLOC)
			off += (slab_fast.slot_cap[i] + 1) * 8;
		SLAB_BUG_ON(off > REGION_SIZE - sizeof(struct tcache_meta));
	}
}

static void thread_exit(void *arg);

/* Have thread_exit() run when this thread exits. */
static void hook_exit(struct slab_tls *t)
{
	if (have_key && !t->hooked &&
	    pthread_setspecific(thread_key, (void *)1) == 0)
		t->hooked = 1;
}

/*
 * Initial values: our own area (cpu_id: ~0 until registered). An asm
 * initialiser because C cannot name a TLS offset in a static initialiser;
 * the linker resolves @tpoff for the executable's own TLS block.
 */
#ifdef __x86_64__
asm(".pushsection .data\n\t"
    ".balign 8\n\t"
    ".globl slab_rseq_off\n\t"
    ".hidden slab_rseq_off\n\t"
    "slab_rseq_off: .quad slab_rseq_area@tpoff\n\t"
    ".globl slab_idx_off\n\t"
    ".hidden slab_idx_off\n\t"
    "slab_idx_off: .quad slab_rseq_area@tpoff + 4\n\t"
    ".popsection");
#else
long slab_rseq_off, slab_idx_off;
#endif

/*
 * A per-process secret; never zero. From the kernel's AT_RANDOM bytes
 * (which libc also uses for its stack guard), mixed so that a key read
 * out of freed memory does not give those bytes away.
 */
static uint64_t make_key(void)
{
	const unsigned char *r = (const void *)getauxval(AT_RANDOM);
	uint64_t a = 0x5ab1e5ab1e5ab1eULL, b = 0;
	struct timespec ts;

	if (r) {
		memcpy(&a, r, 8);
		memcpy(&b, r + 8, 8);
	} else {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		b = (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
	}
	b ^= (uint64_t)(uintptr_t)&slab_fast;
	return mix64(a ^ mix64(b)) | 1;
}

static int use_area(long rseq_off, int mm_cid)
{
	slab_rseq_off = rseq_off;
	slab_idx_off = rseq_off + (mm_cid ? RSEQ_OFF_MM_CID : RSEQ_OFF_CPU_ID);
	return mm_cid ? SLAB_RSEQ_MM_CID : SLAB_RSEQ_CPU_ID;
}

static long own_area_off(void)
{
	return (char *)&slab_rseq_area - thread_pointer();
}

int rseq_has_mm_cid(unsigned long feature_size, unsigned int rseq_size)
{
	/*
	 * glibc before 2.40 (and its unfixed 2.35-2.39 builds) exports 32,
	 * fixed builds 20 (the fields glibc knows): both mean the original
	 * 32-byte area, which holds mm_cid at offset 24. Only the kernel's
	 * feature size says whether it writes the field (Linux 6.3+).
	 */
	if (rseq_size == 20)
		rseq_size = 32;
	return feature_size >= RSEQ_OFF_MM_CID + 4 &&
	       rseq_size >= RSEQ_OFF_MM_CID + 4;
}

/* Pick the mode; the calling thread is set up for it. */
static void choose_mode(void)
{
	unsigned long feature;
	int err;

	if (!SLAB_HAVE_RSEQ_ASM_VALUE) {
		mode = SLAB_RSEQ_OFF;
		mode_why = "no rseq fast path for this architecture";
		return;
	}
	if (slab_opt.debug) {
		mode = SLAB_RSEQ_OFF;
		mode_why = "SLAB_OPTIONS=debug: no object caching";
		return;
	}
	if (slab_opt.rseq == RSEQ_OPT_OFF) {
		mode = SLAB_RSEQ_OFF;
		mode_why = "turned off by SLAB_OPTIONS=rseq=off";
		return;
	}
	if (slab_opt.rseq == RSEQ_OPT_FAKE) {
		use_area(own_area_off(), 0);
		slab_rseq_area.cpu_id = 0;
		slab_rseq_area.mm_cid = 0;
		slab_tls.state = TS_RSEQ;
		mode = SLAB_RSEQ_FAKE;
		mode_why = "SLAB_OPTIONS=rseq=fake (test mode, no kernel rseq)";
		return;
	}
	feature = getauxval(AT_RSEQ_FEATURE_SIZE);
	if (&__rseq_size && &__rseq_offset && __rseq_size > 0) {
		mode = use_area(__rseq_offset,
				rseq_has_mm_cid(feature, __rseq_size) &&
					slab_opt.rseq != RSEQ_OPT_CPU);
		mode_why = "glibc's rseq registration";
		return;
	}
	/*
	 * Hook before registering: an area left registered when the thread
	 * exits is written by the kernel after musl has freed it.
	 */
	hook_exit(&slab_tls);
	if (!slab_tls.hooked) {
		mode = SLAB_RSEQ_OFF;
		mode_why = "no thread-exit hook (pthread key): rseq not registered";
		return;
	}
	if (rseq_syscall(&slab_rseq_area, 0) == 0) {
		self_register = 1;
		slab_tls.registered = 1;
		mode = use_area(own_area_off(),
				rseq_has_mm_cid(feature,
						sizeof(struct rseq_area)) &&
					slab_opt.rseq != RSEQ_OPT_CPU);
		mode_why = "own rseq registration";
		return;
	}
	err = errno;
	mode = SLAB_RSEQ_OFF;
	mode_why =
		err == ENOSYS ?
			"rseq not available (ENOSYS: old kernel, valgrind or seccomp)" :
		err == EINVAL ?
			"rseq registration refused (EINVAL: another area registered)" :
		err == EBUSY ?
			"rseq already registered by someone else (EBUSY)" :
		err == EPERM ?
			"rseq registration refused (EPERM: signature mismatch)" :
			"rseq registration failed";
}

int percpu_init(void)
{
	unsigned int i;
	void *p;

	nr_cpus = possible_cpus();
	layout_slots();
	slab_fast.free_key = make_key();
	have_key = pthread_key_create(&thread_key, thread_exit) == 0;
	if (!have_key)
		slab_warn(
			"pthread_key_create failed: thread caches of exiting threads are not flushed");
	choose_mode();
	if (mode == SLAB_RSEQ_OFF)
		return 0;
	p = mmap(NULL, (size_t)nr_cpus << REGION_SHIFT, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		if (slab_tls.registered &&
		    rseq_syscall(&slab_rseq_area, RSEQ_FLAG_UNREGISTER) == 0) {
			slab_rseq_area.cpu_id = ~0U;
			slab_rseq_area.mm_cid = ~0U;
		}
		slab_tls.registered = 0;
		self_register = 0;
		mode = SLAB_RSEQ_OFF;
		mode_why = "cannot map per-CPU regions";
		slab_tls.state = TS_NEW;
		return 0;
	}
	slab_fast.percpu_base = p;
	for (i = 0; i < NR_CPU_SLOTS; i++)
		slab_fast.slot_base[i] = slab_fast.percpu_base +
					 slab_fast.slot_off[i];
	if (slab_tls.registered) {
		hook_exit(&slab_tls);
		slab_tls.state = TS_RSEQ;
	}
	/* Last: from here the fast path runs. */
	__atomic_store_n(&slab_fast.ncpus, nr_cpus, __ATOMIC_RELEASE);
	return 0;
}

enum slab_rseq_mode percpu_mode(const char **why)
{
	if (why)
		*why = mode_why;
	return mode;
}

/* ---- per-thread stacks (fallback) ---- */

static char *tcache_get(void)
{
	char *r;

	slock_lock(&tcache_lock);
	r = tcache_pool;
	if (r)
		tcache_pool = *(char **)r;
	slock_unlock(&tcache_lock);
	if (r) {
		*(char **)r = NULL;
		__atomic_store_n(&TCACHE_META(r)->live, 1, __ATOMIC_RELAXED);
		return r;
	}
	r = meta_alloc(REGION_SIZE);
	if (!r)
		return NULL;
	__atomic_store_n(&TCACHE_META(r)->live, 1, __ATOMIC_RELAXED);
	slock_lock(&tcache_lock);
	TCACHE_META(r)->next_all = tcache_all;
	__atomic_store_n(&tcache_all, r, __ATOMIC_RELEASE);
	slock_unlock(&tcache_lock);
	return r;
}

static void tcache_put(char *r)
{
	__atomic_store_n(&TCACHE_META(r)->live, 0, __ATOMIC_RELAXED);
	slock_lock(&tcache_lock);
	*(char **)r = tcache_pool; /* first 8 bytes are unused padding */
	tcache_pool = r;
	slock_unlock(&tcache_lock);
}

static inline uint32_t *slot_count(char *region, unsigned int slot)
{
	return (uint32_t *)(region + slab_fast.slot_off[slot] - 8);
}

static inline void **slot_objs(char *region, unsigned int slot)
{
	return (void **)(region + slab_fast.slot_off[slot]);
}

static void tcache_flush(char *r)
{
	unsigned int i;
	uint32_t *cnt;

	for (i = 0; i < NR_KMALLOC; i++) {
		cnt = slot_count(r, i);
		if (*cnt) {
			cache_drain(&kmalloc_caches[i], slot_objs(r, i), *cnt);
			__atomic_store_n(cnt, 0, __ATOMIC_RELAXED);
		}
	}
}

/*
 * Before a refill of @s, a class of one-object slabs (the large ones): the
 * other such classes give back what this CPU's stack caches of them
 * (@percpu: rseq mode) and the empty slabs they keep, so their pages
 * return to the page heap. A program that moves on to a new large size (a
 * growing buffer) then reuses warm, resident pages instead of faulting in
 * fresh ones for every size class it passes, and no CPU hoards large
 * objects it stopped using. A refill of these classes is rare and already
 * costly; the sweep reads a count per class.
 */
static void flush_large(struct kmem_cache *s, int percpu)
{
	void *buf[MAX_BATCH];
	unsigned long n;
	unsigned int c;

	for (c = 0; c < NR_KMALLOC; c++) {
		struct kmem_cache *o = &kmalloc_caches[c];

		if (o == s || o->nobj != 1)
			continue;
		if (percpu) {
			n = rseq_pop_batch(&slab_fast, c, buf, MAX_BATCH);
			if (n)
				cache_release(o, buf, n);
		}
		cache_trim_empty(o);
	}
}

/* Put the free key in objects that go into a stack (internal.h). */
static void stack_key(void **objs, unsigned long n)
{
	uint64_t key = slab_fast.free_key;
	unsigned long i;

	for (i = 0; i < n; i++)
		((uint64_t *)objs[i])[1] = key;
}

/* Refill this thread's stack of @s and take one; in a slow section. */
static void *tcache_refill(struct slab_tls *t, struct kmem_cache *s)
{
	unsigned int slot = (unsigned int)s->slot;
	uint32_t *cnt = slot_count(t->tcache, slot);
	void **objs = slot_objs(t->tcache, slot);
	void *buf[MAX_BATCH], *p;
	unsigned long n, i;

	if (s->nobj == 1)
		flush_large(s, 0);
	n = cache_refill(s, buf, s->batch);
	if (!n)
		return NULL;
	p = buf[--n];
	stack_key(buf, n);
	busy_inc();
	if (*cnt) {
		/* A signal handler filled it meanwhile: give ours back. */
		busy_dec();
		if (n)
			cache_drain(s, buf, n);
		return p;
	}
	for (i = 0; i < n; i++) /* atomic: read racily, as above */
		__atomic_store_n(&objs[i], buf[i], __ATOMIC_RELAXED);
	__atomic_store_n(cnt, (uint32_t)n, __ATOMIC_RELAXED);
	busy_dec();
	stats_tick(); /* cache_refill could not: this thread was busy */
	return p;
}

/* Pop from this thread's stack; NULL if empty. No lock: busy only. */
static void *tcache_pop(struct slab_tls *t, struct kmem_cache *s)
{
	unsigned int slot = (unsigned int)s->slot;
	uint32_t *cnt = slot_count(t->tcache, slot);
	void *p = NULL;

	busy_inc();
	/* Counts are stored atomically: statistics read them racily. */
	if (likely(*cnt)) {
		p = slot_objs(t->tcache, slot)[*cnt - 1];
		__atomic_store_n(cnt, *cnt - 1, __ATOMIC_RELAXED);
	}
	busy_dec();
	return p;
}

/* Push on this thread's stack; 0 if full. No lock: busy only. */
static int tcache_push(struct slab_tls *t, struct kmem_cache *s, void *p)
{
	unsigned int slot = (unsigned int)s->slot;
	uint32_t *cnt = slot_count(t->tcache, slot);
	int ok = 0;

	busy_inc();
	if (likely(*cnt < slab_fast.slot_cap[slot])) {
		/* Atomic: slab_double_free_check() reads it racily. */
		__atomic_store_n(&slot_objs(t->tcache, slot)[*cnt], p,
				 __ATOMIC_RELAXED);
		__atomic_store_n(cnt, *cnt + 1, __ATOMIC_RELAXED);
		ok = 1;
	}
	busy_dec();
	return ok;
}

/* The stack is full: drain a batch of it and push @p; in a slow section. */
static void tcache_drain(struct slab_tls *t, struct kmem_cache *s, void *p)
{
	unsigned int slot = (unsigned int)s->slot;
	uint32_t *cnt = slot_count(t->tcache, slot);
	void **objs = slot_objs(t->tcache, slot);
	void *buf[MAX_BATCH + 1];
	unsigned long n;

	busy_inc();
	n = *cnt < s->batch ? *cnt : s->batch;
	__atomic_store_n(cnt, *cnt - (uint32_t)n, __ATOMIC_RELAXED);
	memcpy(buf, objs + *cnt, n * sizeof(void *));
	if (*cnt < slab_fast.slot_cap[slot]) {
		__atomic_store_n(&objs[*cnt], p, __ATOMIC_RELAXED);
		__atomic_store_n(cnt, *cnt + 1, __ATOMIC_RELAXED);
	} else
		buf[n++] = p;
	busy_dec();
	cache_drain(s, buf, n);
}

/* ---- thread life cycle ---- */

/* In a slow section. */
static void thread_setup(struct slab_tls *t)
{
	if (mode != SLAB_RSEQ_OFF && mode != SLAB_RSEQ_FAKE) {
		if (!self_register) {
			/* glibc registered this thread, or it never will. */
			/* cppcheck-suppress nullPointerArithmetic */
			if (*(uint32_t *)(thread_pointer() + slab_rseq_off +
					  RSEQ_OFF_CPU_ID) < nr_cpus) {
				t->state = TS_RSEQ;
				/* Exit hook: the kept large run goes back. */
				hook_exit(t);
				return;
			}
		} else {
			/* Hook first: never registered without the hook. */
			hook_exit(t);
			if (t->hooked &&
			    rseq_syscall(&slab_rseq_area, 0) == 0) {
				t->registered = 1;
				t->state = TS_RSEQ;
				return;
			}
		}
	}
	if (slab_opt.debug) {
		t->state = TS_DEAD; /* central path: every free checked */
		return;
	}
	t->tcache = tcache_get();
	t->state = t->tcache ? TS_TCACHE : TS_DEAD;
	if (t->tcache)
		hook_exit(t);
}

int percpu_thread_hooked(void)
{
	struct slab_tls *t = &slab_tls;

	if (t->state == TS_NEW && slab_state == SLAB_STATE_READY && !t->busy &&
	    slow_enter()) {
		thread_setup(t);
		slow_exit();
	}
	return t->hooked && t->state != TS_DEAD;
}

/*
 * The pthread key destructor: give back what this thread keeps, and
 * unregister rseq before the thread's TLS goes away. Busy throughout: a
 * signal handler that allocates meanwhile is served by libc instead of
 * popping from a stack that is being flushed. In a degraded fork child
 * nothing is flushed (no lock may be taken): the objects are lost.
 */
static void thread_exit(void *arg)
{
	struct slab_tls *t = &slab_tls;
	int inside;

	(void)arg;
	inside = slow_enter_wait();
	busy_inc();
	if (inside) {
		slab_large_release();
		if (t->tcache) {
			tcache_flush(t->tcache);
			tcache_put(t->tcache);
			t->tcache = NULL;
		}
	}
	if (t->registered) {
		if (rseq_syscall(&slab_rseq_area, RSEQ_FLAG_UNREGISTER) == 0) {
			/* The area is ours again: mark it unregistered. */
			slab_rseq_area.cpu_id = ~0U;
			slab_rseq_area.mm_cid = ~0U;
		}
		t->registered = 0;
	}
	t->state = TS_DEAD;
	busy_dec();
	if (inside)
		slow_exit();
}

/* ---- slow paths ---- */

static void *central_alloc(struct kmem_cache *s)
{
	void *p;

	return cache_refill(s, &p, 1) ? p : NULL;
}

/* In a slow section. */
static void *alloc_inside(struct slab_tls *t, struct kmem_cache *s)
{
	void *buf[MAX_BATCH], *p;
	unsigned long n, k;

	switch (t->state) {
	case TS_NEW:
		/* A new per-thread stack is empty: only rseq has one to pop. */
		thread_setup(t);
		return t->state == TS_RSEQ ? cache_alloc(s) :
					     alloc_inside(t, s);
	case TS_RSEQ:
		if (s->nobj == 1)
			flush_large(s, 1);
		n = cache_refill(s, buf, s->batch);
		if (!n)
			return NULL;
		p = buf[--n];
		if (n) {
			stack_key(buf, n);
			k = rseq_push_batch(&slab_fast, (unsigned int)s->slot,
					    buf, n);
			if (k < n)
				cache_drain(s, buf + k, n - k);
		}
		return p;
	case TS_TCACHE:
		return tcache_refill(t, s);
	default:
		return central_alloc(s);
	}
}

/*
 * Behind a failed rseq pop (empty stack, no rseq, not started): NULL sends
 * the caller to libc (no memory, a fork in progress, or a signal handler
 * that interrupted this thread inside the allocator).
 */
void *cache_alloc_slow(struct kmem_cache *s)
{
	struct slab_tls *t = &slab_tls;
	void *p;

	if (unlikely(__atomic_load_n(&slab_state, __ATOMIC_ACQUIRE) !=
		     SLAB_STATE_READY) &&
	    !slab_ready())
		return NULL;
	if (unlikely(t->busy))
		return NULL;
	if (t->state == TS_TCACHE) {
		p = tcache_pop(t, s);
		if (p)
			goto out;
	}
	if (!slow_enter_alloc())
		return NULL;
	p = alloc_inside(t, s);
	slow_exit();
	if (!p)
		return NULL;
out:
	obj_clear_key(p);
	if (SLAB_DEBUG && virt_to_slab(p)->cache != s)
		slab_bug("slow path of %s returned %p of another cache",
			 s->name, p);
	return p;
}

/* Behind a failed rseq push: @p carries the free key already. */
void cache_free_slow(struct kmem_cache *s, void *p)
{
	struct slab_tls *t = &slab_tls;
	void *buf[MAX_BATCH + 1];
	unsigned long n;

	if (t->state == TS_TCACHE && !t->busy && tcache_push(t, s, p))
		return;
	/*
	 * A signal handler that interrupted this thread inside the
	 * allocator, or a fork in progress (or a degraded fork child):
	 * no lock may be taken now.
	 */
	if (unlikely(t->busy) || !slow_enter()) {
		slab_defer_free(p);
		return;
	}
	switch (t->state) {
	case TS_NEW:
		thread_setup(t);
		cache_free(s, p); /* in the state just chosen */
		break;
	case TS_RSEQ:
		n = rseq_pop_batch(&slab_fast, (unsigned int)s->slot, buf,
				   s->batch);
		if (!rseq_push(&slab_fast, (unsigned int)s->slot, p))
			buf[n++] = p;
		if (n)
			cache_drain(s, buf, n);
		break;
	case TS_TCACHE:
		tcache_drain(t, s, p);
		break;
	default:
		cache_drain(s, &p, 1);
	}
	slow_exit();
}

/* Is @p in one of the stacks of @slot in region @r? Racy by design. */
static int region_holds(char *r, unsigned int slot, const void *p)
{
	uint32_t n = __atomic_load_n(slot_count(r, slot), __ATOMIC_RELAXED);
	void **objs = slot_objs(r, slot);
	uint32_t i;

	if (n > slab_fast.slot_cap[slot])
		n = slab_fast.slot_cap[slot];
	for (i = 0; i < n; i++)
		if (__atomic_load_n(&objs[i], __ATOMIC_RELAXED) == p)
			return 1;
	return 0;
}

int slab_double_free_check(struct slab *sl, void *p)
{
	struct kmem_cache *s = sl->cache;
	unsigned int slot = (unsigned int)s->slot, c;
	const char *where = NULL;
	char *r;

	if (slab_fast.ncpus)
		for (c = 0; c < nr_cpus && !where; c++)
			if (region_holds(slab_fast.percpu_base +
						 ((size_t)c << REGION_SHIFT),
					 slot, p))
				where = "a per-CPU cache";
	for (r = __atomic_load_n(&tcache_all, __ATOMIC_ACQUIRE); r && !where;
	     r = TCACHE_META(r)->next_all)
		if (__atomic_load_n(&TCACHE_META(r)->live, __ATOMIC_RELAXED) &&
		    region_holds(r, slot, p))
			where = "a per-thread cache";
	if (!where) {
		if (slab_tls.busy || !slow_enter())
			return 0; /* depot and slab not checked */
		switch (cache_holds_free(s, p)) {
		case 1:
			where = "the cache's depot";
			break;
		case 2:
			where = "its slab";
			break;
		}
		slow_exit();
	}
	if (where)
		slab_misuse("double free of %p (cache %s): the object is already free (in %s)",
			    p, s->name, where);
	/* The program's own data held the key: an ordinary free. */
	return 1;
}

void slab_free_keyed(struct slab *sl, void *p)
{
	/*
	 * Not checked in full (a fork in progress, or inside a signal
	 * handler): defer it, the drain checks it again.
	 */
	if (!slab_double_free_check(sl, p)) {
		slab_defer_free(p);
		return;
	}
	cache_free(sl->cache, p);
}

unsigned long percpu_cached(int slot)
{
	unsigned long sum = 0;
	unsigned int c;
	char *r;

	if (slot < 0)
		return 0;
	if (slab_fast.ncpus)
		for (c = 0; c < nr_cpus; c++)
			sum += *slot_count(slab_fast.percpu_base +
						   ((size_t)c << REGION_SHIFT),
					   (unsigned int)slot);
	/*
	 * Per-thread regions: a racy walk without a lock (also from the
	 * signal dump). Regions are never freed and the list only grows.
	 */
	for (r = __atomic_load_n(&tcache_all, __ATOMIC_ACQUIRE); r;
	     r = TCACHE_META(r)->next_all)
		if (__atomic_load_n(&TCACHE_META(r)->live, __ATOMIC_RELAXED))
			sum += __atomic_load_n(slot_count(r,
							  (unsigned int)slot),
					       __ATOMIC_RELAXED);
	return sum;
}

struct slock *tcache_lock_of(void)
{
	return &tcache_lock;
}
