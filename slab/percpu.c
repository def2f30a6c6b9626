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
#include <sched.h>
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
	/*
	 * Held by a drainer of this region and by its owner's exit path:
	 * while a drainer holds it, the owner's TLS (@busy) stays valid.
	 */
	struct slock drain;
	uint16_t *busy; /* the owner's slab_tls.busy */
	uint64_t sig;   /* counts at the last idle scan (regions_scan()) */
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
	uint32_t off = REGION_HDR + 8;
	unsigned int i;

	for (i = 0; i < NR_CPU_SLOTS; i++) {
		slab_fast.slot_off[i] = off;
		if (i < NR_KMALLOC)
			off += (slab_fast.slot_max[i] + 1) * 8;
		SLAB_BUG_ON(off > REGION_SIZE - sizeof(struct tcache_meta));
	}
}

static void thread_exit(void *arg);
static void membarrier_register(void);

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
	if (mode == SLAB_RSEQ_OFF) {
		membarrier_register(); /* idle per-thread caches */
		return 0;
	}
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
	if (mode != SLAB_RSEQ_FAKE)
		membarrier_register();
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
		TCACHE_META(r)->busy = NULL; /* thread_setup() */
		TCACHE_META(r)->sig = 0;
		__atomic_store_n(&TCACHE_META(r)->live, 1, __ATOMIC_RELEASE);
		return r;
	}
	r = meta_alloc(REGION_SIZE);
	if (!r)
		return NULL;
	TCACHE_META(r)->busy = NULL; /* thread_setup() */
	__atomic_store_n(&TCACHE_META(r)->live, 1, __ATOMIC_RELEASE);
	slock_lock(&tcache_lock);
	TCACHE_META(r)->next_all = tcache_all;
	__atomic_store_n(&tcache_all, r, __ATOMIC_RELEASE);
	slock_unlock(&tcache_lock);
	return r;
}

/* Back to the pool; thread_exit() has marked it not live. */
static void tcache_put(char *r)
{
	slock_lock(&tcache_lock);
	*(char **)r = tcache_pool; /* first 8 bytes are unused padding */
	tcache_pool = r;
	slock_unlock(&tcache_lock);
}

static inline uint32_t *slot_count(char *region, unsigned int slot)
{
	return (uint32_t *)(region + slab_fast.slot_off[slot] - 8);
}

static inline uint32_t *slot_cap(char *region, unsigned int slot)
{
	return (uint32_t *)(region + slab_fast.slot_off[slot] - 4);
}

static inline void **slot_objs(char *region, unsigned int slot)
{
	return (void **)(region + slab_fast.slot_off[slot]);
}

static inline struct region_hdr *region_hdr(char *region)
{
	return (struct region_hdr *)region;
}

static inline char *cpu_region(unsigned int idx)
{
	return slab_fast.percpu_base + ((size_t)idx << REGION_SHIFT);
}

/* The region of the CPU (or mm_cid) this thread runs on now; racy. */
static char *this_region(void)
{
	uint32_t idx;

	/* cppcheck-suppress nullPointerArithmetic */
	idx = *(volatile uint32_t *)(thread_pointer() + slab_idx_off);
	return idx < slab_fast.ncpus ? cpu_region(idx) : NULL;
}

/* ---- capacities and the byte bound (design.md) ---- */

/* Bytes of objects region @r may hold: the sum of cap * size. */
static size_t region_bytes(char *r)
{
	size_t sum = 0;
	unsigned int i;

	for (i = 0; i < NR_KMALLOC; i++)
		sum += (size_t)__atomic_load_n(slot_cap(r, i),
					       __ATOMIC_RELAXED) *
		       kmalloc_size[i];
	return sum;
}

/*
 * Change the capacity of @slot in @r from @old to @newcap; only the
 * region's owner does. rseq: a critical section that fails if the thread
 * moved, the region is stopped or the count does not fit. Per-thread
 * region: the owner is the only writer (busy keeps handlers out).
 */
