#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh - tests of tools/slabinfo and of the allocator's statistics; TAP 13.
#
# For glibc (cc) and musl (musl-gcc -static), with SLAB_OPTIONS=publish and
# SLAB_OPTIONS=publish,rseq=off, it starts holder (4 threads keep 1000
# objects of 100 bytes and 500 of 3000 bytes each), waits for its ready
# file, and checks what slabinfo -p PID shows (the listing, -P, -T,
# -r kmalloc-112, -l, -s/-S, -n 2 -w 0.2) against what the program holds;
# then SIGTERM makes it exit(0) and the statistics file must be gone.
# counters (slab_stats_get(), SLAB_STATS dumps) runs in rseq and rseq=off
# mode for both libcs. writer (a fake publisher, no slab) checks how
# slabinfo reads the file: no torn copies while the file changes (the
# seqlock), a file not filled in yet, a writer stopped in the middle of an
# update. Last, slabinfo's error paths: no such process, a process that
# does not publish, stale files (killed, PID reused, exec()), files that
# are not statistics files, permission denied, usage errors.
#
# usage: selftests/slabinfo/run.sh [-l LIBC]... [-h]
#   -l LIBC    only this libc (glibc or musl); repeatable
#
# Environment: CC, MUSL_CC, SLAB_BUILDDIR (where slab-config finds the
# archives), SLABINFO_TEST_OUT (directory for binaries and logs instead of
# build/selftests/slabinfo), V=1 (show build commands).
#
# A check that fails because of a known allocator bug is reported as
# "not ok N ... # TODO known allocator bug: ...", which does not fail the
# run; the bug is described in the TODO text.

set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
config=$root/tools/slab-config
slabinfo=$root/tools/slabinfo
out=${SLABINFO_TEST_OUT:-$root/build/selftests/slabinfo}

CC=${CC:-cc}
MUSL_CC=${MUSL_CC:-musl-gcc}
SHM=/dev/shm
TIMEOUT=30
SLACK=50 # objects of a class that the C library may hold for itself
BUG_PUBLISH="rseq=off never publishes: tcache_alloc()/tcache_free() hold slab_tls.busy around cache_refill()/cache_drain(), so stats_publish() always returns early"

only_libc=
while getopts "l:h" opt; do
	case $opt in
	l) only_libc="$only_libc $OPTARG " ;;
	*)
		sed -n '/^# usage:/,/^# Environment/p' "$0" | sed 's/^# \{0,1\}//' >&2
		exit 2
		;;
	esac
done

want_libc() {
	[ -z "$only_libc" ] && return 0
	case $only_libc in *" $1 "*) return 0 ;; esac
	return 1
}

# ---------------------------------------------------------------- TAP --

n=0
pass=0
fail=0
skip=0
todo=0

echo "TAP version 13"

diag() {	# prefix every line of stdin with "# "
	sed -e 's/^/# /'
}

ok() {		# ok DESCRIPTION
	n=$((n + 1))
	pass=$((pass + 1))
	echo "ok $n $1"
}

not_ok() {	# not_ok DESCRIPTION [REASON]
	n=$((n + 1))
	fail=$((fail + 1))
	echo "not ok $n $1${2:+ # $2}"
}

skip() {	# skip DESCRIPTION REASON
	n=$((n + 1))
	skip=$((skip + 1))
	echo "ok $n $1 # SKIP $2"
}

known_bug() {	# known_bug DESCRIPTION BUG
	n=$((n + 1))
	todo=$((todo + 1))
	echo "not ok $n $1 # TODO known allocator bug: $2"
}

check() {	# check DESCRIPTION COMMAND...: ok if COMMAND succeeds
	local what=$1

	shift
	if "$@"; then
		ok "$what"
	else
		not_ok "$what"
		show_last
	fi
}

# The output of the last slabinfo run, for failures.
last_out=
last_err=
last_rc=0
show_last() {
	echo "# slabinfo exit status $last_rc; stdout:"
	diag <"$last_out"
	echo "# stderr:"
	diag <"$last_err"
}

