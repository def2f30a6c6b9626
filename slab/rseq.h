/* SPDX-License-Identifier: MIT */
/*
 * rseq.h - the per-CPU stack operations as rseq critical sections.
 *
 * This is the only file with rseq assembly. Every operation is one critical
 * section that starts with RSEQ_PROLOGUE, reads the CPU index inside the
 * section, and ends with exactly one commit store (the slot's count). The
 * object stores that precede a push commit are invisible until the count
 * moves past them, so an abort at any instruction leaves the stack intact.
 *
 * On any failure (thread not registered: index reads as ~0 or is out of
 * range; stack empty or full; abort by preemption, migration or signal) the
 * operation reports failure and the caller takes the locked slow path. We
 * never retry inside the asm: a debugger single-stepping through a section
 * aborts it every time, and the slow path still makes progress.
 *
 * Contract with the kernel (Documentation/rseq.rst in Linux):
 *  - rseq_cs points to a descriptor {version 0, flags 0, start_ip,
 *    post_commit_offset, abort_ip}, 32-byte aligned;
 *  - the 4 bytes before abort_ip are the signature used at registration;
 *    they follow 0f b9 3d so that they decode as ud1 if ever executed;
 *  - we write rseq_cs only; cpu_id, mm_cid and the rest are read-only.
 */
#ifndef SLAB_RSEQ_H
#define SLAB_RSEQ_H

#include <stdint.h>
#include "types.h"

#define RSEQ_SIG     0x53053053
#define RSEQ_SIG_STR "0x53053053"

/* The kernel's struct rseq (original 32-byte registration). */
struct rseq_area {
	uint32_t cpu_id_start;
	uint32_t cpu_id;
	uint64_t rseq_cs;
	uint32_t flags;
	uint32_t node_id;
	uint32_t mm_cid;
	uint32_t end[1];
} __attribute__((aligned(32)));

#define RSEQ_OFF_CPU_ID 4
#define RSEQ_OFF_MM_CID 24

/*
 * The rseq area is at thread pointer + slab_rseq_off, the CPU index at
 * thread pointer + slab_idx_off. Both start out (statically, see percpu.c)
 * pointing at our own TLS area, so the prologue's store is harmless in
 * every thread at every moment, even before start-up or with rseq off; the
 * fast path is then refused by ncpus (0) or by the index (~0).
 */
extern long slab_rseq_off __attribute__((visibility("hidden")));
extern long slab_idx_off __attribute__((visibility("hidden")));

#if defined(__x86_64__) && !defined(SLAB_NO_RSEQ_ASM)
#define SLAB_HAVE_RSEQ_ASM_VALUE 1

/*
 * RSEQ_PROLOGUE: emit the descriptor (label 3) for the section [1, 2), the
 * abort handler (label 4, after the signature) that leaves for @slow, point
 * rseq->rseq_cs at the descriptor, then open the section at label 1.
 * Then %rax = this CPU's slot base, or leave for @slow.
 *
 *	rs->rseq_cs = &desc;			rs: tp + slab_rseq_off, which
 *						points at our own TLS area
 *						until start-up picks the area
 *   1:	idx = *(u32 *)(tp + idx_off);		cpu_id or mm_cid
 *	if (idx >= ncpus) goto slow;		also: not registered (~0)
 *	rax = bases + (idx << REGION_SHIFT);	bases = base + slot_off
 */
#define RSEQ_PROLOGUE_REG(slow, R64, R32)         \
	".pushsection __rseq_cs, \"aw\"\n\t"      \
	".balign 32\n\t"                          \
	"3:\n\t"                                  \
	".long 0, 0\n\t"                          \
	".quad 1f, 2f - 1f, 4f\n\t"               \
	".popsection\n\t"                         \
	".pushsection __rseq_failure, \"ax\"\n\t" \
	".byte 0x0f, 0xb9, 0x3d\n\t"              \
	".long " RSEQ_SIG_STR "\n\t"              \
	"4:\n\t"                                  \
	"jmp " slow "\n\t"                        \
	".popsection\n\t"                         \
	"leaq 3b(%%rip), %%" R64 "\n\t"           \
	"movq %%" R64 ", %%fs:8(%[off])\n\t"      \
	"1:\n\t"                                  \
	"movl %%fs:(%[idx]), %%" R32 "\n\t"       \
	"cmpl %[ncpus], %%" R32 "\n\t"            \
	"jae " slow "\n\t"                        \
	"shlq $16, %%" R64 "\n\t"                 \
	"addq %[bases], %%" R64 "\n\t"
