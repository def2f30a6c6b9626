# SPDX-License-Identifier: MIT
# tools/bench/bench.mk: the benchmark suite, included by the top-level
# GNUmakefile.
#
#   make bench [BENCH=quick|full]   install the peers when root
#                   (tools/bench/ensure-peers.sh), build every allocator
#                   configuration into build/bench/bin/, run the suite and
#                   write build/bench/report.md and plot.svg
#                   (tools/bench/run.sh; quick is the default)
#   make bench-build     only build build/bench/ (tools/bench/build.sh)
#   make bench-report    rewrite report.md and plot.svg from the last run
#   make bench-readme    put the last report's figures into README.md
#   make bench-scaling   1..16 threads of seed, larson and prodcons into
#                        build/bench/scaling.md (for a many-core machine)
#
# run.sh reads BENCH_RUNS, BENCH_TIMEOUT, BENCH_ONLY, BENCH_CONFIGS and
# BENCH_TIMER from the environment: `make bench BENCH_ONLY=larson` works.
# Documentation/benchmarks.md describes the benchmarks and the report.

BENCH ?= quick
BENCH_SCRIPTS := $(wildcard tools/bench/*.sh)
BENCH_CSRCS   := $(wildcard tools/bench/*.c tools/bench/*.h)

bench: all
	$(quiet) BENCH "tools/bench/run.sh (BENCH=$(BENCH))"
	$(Q)BENCH=$(BENCH) V=$(V) tools/bench/run.sh

# The README's results part, from the last report (tools/bench/readme.sh).
bench-readme:
	$(quiet) README "tools/bench/readme.sh build/bench/report.md"
	$(Q)tools/bench/readme.sh build/bench/report.md

bench-build: all
	$(quiet) BUILD "tools/bench/build.sh"
	$(Q)V=$(V) tools/bench/build.sh

bench-report:
	$(quiet) REPORT "$(B)/bench/report.md"
	$(Q)tools/bench/report.sh $(B)/bench && { tools/bench/plot.sh $(B)/bench || true; }

bench-scaling: all
	$(quiet) SCALING "tools/bench/scaling.sh"
	$(Q)V=$(V) tools/bench/scaling.sh

.PHONY: bench bench-build bench-report bench-scaling bench-readme

# `make lint` also checks the suite's C sources and, when shellcheck is
# installed, its scripts.
lint: lint-bench

lint-bench:
	$(quiet) FORMAT "tools/bench"
	$(Q)clang-format --dry-run --Werror $(BENCH_CSRCS)
	$(quiet) SHCHECK "tools/bench"
	$(Q)if command -v shellcheck >/dev/null 2>&1; then \
		shellcheck $(BENCH_SCRIPTS); \
	else \
		echo "  SKIP    shellcheck is not installed"; \
	fi

.PHONY: lint-bench
