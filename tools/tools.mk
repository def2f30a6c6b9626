# SPDX-License-Identifier: MIT
# tools/tools.mk: the seed demo, included by the top-level GNUmakefile.
#
#   make demo         check/install the build dependencies (tools/ensure-deps.sh),
#                     build the library and the demo binaries, run the timings
#   make demo-build   only build build/demo/seed-* (needs musl-gcc)
#   make deps         only check/install the build dependencies
#
# run-demo.sh reads DEMO_RUNS, DEMO_THREADS, DEMO_ITERS, DEMO_TIMER and
# DEMO_TIMEOUT from the environment: `make demo DEMO_RUNS=5` works.
#
# `demo` runs ensure-deps.sh first and then a sub-make: the top-level
# makefile decides at parse time whether musl-gcc exists (HAVE_MUSL), so the
# build that follows an install must be parsed afresh.

DEMO_B      := $(B)/demo
DEMO_SRC    := tools/demo/seed.c
DEMO_CFLAGS := -O2 -g -Wall -Wextra -pthread
MIMALLOC_SO := /usr/lib/x86_64-linux-gnu/libmimalloc.so

DEMO_BINS := $(DEMO_B)/seed-musl $(DEMO_B)/seed-musl-slab \
	     $(DEMO_B)/seed-glibc $(DEMO_B)/seed-glibc-slab
ifneq ($(wildcard $(MIMALLOC_SO)),)
DEMO_BINS += $(DEMO_B)/seed-glibc-mimalloc
endif

demo: deps
	$(Q)$(MAKE) --no-print-directory demo-run

demo-run: all demo-build
	$(quiet) RUN "tools/demo/run-demo.sh $(DEMO_B)"
	$(Q)tools/demo/run-demo.sh $(DEMO_B)

demo-build: $(DEMO_BINS)

deps:
	$(quiet) DEPS "tools/ensure-deps.sh"
	$(Q)tools/ensure-deps.sh

$(DEMO_B):
	$(Q)mkdir -p $@

# The slab flags are read when the link runs, after the archive is built.
# Command substitution in the recipe (not $(shell)) makes a slab-config
# failure stop the build instead of linking a "slab" binary without slab.
$(DEMO_B)/seed-musl: $(DEMO_SRC) | $(DEMO_B)
	$(quiet) LD "$@"
	$(Q)$(MUSL_CC) -static $(DEMO_CFLAGS) $< -o $@

$(DEMO_B)/seed-musl-slab: $(DEMO_SRC) $(B)/musl/libslab.a wrap/wrap.list | $(DEMO_B)
	$(quiet) LD "$@"
	$(Q)flags=$$(tools/slab-config --libc musl --ldflags) && \
		$(MUSL_CC) -static $(DEMO_CFLAGS) $< $$flags -o $@

$(DEMO_B)/seed-glibc: $(DEMO_SRC) | $(DEMO_B)
	$(quiet) LD "$@"
	$(Q)$(CC) $(DEMO_CFLAGS) $< -o $@

$(DEMO_B)/seed-glibc-slab: $(DEMO_SRC) $(B)/glibc/libslab.a wrap/wrap.list | $(DEMO_B)
	$(quiet) LD "$@"
	$(Q)flags=$$(tools/slab-config --libc glibc --ldflags) && \
		$(CC) $(DEMO_CFLAGS) $< $$flags -o $@

$(DEMO_B)/seed-glibc-mimalloc: $(DEMO_SRC) | $(DEMO_B)
	$(quiet) LD "$@"
	$(Q)$(CC) $(DEMO_CFLAGS) $< -lmimalloc -o $@

.PHONY: demo demo-run demo-build deps

# `make lint` also checks the demo's source.
lint: lint-demo

lint-demo:
	$(quiet) FORMAT "$(DEMO_SRC)"
	$(Q)clang-format --dry-run --Werror $(DEMO_SRC)

.PHONY: lint-demo
