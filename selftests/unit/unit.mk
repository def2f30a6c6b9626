# SPDX-License-Identifier: MIT
# selftests/unit/unit.mk: the unit tests (libcheck), included from
# selftests/selftests.mk.
#
#   make unit-check   unit-modes, unit-asan, unit-valgrind
#   make unit-modes   build build/unit/unit-tests against the glibc archive
#                     and run it with SLAB_OPTIONS unset, rseq=off and
#                     rseq=fake
#   make unit-asan    library sources + tests built with ASan and UBSan
#                     (build/unit/unit-tests-asan), run with SLAB_OPTIONS
#                     unset and rseq=off
#   make unit-valgrind  build/unit/unit-tests under valgrind (memcheck;
#                     rseq is ENOSYS there: the per-thread cache mode).
#                     Part of unit-check when valgrind is installed.
#
# libcheck is built for glibc only, so the unit tests are glibc-only.
# The test binary is linked with the wrap flags: its own malloc family (and
# libcheck's) is slab's, and the hidden internals resolve in the static link.
# CK_RUN_SUITE, CK_RUN_CASE and CK_VERBOSITY select and show tests.

UNIT_B      := $(B)/unit
UNIT_SRCS   := $(wildcard selftests/unit/*.c)
UNIT_HDRS   := $(wildcard selftests/unit/*.h)
UNIT_OBJS   := $(patsubst selftests/unit/%.c,$(UNIT_B)/%.o,$(UNIT_SRCS))
UNIT_CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
UNIT_CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)

# The tests call malloc and free for their effects: no builtin folding.
UNIT_NOBUILTIN := -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc \
	-fno-builtin-realloc -fno-builtin-aligned_alloc \
	-fno-builtin-posix_memalign -fno-builtin-memalign \
	-fno-builtin-valloc -fno-builtin-pvalloc
UNIT_CFLAGS = -O2 -g $(WARN) -std=gnu11 -fno-strict-aliasing -pthread \
	$(UNIT_NOBUILTIN) -Islab -Islab/include $(UNIT_CHECK_CFLAGS) \
	$(EXTRA_CFLAGS)

# One recipe line per mode: $(call unit_run,MODE,BINARY,ENV). Each run
# replaces SLAB_OPTIONS, whatever the caller's is; a failing run stops make.
UNIT_MODES := default rseq=off rseq=fake
define unit_run
	$(quiet) UNIT "$(2) [$(1)]"
	$(Q)env $(if $(filter default,$(1)),-u SLAB_OPTIONS,SLAB_OPTIONS=$(1)) $(3) $(2)

endef

$(UNIT_B) $(UNIT_B)/asan/slab $(UNIT_B)/asan/wrap $(UNIT_B)/asan/unit:
	$(Q)mkdir -p $@

$(UNIT_B)/%.o: selftests/unit/%.c $(UNIT_HDRS) $(HDRS) | $(UNIT_B)
	$(quiet) CC "$@"
	$(Q)$(CC) $(UNIT_CFLAGS) -c $< -o $@

# slab-config runs in the recipe so that its failure stops the link.
$(UNIT_B)/unit-tests: $(UNIT_OBJS) $(B)/glibc/libslab.a wrap/wrap.list
	$(quiet) LD "$@"
	$(Q)flags=$$(tools/slab-config --libc glibc --ldflags) && \
		$(CC) -pthread -o $@ $(UNIT_OBJS) $$flags $(UNIT_CHECK_LIBS)

HAVE_VALGRIND := $(shell command -v valgrind >/dev/null 2>&1 && echo y)

# In this order (without -j): the plain runs first, they say the most.
unit-check: unit-modes unit-asan $(if $(HAVE_VALGRIND),unit-valgrind)

unit-modes: all $(UNIT_B)/unit-tests
	$(foreach m,$(UNIT_MODES),$(call unit_run,$(m),$(UNIT_B)/unit-tests))

unit-valgrind: $(UNIT_B)/unit-tests
	$(quiet) UNIT "$< [valgrind]"
	$(Q)env -u SLAB_OPTIONS valgrind -q --error-exitcode=99 $<

# ---- ASan + UBSan: the library compiled into the test, not the archive ----

UNIT_SAN := -fsanitize=address,undefined -fno-omit-frame-pointer
UNIT_ASAN_LIB_OBJS := $(patsubst %.c,$(UNIT_B)/asan/%.o,$(SRCS))
UNIT_ASAN_OBJS := $(patsubst selftests/unit/%.c,$(UNIT_B)/asan/unit/%.o,$(UNIT_SRCS))
# ASan serves libc's side (__real_*): oversized requests must return NULL
# as libc's do, not abort. halt_on_error: a UBSan report fails the run.
UNIT_ASAN_ENV := ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=0 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

$(UNIT_B)/asan/slab/%.o: slab/%.c $(HDRS) | $(UNIT_B)/asan/slab
	$(quiet) CC "$@"
	$(Q)$(CC) $(LIB_CFLAGS) $(UNIT_SAN) -c $< -o $@

$(UNIT_B)/asan/wrap/%.o: wrap/%.c $(HDRS) | $(UNIT_B)/asan/wrap
	$(quiet) CC "$@"
	$(Q)$(CC) $(LIB_CFLAGS) $(UNIT_SAN) -c $< -o $@

$(UNIT_B)/asan/unit/%.o: selftests/unit/%.c $(UNIT_HDRS) $(HDRS) | $(UNIT_B)/asan/unit
	$(quiet) CC "$@"
	$(Q)$(CC) $(UNIT_CFLAGS) $(UNIT_SAN) -c $< -o $@

$(UNIT_B)/unit-tests-asan: $(UNIT_ASAN_OBJS) $(UNIT_ASAN_LIB_OBJS) wrap/wrap.list
	$(quiet) LD "$@"
	$(Q)wrap=$$(tools/slab-config --symbols | sed 's/^/-Wl,--wrap=/') && \
		$(CC) -pthread $(UNIT_SAN) -o $@ $(UNIT_ASAN_OBJS) \
		$(UNIT_ASAN_LIB_OBJS) $$wrap $(UNIT_CHECK_LIBS)

unit-asan: $(UNIT_B)/unit-tests-asan
	$(foreach m,default rseq=off,$(call unit_run,$(m),$(UNIT_B)/unit-tests-asan,$(UNIT_ASAN_ENV)))

.PHONY: unit-check unit-modes unit-asan unit-valgrind
