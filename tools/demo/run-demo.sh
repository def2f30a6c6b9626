#!/bin/bash
# SPDX-License-Identifier: MIT
# run-demo.sh: time the seed benchmark under each allocator and print a table.
#
#   tools/demo/run-demo.sh [DIR]          DIR holds seed-* (default build/demo)
#
# Configurations, each timed with 1 and 2 threads (those present in DIR):
#   musl            seed-musl              static musl, musl's mallocng
#   musl+slab       seed-musl-slab         static musl, slab via --wrap
#   glibc           seed-glibc             dynamic glibc, ptmalloc
#   glibc+slab      seed-glibc-slab        dynamic glibc, slab via --wrap
#   glibc+mimalloc  seed-glibc-mimalloc    dynamic glibc, -lmimalloc
#
# Environment:
#   DEMO_RUNS=N       runs per configuration and thread count (default 3);
#                     the table shows the median
#   DEMO_THREADS="1 2"  thread counts
#   DEMO_ITERS=N      iterations per thread (default: seed's 100000)
#   DEMO_TIMER=hyperfine|date   how to time (default: hyperfine if installed)
#   DEMO_TIMEOUT=S    give up on one run after S seconds (default 300)
#
# The table goes to stdout and to DIR/results.txt; hyperfine's JSON exports
# go to DIR/json/.
set -euo pipefail

prog=run-demo
dir=${1:-build/demo}
runs=${DEMO_RUNS:-3}
threads=${DEMO_THREADS:-"1 2"}
iters=${DEMO_ITERS:-}
limit=${DEMO_TIMEOUT:-300}

die() {
	echo "$prog: $*" >&2
	exit 1
}

case $runs in
'' | *[!0-9]* | 0) die "DEMO_RUNS must be a positive integer, not '$runs'" ;;
esac
case $iters in
*[!0-9]*) die "DEMO_ITERS must be a positive integer, not '$iters'" ;;
esac
[ -d "$dir" ] || die "$dir does not exist (run 'make demo-build')"

if [ -n "${DEMO_TIMER:-}" ]; then
	timer=$DEMO_TIMER
elif command -v hyperfine >/dev/null 2>&1; then
	timer=hyperfine
else
	timer="date"
fi
case $timer in
hyperfine) command -v hyperfine >/dev/null 2>&1 || die "hyperfine is not installed" ;;
date) ;;
*) die "DEMO_TIMER must be hyperfine or date, not '$timer'" ;;
esac

configs=(musl musl+slab glibc glibc+slab glibc+mimalloc)
declare -A file=(
	[musl]=seed-musl
	[musl+slab]=seed-musl-slab
	[glibc]=seed-glibc
	[glibc+slab]=seed-glibc-slab
	[glibc+mimalloc]=seed-glibc-mimalloc
)
declare -A median=()

present=()
for c in "${configs[@]}"; do
	if [ -x "$dir/${file[$c]}" ]; then
		present+=("$c")
	else
		echo "$prog: $dir/${file[$c]} not built, skipping $c" >&2
	fi
done
[ ${#present[@]} -gt 0 ] || die "no seed-* binaries in $dir"
rm -rf "$dir/json"

# median FILE: the median of the numbers in FILE, one per line.
median_of() {
	sort -g "$1" | awk '{ v[NR] = $1 }
		END {
			if (NR % 2)
				printf "%.4f\n", v[(NR + 1) / 2]
			else
				printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}

# measure CONFIG THREADS: print the median wall time in seconds.
measure() {
	local bin=$dir/${file[$1]} t=$2 json tmp i t0 t1
	local args=("$t")

	[ -z "$iters" ] || args+=("$iters")
	if [ "$timer" = hyperfine ]; then
		mkdir -p "$dir/json"
		json=$dir/json/${file[$1]}-t$t.json
		# hyperfine's warnings (short command, slow first run) are noise
		# here; its messages are shown when the command fails.
		if ! timeout $((limit * runs)) hyperfine -N --style none \
			--runs "$runs" --export-json "$json" \
			--command-name "$1/$t" "$bin ${args[*]}" \
			>/dev/null 2>"$json.log"; then
			cat "$json.log" >&2
			die "$bin ${args[*]} failed or timed out"
		fi
		rm -f "$json.log"
		# hyperfine writes one key per line: "median": 1.234,
		awk -F: '/"median"/ { gsub(/[ ,]/, "", $2); printf "%.4f\n", $2; exit }' \
			"$json"
		return
	fi
	tmp=$(mktemp)
	for ((i = 0; i < runs; i++)); do
		t0=$(date +%s.%N)
		timeout "$limit" "$bin" "${args[@]}" ||
			{ rm -f "$tmp"; die "$bin ${args[*]} failed or timed out"; }
		t1=$(date +%s.%N)
		awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }' >>"$tmp"
	done
	median_of "$tmp"
	rm -f "$tmp"
}

# ratio BASE CONFIG T: median(BASE) / median(CONFIG), or "-".
ratio() {
	local a=${median[$1/$3]:-} b=${median[$2/$3]:-}

	if [ -z "$a" ] || [ -z "$b" ]; then
		echo -
		return
	fi
	awk -v a="$a" -v b="$b" 'BEGIN {
		if (b > 0) printf "%.2fx\n", a / b; else print "-" }'
}

for t in $threads; do
	case $t in
	'' | *[!0-9]* | 0) die "DEMO_THREADS: bad thread count '$t'" ;;
	esac
	for c in "${present[@]}"; do
		printf '  %-7s %s\n' TIME "$c, $t thread(s), $runs run(s)" >&2
		median[$c/$t]=$(measure "$c" "$t")
	done
done

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
{
	echo
	echo "seed benchmark: ${iters:-100000} iterations per thread," \
		"median of $runs run(s), timed with $timer"
	echo "machine: $(uname -srm), ${cpu:-unknown CPU}, $(nproc) CPU(s)"
	echo
	printf '%-16s %7s %10s %9s %9s %11s\n' config threads 'median s' \
		'vs musl' 'vs glibc' 'vs mimalloc'
	for t in $threads; do
		for c in "${present[@]}"; do
			vm='' vg='' vmi=''
			case $c in
			musl+slab) vm=$(ratio musl "$c" "$t") ;;
			glibc+slab)
				vg=$(ratio glibc "$c" "$t")
				vmi=$(ratio glibc+mimalloc "$c" "$t")
				;;
			esac
			printf '%-16s %7s %10s %9s %9s %11s\n' "$c" "$t" \
				"${median[$c/$t]}" "$vm" "$vg" "$vmi"
		done
	done
	echo
	echo "vs X: median time of X divided by this one's (above 1.00x: faster than X)"
} | sed 's/ *$//' | tee "$dir/results.txt"