si() {		# si ARGS...: run slabinfo, output in $last_out/$last_err
	timeout -k 5 $TIMEOUT "$slabinfo" "$@" >"$last_out" 2>"$last_err" </dev/null
	last_rc=$?
	return 0
}

# ---------------------------------------------------------- processes --

tmp=$(mktemp -d "${TMPDIR:-/tmp}/slabinfo-test.XXXXXX") || exit 1
last_out=$tmp/out
last_err=$tmp/err
: >"$last_out"
: >"$last_err"
pids=()		# processes to kill at the end
shm_files=()	# files to remove from /dev/shm at the end

cleanup() {
	local p f

	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	for f in "${shm_files[@]}"; do
		rm -f "$f"
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_holder BIN ENV... [-- ARGS]: start BIN with ENV, set $hpid; wait
# for its ready file ($tmp/ready).
start_holder() {
	local bin=$1 ready=$tmp/ready i env=()

	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		env+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	rm -f "$ready"
	env "${env[@]}" "$bin" "$ready" "$@" >"$tmp/holder.log" 2>&1 </dev/null &
	hpid=$!
	pids+=("$hpid")
	shm_files+=("$SHM/slab-$hpid")
	for ((i = 0; i < 200; i++)); do
		[ -s "$ready" ] && return 0
		kill -0 "$hpid" 2>/dev/null || break
		sleep 0.05
	done
	echo "# holder did not get ready; its output:"
	diag <"$tmp/holder.log"
	return 1
}

# stop_holder SIGNAL: signal $hpid and reap it; sets $hrc.
stop_holder() {
	kill -"$1" "$hpid" 2>/dev/null
	wait "$hpid" 2>/dev/null
	hrc=$?
}

# A PID that no process has: a child that has been reaped.
dead_pid() {
	sh -c 'exit 0' &
	local p=$!

	wait $p
	echo $p
}

# le32 N: N as 4 little-endian bytes, for patching files.
le32() {
	printf '%b' "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 & 255)) \
		$((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)))"
}

# patch FILE OFFSET: write stdin over FILE at OFFSET.
patch() {
	dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# ---------------------------------------------------------- the checks --

# Objects column of cache $2 in listing file $1 (empty if no line).
list_objects() {
	awk -v c="$2" '$1 == c { print $2; exit }' "$1"
}

in_range() {	# in_range VALUE LOW HIGH
	[ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}

# Field $3 of the `-r` report line "  $2 VALUE ..." in file $1.
report_field() {
	awk -v k="$2" '$1 == k { print $2; exit }' "$1"
}

small_lo=4000
small_hi=$((4000 + SLACK))
large_lo=2000
large_hi=$((2000 + SLACK))

check_listing() {	# check_listing NAME PID
	local name=$1 pid=$2 s l age

	si -p "$pid"
	s=$(list_objects "$last_out" kmalloc-112)
	l=$(list_objects "$last_out" kmalloc-3k)
	age=$(sed -n 's/.*updated \([0-9]*\)\.[0-9] s ago.*/\1/p' "$last_out" | head -n 1)
	if [ $last_rc = 0 ] && in_range "$s" $small_lo $small_hi &&
		in_range "$l" $large_lo $large_hi &&
		grep -q "^Slab caches of pid $pid " "$last_out" &&
		in_range "$age" 0 5; then
		ok "$name: slabinfo -p: kmalloc-112 $s objects, kmalloc-3k $l"
	else
		not_ok "$name: slabinfo -p: kmalloc-112 in $small_lo..$small_hi (got ${s:-none}), kmalloc-3k in $large_lo..$large_hi (got ${l:-none}), age < 5 s (got ${age:-none})"
		show_last
	fi
	# Only caches with slabs, unless -a.
	if awk 'NR > 2 && $5 ~ /^0\// { bad = 1 } END { exit bad }' "$last_out"; then
		ok "$name: slabinfo -p lists only caches with slabs"
	else
		not_ok "$name: slabinfo -p lists only caches with slabs"
		show_last
	fi
	si -p "$pid" -a
	check "$name: slabinfo -a lists all 96 kmalloc caches" \
		test $last_rc = 0 -a "$(grep -c '^kmalloc-' "$last_out")" = 96
}

check_proc() {		# check_proc NAME PID
	local name=$1 pid=$2 line

	si -p "$pid" -P
	line=$(awk '$1 == "kmalloc-112"' "$last_out")
	# shellcheck disable=SC2086
	set -- $line
	if [ $last_rc = 0 ] &&
		[ "$(head -n 1 "$last_out")" = "slabinfo - version: 2.1" ] &&
		sed -n 2p "$last_out" | grep -q '^# name  *<active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>$' &&
		[ $# = 16 ] && in_range "$2" $small_lo $small_hi &&
		[ "$3" -ge "$2" ] && [ "$4" = 112 ] && [ "$7" = : ] &&
		[ "$8 $9 ${10} ${11}" = "tunables 0 0 0" ] &&
		[ "${12} ${13}" = ": slabdata" ] && [ "${15}" -ge "${14}" ] &&
		[ "${16}" = 0 ] && [ "$(wc -l <"$last_out")" -ge 98 ]; then
		ok "$name: slabinfo -P: /proc/slabinfo 2.1 format, kmalloc-112 $2/$3 objects"
	else
		not_ok "$name: slabinfo -P: /proc/slabinfo 2.1 format with kmalloc-112 in $small_lo..$small_hi"
		show_last
	fi
}

check_totals() {	# check_totals NAME PID MODE
	local name=$1 pid=$2 mode=$3 objs want

	si -p "$pid" -T
	objs=$(sed -n 's/^Objects *: \([0-9]*\) in use.*/\1/p' "$last_out")
	case $mode in
	*rseq=off*) want="Per-CPU layer: off, per-thread caches (turned off by SLAB_OPTIONS=rseq=off)" ;;
	*) want="Per-CPU layer: rseq, per-CPU caches indexed by" ;;
	esac
	if [ $last_rc = 0 ] && in_range "$objs" 6000 100000 &&
		grep -q "^$want" "$last_out" &&
		grep -q '^Slab memory  : ' "$last_out" &&
		grep -q '^Large        : ' "$last_out" &&
		grep -q '^Arena        : reserved ' "$last_out" &&
		grep -q '^libc fallback: 0 ' "$last_out"; then
		ok "$name: slabinfo -T: $objs objects in use, rseq mode shown"
	else
		not_ok "$name: slabinfo -T: >= 6000 objects in use, '$want'"
		show_last
	fi
}

check_report() {	# check_report NAME PID
	local name=$1 pid=$2 a t s o c d sz

	si -p "$pid" -r kmalloc-112
	a=$(report_field "$last_out" active_objs)
	t=$(report_field "$last_out" total_objs)
	s=$(report_field "$last_out" total_slabs)
	o=$(report_field "$last_out" objs_per_slab)
	c=$(report_field "$last_out" cpu_cached)
	d=$(report_field "$last_out" depot_objs)
	sz=$(report_field "$last_out" object_size)
	if [ $last_rc = 0 ] && in_range "$a" $small_lo $small_hi &&
		[ "$sz" = 112 ] && [ "$t" = $((s * o)) ] &&
		[ $((a + c + d)) -le "$t" ] &&
		grep -q '^Slab cache kmalloc-112 of pid' "$last_out"; then
		ok "$name: slabinfo -r kmalloc-112: active_objs $a, total_objs $t = $s slabs * $o"
	else
		not_ok "$name: slabinfo -r kmalloc-112: active_objs in $small_lo..$small_hi, consistent figures"
		show_last
	fi
	for f in name flags object_size objs_per_slab pages_per_slab active_objs \
		total_objs active_slabs total_slabs cpu_cached depot_objs \
		refills drains slabs_new slabs_freed alloc_fail; do
		if ! grep -q "^  $f  *[0-9a-z]" "$last_out"; then
			not_ok "$name: slabinfo -r shows every field (no $f)"
			show_last
			return
		fi
	done
	ok "$name: slabinfo -r shows every field of struct slab_cache_info"
}

check_names() {		# check_names NAME PID
	local name=$1 pid=$2

	si -p "$pid" -l
	if [ $last_rc = 0 ] && [ "$(wc -l <"$last_out")" = 96 ] &&
		[ "$(head -n 1 "$last_out")" = kmalloc-16 ] &&
		[ "$(tail -n 1 "$last_out")" = kmalloc-256k ] &&
		grep -qx kmalloc-112 "$last_out" && grep -qx kmalloc-3k "$last_out" &&
		[ "$(grep -n -x -e kmalloc-1k -e kmalloc-1152 "$last_out" | cut -d: -f2 | tr '\n' ' ')" = "kmalloc-1k kmalloc-1152 " ]; then
		ok "$name: slabinfo -l: 96 names, kmalloc-16 .. kmalloc-256k in size order"
	else
		not_ok "$name: slabinfo -l: 96 names in size order"
		show_last
	fi
}

check_sort() {		# check_sort NAME PID
	local name=$1 pid=$2 first

	si -p "$pid" -s objects
	first=$(awk 'NR == 3 { print $1 }' "$last_out")
	check "$name: slabinfo -s objects puts kmalloc-112 first (got $first)" \
		test $last_rc = 0 -a "$first" = kmalloc-112
	si -p "$pid" -S
	first=$(awk 'NR == 3 { print $1 }' "$last_out")
	check "$name: slabinfo -S (space) puts kmalloc-3k first (got $first)" \
		test $last_rc = 0 -a "$first" = kmalloc-3k
	si -p "$pid" -s size -i
	check "$name: slabinfo -s size -i: smallest object size first" \
		test $last_rc = 0 -a "$(awk 'NR > 2 { print $3 }' "$last_out" | sort -n | head -n 1)" = \
		"$(awk 'NR == 3 { print $3 }' "$last_out")"
}

check_watch() {		# check_watch NAME PID
	local name=$1 pid=$2 t0 t1 screens s

	t0=$(date +%s%N)
	si -p "$pid" -n 2 -w 0.2
	t1=$(date +%s%N)
	screens=$(grep -c "^slabinfo -p $pid " "$last_out")
	s=$(awk '$1 == "kmalloc-112" { print $2 }' "$last_out" | tail -n 1)
	if [ $last_rc = 0 ] && [ "$screens" = 2 ] &&
		[ $(((t1 - t0) / 1000000)) -ge 190 ] &&
		[ $(((t1 - t0) / 1000000)) -lt 10000 ] &&
		in_range "$s" $small_lo $small_hi &&
		! grep -q $'\033' "$last_out"; then
		ok "$name: slabinfo -n 2 -w 0.2: 2 screens in $(((t1 - t0) / 1000000)) ms"
	else
		not_ok "$name: slabinfo -n 2 -w 0.2: 2 screens, 0.2 s apart (got $screens in $(((t1 - t0) / 1000000)) ms)"
		show_last
	fi
}

# One holder run: every view, then a clean exit.
holder_tests() {	# holder_tests LIBC OPTIONS
	local libc=$1 opts=$2 name="$1/$2" bin=$out/$1/holder

	if ! start_holder "$bin" SLAB_OPTIONS="$opts"; then
		not_ok "$name: holder started and allocated"
		return
	fi
	ok "$name: holder (pid $hpid) started and allocated"
	si -p "$hpid"
	if [ $last_rc = 4 ] && [[ $opts == *rseq=off* ]] &&
		[ ! -e "$SHM/slab-$hpid" ]; then
		known_bug "$name: slabinfo -p, -P, -T, -r, -l, -w" "$BUG_PUBLISH"
	else
		check_listing "$name" "$hpid"
		check_proc "$name" "$hpid"
		check_totals "$name" "$hpid" "$opts"
		check_report "$name" "$hpid"
		check_names "$name" "$hpid"
		check_sort "$name" "$hpid"
		check_watch "$name" "$hpid"
	fi
	stop_holder TERM
	if [ $hrc = 0 ] && [ ! -e "$SHM/slab-$hpid" ]; then
		ok "$name: SIGTERM: holder exited with 0, $SHM/slab-$hpid removed"
	else
		not_ok "$name: SIGTERM: holder exited with 0 (got $hrc), $SHM/slab-$hpid removed"
		[ -e "$SHM/slab-$hpid" ] && echo "# $SHM/slab-$hpid is still there"
	fi
}

counters_test() {	# counters_test LIBC MODE
	local libc=$1 mode=$2 rc

	env SLAB_OPTIONS="$mode" timeout -k 5 120 "$out/$libc/counters" \
		>"$tmp/counters.log" 2>&1 </dev/null
	rc=$?
	case $rc in
	0)
		diag <"$tmp/counters.log"
		ok "$libc/${mode:-rseq}: counters (slab_stats_get, SLAB_STATS dumps)"
		;;
	3)
		diag <"$tmp/counters.log"
		known_bug "$libc/${mode:-rseq}: counters (slab_stats_get, SLAB_STATS dumps)" \
			"$(sed -n 's/.*(known allocator bug: \(.*\))$/\1/p' "$tmp/counters.log" | head -n 1)"
		;;
	*)
		diag <"$tmp/counters.log"
		not_ok "$libc/${mode:-rseq}: counters (slab_stats_get, SLAB_STATS dumps)" "exit=$rc"
		;;
	esac
}

