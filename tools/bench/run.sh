#!/bin/bash
# SPDX-License-Identifier: MIT
# run.sh: the benchmark suite. Builds the programs for every allocator
# configuration, runs them side by side and writes the report.
#
#   tools/bench/run.sh              BENCH=quick (default) or BENCH=full
#   make bench BENCH=full           the same through make
#
# Output, under build/bench/:
#   report.md        tables of ratios to slab and of medians, the machine
#   plot.svg         time and RSS per benchmark and allocator (gnuplot)
#   results.tsv      every timed run; rss.tsv, callgrind.tsv: the others
#   logs/            stdout and stderr of every run
#
# Each benchmark runs in every configuration, configurations interleaved
# (run 1 of all of them, then run 2 ...), so that a change of load on the
# machine hits them alike. Medians of wall time, user+sys time and peak
# RSS are reported. A run that fails or overstays the timeout is FAIL in
# the tables; the suite goes on.
#
# Environment:
#   BENCH=quick|full   quick: 3 runs, short iterations, the RSS test on
#                      512 MiB with one run (about two minutes on 2 cores);
#                      full: 5 runs, 3 to 5 times the work, 1 GiB
#   BENCH_RUNS=N       runs per benchmark and configuration
#   BENCH_TIMEOUT=S    limit for one run (default 60, full: 300)
#   BENCH_ONLY="a b"   only these benchmarks (names as in the report;
#                      rss and callgrind name those phases)
#   BENCH_CONFIGS="c d"  only these configurations
#   BENCH_TIMER=runone|time   runone (default: tools/bench/runone.c, wall
#                      time to the microsecond, kills the process group on
#                      timeout) or GNU time (/usr/bin/time, 10 ms steps)
#   BENCH_NO_PEERS=1   do not run ensure-peers.sh
#   BENCH_NO_BUILD=1   use the binaries in build/bench/bin as they are
set -uo pipefail

prog=bench
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
B=${BENCH_DIR:-build/bench}
export BENCH_DIR=$B
mode=${BENCH:-quick}

die() {
	echo "$prog: $*" >&2
	exit 1
}

case $mode in
quick)
	runs=${BENCH_RUNS:-3}
	limit=${BENCH_TIMEOUT:-60}
	rss_mib=512 rss_runs=1 rss_jobs=4
	;;
full)
	runs=${BENCH_RUNS:-5}
	limit=${BENCH_TIMEOUT:-300}
	rss_mib=1024 rss_runs=3 rss_jobs=1
	;;
*) die "BENCH must be quick or full, not '$mode'" ;;
esac
rss_secs=5
case $runs in
'' | *[!0-9]* | 0) die "BENCH_RUNS must be a positive integer, not '$runs'" ;;
esac
case $limit in
'' | *[!0-9]* | 0) die "BENCH_TIMEOUT must be a positive integer, not '$limit'" ;;
esac
timer=${BENCH_TIMER:-runone}
case $timer in
runone) ;;
time) [ -x /usr/bin/time ] || die "BENCH_TIMER=time: /usr/bin/time is not installed (package time)" ;;
*) die "BENCH_TIMER must be runone or time, not '$timer'" ;;
esac

# The timed benchmarks. @N in the arguments is replaced by the count of
# the mode: name|program|arguments|quick N|full N
benches=(
	"seed-1|seed|1 @N|50000|100000"
	"seed-2|seed|2 @N|50000|100000"
	"seed-8|seed|8 @N|50000|100000"
	"larson|larson|2 @N 1000|1000000|5000000"
	"prodcons|prodcons|2 @N|5000000|50000000"
	"cache-scratch|cache|scratch 2 @N 8 100000|200|1000"
	"cache-thrash|cache|thrash 2 @N 8 100000|200|1000"
	"sizemix-lifo|sizemix|lifo 1 @N 2000|1000|5000"
	"sizemix-random|sizemix|random 1 @N 2000|1000|5000"
	"fastpath-32|fastpath|32 @N|20000000|100000000"
	"fastpath-batch|fastpath|batch @N|400000|2000000"
	"bigbuf|bigbuf|@N 5 25|30|100"
	"sqlite|speedtest1|--memdb --nomemstat --size @N|20|100"
	"redis|redis-server|@N|10000|100000"
)