static int set_cap(char *r, unsigned int slot, uint32_t old, uint32_t newcap,
		   int rseq)
{
	int ok = 0;

	if (rseq)
		return rseq_set_cap(&slab_fast, slot,
				    r + slab_fast.slot_off[slot],
				    &region_hdr(r)->stopped, old, newcap);
	busy_inc();
	/* A drainer may own it (tcache_stop()): checked after busy is set. */
	if (!__atomic_load_n(&region_hdr(r)->stopped, __ATOMIC_SEQ_CST) &&
	    *slot_cap(r, slot) == old && *slot_count(r, slot) <= newcap) {
		__atomic_store_n(slot_cap(r, slot), newcap, __ATOMIC_RELAXED);
		ok = 1;
	}
	busy_dec();
	return ok;
}

/* Take up to @n objects off the top of @slot in @r (its owner). */
static unsigned long slot_take(char *r, unsigned int slot, void **buf,
			       unsigned long n, int rseq)
{
	uint32_t *cnt = slot_count(r, slot), c;
	unsigned long i;

	if (rseq)
		return rseq_pop_batch(&slab_fast, slot, buf, n);
	busy_inc();
	/* Capacity 0: new, or a drainer owns the region (tcache_stop()). */
	if (!__atomic_load_n(slot_cap(r, slot), __ATOMIC_SEQ_CST))
		n = 0;
	c = __atomic_load_n(cnt, __ATOMIC_RELAXED);
	if (n > c)
		n = c;
	for (i = 0; i < n; i++)
		buf[i] = __atomic_load_n(&slot_objs(r, slot)[c - n + i],
					 __ATOMIC_RELAXED);
	if (n)
		__atomic_store_n(cnt, c - (uint32_t)n, __ATOMIC_RELAXED);
	busy_dec();
	return n;
}

/*
 * Make room in @r for @slot: the stack with the most committed bytes, if
 * it has more than twice @mine (what @slot would have: two classes of
 * about equal room do not take it from each other in turn), gives half
 * its objects back to their slabs and halves its capacity. Holding no
 * lock; the objects go back under their cache's.
 */
static void region_steal(char *r, unsigned int slot, size_t mine, int rseq)
{
	void *buf[MAX_BATCH];
	unsigned int i, victim = NR_KMALLOC;
	size_t most = 2 * mine, b;
	uint32_t cap, half, cnt;
	unsigned long n, k;

	for (i = 0; i < NR_KMALLOC; i++) {
		b = (size_t)__atomic_load_n(slot_cap(r, i), __ATOMIC_RELAXED) *
		    kmalloc_size[i];
		if (i != slot && b > most) {
			most = b;
			victim = i;
		}
	}
	if (victim == NR_KMALLOC)
		return;
	cap = __atomic_load_n(slot_cap(r, victim), __ATOMIC_RELAXED);
	half = cap / 2;
	cnt = __atomic_load_n(slot_count(r, victim), __ATOMIC_RELAXED);
	for (n = cnt > half ? cnt - half : 0; n; n -= k) {
		k = slot_take(r, victim, buf, n < MAX_BATCH ? n : MAX_BATCH,
			      rseq);
		if (!k)
			break;
		cache_release(&kmalloc_caches[victim], buf, k);
	}
	if (set_cap(r, victim, cap, half, rseq)) {
		__atomic_fetch_sub(&region_hdr(r)->committed,
				   (size_t)(cap - half) * kmalloc_size[victim],
				   __ATOMIC_RELAXED);
		__atomic_fetch_add(&percpu_stat.steals, 1, __ATOMIC_RELAXED);
	}
}

/*
 * A miss on @slot in @r (an empty stack on malloc, a full one on free):
 * grow its capacity, from 1/8 of slot_max, doubling to slot_max, within
 * the region's byte bound (cpu_cache=). Returns 1 if it grew.
 *
 * The header's committed bytes are an estimate (two threads of one CPU,
 * or a drainer, may race on it); a growth it refuses recomputes it from
 * the capacities first. A refused class is not tried again for the next
 * 256 slow calls of this thread, so a full region costs a miss nothing.
 */
