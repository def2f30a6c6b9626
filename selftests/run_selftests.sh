#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run_selftests.sh - build and run the slab stress selftests, print TAP 13.
#
# Every program in selftests/stress/ is built for glibc (cc) and musl
# (musl-gcc -static) into build/selftests/<libc>/ and run in each per-CPU
# mode, kselftest style:
#
#   glibc: rseq (default), rseq=off (SLAB_OPTIONS=rseq=off),
#          glibc-rseq-off (GLIBC_TUNABLES=glibc.pthread.rseq=0: glibc does
#          not register rseq, slab registers it itself)
#   musl:  rseq, rseq=off
#
# plus mt_random under valgrind for both builds. Missing musl-gcc or
# valgrind turn their tests into "ok N ... # SKIP". The exit status is
# non-zero if any test failed.
#
# usage: selftests/run_selftests.sh [options]
#   -l LIBC    only this libc (glibc or musl); repeatable
#   -t TEST    only this test (program name); repeatable
#   -m MODE    only this mode (rseq, rseq=off, glibc-rseq-off, valgrind,
#              debug: misuse with SLAB_OPTIONS=debug);
#              repeatable
#   -p         plain: build against libc without slab (-DWITH_SLAB unset)
#              to validate the tests themselves; one "plain" mode
#   -T SECS    timeout per test run (default 120; valgrind gets 300)
#   -q         quiet: print test output only for failures
#   -h         this help
#
# Environment: CC, MUSL_CC, VALGRIND, SELFTEST_SEED (varies the random
# streams of the tests), SELFTEST_OUT (directory instead of build/ for the
# binaries and logs), SLAB_BUILDDIR (where slab-config finds the archives),
# V=1 (show build commands).

set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
src=$here/stress
config=$root/tools/slab-config

CC=${CC:-cc}
MUSL_CC=${MUSL_CC:-musl-gcc}
VALGRIND=${VALGRIND:-valgrind}
TIMEOUT=120
VG_TIMEOUT=300
plain=0
quiet=0
only_libc=
only_test=
only_mode=

usage() {
	sed -n '/^# usage:/,/^# Environment/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while getopts "l:t:m:pT:qh" opt; do
	case $opt in
	l) only_libc="$only_libc $OPTARG " ;;
	t) only_test="$only_test $OPTARG " ;;
	m) only_mode="$only_mode $OPTARG " ;;
	p) plain=1 ;;
	T) TIMEOUT=$OPTARG ;;
	q) quiet=1 ;;
	*) usage ;;
	esac
done

# The programs, in run order. link_* are built exactly as a user would.
TESTS="api_edges foreign mt_random cross_thread kmem_cache misuse signals
signal_alloc
thread_exit fork_threads fork_signal link_valloc link_getline link_strdup"
# Known to fail intermittently (see the file's header): run only when
# named, as in: run_selftests.sh -t fork_large
OPT_TESTS="fork_large"
VG_TEST=mt_random
VG_ARGS="3 30000"

want() {	# want LIST WORD: is WORD selected by LIST (empty = all)?
	[ -z "$1" ] && return 0
	case $1 in *" $2 "*) return 0 ;; esac
	return 1
}

modes_of() {
	if [ $plain = 1 ]; then
		echo plain
	elif [ "$1" = glibc ]; then
		echo rseq rseq=off glibc-rseq-off
	else
		echo rseq rseq=off
	fi
}

# ---------------------------------------------------------------- plan --

plan=()
for libc in glibc musl; do
	want "$only_libc" $libc || continue
	for mode in $(modes_of $libc); do
		want "$only_mode" "$mode" || continue
		for t in $TESTS $OPT_TESTS; do
			case " $OPT_TESTS " in
			*" $t "*) [ -n "$only_test" ] || continue ;;
			esac
			want "$only_test" $t && plan+=("$libc $mode $t")
		done
	done
done
if [ $plain = 0 ]; then
	for libc in glibc musl; do
		want "$only_libc" $libc && want "$only_mode" valgrind &&
			want "$only_test" $VG_TEST &&
			plan+=("$libc valgrind $VG_TEST")
		# SLAB_OPTIONS=debug: misuse must then catch every case
		want "$only_libc" $libc && want "$only_mode" debug &&
			want "$only_test" misuse &&
			plan+=("$libc debug misuse")
	done
fi

# --------------------------------------------------------------- build --

have_musl=0
command -v "$MUSL_CC" >/dev/null 2>&1 && have_musl=1
have_vg=0
command -v "$VALGRIND" >/dev/null 2>&1 && have_vg=1

if [ $plain = 1 ]; then
	out=${SELFTEST_OUT:-$root/build}/selftests-plain
else
	out=${SELFTEST_OUT:-$root/build}/selftests
fi

declare -A build_err	# libc/test -> reason it cannot run
declare -A build_shown

lib_ready() {	# lib_ready LIBC: is the slab archive for LIBC there?
	"$config" --libc "$1" --libs >/dev/null 2>&1
}

