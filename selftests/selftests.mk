# SPDX-License-Identifier: MIT
# selftests/selftests.mk: the selftests, included from the top-level
# GNUmakefile.
#
#   make selftests    build the stress programs of selftests/stress/ for
#                     glibc and musl (build/selftests/<libc>/) and run them
#                     in every per-CPU mode, plus the environment modes
#                     (valgrind, debug, seccomp, vlimit64/32, throttled,
#                     tsan; see run_selftests.sh); TAP 13 on stdout
#   make check        unit-check (selftests/unit/unit.mk) + selftests
#
# SELFTEST_ARGS passes options to the runner, for example
#   make selftests SELFTEST_ARGS="-l glibc -t mt_random -m rseq=off"
#   make selftests SELFTEST_ARGS=-p     (the tests against plain libc)

-include selftests/unit/unit.mk

ifeq ($(wildcard selftests/unit/unit.mk),)
unit-check:
	$(quiet) SKIP "unit-check (selftests/unit/unit.mk is missing)"
endif

selftests: all
	$(quiet) TAP "selftests/run_selftests.sh $(SELFTEST_ARGS)"
	$(Q)V=$(V) selftests/run_selftests.sh $(SELFTEST_ARGS)

check: unit-check selftests

.PHONY: selftests unit-check check
