#!/bin/bash
# SPDX-License-Identifier: MIT
# scaling.sh: the multi-threaded benchmarks at 1, 2, 4, 8 and 16 threads,
# for a machine with many cores. Writes build/bench/scaling.md, which
# tools/bench/report.sh then includes in report.md.
#
#   tools/bench/scaling.sh [--no-build]
#
# --no-build: use build/bench/bin/<config>/ and build/bench/runone as they
# are (copied from the machine that built them, for instance) instead of
# running tools/bench/build.sh first.
#
# Benchmarks: seed (5 sweeps of 0..100 KB per thread), larson (5000000 ops
# per thread, 1000 slots; with 1 thread nothing is freed remotely), prodcons
# (2000000 objects per producer; an even thread count, so no 1-thread
# run), cache-scratch and cache-thrash (200 rounds of 8-byte objects
# written 100000 times per thread). Each thread does a fixed amount of
# work, so the ideal wall time stays flat up to the core count.
# Configurations: musl+slab, musl+mimalloc, glibc+slab, glibc,
# glibc+mimalloc, glibc+jemalloc, glibc+tcmalloc (those that were built;
# plain musl is left out: it serialises every thread on one lock and
# would take most of the time).
#
# The runs go in passes: each pass measures every benchmark, thread count
# and configuration once, so that a run cut short still has a complete
# table (with fewer runs per median).
#
# Environment: SCALING_THREADS="1 2 4 8 16", SCALING_RUNS=3 (median),
# BENCH_TIMEOUT=120 (per run), SCALING_BUDGET=0 (seconds; when non-zero,
# no new pass starts after that long and the report is written).
set -uo pipefail

prog=bench-scaling
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
B=${BENCH_DIR:-build/bench}
threads=${SCALING_THREADS:-"1 2 4 8 16"}
runs=${SCALING_RUNS:-3}
limit=${BENCH_TIMEOUT:-120}
budget=${SCALING_BUDGET:-0}
configs=(musl+slab musl+mimalloc glibc+slab glibc glibc+mimalloc glibc+jemalloc
	glibc+tcmalloc)
# name|program|arguments (@T: the thread count)
benches=(
	"seed|seed|@T 100000 5"
	"larson|larson|@T 5000000 1000"
	"prodcons|prodcons|@T 2000000"
	"cache-scratch|cache|scratch @T 200 8 100000"
	"cache-thrash|cache|thrash @T 200 8 100000"
)

die() {
	echo "$prog: $*" >&2
	exit 1
}

case ${1:-} in
--no-build) ;;
"") tools/bench/build.sh || die "the build failed" ;;
*) die "usage: $0 [--no-build]" ;;
esac
case $runs in
'' | *[!0-9]* | 0) die "SCALING_RUNS must be a positive integer" ;;
esac
case $budget in
'' | *[!0-9]*) die "SCALING_BUDGET must be a number of seconds" ;;
esac
[ -x "$B/runone" ] || die "$B/runone is missing (run without --no-build)"

present=()
for c in "${configs[@]}"; do
	if [ -x "$B/bin/$c/seed" ]; then
		present+=("$c")
	else
		echo "$prog: $B/bin/$c is not built: $c skipped" >&2
	fi
done
[ ${#present[@]} -gt 0 ] || die "nothing built in $B/bin"

tsv=$B/scaling.tsv
mkdir -p "$B/logs/scaling"
printf 'bench\tconfig\tthreads\trun\twall\tstatus\n' >"$tsv"
nt=$(wc -w <<<"$threads")
total=$((${#benches[@]} * ${#present[@]} * nt))
item=0
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

start=$SECONDS
passes=0
for ((r = 1; r <= runs; r++)); do
	if [ "$budget" != 0 ] && [ $((SECONDS - start)) -ge "$budget" ]; then
		echo "$prog: ${budget}s budget spent: $passes pass(es) of $runs" >&2
		break
	fi
	item=0
	for b in "${benches[@]}"; do
		IFS='|' read -r name p argt <<<"$b"
		for t in $threads; do
			for c in "${present[@]}"; do
				item=$((item + 1))
				if [ "$p" = prodcons ] && [ $((t % 2)) = 1 ]; then
					continue
				fi
				printf '[%d/%d] pass %d/%d: %s %s %s threads\n' \
					"$item" "$total" "$r" "$runs" "$name" "$c" "$t" >&2
				read -r -a args <<<"${argt//@T/$t}"
				log=$B/logs/scaling/$name.$c.$t.$r
				line=$("$B/runone" -t "$limit" -o "$log.out" \
					-e "$log.err" -- "$B/bin/$c/$p" "${args[@]}")
				wall=$(sed -n 's/.*wall=\([^ ]*\).*/\1/p' <<<"$line")
				st=$(sed -n 's/.*status=\([^ ]*\).*/\1/p' <<<"$line")
				printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$c" "$t" \
					"$r" "${wall:-0}" "${st:-fail}" >>"$tsv"
			done
		done
	done
	passes=$r
done

{
	echo "## Scaling beyond 2 cores"
	echo
	echo "tools/bench/scaling.sh, $(date -u '+%Y-%m-%d %H:%M UTC'):" \
		"$(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo))," \
		"$(uname -sr); load average at start $load_start, at end" \
		"$(cut -d' ' -f1-3 /proc/loadavg)${SCALING_NOTE:+; $SCALING_NOTE}." \
		"Median wall time of $passes run(s); in brackets the throughput relative to 1 thread (2" \
		"threads for prodcons) of the same configuration: each thread does" \
		"a fixed amount of work, so N threads on N free cores ideally give N."
	echo
	awk -F'\t' -v threads="$threads" -v nb="${#benches[@]}" '
	function median(k, n, i, j, t, v) {
		for (i = 1; i <= n; i++)
			v[i] = w[k, i]
		for (i = 2; i <= n; i++) {
			t = v[i]
			for (j = i - 1; j >= 1 && v[j] > t; j--)
				v[j + 1] = v[j]
			v[j + 1] = t
		}
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	NR > 1 {
		k = $1 SUBSEP $2 SUBSEP $3
		if (!($1 in bseen)) {
			bseen[$1] = 1
			border[++nbo] = $1
		}
		if (!($2 in cseen)) {
			cseen[$2] = 1
			corder[++nco] = $2
		}
		w[k, ++n[k]] = $5
		if ($6 != "ok")
			bad[k] = $6
	}
	END {
		nt = split(threads, T, " ")
		for (i = 1; i <= nbo; i++) {
			b = border[i]
			print "### " b
			print ""
			s = "| configuration"
			d = "| ---"
			for (j = 1; j <= nt; j++) {
				s = s " | " T[j] " thr."
				d = d " | ---:"
			}
			print s " |"
			print d " |"
			for (c = 1; c <= nco; c++) {
				s = "| " corder[c]
				base = ""
				for (j = 1; j <= nt; j++) {
					k = b SUBSEP corder[c] SUBSEP T[j]
					if (!n[k]) {
						s = s " | n/a"
						continue
					}
					if (k in bad) {
						s = s " | FAIL (" bad[k] ")"
						continue
					}
					m = median(k, n[k])
					if (base == "") {
						base = m
						bt = T[j]
					}
					s = s sprintf(" | %.3f s (%.1fx)", m,
						      m > 0 ? (base / m) * (T[j] / bt) : 0)
				}
				print s " |"
			}
			print ""
		}
	}' "$tsv"
} >"$B/scaling.md"
echo "$prog: wrote $B/scaling.md" >&2
if [ -f "$B/meta.txt" ]; then
	tools/bench/report.sh "$B"
fi