# ------------------------------------------------------------- errors --

error_tests() {		# error_tests LIBC: slabinfo's failures
	local bin=$out/$1/holder pid sp f live cpid

	# Usage.
	si
	check "errors: no -p or -f: usage error (2)" \
		test $last_rc = 2 -a -s "$last_err"
	si -p 0
	check "errors: -p 0: usage error (2)" test $last_rc = 2
	si -p 1 -s bogus
	check "errors: -s bogus: usage error (2)" test $last_rc = 2
	si -p 1 -T -l
	check "errors: -T -l: usage error (2)" test $last_rc = 2
	si -p 1 -w 0
	check "errors: -w 0 (too short) taken as an operand: usage error (2)" \
		test $last_rc = 2
	si --help
	check "errors: --help: exit 0, documents -s KEY" \
		grep -q -- '-s, --sort KEY' "$last_out"

	# No such process.
	pid=$(dead_pid)
	si -p "$pid"
	check "errors: no such process: exit 3, 'no process with PID $pid'" \
		test $last_rc = 3 -a "$(cat "$last_err")" = "slabinfo: no process with PID $pid"

	# A process that does not publish: no slab at all, then slab without
	# SLAB_OPTIONS=publish.
	sleep 60 >/dev/null 2>&1 &
	sp=$!
	pids+=("$sp")
	si -p "$sp"
	check "errors: a process without slab: exit 4, 'does not publish'" \
		test $last_rc = 4 -a "$(cat "$last_err")" = "slabinfo: process $sp does not publish slab statistics (start it with SLAB_OPTIONS=publish, and link it with slab)"
	if start_holder "$bin" -u SLAB_OPTIONS; then
		si -p "$hpid"
		check "errors: slab without SLAB_OPTIONS=publish: exit 4" \
			test $last_rc = 4
		stop_holder TERM
	else
		not_ok "errors: holder without SLAB_OPTIONS=publish started"
	fi

	# A file that outlived its process (SIGKILL: no destructor runs).
	if ! start_holder "$bin" SLAB_OPTIONS=publish; then
		not_ok "errors: holder for the stale file started"
		return
	fi
	live=$tmp/live
	cp "$SHM/slab-$hpid" "$live"
	stop_holder KILL
	pid=$hpid
	f=$SHM/slab-$pid
	si -p "$pid"
	check "errors: stale file of a killed process: exit 7" \
		test $last_rc = 7 -a "$(cat "$last_err")" = "slabinfo: stale statistics file $f (process $pid has exited)"
	si -f "$f"
	if [ $last_rc = 0 ] && grep -q "warning: stale statistics file $f (process $pid has exited): showing its last figures" "$last_err" &&
		in_range "$(list_objects "$last_out" kmalloc-112)" $small_lo $small_hi; then
		ok "errors: -f on a stale file: warning, last figures shown"
	else
		not_ok "errors: -f on a stale file: warning, last figures shown"
		show_last
	fi
	rm -f "$f"

	# A fork child that published, then called exec(): its file stays.
	if start_holder "$bin" SLAB_OPTIONS=publish -- exec; then
		read -r _ cpid <"$tmp/ready"
		pids+=("$cpid")
		shm_files+=("$SHM/slab-$cpid")
		si -p "$cpid"
		check "errors: a child that called exec() after publishing: exit 7" \
			test $last_rc = 7 -a "$(cat "$last_err")" = "slabinfo: stale statistics file $SHM/slab-$cpid (process $cpid has called exec() since: it no longer publishes)"
		si -p "$hpid"
		check "errors: ... while its parent's file is live" test $last_rc = 0
		stop_holder TERM
		rm -f "$SHM/slab-$cpid"
	else
		not_ok "errors: holder with a fork+exec child started"
	fi

	# The PID reused: a live process, a file with another start time.
	f=$SHM/slab-$sp
	shm_files+=("$f")
	cp "$live" "$f"
	le32 "$sp" | patch "$f" 28
	le32 1 | patch "$f" 32
	si -p "$sp"
	check "errors: PID reused (start time differs): exit 7" \
		test $last_rc = 7 -a "$(cat "$last_err")" = "slabinfo: stale statistics file $f (process $sp has exited; its PID now belongs to another process)"
	cp "$live" "$f"
	si -p "$sp"
	check "errors: a file written by another PID: exit 7" \
		test $last_rc = 7 -a "$(cat "$last_err")" = "slabinfo: stale statistics file $f (it was written by process $pid)"

	# Not a statistics file.
	head -c 30000 /dev/urandom >"$f"
	si -p "$sp"
	check "errors: random bytes: exit 6, 'not a slab statistics file'" \
		test $last_rc = 6 -a "$(cat "$last_err")" = "slabinfo: $f is not a slab statistics file"
	head -c 100 "$live" >"$f"
	si -p "$sp"
	check "errors: a truncated file: exit 6" test $last_rc = 6
	cp "$live" "$f"
	le32 "$sp" | patch "$f" 28
	le32 3 | patch "$f" 8
	si -p "$sp"
	check "errors: version 3: exit 6, version named" \
		test $last_rc = 6 -a "$(head -n 1 "$last_err")" = "slabinfo: $f: statistics file version 3, this slabinfo reads version 2"
	cp "$live" "$f"
	le32 "$sp" | patch "$f" 28
	le32 99999 | patch "$f" 20
	si -f "$f"
	check "errors: nr_caches > max_caches: exit 6" \
		test $last_rc = 6 -a "$(tail -n 1 "$last_err")" = "slabinfo: $f is not a slab statistics file (99999 records, room for 160)"
	si -f /etc/passwd
	check "errors: -f /etc/passwd: exit 6" test $last_rc = 6
	si -f "$tmp/none"
	check "errors: -f on a missing file: exit 1" test $last_rc = 1

	# Permission denied: another user (root reads anything).
	cp "$live" "$f"
	le32 "$sp" | patch "$f" 28
	chmod 600 "$f"
	if [ "$(id -u)" != 0 ]; then
		chmod 000 "$f"
		si -p "$sp"
	elif command -v setpriv >/dev/null 2>&1 &&
		setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$root/build/tools/slabinfo"; then
		timeout -k 5 $TIMEOUT setpriv --reuid=65534 --regid=65534 --clear-groups \
			"$root/build/tools/slabinfo" -p "$sp" >"$last_out" 2>"$last_err" </dev/null
		last_rc=$?
	else
		last_rc=skip
	fi
	if [ "$last_rc" = skip ]; then
		skip "errors: permission denied: exit 5" "root, and no setpriv or build/tools/slabinfo not reachable by nobody"
	else
		check "errors: permission denied: exit 5" \
			test "$last_rc" = 5 -a "$(cat "$last_err")" = "slabinfo: permission denied reading $f (run as the process's user or root)"
	fi
	chmod 600 "$f"

	# No such cache.
	if start_holder "$bin" SLAB_OPTIONS=publish; then
		si -p "$hpid" -r kmalloc-7
		check "errors: -r kmalloc-7: exit 8, 'no cache named'" \
			test $last_rc = 8 -a "$(cat "$last_err")" = "slabinfo: no cache named 'kmalloc-7' in $SHM/slab-$hpid (slabinfo -l lists them)"
		stop_holder TERM
	else
		not_ok "errors: holder for -r started"
	fi
	kill "$sp" 2>/dev/null
	wait "$sp" 2>/dev/null
	rm -f "$f"
}