static int slot_grow(char *r, unsigned int slot, int rseq)
{
	struct slab_tls *t = &slab_tls;
	struct region_hdr *h = region_hdr(r);
	uint32_t cap = __atomic_load_n(slot_cap(r, slot), __ATOMIC_RELAXED);
	uint32_t max = slab_fast.slot_max[slot], want, room, cnt;
	size_t size = kmalloc_size[slot], used, bound = slab_opt.cpu_cache;
	uint64_t bit = 1ULL << (slot % 64);

	if (cap >= max || (t->nogrow[slot / 64] & bit) ||
	    __atomic_load_n(&h->stopped, __ATOMIC_ACQUIRE))
		return 0;
	want = cap ? cap * 2 : max / 8;
	/* Objects left in a stack whose stop failed (region_stop()). */
	cnt = __atomic_load_n(slot_count(r, slot), __ATOMIC_RELAXED);
	want = want < cnt ? cnt : want;
	want = want < 1 ? 1 : want > max ? max : want;
	used = __atomic_load_n(&h->committed, __ATOMIC_RELAXED);
	if (used + (size_t)(want - cap) * size > bound) {
		t->nogrow[slot / 64] |= bit;
		/* One refusal in 8 looks for room; the others give up. */
		if (t->ticks & 7)
			return 0;
		used = region_bytes(r);
		if (used + (size_t)(want - cap) * size > bound) {
			region_steal(r, slot, (size_t)want * size, rseq);
			used = region_bytes(r);
		}
		__atomic_store_n(&h->committed, used, __ATOMIC_RELAXED);
		room = used < bound ? (uint32_t)((bound - used) / size) : 0;
		if (want - cap > room)
			want = cap + room;
		if (want <= cap)
			return 0;
	}
	if (!set_cap(r, slot, cap, want, rseq))
		return 0;
	__atomic_fetch_add(&h->committed, (size_t)(want - cap) * size,
			   __ATOMIC_RELAXED);
	return 1;
}

/* Objects moved per refill or drain: half the current capacity. */
static unsigned long batch_of(struct kmem_cache *s, char *r)
{
	uint32_t cap = r ? __atomic_load_n(slot_cap(r, (unsigned int)s->slot),
					   __ATOMIC_RELAXED) :
			   0;
	unsigned long b = cap / 2;

	return b < 1 ? 1 : b > s->batch ? s->batch : b;
}

/* ---- giving idle regions back (design.md) ---- */

#ifndef SYS_membarrier
#define SYS_membarrier 324
#endif
#define MB_PRIVATE_EXPEDITED_RSEQ          (1 << 7)
#define MB_REGISTER_PRIVATE_EXPEDITED_RSEQ (1 << 8)
#define MB_FLAG_CPU                        (1 << 0)
#define MB_PRIVATE_EXPEDITED               (1 << 3)
#define MB_REGISTER_PRIVATE_EXPEDITED      (1 << 4)

struct percpu_stats percpu_stat;
static struct slock drain_lock; /* scans and trims; before cache locks */
static uint64_t *region_sig;    /* per region: signature at the last scan */
static uint64_t last_scan_ms;
static int membarrier_state; /* 0 not tried, 1 registered, -1 unavailable */
static int membarrier_exp;   /* the same for MEMBARRIER_CMD_PRIVATE_EXPEDITED */

static uint64_t coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * At start-up, most likely with one thread: registering a process that
 * has several costs the kernel a grace period (synchronize_rcu), which a
 * slow section (and a fork waiting for it) should not wait for.
 */
static void membarrier_register(void)
{
	int e = errno;

	if (mode == SLAB_RSEQ_CPU_ID || mode == SLAB_RSEQ_MM_CID)
		membarrier_state = syscall(SYS_membarrier,
					   MB_REGISTER_PRIVATE_EXPEDITED_RSEQ,
					   0, 0) == 0 ?
					   1 :
					   -1;
	membarrier_exp = syscall(SYS_membarrier, MB_REGISTER_PRIVATE_EXPEDITED,
				 0, 0) == 0 ?
				 1 :
				 -1;
	if (mode == SLAB_RSEQ_OFF)
		membarrier_state = membarrier_exp;
	errno = e;
}

static int membarrier_ready(void)
{
	return membarrier_state > 0;
}

