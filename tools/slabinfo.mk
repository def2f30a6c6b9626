# SPDX-License-Identifier: MIT
# tools/slabinfo.mk: slabinfo, the viewer of the statistics that processes
# publish (SLAB_OPTIONS=publish), and its tests. Included by the top-level
# GNUmakefile:
#
#   -include tools/slabinfo.mk
#   all: $(TOOLS_ALL)            (after the include: TOOLS_ALL is read there)
#
#   make slabinfo        build/tools/slabinfo, with the host $(CC): it reads
#                        /dev/shm/slab-<pid> and does not link the allocator
#   make slabinfo-check  selftests/slabinfo/run.sh (TAP): slabinfo against
#                        live processes, glibc and musl, rseq on and off,
#                        its error paths, and the statistics counters
#                        (selftests/slabinfo/counters.c); part of `make check`
#   make lint            also clang-formats tools/slabinfo.c and
#                        selftests/slabinfo/*.c
#
# tools/slabinfo (the committed wrapper) runs make with this file directly
# while the top-level makefile does not include it yet; the guard below
# makes a second inclusion harmless.

ifndef SLABINFO_MK_INCLUDED
SLABINFO_MK_INCLUDED := 1

SLABINFO        := $(B)/tools/slabinfo
SLABINFO_SRC    := tools/slabinfo.c
SLABINFO_HDRS   := slab/include/slab_stats.h slab/include/slab.h
SLABINFO_CFLAGS  = -O2 -g $(WARN) -std=gnu11 -Islab/include $(EXTRA_CFLAGS)

TOOLS_ALL += $(SLABINFO)

slabinfo: $(SLABINFO)

$(SLABINFO): $(SLABINFO_SRC) $(SLABINFO_HDRS)
	$(quiet) CC "$@"
	$(Q)mkdir -p $(@D) && $(CC) $(SLABINFO_CFLAGS) $< -o $@

# run.sh builds its test programs against the archives that `all` makes.
slabinfo-check: all $(SLABINFO)
	$(quiet) TAP "selftests/slabinfo/run.sh $(SLABINFO_ARGS)"
	$(Q)V=$(V) selftests/slabinfo/run.sh $(SLABINFO_ARGS)

check: slabinfo-check

lint: lint-slabinfo

lint-slabinfo:
	$(quiet) FORMAT "$(SLABINFO_SRC) selftests/slabinfo"
	$(Q)clang-format --dry-run --Werror $(SLABINFO_SRC) \
		$(wildcard selftests/slabinfo/*.c)

.PHONY: slabinfo slabinfo-check lint-slabinfo
endif
