#!/bin/bash
# SPDX-License-Identifier: MIT
# plot.sh: draw build/bench/plot.svg from the data report.sh left.
#
#   tools/bench/plot.sh [DIR]        DIR: default build/bench
#
# Three panels: wall time and peak RSS of every benchmark relative to slab
# in the same libc (log scale, bars per allocator), and the RSS of the rss
# benchmark over the seconds after its mass free. Needs gnuplot
# (gnuplot-nox); without it, says so and exits 1.
set -uo pipefail

prog=bench-plot
B=${1:-build/bench}

if ! command -v gnuplot >/dev/null 2>&1; then
	echo "$prog: gnuplot is not installed (package gnuplot-nox): no $B/plot.svg" >&2
	exit 1
fi
for f in plot.wall plot.rss; do
	[ -f "$B/$f" ] || {
		echo "$prog: $B/$f is missing (run tools/bench/report.sh)" >&2
		exit 1
	}
done

ncol=$(head -n 1 "$B/plot.wall" | wc -w)
# The configurations, in the columns' order: configuration i is drawn with
# line type i in every panel.
read -r -a cols <<<"$(head -n 1 "$B/plot.wall" | cut -d' ' -f2-)"
samples=() lts=()
for i in "${!cols[@]}"; do
	f=$B/rss/${cols[$i]}.samples
	if [ -s "$f" ]; then
		samples+=("$f")
		lts+=($((i + 1)))
	fi
done

# histogram FILE TITLE: the gnuplot lines of one bar panel.
histogram() {
	cat <<EOF
set title "$2"
set logscale y 2
set yrange [0.125:*]
set ytics ("1/8" 0.125, "1/4" 0.25, "1/2" 0.5, "1" 1, "2" 2, "4" 4, "8" 8, "16" 16, "32" 32, "64" 64, "128" 128, "256" 256)
set grid ytics
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30 nomirror
set key outside right top vertical
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "black" front
plot for [i=2:$ncol] '$1' using i:xtic(1) title columnheader(i)
unset arrow 1
EOF
}

{
	cat <<EOF
set terminal svg size 1400,$([ ${#samples[@]} -gt 0 ] && echo 1500 || echo 1000) dynamic font "sans,11"
set output '$B/plot.svg'
set datafile missing '?'
set multiplot layout $([ ${#samples[@]} -gt 0 ] && echo 3 || echo 2),1
EOF
	histogram "$B/plot.wall" "Wall time / slab's in the same libc (median; above 1: slab is faster)"
	histogram "$B/plot.rss" "Peak RSS / slab's in the same libc (median; above 1: slab is smaller)"
	if [ ${#samples[@]} -gt 0 ]; then
		cat <<EOF
unset logscale y
set yrange [0:*]
set ytics auto
set xtics norotate auto
set style data linespoints
set title "rss: RSS after freeing $(sed -n 's/^rss_mib=//p' "$B/meta.txt") MiB of small objects (first run)"
set xlabel "seconds after the free"
set ylabel "RSS (MiB)"
EOF
		printf 'plot '
		sep=
		for i in "${!samples[@]}"; do
			f=${samples[$i]}
			printf "%s'%s' using (\$1/1000):(\$2/1024) title '%s' with linespoints lt %d pt 7 ps 0.4" \
				"$sep" "$f" "$(basename "$f" .samples)" "${lts[$i]}"
			sep=', '
		done
		echo
	fi
	echo "unset multiplot"
} >"$B/plot.gp"

if ! gnuplot "$B/plot.gp" 2>"$B/plot.log"; then
	echo "$prog: gnuplot failed (see $B/plot.log)" >&2
	exit 1
fi
echo "$prog: wrote $B/plot.svg" >&2