/* Restart every rseq critical section on @idx's CPU (all in mm_cid mode). */
static int restart_sections(unsigned int idx)
{
	int cpu = mode == SLAB_RSEQ_CPU_ID;

	if (syscall(SYS_membarrier, MB_PRIVATE_EXPEDITED_RSEQ,
		    cpu ? MB_FLAG_CPU : 0, cpu ? (int)idx : 0) == 0)
		return 1;
	/* A fork child may need its own registration. */
	if (errno == EPERM &&
	    syscall(SYS_membarrier, MB_REGISTER_PRIVATE_EXPEDITED_RSEQ, 0, 0) ==
		    0 &&
	    syscall(SYS_membarrier, MB_PRIVATE_EXPEDITED_RSEQ,
		    cpu ? MB_FLAG_CPU : 0, cpu ? (int)idx : 0) == 0)
		return 1;
	return 0;
}

/* Every capacity of @r to 0: no pop, push or growth succeeds there. */
static void caps_clear(char *r)
{
	unsigned int i;

	for (i = 0; i < NR_KMALLOC; i++)
		__atomic_store_n(slot_cap(r, i), 0, __ATOMIC_SEQ_CST);
}

static int caps_zero(char *r)
{
	unsigned int i;

	for (i = 0; i < NR_KMALLOC; i++)
		if (__atomic_load_n(slot_cap(r, i), __ATOMIC_ACQUIRE))
			return 0;
	return 1;
}

/*
 * Stop region @idx: afterwards no thread pops, pushes or changes a
 * capacity in it until region_drain() ends. Returns 0 (region left to its
 * owner, counts untouched) if the kernel would not restart its sections.
 */
static int region_stop(char *r, unsigned int idx)
{
	unsigned int round;

	__atomic_store_n(&region_hdr(r)->stopped, 1, __ATOMIC_SEQ_CST);
	for (round = 0; round < 3; round++) {
		caps_clear(r);
		if (!restart_sections(idx))
			break;
		/* A capacity update that committed before the barrier? */
		if (caps_zero(r))
			return 1;
	}
	__atomic_store_n(&region_hdr(r)->stopped, 0, __ATOMIC_RELEASE);
	return 0;
}

/*
 * Objects @objs[0..n) of a stopped region back to their slabs, read with
 * relaxed atomics like every other access to a stack that two threads may
 * see (the stop protocol orders them; ThreadSanitizer cannot know that).
 */
static void region_release(unsigned int slot, void **objs, uint32_t n)
{
	void *buf[MAX_BATCH];
	uint32_t i, k;

	while (n) {
		k = n < MAX_BATCH ? n : MAX_BATCH;
		for (i = 0; i < k; i++)
			buf[i] = __atomic_load_n(&objs[n - k + i],
						 __ATOMIC_RELAXED);
		cache_release(&kmalloc_caches[slot], buf, k);
		n -= k;
	}
}

/* @r is stopped: give its objects back to their slabs, then restart it. */
static unsigned long region_drain(char *r)
{
	unsigned long total = 0;
	unsigned int i;
	uint32_t n;

	for (i = 0; i < NR_KMALLOC; i++) {
		n = __atomic_load_n(slot_count(r, i), __ATOMIC_ACQUIRE);
		if (n > slab_fast.slot_max[i])
			slab_bug("region %p: %s stack holds %u objects, room for %u",
				 (void *)r, kmalloc_caches[i].name, n,
				 slab_fast.slot_max[i]);
		if (!n)
			continue;
		region_release(i, slot_objs(r, i), n);
		__atomic_store_n(slot_count(r, i), 0, __ATOMIC_RELAXED);
		total += n;
	}
	/* Capacities stay 0: the owner starts again from small ones. */
	__atomic_store_n(&region_hdr(r)->committed, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&region_hdr(r)->stopped, 0, __ATOMIC_RELEASE);
	return total;
}

/* 0 for a region with no objects, else a hash of its counts. */
static uint64_t region_signature(char *r)
{
	uint64_t h = 0, n, any = 0;
	unsigned int i;

	for (i = 0; i < NR_KMALLOC; i++) {
		n = __atomic_load_n(slot_count(r, i), __ATOMIC_RELAXED);
		any |= n;
		h = (h ^ n) * 0x100000001b3ULL;
	}
	return any ? h | 1 : 0;
}

