#!/bin/bash
# SPDX-License-Identifier: MIT
# report.sh: write build/bench/report.md from the results of run.sh.
#
#   tools/bench/report.sh [DIR]      DIR: default build/bench
#
# Reads DIR/meta.txt, configs.txt, results.tsv, rss.tsv, callgrind.tsv
# (tools/bench/report.awk makes the tables) and includes DIR/scaling.md
# when tools/bench/scaling.sh has written one. Can be rerun alone.
set -uo pipefail

prog=bench-report
here=$(cd "$(dirname "$0")" && pwd)
B=${1:-build/bench}
out=$B/report.md

for f in meta.txt configs.txt results.tsv rss.tsv callgrind.tsv; do
	[ -f "$B/$f" ] || {
		echo "$prog: $B/$f is missing (run tools/bench/run.sh)" >&2
		exit 1
	}
done

# meta KEY: a value of meta.txt.
meta() {
	sed -n "s/^$1=//p" "$B/meta.txt" | head -n 1
}

describe() {
	case $1 in
	musl) echo "static musl, its mallocng" ;;
	musl+slab) echo "static musl, slab through --wrap" ;;
	musl+mimalloc) echo "static musl, mimalloc's src/static.c linked before libc.a" ;;
	glibc) echo "dynamic glibc, ptmalloc2" ;;
	glibc+slab) echo "dynamic glibc, slab through --wrap" ;;
	glibc+mimalloc) echo "dynamic glibc, -lmimalloc" ;;
	glibc+jemalloc) echo "dynamic glibc, -ljemalloc" ;;
	glibc+tcmalloc) echo "dynamic glibc, -ltcmalloc_minimal" ;;
	*) echo "$1" ;;
	esac
}

# version PKG: the installed version of a Debian package, or nothing.
version() {
	dpkg-query -W -f '${Version}' "$1" 2>/dev/null
}

peer_version() {
	case $1 in
	*+mimalloc)
		if [ "$1" = musl+mimalloc ]; then
			find "$B/src" -maxdepth 1 -type d -name 'mimalloc-[0-9]*' \
				-printf '%f (source)\n' 2>/dev/null | sort | tail -n 1
		else
			version libmimalloc-dev
		fi
		;;
	*+jemalloc) version libjemalloc-dev ;;
	*+tcmalloc) version libgoogle-perftools-dev ;;
	*) ;;
	esac
}

{
	echo "# slab benchmark report"
	echo
	echo "BENCH=$(meta mode): $(meta runs) runs per benchmark and" \
		"configuration, medians; timeout $(meta timeout) s per run;" \
		"timer: $(meta timer); took $(meta duration) s."
	echo "$(meta date), slab $(meta git)."
	echo
	echo "## Machine"
	echo
	echo "| | |"
	echo "| --- | --- |"
	echo "| CPUs (nproc) | $(meta nproc) |"
	echo "| CPU model | $(meta cpu) |"
	echo "| kernel | $(meta kernel) |"
	echo "| memory | $(meta mem) |"
	echo "| glibc | $(meta libc) |"
	echo "| musl | $(meta musl) |"
	echo "| load average (1, 5, 15 min) | at start $(meta load_start), at end $(meta load_end) |"
	echo
	echo "A load average above the CPU count means other work shared the" \
		"machine: times are then noisy, ratios less so (configurations" \
		"are interleaved run by run)."
	echo
	echo "## Configurations"
	echo
	echo "| configuration | allocator | version | state |"
	echo "| --- | --- | --- | --- |"
	while read -r c state note; do
		[ -n "$c" ] || continue
		s=$state
		[ -n "$note" ] && s="$state: $note"
		echo "| $c | $(describe "$c") | $(peer_version "$c") | $s |"
	done <"$B/configs.txt"
	echo
	echo "Each binary was checked to use its allocator before the runs" \
		"(SLAB_STATS=stderr, MIMALLOC_VERBOSE=1," \
		"MALLOC_CONF=stats_print:true, MALLOCSTATS=1 must answer)."
	echo
	echo "## Benchmarks"
	echo
	echo "| benchmark | command |"
	echo "| --- | --- |"
	sed -n 's/^bench=//p' "$B/meta.txt" | while IFS='|' read -r name cmd; do
		echo "| $name | \`$cmd\` |"
	done
	echo
	awk -f "$here/report.awk" plotdat="$B/plot" part=meta "$B/meta.txt" \
		part=configs "$B/configs.txt" part=results "$B/results.tsv" \
		part=rss "$B/rss.tsv" part=cg "$B/callgrind.tsv"
	if [ -f "$B/scaling.md" ]; then
		# scaling.md has its own "## Scaling ..." title.
		cat "$B/scaling.md"
	else
		echo "## Scaling beyond 2 cores"
		echo
		echo "Scaling beyond 2 cores: not measured yet (needs a 16-core" \
			"machine). \`tools/bench/scaling.sh\` writes" \
			"build/bench/scaling.md, which this report then includes."
	fi
	echo
	echo "## Notes"
	echo
	caps=$(sed -n 's/^cap=//p' "$B/meta.txt" | sort)
	if [ -n "$caps" ]; then
		echo "- Capped: these ran 1/N of the iterations and their times" \
			"are multiplied by N (marked \`~\`): $(echo "$caps" |
				sed 's/|/: 1\//' | paste -sd, - | sed 's/,/, /g')."
	fi
	once=$(sed -n 's/^once=//p' "$B/meta.txt" | sort)
	if [ -n "$once" ]; then
		echo "- A single run (marked \`*\`): $(echo "$once" |
			paste -sd, - | sed 's/,/, /g')."
	fi
	while read -r c state note; do
		[ "$state" = ok ] || echo "- $c was not run: $note."
	done <"$B/configs.txt"
	echo "- Ratios are per libc: musl configurations against musl+slab," \
		"glibc ones against glibc+slab. Geometric means are over the" \
		"benchmarks where both cells have a value."
} >"$out"
echo "$prog: wrote $out" >&2