#define RSEQ_PROLOGUE(slow) RSEQ_PROLOGUE_REG(slow, "rax", "eax")

#define RSEQ_INPUTS(_f, _b)                                \
	[off] "r"(slab_rseq_off), [idx] "r"(slab_idx_off), \
		[ncpus] "r"(ncpus_), [bases] "r"(_b)

/*
 * ncpus is published last (release) at start-up; load it first (acquire)
 * so that the offsets read after it are the published ones.
 */
#define RSEQ_LOAD_NCPUS(_f) \
	uint32_t ncpus_ = __atomic_load_n(&(_f)->ncpus, __ATOMIC_ACQUIRE)

_Static_assert(REGION_SHIFT == 16, "RSEQ_PROLOGUE shifts by 16");

/*
 * Pop: n = count - 1; if (n >= cap) goto slow; obj = objs[n]; commit n.
 * count 0 wraps to ~0, and a capacity of 0 (new or stopped region)
 * refuses every count. A statement: on success @obj is set, else control
 * goes to @slow.
 */
#define rseq_pop_base_or_goto(_f, _base, _obj, _slow)                            \
	do {                                                                     \
		RSEQ_LOAD_NCPUS(_f);                                             \
		asm goto(RSEQ_PROLOGUE_REG(                                      \
				 "%l[" #_slow "]", "rcx",                        \
				 "ecx") "movl -8(%%rcx), %%edx\n\t"              \
					"decl %%edx\n\t"                         \
					"cmpl -4(%%rcx), %%edx\n\t"              \
					"jae %l[" #_slow "]\n\t"                 \
					"movq (%%rcx,%%rdx,8), %[obj]\n\t"       \
					"movl %%edx, -8(%%rcx)\n\t" /* commit */ \
					"2:\n\t"                                 \
			 : [obj] "=&a"(_obj)                                     \
			 : RSEQ_INPUTS(_f, _base)                                \
			 : "rcx", "rdx", "memory", "cc"                          \
			 : _slow);                                               \
	} while (0)

#define rseq_pop_or_goto(_f, _slot, _obj, _slow) \
	rseq_pop_base_or_goto(_f, (_f)->slot_base[_slot], _obj, _slow)

/*
 * Push: if (count >= cap) goto slow; objs[count] = obj; commit count + 1.
 * cap is the region's own word next to the count (0: refuse).
 */
#define rseq_push_base_or_goto(_f, _base, _obj, _slow)                         \
	do {                                                                   \
		RSEQ_LOAD_NCPUS(_f);                                           \
		asm goto(RSEQ_PROLOGUE(                                        \
				 "%l[" #_slow                                  \
				 "]") "movl -8(%%rax), %%ecx\n\t"              \
				      "cmpl -4(%%rax), %%ecx\n\t"              \
				      "jae %l[" #_slow "]\n\t"                 \
				      "movq %[obj], (%%rax,%%rcx,8)\n\t"       \
				      "incl %%ecx\n\t"                         \
				      "movl %%ecx, -8(%%rax)\n\t" /* commit */ \
				      "2:\n\t"                                 \
			 :                                                     \
			 : RSEQ_INPUTS(_f, _base), [obj] "r"(_obj)             \
			 : "rax", "rcx", "memory", "cc"                        \
			 : _slow);                                             \
	} while (0)

#define rseq_push_or_goto(_f, _slot, _obj, _slow) \
	rseq_push_base_or_goto(_f, (_f)->slot_base[_slot], _obj, _slow)

