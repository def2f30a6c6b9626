#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tools/bench/readme.sh [REPORT]: put the figures of a `make bench` report
# (default build/bench/report.md) into README.md, between the lines
#   <!-- bench-results: begin ... -->  and  <!-- bench-results: end -->
# so that the README's results are the tool's output, never typed: the
# date, commit and machine (CPU model, CPUs, kernel, libcs, load) they
# come from, the wall-time ratios of every benchmark (losses included),
# the peak-RSS geometric means, and the instruction counts. `make
# bench-readme` runs it.
set -euo pipefail

report=${1:-build/bench/report.md}
readme=README.md
[ -s "$report" ] || { echo "readme.sh: no report $report (run make bench)" >&2; exit 1; }
grep -q '^<!-- bench-results: begin' "$readme" ||
	{ echo "readme.sh: $readme has no bench-results markers" >&2; exit 1; }

# section HEADING: the lines of REPORT from HEADING to the next heading.
section() {
	awk -v h="$1" '
		$0 == h { on = 1; next }
		on && /^#/ { exit }
		on { print }' "$report"
}
# first_table: the first markdown table of the lines read.
first_table() {
	awk '/^\|/ { on = 1; print; next } on { exit }'
}
# field NAME: the value of "| NAME | value |" in the machine table.
field() {
	awk -F' \\| ' -v k="$1" '$1 == "| " k { sub(/ \|$/, "", $2); print $2; exit }' "$report"
}

block=$(mktemp)
trap 'rm -f "$block"' EXIT
{
	echo "<!-- bench-results: begin (tools/bench/readme.sh writes this part from $report; do not edit) -->"
	echo
	sed -n 3,4p "$report" | tr '\n' ' ' | sed 's/ $//'
	echo
	echo
	echo "Machine: $(field 'CPU model'), $(field 'CPUs (nproc)') CPUs, $(field kernel), glibc $(field glibc), musl $(field musl); load average $(field 'load average (1, 5, 15 min)')."
	echo
	echo "Wall time, ratio to slab in the same libc (above 1: slab is faster; below 1: a loss, with its cause in Documentation/benchmarks.md):"
	echo
	section "### Wall time" | first_table
	echo
	echo "Peak RSS, same ratios (above 1: slab is smaller):"
	echo
	section "### Peak RSS (maxrss of the process)" | first_table |
		awk '/^\| (benchmark|---)/ || /geometric mean/'
	echo
	echo "Instructions per malloc+free pair (callgrind):"
	echo
	section "## Instructions per malloc+free pair (callgrind)" | first_table
	echo
	echo "<!-- bench-results: end -->"
} >"$block"

awk -v blk="$block" '
	/^<!-- bench-results: begin/ { while ((getline l < blk) > 0) print l; skip = 1; next }
	/^<!-- bench-results: end/ { skip = 0; next }
	!skip { print }' "$readme" >"$readme.tmp"
mv "$readme.tmp" "$readme"
echo "readme.sh: $readme updated from $report"