# ------------------------------------------------- reading protocol --

# start_writer MODE: start the fake publisher, set $wpid.
start_writer() {
	local ready=$tmp/wready.$RANDOM i

	"$out/writer" "$1" "$ready" </dev/null >"$tmp/writer.log" 2>&1 &
	wpid=$!
	pids+=("$wpid")
	shm_files+=("$SHM/slab-$wpid")
	for ((i = 0; i < 200; i++)); do
		[ -e "$ready" ] && return 0
		sleep 0.02
	done
	diag <"$tmp/writer.log"
	return 1
}

writer_tests() {
	local i torn=0 failed=0 f

	# The seqlock: a reader never mixes two updates.
	if start_writer churn; then
		for ((i = 0; i < 200; i++)); do
			si -p "$wpid" -P
			[ $last_rc = 0 ] || failed=$((failed + 1))
			[ "$(awk 'NR > 2 { print $2; print $3; print $14; print $15 }' "$last_out" | sort -u | wc -l)" = 1 ] ||
				torn=$((torn + 1))
		done
		check "seqlock: 200 reads during constant updates: $failed failed, $torn torn" \
			test $failed = 0 -a $torn = 0
		kill "$wpid"
		wait "$wpid"
		check "seqlock: the writer removed its file" test ! -e "$SHM/slab-$wpid"
	else
		not_ok "seqlock: writer started"
	fi

	# A file created but not filled in yet: -p waits for it.
	if start_writer fresh; then
		si -p "$wpid"
		check "fresh file: -p waits until the writer fills it in" \
			test $last_rc = 0 -a -z "$(cat "$last_err")"
		kill "$wpid"
		wait "$wpid"
	else
		not_ok "fresh file: writer started"
	fi

	# A writer stopped in the middle of an update, then killed.
	if start_writer odd; then
		f=$SHM/slab-$wpid
		si -p "$wpid"
		check "odd seq: -p gives up after a second (exit 1)" \
			test $last_rc = 1 -a "$(cat "$last_err")" = "slabinfo: $f: process $wpid has been in the middle of an update for over a second (stopped?)"
		kill -KILL "$wpid"
		wait "$wpid" 2>/dev/null
		si -p "$wpid"
		check "odd seq, writer killed: -p: stale (exit 7)" test $last_rc = 7
		si -f "$f"
		check "odd seq, writer killed: -f shows the figures with a warning" \
			test $last_rc = 0 -a "$(sed -n 2p "$last_err")" = "slabinfo: warning: process $wpid died while updating $f: the figures may be inconsistent"
		rm -f "$f"
	else
		not_ok "odd seq: writer started"
	fi
}