static inline __attribute__((always_inline)) int
rseq_push(const struct slab_fast *f, unsigned int slot, void *obj)
{
	rseq_push_or_goto(f, slot, obj, slow);
	return 1;
slow:
	return 0;
}

/*
 * The batch operations return a count, so they are plain asm: gcc 12
 * merges an asm goto's label path with its fallthrough and may read the
 * output register there, which holds garbage after an abort. Every way
 * out but the commit goes through label 7, which zeroes the count.
 */

/*
 * Push up to @n objects from @objs: k = min(n, cap - count) (0 if cap <=
 * count); copy them to objs[count ..]; commit count + k. Returns k (0 on
 * any failure).
 */
static inline unsigned long rseq_push_batch(const struct slab_fast *f,
					    unsigned int slot, void **objs,
					    unsigned long n)
{
	char *bases = f->slot_base[slot];
	unsigned long k;
	RSEQ_LOAD_NCPUS(f);

	asm volatile(RSEQ_PROLOGUE(
			     "7f") "movl -8(%%rax), %%ecx\n\t"
				   "movl -4(%%rax), %k[k]\n\t"
				   "subl %%ecx, %k[k]\n\t"
				   "jbe 7f\n\t"
				   "cmpq %[n], %[k]\n\t"
				   "cmovaq %[n], %[k]\n\t"
				   "testq %[k], %[k]\n\t"
				   "jz 7f\n\t"
				   "leaq (%%rax,%%rcx,8), %%rdx\n\t"
				   "xorl %%esi, %%esi\n\t"
				   "5:\n\t"
				   "movq (%[src],%%rsi,8), %%rdi\n\t"
				   "movq %%rdi, (%%rdx,%%rsi,8)\n\t"
				   "incq %%rsi\n\t"
				   "cmpq %[k], %%rsi\n\t"
				   "jb 5b\n\t"
				   "addl %k[k], %%ecx\n\t"
				   "movl %%ecx, -8(%%rax)\n\t" /* commit */
				   "2:\n\t"
				   "jmp 6f\n\t"
				   "7:\n\t"
				   "xorl %k[k], %k[k]\n\t"
				   "6:\n\t"
		     : [k] "=&r"(k)
		     : RSEQ_INPUTS(f, bases), [src] "r"(objs), [n] "r"(n)
		     : "rax", "rcx", "rdx", "rsi", "rdi", "memory", "cc");
	return k;
}

/*
 * Pop up to @n objects into @out: k = min(n, count); copy
 * objs[count - k .. count) to out; commit count - k. Returns k; 0 if the
 * capacity is 0 (a stopped region belongs to its drainer).
 */
static inline unsigned long rseq_pop_batch(const struct slab_fast *f,
					   unsigned int slot, void **out,
					   unsigned long n)
{
	char *bases = f->slot_base[slot];
	unsigned long k;
	RSEQ_LOAD_NCPUS(f);

	asm volatile(RSEQ_PROLOGUE(
			     "7f") "cmpl $0, -4(%%rax)\n\t"
				   "je 7f\n\t"
				   "movl -8(%%rax), %%ecx\n\t"
				   "movq %[n], %[k]\n\t"
				   "cmpq %%rcx, %[k]\n\t"
				   "cmovaq %%rcx, %[k]\n\t"
				   "testq %[k], %[k]\n\t"
				   "jz 7f\n\t"
				   "subl %k[k], %%ecx\n\t"
				   "leaq (%%rax,%%rcx,8), %%rdx\n\t"
				   "xorl %%esi, %%esi\n\t"
				   "5:\n\t"
				   "movq (%%rdx,%%rsi,8), %%rdi\n\t"
				   "movq %%rdi, (%[dst],%%rsi,8)\n\t"
				   "incq %%rsi\n\t"
				   "cmpq %[k], %%rsi\n\t"
				   "jb 5b\n\t"
				   "movl %%ecx, -8(%%rax)\n\t" /* commit */
				   "2:\n\t"
				   "jmp 6f\n\t"
				   "7:\n\t"
				   "xorl %k[k], %k[k]\n\t"
				   "6:\n\t"
		     : [k] "=&r"(k)
		     : RSEQ_INPUTS(f, bases), [dst] "r"(out), [n] "r"(n)
		     : "rax", "rcx", "rdx", "rsi", "rdi", "memory", "cc");
	return k;
}