# Programs that a driver script runs (a server needs a client):
# DRIVER BINARY ARGS... is what is timed.
declare -A driver=([redis-server]=tools/bench/redis.sh)

# Plain musl spends most of these in madvise/munmap and its lock: it runs
# 1/cap of the count and its times are multiplied by cap (every one of
# these does the same work per iteration throughout). seed is not linear
# in its count (block sizes grow), so plain musl gets fewer runs instead.
declare -A cap=(
	[larson/musl]=4
	[prodcons/musl]=10
	[sizemix-lifo/musl]=4
	[sizemix-random/musl]=4
	[fastpath-32/musl]=10
	[fastpath-batch/musl]=40
)
declare -A once=()
[ "$mode" = quick ] && once=([seed-8/musl]=1)

all_configs=(musl musl+slab musl+mimalloc glibc glibc+slab glibc+mimalloc
	glibc+jemalloc glibc+tcmalloc)

# selected NAME: is benchmark NAME in BENCH_ONLY (or BENCH_ONLY empty)?
selected() {
	[ -z "${BENCH_ONLY:-}" ] && return 0
	[[ " $BENCH_ONLY " == *" $1 "* ]]
}

if [ "${BENCH_NO_PEERS:-}" != 1 ]; then
	tools/bench/ensure-peers.sh || true
fi
if [ "${BENCH_NO_BUILD:-}" != 1 ]; then
	tools/bench/build.sh || die "the build failed (see $B/build.log)"
fi
[ -f "$B/configs.txt" ] || die "$B/configs.txt is missing: run tools/bench/build.sh"
[ -x "$B/runone" ] || die "$B/runone is missing: run tools/bench/build.sh"

configs=()
for c in "${all_configs[@]}"; do
	if [ -n "${BENCH_CONFIGS:-}" ] && [[ " $BENCH_CONFIGS " != *" $c "* ]]; then
		continue
	fi
	state=$(awk -v c="$c" '$1 == c { print $2 }' "$B/configs.txt")
	if [ "$state" = ok ]; then
		configs+=("$c")
	else
		echo "$prog: $c not run: $(awk -v c="$c" '$1 == c { $1 = $2 = ""; sub(/^ +/, ""); print }' "$B/configs.txt")" >&2
	fi