build_libc() {
	local libc=$1 cc dir t flags ldflags pids=() names=() i

	dir=$out/$libc
	mkdir -p "$dir" || exit 1
	if [ $libc = musl ]; then
		if [ $have_musl = 0 ]; then
			for t in $TESTS $OPT_TESTS; do
				build_err[$libc/$t]="SKIP $MUSL_CC missing"
			done
			return
		fi
		cc="$MUSL_CC -static"
	else
		cc=$CC
	fi
	ldflags=
	flags=
	if [ $plain = 0 ]; then
		if ! lib_ready $libc; then
			echo "# $libc: slab archive missing, running make" >&2
			${MAKE:-make} -s -C "$root" all >&2
		fi
		if ! ldflags=$("$config" --libc $libc --ldflags 2>&1); then
			for t in $TESTS $OPT_TESTS; do
				build_err[$libc/$t]="FAIL $ldflags"
			done
			return
		fi
		flags="-DWITH_SLAB $("$config" --cflags)"
	fi
	for t in $TESTS $OPT_TESTS; do
		want "$only_test" $t || continue
		case $t in
		link_*) extra="-O2 -g" ;;
		*) extra="-O2 -g -Wall -Wextra -fno-builtin $flags" ;;
		esac
		# shellcheck disable=SC2086
		set -- $cc $extra "$src/$t.c" $ldflags -o "$dir/$t" -lpthread
		[ "${V:-0}" = 1 ] && echo "# $*"
		"$@" >"$dir/$t.build.log" 2>&1 &
		pids+=($!)
		names+=("$t")
	done
	for i in "${!pids[@]}"; do
		if ! wait "${pids[$i]}"; then
			build_err[$libc/${names[$i]}]="FAIL build failed"
		fi
	done
}

for libc in glibc musl; do
	want "$only_libc" $libc && build_libc $libc
done

# ----------------------------------------------------------------- run --

echo "TAP version 13"
echo "1..${#plan[@]}"

n=0
pass=0
fail=0
skip=0

diag() {	# prefix every line of stdin with "# "
	sed -e 's/^/# /'
}

report() {	# report OK|FAIL|SKIP NAME [REASON]
	n=$((n + 1))
	case $1 in
	OK)
		pass=$((pass + 1))
		echo "ok $n $2"
		;;
	SKIP)
		skip=$((skip + 1))
		echo "ok $n $2 # SKIP ${3:-}"
		;;
	*)
		fail=$((fail + 1))
		echo "not ok $n $2${3:+ # $3}"
		;;
	esac
}

mode_env() {	# the environment of a mode, for env(1)
	case $1 in
	rseq) echo "-u SLAB_OPTIONS SLAB_SELFTEST_RSEQ=on" ;;
	rseq=off) echo "SLAB_OPTIONS=rseq=off SLAB_SELFTEST_RSEQ=off" ;;
	debug) echo "SLAB_OPTIONS=debug SLAB_SELFTEST_RSEQ=off" ;;
	glibc-rseq-off)
		echo "-u SLAB_OPTIONS GLIBC_TUNABLES=glibc.pthread.rseq=0" \
		     "SLAB_SELFTEST_RSEQ=on" ;;
	valgrind) echo "-u SLAB_OPTIONS SLAB_SELFTEST_RSEQ=on" ;;
	*) echo "-u SLAB_OPTIONS -u SLAB_SELFTEST_RSEQ" ;;
	esac
}

logdir=$out/logs
mkdir -p "$logdir"

for entry in "${plan[@]}"; do
	set -- $entry
	libc=$1
	mode=$2
	t=$3
	name="selftests: $libc/$mode: $t"
	log=$logdir/$libc-${mode//=/-}-$t.log
	err=${build_err[$libc/$t]:-}

	if [ $quiet = 0 ]; then
		echo "# $name"
	fi
	case $err in
	SKIP*)
		report SKIP "$name" "${err#SKIP }"
		continue
		;;
	FAIL*)
		if [ -z "${build_shown[$libc/$t]:-}" ]; then
			build_shown[$libc/$t]=1
			if [ -f "$out/$libc/$t.build.log" ]; then
				diag <"$out/$libc/$t.build.log"
			else
				echo "${err#FAIL }" | diag
			fi
		else
			echo "# see the first $libc $t build failure above"
		fi
		report FAIL "$name" "build failed"
		continue
		;;
	esac

	cmd=("./$t")
	limit=$TIMEOUT
	if [ "$mode" = valgrind ]; then
		if [ $have_vg = 0 ]; then
			report SKIP "$name" "$VALGRIND not installed"
			continue
		fi
		# shellcheck disable=SC2206
		cmd=("$VALGRIND" --error-exitcode=99 -q "./$t" $VG_ARGS)
		limit=$VG_TIMEOUT
	fi
	start=$(date +%s)
	# The braces keep bash's "Aborted ..." job reports out of the TAP.
	# shellcheck disable=SC2046
	{ (cd "$out/$libc" && exec env $(mode_env "$mode") \
		timeout -k 5 "$limit" "${cmd[@]}") </dev/null >"$log" 2>&1; } \
		2>/dev/null
	rc=$?
	secs=$(($(date +%s) - start))
	if [ $rc = 0 ]; then
		[ $quiet = 0 ] && diag <"$log"
		report OK "$name"
	elif [ $rc = 4 ]; then
		[ $quiet = 0 ] && diag <"$log"
		report SKIP "$name" "$(tail -n 1 "$log")"
	else
		[ $quiet = 1 ] && echo "# $name"
		diag <"$log"
		if [ $rc = 124 ] || [ $rc = 137 ]; then
			report FAIL "$name" "TIMEOUT $limit seconds"
		elif [ $rc = 99 ] && [ "$mode" = valgrind ]; then
			report FAIL "$name" "valgrind reported errors"
		elif [ $rc -gt 128 ]; then
			report FAIL "$name" "exit=$rc (signal $((rc - 128)))"
		else
			report FAIL "$name" "exit=$rc"
		fi
	fi
	[ $quiet = 0 ] && echo "# ($secs s, log: ${log#"$root"/})"
done

echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:$skip error:0"
[ $fail = 0 ]