/*
 * Set the capacity of @slot in the current region to @newcap, if the
 * current region's stack is @expect (the thread did not move), the
 * region is not stopped (*@stopped == 0), the capacity is still @old and
 * the count fits @newcap. The capacity store is the commit. Returns 1 if
 * it was set.
 */
static inline int rseq_set_cap(const struct slab_fast *f, unsigned int slot,
			       const char *expect, const uint32_t *stopped,
			       uint32_t old, uint32_t newcap)
{
	char *bases = f->slot_base[slot];
	unsigned long ok;
	RSEQ_LOAD_NCPUS(f);

	asm volatile(RSEQ_PROLOGUE(
			     "7f") "cmpq %[expect], %%rax\n\t"
				   "jne 7f\n\t"
				   "cmpl $0, (%[stopped])\n\t"
				   "jne 7f\n\t"
				   "cmpl %[old], -4(%%rax)\n\t"
				   "jne 7f\n\t"
				   "cmpl %[new], -8(%%rax)\n\t"
				   "ja 7f\n\t"
				   "movl %[new], -4(%%rax)\n\t" /* commit */
				   "2:\n\t"
				   "movl $1, %k[ok]\n\t"
				   "jmp 6f\n\t"
				   "7:\n\t"
				   "xorl %k[ok], %k[ok]\n\t"
				   "6:\n\t"
		     : [ok] "=&r"(ok)
		     : RSEQ_INPUTS(f, bases), [expect] "r"(expect),
		       [stopped] "r"(stopped), [old] "r"(old), [new] "r"(newcap)
		     : "rax", "memory", "cc");
	return (int)ok;
}

#else /* no rseq asm for this architecture: the fallback path runs */
#define SLAB_HAVE_RSEQ_ASM_VALUE 0

#define rseq_pop_base_or_goto(f, base, obj, slow) \
	rseq_pop_or_goto(f, base, obj, slow)
#define rseq_push_base_or_goto(f, base, obj, slow) \
	rseq_push_or_goto(f, base, obj, slow)
#define rseq_pop_or_goto(f, slot, obj, slow) \
	do {                                 \
		(void)(f);                   \
		(void)(slot);                \
		obj = NULL;                  \
		goto slow;                   \
	} while (0)
#define rseq_push_or_goto(f, slot, obj, slow) \
	do {                                  \
		(void)(f);                    \
		(void)(slot);                 \
		(void)(obj);                  \
		goto slow;                    \
	} while (0)
static inline int rseq_push(const struct slab_fast *f, unsigned int slot,
			    void *obj)
{
	(void)f;
	(void)slot;
	(void)obj;
	return 0;
}
static inline unsigned long rseq_push_batch(const struct slab_fast *f,
					    unsigned int slot, void **objs,
					    unsigned long n)
{
	(void)f;
	(void)slot;
	(void)objs;
	(void)n;
	return 0;
}
static inline unsigned long rseq_pop_batch(const struct slab_fast *f,
					   unsigned int slot, void **out,
					   unsigned long n)
{
	(void)f;
	(void)slot;
	(void)out;
	(void)n;
	return 0;
}
static inline int rseq_set_cap(const struct slab_fast *f, unsigned int slot,
			       const char *expect, const uint32_t *stopped,
			       uint32_t old, uint32_t newcap)
{
	(void)f;
	(void)slot;
	(void)expect;
	(void)stopped;
	(void)old;
	(void)newcap;
	return 0;
}
#endif

#endif /* SLAB_RSEQ_H */