done
[ ${#configs[@]} -gt 0 ] || die "no configuration could be built"

rm -rf "$B/logs" "$B/rss" "$B/callgrind"
mkdir -p "$B/logs" "$B/rss" "$B/callgrind"
res=$B/results.tsv
printf 'bench\tconfig\trun\twall\tuser\tsys\tmaxrss_kb\tstatus\tscale\n' >"$res"
printf 'config\trun\tpeak_kb\trss_1s_kb\trss_end_kb\talloc_ms\tfree_ms\tstatus\n' >"$B/rss.tsv"
printf 'variant\tmode\tn1\tir1\tn2\tir2\tper_pair\tstatus\n' >"$B/callgrind.tsv"

# The work list, for the progress counter: one item per benchmark and
# configuration (rss and callgrind phases included).
nconf=${#configs[@]}
sel=()
for b in "${benches[@]}"; do
	IFS='|' read -r name _ <<<"$b"
	selected "$name" && sel+=("$b")
done
cg_variants=()
if selected callgrind; then
	if command -v valgrind >/dev/null 2>&1; then
		for c in "${configs[@]}"; do
			cg_variants+=("$c")
			[[ $c == *+slab ]] && cg_variants+=("$c@fake")
		done
	else
		echo "$prog: valgrind is not installed: no instruction counts" >&2
	fi
fi
total=$((${#sel[@]} * nconf + ${#cg_variants[@]}))
selected rss && total=$((total + nconf))
item=0

tty=
[ -t 2 ] && tty=y
progress() {
	if [ -n "$tty" ]; then
		printf '\r\033[K%s' "$*" >&2
	else
		printf '%s\n' "$*" >&2
	fi
}
# A message that stays, even on a terminal.
say() {
	[ -n "$tty" ] && printf '\r\033[K' >&2
	printf '%s\n' "$*" >&2
}

# measure OUT ERR CMD...: run CMD under the timer, print
# "wall user sys maxrss_kb status".
measure() {
	local out=$1 err=$2 line t

	shift 2
	if [ "$timer" = runone ]; then
		line=$("$B/runone" -t "$limit" -o "$out" -e "$err" -- "$@")
		awk '{
			for (i = 1; i <= NF; i++) {
				split($i, kv, "=")
				v[kv[1]] = kv[2]
			}
			print v["wall"], v["user"], v["sys"], v["maxrss_kb"], v["status"]
		}' <<<"$line"
		return
	fi
	t=$(mktemp)
	timeout -k 5 "$limit" /usr/bin/time -f '%e %U %S %M' -o "$t" \
		"$@" >"$out" 2>"$err"
	local rc=$?
	local st=ok
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		st=timeout
	elif [ $rc != 0 ]; then
		st=exit:$rc
	fi
	# GNU time writes "Command exited with non-zero status" first.
	if tail -n 1 "$t" | grep -qE '^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+$'; then
		echo "$(tail -n 1 "$t") $st"
	else
		echo "0 0 0 0 $st"
	fi
	rm -f "$t"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$(date +%s)

# Timed benchmarks: for each, run r of every configuration, then r + 1.
bi=0
for b in "${sel[@]}"; do
	IFS='|' read -r name p argt nq nf <<<"$b"
	n=$nq
	[ "$mode" = full ] && n=$nf
	mkdir -p "$B/logs/$name"
	for ((r = 1; r <= runs; r++)); do
		ci=0
		for c in "${configs[@]}"; do
			ci=$((ci + 1))
			item=$((bi * nconf + ci))
			k=$name/$c
			if [ -n "${once[$k]:-}" ] && [ "$r" -gt 1 ]; then
				continue
			fi
			bin=$B/bin/$c/$p
			scale=${cap[$k]:-1}
			read -r -a args <<<"${argt//@N/$((n / scale))}"
			progress "[$item/$total] $name $c run $r/$runs"
			# Not built (no SQLite source, say): "-" in the tables;
			# configs.txt says why.
			[ -x "$bin" ] || continue
			log=$B/logs/$name/$c.$r
			cmd=("$bin" "${args[@]}")
			[ -n "${driver[$p]:-}" ] && cmd=("${driver[$p]}" "${cmd[@]}")
			read -r wall user sys rss st < <(measure "$log.out" "$log.err" \
				"${cmd[@]}")
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$c" "$r" \
				"$wall" "$user" "$sys" "$rss" "$st" "$scale" >>"$res"
			[ "$st" = ok ] ||
				say "$prog: $name $c run $r: $st (see $log.err)"
		done
	done
	bi=$((bi + 1))
done
base=$((${#sel[@]} * nconf))

# RSS after a mass free: the samples are wall-clock driven and the programs
# sleep most of the time, so several configurations run at once.
rss_one() {
	local c=$1 r=$2 log=$B/logs/rss/$1.$2 line peak r1 re am fm

	# The run lasts rss_secs after the allocation: the limit allows it.
	read -r _ _ _ _ st < <(limit=$((limit + rss_secs)) measure "$log.out" \
		"$log.err" "$B/bin/$c/rss" "$rss_mib" "$rss_secs")
	line=$(awk '$1 == "peak_kb" { p = $2 } $1 == "rss_1s_kb" { a = $2 }
		$1 == "rss_end_kb" { e = $2 } $1 == "alloc_ms" { am = $2 }
		$1 == "free_ms" { fm = $2 }
		END { print p + 0, a + 0, e + 0, am + 0, fm + 0 }' "$log.out")
	read -r peak r1 re am fm <<<"$line"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$r" "$peak" "$r1" "$re" \
		"$am" "$fm" "$st" >"$B/rss/$c.$r.tsv"
	# The plot starts from the peak, right before the free (0 ms).
	[ "$r" = 1 ] && awk '$1 == "peak_kb" { print 0, $2 }
		$1 == "sample" { print $2, $3 }' "$log.out" >"$B/rss/$c.samples"
	[ "$st" = ok ] || say "$prog: rss $c run $r: $st (see $log.err)"
}

if selected rss; then
	mkdir -p "$B/logs/rss"
	ci=0
	for c in "${configs[@]}"; do
		ci=$((ci + 1))
		for ((r = 1; r <= rss_runs; r++)); do
			while [ "$(jobs -rp | wc -l)" -ge "$rss_jobs" ]; do
				wait -n
			done
			progress "[$((base + ci))/$total] rss $c run $r/$rss_runs"
			rss_one "$c" "$r" &
		done
	done
	wait
	cat "$B"/rss/*.tsv >>"$B/rss.tsv" 2>/dev/null
	base=$((base + nconf))
fi

# Instructions per malloc+free pair: callgrind counts are not disturbed by
# the load, so they run in parallel. Each mode runs with N and 2N
# iterations; (Ir(2N) - Ir(N)) / (pairs in N) removes the start-up.
cg_one() {
	local v=$1 m=$2 c=${1%@fake} n1 n2 pairs ir1 ir2 env=() f st=ok

	[ "$c" != "$v" ] && env=(SLAB_OPTIONS=rseq=fake)
	if [ "$m" = 32 ]; then
		n1=20000 pairs=1
	else
		n1=500 pairs=64
	fi
	n2=$((2 * n1))
	for n in $n1 $n2; do
		f=$B/callgrind/$v.$m.$n.log
		env "${env[@]}" timeout "$limit" valgrind --tool=callgrind \
			--callgrind-out-file=/dev/null "$B/bin/$c/fastpath" "$m" "$n" \
			>/dev/null 2>"$f" || st=fail
	done
	ir1=$(awk '/Collected :/ { print $NF }' "$B/callgrind/$v.$m.$n1.log")
	ir2=$(awk '/Collected :/ { print $NF }' "$B/callgrind/$v.$m.$n2.log")
	[ -n "$ir1" ] && [ -n "$ir2" ] || st=fail
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$v" "$m" "$n1" "${ir1:-0}" \
		"$n2" "${ir2:-0}" \
		"$(awk -v a="${ir1:-0}" -v b="${ir2:-0}" -v n="$n1" -v p="$pairs" \
			'BEGIN { printf "%.1f", (b - a) / (n * p) }')" "$st" \
		>"$B/callgrind/$v.$m.tsv"
}

if [ ${#cg_variants[@]} -gt 0 ]; then
	jobs_max=$(nproc)
	vi=0
	for v in "${cg_variants[@]}"; do
		vi=$((vi + 1))
		progress "[$((base + vi))/$total] callgrind fastpath ${v/@fake/ (rseq=fake)}"
		for m in 32 batch; do
			while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
				wait -n
			done
			cg_one "$v" "$m" &
		done
	done
	wait
	cat "$B"/callgrind/*.tsv >>"$B/callgrind.tsv" 2>/dev/null
fi
[ -n "$tty" ] && printf '\r\033[K' >&2

# What the report needs to say about this run.
{
	echo "mode=$mode"
	echo "runs=$runs"
	echo "timeout=$limit"
	echo "timer=$timer"
	echo "rss_mib=$rss_mib"
	echo "rss_runs=$rss_runs"
	echo "rss_secs=$rss_secs"
	echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "duration=$(($(date +%s) - t_start))"
	echo "git=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- slab wrap 2>/dev/null || echo ' (slab/ or wrap/ modified)')"
	echo "nproc=$(nproc)"
	echo "cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "kernel=$(uname -srm)"
	echo "mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "libc=$(ldd --version 2>&1 | head -n 1 | sed 's/^ldd //')"
	echo "musl=$(musl-gcc -dumpversion >/dev/null 2>&1 && dpkg-query -W -f '${Version}' musl-dev 2>/dev/null)"
	echo "load_start=$load_start"
	echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)"
	for b in "${sel[@]}"; do
		IFS='|' read -r name p argt nq nf <<<"$b"
		n=$nq
		[ "$mode" = full ] && n=$nf
		echo "bench=$name|$p ${argt//@N/$n}"
	done
	for k in "${!cap[@]}"; do
		echo "cap=$k|${cap[$k]}"
	done
	for k in "${!once[@]}"; do
		echo "once=$k"
	done
} >"$B/meta.txt"

tools/bench/report.sh "$B" || die "the report failed"
if tools/bench/plot.sh "$B"; then
	echo "$prog: report in $B/report.md, plot in $B/plot.svg" >&2
else
	echo "$prog: report in $B/report.md (no plot)" >&2
fi