# A program linked with slab that never allocates through it (a C++
# program's new is libc's): SLAB_STATS says so; one that mallocs does not.
never_served_test() {	# never_served_test LIBC
	local libc=$1 cc ldflags dir=$out/$1 e

	cc=$CC
	[ "$libc" = musl ] && cc="$MUSL_CC -static"
	ldflags=$("$config" --libc "$libc" --ldflags 2>&1) || return
	printf 'int main(void) { return 0; }\n' >"$dir/none.c"
	printf '#include <stdlib.h>\nint main(void) { void *volatile p = malloc(40); free(p); return 0; }\n' \
		>"$dir/one.c"
	for t in none one; do
		# shellcheck disable=SC2086
		if ! $cc -O2 "$dir/$t.c" $ldflags -o "$dir/$t" \
			>"$dir/$t.build.log" 2>&1; then
			diag <"$dir/$t.build.log"
			not_ok "$libc: never served: build $t"
			return
		fi
	done
	e="slab was linked in but served no allocation"
	SLAB_STATS=stderr "$dir/none" >/dev/null 2>"$tmp/none.err"
	check "$libc: SLAB_STATS of a program slab served nothing: '$e'" \
		grep -q "$e" "$tmp/none.err"
	SLAB_STATS=stderr "$dir/one" >/dev/null 2>"$tmp/one.err"
	check "$libc: SLAB_STATS of a program that mallocs: no such line" \
		test -s "$tmp/one.err" -a -z "$(grep "$e" "$tmp/one.err")"
}