/*
 * Stop per-thread region @r of a live thread (drain lock held, so its
 * owner cannot exit and its TLS stays): afterwards its owner neither
 * pops nor pushes nor changes a capacity until region_drain() ends. The
 * owner does each of those under busy and reads the capacity (or
 * `stopped`) after setting busy; we set `stopped` and the capacities,
 * then membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) orders both sides
 * (a Dekker pair with one barrier on each): either the owner's busy is
 * seen, and we wait for it to clear, or the owner sees our stores. A
 * thread busy for long (a slow path waiting on a cache lock; more than
 * 5 ms or 1000 yields) is left alone: counts untouched, its capacities
 * regrow.
 */
static int tcache_stop(char *r, struct tcache_meta *m)
{
	uint16_t *busy = __atomic_load_n(&m->busy, __ATOMIC_ACQUIRE);
	unsigned int i;

	__atomic_store_n(&region_hdr(r)->stopped, 1, __ATOMIC_SEQ_CST);
	caps_clear(r);
	if (syscall(SYS_membarrier, MB_PRIVATE_EXPEDITED, 0, 0) == 0) {
		struct timespec t0, t;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		/* At most 5 ms: a fork may be waiting for this slow section. */
		for (i = 0; i < 1000; i++) {
			if (!__atomic_load_n(busy, __ATOMIC_SEQ_CST))
				return 1;
			sched_yield();
			clock_gettime(CLOCK_MONOTONIC, &t);
			if ((t.tv_sec - t0.tv_sec) * 1000000000L +
				    (t.tv_nsec - t0.tv_nsec) >
			    5000000L)
				break;
		}
	}
	__atomic_store_n(&region_hdr(r)->stopped, 0, __ATOMIC_RELEASE);
	return 0;
}

/*
 * ThreadSanitizer cannot see the order membarrier gives: under it, other
 * threads' caches are left to their owners (the tsan selftest mode).
 */
#if defined(__SANITIZE_THREAD__)
#define SLAB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLAB_TSAN 1
#endif
#endif
#ifndef SLAB_TSAN
#define SLAB_TSAN 0
#endif

/* Per-thread regions of other live threads: as regions_scan(). */
static unsigned long tcaches_scan(int all)
{
	unsigned long total = 0;
	struct tcache_meta *m;
	uint64_t sig;
	char *r;

	if (membarrier_exp <= 0 || SLAB_TSAN)
		return 0;
	for (r = __atomic_load_n(&tcache_all, __ATOMIC_ACQUIRE); r;
	     r = m->next_all) {
		m = TCACHE_META(r);
		if (r == slab_tls.tcache ||
		    !__atomic_load_n(&m->live, __ATOMIC_ACQUIRE) ||
		    !__atomic_load_n(&m->busy, __ATOMIC_ACQUIRE))
			continue;
		sig = region_signature(r);
		if (!sig || (!all && sig != m->sig)) {
			m->sig = sig;
			continue;
		}
		m->sig = 0;
		if (!slock_trylock(&m->drain))
			continue; /* its owner is exiting: it flushes */
		if (__atomic_load_n(&m->live, __ATOMIC_ACQUIRE) &&
		    __atomic_load_n(&m->busy, __ATOMIC_ACQUIRE) &&
		    tcache_stop(r, m)) {
			total += region_drain(r);
			__atomic_fetch_add(&percpu_stat.idle_drains, 1,
					   __ATOMIC_RELAXED);
		}
		slock_unlock(&m->drain);
	}
	return total;
}

/*
 * Drain the regions that did not change since the last scan (@all: every
 * region), per-CPU and other threads' per-thread ones. In a slow
 * section, holding no lock. Returns objects returned.
 */