# --------------------------------------------------------------- build --

build_ok=()
build() {	# build LIBC: holder and counters into $out/LIBC
	local libc=$1 cc ldflags t dir=$out/$1

	mkdir -p "$dir" || exit 1
	if [ "$libc" = musl ]; then
		if ! command -v "$MUSL_CC" >/dev/null 2>&1; then
			skip "$libc: build holder and counters" "$MUSL_CC not installed"
			return
		fi
		cc="$MUSL_CC -static"
	else
		cc=$CC
	fi
	if ! ldflags=$("$config" --libc "$libc" --ldflags 2>&1); then
		not_ok "$libc: build holder and counters" "$ldflags"
		return
	fi
	for t in holder counters; do
		# shellcheck disable=SC2086,SC2046
		set -- $cc -O2 -g -Wall -Wextra $("$config" --cflags) \
			"$here/$t.c" $ldflags -lpthread -o "$dir/$t"
		[ "${V:-0}" = 1 ] && echo "# $*"
		if ! "$@" >"$dir/$t.build.log" 2>&1; then
			diag <"$dir/$t.build.log"
			not_ok "$libc: build $t"
			return
		fi
	done
	ok "$libc: build holder and counters"
	build_ok+=("$libc")
}

if "$slabinfo" --help >"$tmp/help" 2>"$tmp/build.log" &&
	mkdir -p "$out" &&
	$CC -O2 -g -Wall -Wextra -I"$root/slab/include" "$here/writer.c" \
		-o "$out/writer" >>"$tmp/build.log" 2>&1; then
	ok "build tools/slabinfo and writer"
else
	diag <"$tmp/build.log"
	not_ok "build tools/slabinfo"
	echo "1..$n"
	exit 1
fi
for libc in glibc musl; do
	want_libc $libc && build $libc
done

# ----------------------------------------------------------------- run --

for libc in "${build_ok[@]}"; do
	for opts in publish publish,rseq=off; do
		holder_tests "$libc" "$opts"
	done
	for mode in "" rseq=off; do
		counters_test "$libc" "$mode"
	done
	never_served_test "$libc"
done
writer_tests
if [ ${#build_ok[@]} -gt 0 ]; then
	error_tests "${build_ok[0]}"
fi

echo "1..$n"
echo "# Totals: pass:$pass fail:$fail xfail:$todo xpass:0 skip:$skip error:0"
[ $fail = 0 ]