static unsigned long regions_scan(int all)
{
	unsigned long total = 0;
	unsigned int c;
	uint64_t sig;
	char *r;

	if (all)
		slock_lock(&drain_lock);
	else if (!slock_trylock(&drain_lock))
		return 0;
	total += tcaches_scan(all);
	if (!slab_fast.ncpus || mode == SLAB_RSEQ_FAKE)
		goto out;
	if (!region_sig)
		region_sig = meta_alloc(nr_cpus * sizeof(*region_sig));
	if (!region_sig || !membarrier_ready())
		goto out;
	for (c = 0; c < nr_cpus; c++) {
		r = cpu_region(c);
		sig = region_signature(r);
		if (sig && (all || sig == region_sig[c])) {
			if (region_stop(r, c)) {
				total += region_drain(r);
				__atomic_fetch_add(&percpu_stat.idle_drains, 1,
						   __ATOMIC_RELAXED);
			}
			sig = 0;
		}
		region_sig[c] = sig;
	}
out:
	__atomic_fetch_add(&percpu_stat.drained_objs, total, __ATOMIC_RELAXED);
	slock_unlock(&drain_lock);
	return total;
}

/* Is an idle scan due? If so, the period is claimed for the caller. */
static int scan_due(void)
{
	uint64_t now, last;

	if (!slab_opt.cpu_idle_ms || (!slab_fast.ncpus && membarrier_exp <= 0))
		return 0;
	now = coarse_ms();
	last = __atomic_load_n(&last_scan_ms, __ATOMIC_RELAXED);
	return now - last >= slab_opt.cpu_idle_ms &&
	       __atomic_compare_exchange_n(&last_scan_ms, &last, now, 0,
					   __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/* From a thread's slow path, in a slow section: scan now and then. */
static void percpu_tick(struct slab_tls *t)
{
	if (++t->ticks & 63)
		return;
	if (!t->ticks) /* every 256 slow calls: try refused classes again */
		t->nogrow[0] = t->nogrow[1] = 0;
	if (scan_due())
		regions_scan(0);
}

void percpu_scan_idle(void)
{
	if (slab_tls.busy || !slow_enter())
		return;
	if (scan_due())
		regions_scan(0);
	slow_exit();
}

int percpu_membarrier(void)
{
	return __atomic_load_n(&membarrier_state, __ATOMIC_RELAXED);
}

/* Give back every object in per-thread region @r; returns how many. */
static unsigned long tcache_flush(char *r)
{
	unsigned long total = 0;
	unsigned int i;
	uint32_t *cnt;

	for (i = 0; i < NR_KMALLOC; i++) {
		cnt = slot_count(r, i);
		if (*cnt) {
			total += *cnt;
			cache_drain(&kmalloc_caches[i], slot_objs(r, i), *cnt);
			__atomic_store_n(cnt, 0, __ATOMIC_RELAXED);
		}
	}
	return total;
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
	void *buf[MAX_BATCH + 1], *p;
	unsigned long n, i, k;
	uint32_t c;

	slot_grow(t->tcache, slot, 0);
	if (s->nobj == 1)
		flush_large(s, 0);
	n = cache_refill(s, buf, batch_of(s, t->tcache) + 1);
	if (!n)
		return NULL;
	p = buf[--n];
	stack_key(buf, n);
	busy_inc();
	/* A signal handler may have filled it meanwhile: push what fits. */
	c = __atomic_load_n(cnt, __ATOMIC_RELAXED);
	k = __atomic_load_n(slot_cap(t->tcache, slot), __ATOMIC_RELAXED);
	k = k > c ? k - c : 0;
	if (k > n)
		k = n;
	for (i = 0; i < k; i++) /* atomic: read racily, as above */
		__atomic_store_n(&objs[c + i], buf[i], __ATOMIC_RELAXED);
	/* k = 0 with capacity 0: a drainer may own the counts. */
	if (k)
		__atomic_store_n(cnt, c + (uint32_t)k, __ATOMIC_RELAXED);
	busy_dec();
	if (k < n)
		cache_drain(s, buf + k, n - k);
	stats_tick(); /* cache_refill could not: this thread was busy */
	return p;
}

/* The stack is full: drain a batch of it and push @p; in a slow section. */
static void tcache_drain(struct slab_tls *t, struct kmem_cache *s, void *p)
{
	unsigned int slot = (unsigned int)s->slot;
	void *buf[MAX_BATCH + 1];
	unsigned long n;

	if (slot_grow(t->tcache, slot, 0) && tcache_push_fast(t, slot, p))
		return;
	n = slot_take(t->tcache, slot, buf, batch_of(s, t->tcache), 0);
	if (!tcache_push_fast(t, slot, p))
		buf[n++] = p;
	if (n)
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
	if (t->tcache) {
		hook_exit(t);
		/*
		 * Drainable only with the exit hook: thread_exit() clears it
		 * under the drain lock before the TLS goes away. Without the
		 * hook the owner's TLS may vanish under a drainer.
		 */
		if (t->hooked)
			__atomic_store_n(&TCACHE_META(t->tcache)->busy,
					 &t->busy, __ATOMIC_RELEASE);
	}
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
	/* Before busy: a drainer of our region waits for busy to clear. */
	if (inside && t->tcache)
		slock_lock(&TCACHE_META(t->tcache)->drain);
	busy_inc();
	if (inside) {
		slab_large_release();
		if (t->tcache) {
			char *r = t->tcache;

			tcache_flush(r);
			t->tcache = NULL;
			__atomic_store_n(&TCACHE_META(r)->busy, NULL,
					 __ATOMIC_RELEASE);
			__atomic_store_n(&TCACHE_META(r)->live, 0,
					 __ATOMIC_RELEASE);
			slock_unlock(&TCACHE_META(r)->drain);
			tcache_put(r);
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
	void *buf[MAX_BATCH + 1], *p;
	unsigned long n, k;
	char *r;

	switch (t->state) {
	case TS_NEW:
		/* A new per-thread stack is empty: only rseq has one to pop. */
		thread_setup(t);
		return t->state == TS_RSEQ ? cache_alloc(s) :
					     alloc_inside(t, s);
	case TS_RSEQ:
		r = this_region();
		if (r)
			slot_grow(r, (unsigned int)s->slot, 1);
		if (s->nobj == 1)
			flush_large(s, 1);
		n = cache_refill(s, buf, batch_of(s, r) + 1);
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
		p = tcache_pop_fast(t, (unsigned int)s->slot);
		if (p)
			goto out;
	}
	if (!slow_enter_alloc())
		return NULL;
	p = alloc_inside(t, s);
	percpu_tick(t);
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

/* cache_free_slow() beyond this thread's stack: may take locks. */
static __attribute__((noinline)) void cache_free_locked(struct kmem_cache *s,
							void *p)
{
	struct slab_tls *t = &slab_tls;
	unsigned int slot = (unsigned int)s->slot;
	void *buf[MAX_BATCH + 1];
	unsigned long n;
	char *r;
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
		r = this_region();
		if (r && slot_grow(r, slot, 1) &&
		    rseq_push(&slab_fast, slot, p))
			break;
		n = rseq_pop_batch(&slab_fast, slot, buf, batch_of(s, r));
		if (!rseq_push(&slab_fast, slot, p))
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
	percpu_tick(t);
	slow_exit();
}

/*
 * Behind a failed rseq push: @p carries the free key already. No rseq:
 * this thread's stack first, inline and with no frame.
 */
void cache_free_slow(struct kmem_cache *s, void *p)
{
	if (tcache_push_fast(&slab_tls, (unsigned int)s->slot, p))
		return;
	cache_free_locked(s, p);
}

/* Is @p in one of the stacks of @slot in region @r? Racy by design. */
static int region_holds(char *r, unsigned int slot, const void *p)
{
	uint32_t n = __atomic_load_n(slot_count(r, slot), __ATOMIC_RELAXED);
	void **objs = slot_objs(r, slot);
	uint32_t i;

	if (n > slab_fast.slot_max[slot])
		n = slab_fast.slot_max[slot];
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

struct slock *drain_lock_of(void)
{
	return &drain_lock;
}

unsigned long percpu_trim(void)
{
	struct slab_tls *t = &slab_tls;
	unsigned long n = regions_scan(1);

	if (t->tcache) {
		slock_lock(&TCACHE_META(t->tcache)->drain);
		busy_inc();
		n += tcache_flush(t->tcache);
		caps_clear(t->tcache);
		region_hdr(t->tcache)->committed = 0;
		busy_dec();
		slock_unlock(&TCACHE_META(t->tcache)->drain);
	}
	return n;
}
