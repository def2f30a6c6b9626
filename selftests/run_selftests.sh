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
# plus, for some tests only, the environment modes below (both libcs and
# SLAB_OPTIONS unset unless said otherwise):
#
#   valgrind   mt_random under valgrind
#   debug      misuse and double_free with SLAB_OPTIONS=debug (every
#              double free caught)
#   seccomp    under selftests/tools/no_rseq, a launcher whose seccomp
#              filter fails the rseq system call with ENOSYS, as sandboxes
#              do: slab must fall back to per-thread caches
#              (SLAB_SELFTEST_RSEQ=off); the threaded tests
#   vlimit64, vlimit32
#              under "ulimit -v 65536" / "ulimit -v 32768" (virtual memory
#              capped as in containers and CI runners; MALLOC_ARENA_MAX=1
#              keeps glibc's own arenas from eating the limit): vlimit,
#              and mt_random with one worker thread under 64 MiB
#   throttled  pinned to one CPU (taskset) that a busy-looping process
#              shares, as under a CPU quota: fork_threads and fork_stdio
#   asan       glibc only: a program built with -fsanitize=address and
#              linked with slab's flags (asan_user): slab must step aside
#              with one line, and ASan must catch a heap overflow and a
#              use after free
#   tsan       glibc only, needs clang: the library sources and the test
#              built together with -fsanitize=thread (-DSLAB_NO_RSEQ_ASM,
#              SLAB_OPTIONS=rseq=off); a report fails the run (exit 66):
#              mt_random, cross_thread, thread_exit (its memory growth
#              verdict is void under TSan), fork_threads
#
# Missing musl-gcc, valgrind or clang turn their tests into "ok N ...
# # SKIP". The exit status is non-zero if any test failed.
#
# usage: selftests/run_selftests.sh [options]
#   -l LIBC    only this libc (glibc or musl); repeatable
#   -t TEST    only this test (program name); repeatable
#   -m MODE    only this mode (rseq, rseq=off, glibc-rseq-off, valgrind,
#              debug, seccomp, vlimit64, vlimit32, throttled, tsan, asan);
#              repeatable
#   -p         plain: build against libc without slab (-DWITH_SLAB unset)
#              to validate the tests themselves; one "plain" mode, plus
#              seccomp, vlimit64, vlimit32 and throttled
#   -T SECS    timeout per test run (default 120; valgrind and tsan get
#              300)
#   -q         quiet: print test output only for failures
#   -h         this help
#
# Environment: CC, MUSL_CC, VALGRIND, CLANG, SELFTEST_SEED (varies the random
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
CLANG=${CLANG:-clang}
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
# fork_large is the fork-during-start-up hang being fixed (a fork child
# finds the allocator's data back at its start-up contents and hangs in
# init; see its header and Documentation/design.md, "Fork and signals").
TESTS="api_edges foreign mt_random cross_thread kmem_cache misuse signals
signal_alloc errno_keep double_free idle_drain large_reuse
thread_exit fork_threads fork_signal fork_stdio fork_large
link_valloc link_getline link_strdup"
# Run only when named (-t NAME): none at present.
OPT_TESTS=""
# Built, but run only in the modes that name them (see mode_tests).
MODE_TESTS="vlimit"
# The environment modes, after the per-CPU modes.
ENV_MODES="valgrind debug seccomp vlimit64 vlimit32 throttled tsan asan"

mode_tests() {	# mode_tests MODE LIBC: the tests an environment mode runs
	case $1 in
	valgrind) echo mt_random ;;
	debug) echo misuse double_free ;;
	seccomp) echo mt_random cross_thread thread_exit fork_threads signals ;;
	vlimit64) echo vlimit mt_random ;;
	vlimit32) echo vlimit ;;
	throttled) echo fork_threads fork_stdio ;;
	asan) [ "$2" = glibc ] && echo asan_user ;;
	tsan) [ "$2" = glibc ] && echo mt_random cross_thread thread_exit \
		fork_threads ;;
	esac
}

test_args() {	# test_args MODE TEST: the arguments of TEST in MODE
	case $1/$2 in
	valgrind/mt_random) echo 3 30000 ;;
	seccomp/mt_random) echo 4 20000 ;;
	seccomp/thread_exit) echo 3000 ;;
	seccomp/signals) echo 2 ;;
	# One worker: glibc gives every thread an 8 MiB stack.
	vlimit64/mt_random) echo 1 30000 ;;
	tsan/mt_random) echo 2 5000 ;;
	tsan/cross_thread) echo 1000 ;;
	tsan/thread_exit) echo 300 ;;
	esac
}

want() {	# want LIST WORD: is WORD selected by LIST (empty = all)?
	[ -z "$1" ] && return 0
	case $1 in *" $2 "*) return 0 ;; esac
	return 1
}

modes_of() {	# the per-CPU modes of a libc
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
for libc in glibc musl; do
	want "$only_libc" $libc || continue
	for mode in $ENV_MODES; do
		want "$only_mode" $mode || continue
		# Plain builds: only the modes that test the tests.
		case $plain/$mode in
		1/valgrind | 1/debug | 1/tsan | 1/asan) continue ;;
		esac
		for t in $(mode_tests $mode $libc); do
			want "$only_test" $t && plan+=("$libc $mode $t")
		done
	done
done

planned() {	# planned MODE: is MODE in the plan?
	local e

	for e in "${plan[@]}"; do
		case " $e " in *" $1 "*) return 0 ;; esac
	done
	return 1
}

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
			for t in $TESTS $OPT_TESTS $MODE_TESTS; do
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
			for t in $TESTS $OPT_TESTS $MODE_TESTS; do
				build_err[$libc/$t]="FAIL $ldflags"
			done
			return
		fi
		flags="-DWITH_SLAB $("$config" --cflags)"
	fi
	for t in $TESTS $OPT_TESTS $MODE_TESTS; do
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

# The seccomp launcher, a host program whatever the libc under test.
build_no_rseq() {
	local dir=$out/tools t libc

	mkdir -p "$dir" || exit 1
	set -- $CC -O2 -g -Wall -Wextra "$here/tools/no_rseq.c" \
		-o "$dir/no_rseq"
	[ "${V:-0}" = 1 ] && echo "# $*"
	if ! "$@" >"$dir/no_rseq.build.log" 2>&1; then
		for libc in glibc musl; do
			for t in $(mode_tests seccomp $libc); do
				build_err[seccomp/$t]="FAIL no_rseq: $(cat \
					"$dir/no_rseq.build.log")"
			done
		done
	fi
}

# ThreadSanitizer: the library's sources and each test in one program.
build_tsan() {
	local dir=$out/glibc-tsan f o t objs=() pids=() names=() i wrap=()
	local cflags="-fsanitize=thread -O1 -g -Wno-unknown-warning-option"
	local sym

	mkdir -p "$dir/obj" || exit 1
	if ! command -v "$CLANG" >/dev/null 2>&1; then
		for t in $(mode_tests tsan glibc); do
			build_err[tsan/$t]="SKIP $CLANG missing"
		done
		return
	fi
	for sym in $("$config" --symbols); do
		wrap+=("-Wl,--wrap=$sym")
	done
	# The library's own flags (GNUmakefile LIB_CFLAGS), portable path.
	for f in "$root"/slab/*.c "$root"/wrap/wrap.c; do
		o=$dir/obj/$(basename "$f" .c).o
		objs+=("$o")
		# shellcheck disable=SC2086
		set -- $CLANG $cflags -std=gnu11 -fno-strict-aliasing \
			-fno-builtin-malloc -fno-builtin-free \
			-ftls-model=initial-exec -fvisibility=hidden \
			-DSLAB_NO_RSEQ_ASM -I"$root/slab" \
			-I"$root/slab/include" -c "$f" -o "$o"
		[ "${V:-0}" = 1 ] && echo "# $*"
		"$@" >"$o.log" 2>&1 &
		pids+=($!)
		names+=("$o")
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" && continue
		for t in $(mode_tests tsan glibc); do
			build_err[tsan/$t]="FAIL $(cat "${names[$i]}.log")"
		done
		return
	done
	pids=()
	names=()
	for t in $(mode_tests tsan glibc); do
		want "$only_test" $t || continue
		# shellcheck disable=SC2086
		set -- $CLANG $cflags -fno-builtin -DWITH_SLAB \
			-I"$root/slab/include" "$src/$t.c" "${objs[@]}" \
			"${wrap[@]}" -Wl,-u,__wrap_malloc -o "$dir/$t" -lpthread
		[ "${V:-0}" = 1 ] && echo "# $*"
		"$@" >"$dir/$t.build.log" 2>&1 &
		pids+=($!)
		names+=("$t")
	done
	for i in "${!pids[@]}"; do
		if ! wait "${pids[$i]}"; then
			build_err[tsan/${names[$i]}]="FAIL build failed"
		fi
	done
}

for libc in glibc musl; do
	want "$only_libc" $libc && build_libc $libc
done
planned seccomp && build_no_rseq
# AddressSanitizer in the program only: slab's archive as users have it.
build_asan() {
	local dir=$out/glibc-asan t ldflags

	mkdir -p "$dir" || exit 1
	if ! ldflags=$("$config" --libc glibc --ldflags 2>&1); then
		build_err[asan/asan_user]="FAIL $ldflags"
		return
	fi
	for t in $(mode_tests asan glibc); do
		want "$only_test" $t || continue
		# shellcheck disable=SC2086,SC2046
		set -- $CC -fsanitize=address -O1 -g -Wall -Wextra -DWITH_SLAB \
			$("$config" --cflags) "$src/$t.c" $ldflags \
			-o "$dir/$t" -lpthread
		[ "${V:-0}" = 1 ] && echo "# $*"
		"$@" >"$dir/$t.build.log" 2>&1 ||
			build_err[asan/$t]="FAIL $(cat "$dir/$t.build.log")"
	done
}

planned tsan && build_tsan
planned asan && build_asan

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
	# No rseq in the sandbox: the per-thread fallback is expected.
	seccomp) echo "-u SLAB_OPTIONS SLAB_SELFTEST_RSEQ=off" ;;
	vlimit*)
		echo "-u SLAB_OPTIONS SLAB_SELFTEST_RSEQ=on" \
		     "MALLOC_ARENA_MAX=1" ;;
	throttled) echo "-u SLAB_OPTIONS SLAB_SELFTEST_RSEQ=on" ;;
	tsan)
		echo "SLAB_OPTIONS=rseq=off SLAB_SELFTEST_RSEQ=off" \
		     "TSAN_OPTIONS=$TSAN_OPTS" ;;
	asan) echo "-u SLAB_OPTIONS ASAN_OPTIONS=detect_leaks=0" ;;
	*) echo "-u SLAB_OPTIONS -u SLAB_SELFTEST_RSEQ" ;;
	esac
}

# A report stops the run with exit 66. Children of a threaded fork may
# start threads (fork_threads); mt_random asks for absurd sizes on purpose,
# which slab passes on to libc's malloc, here TSan's.
TSAN_OPTS=halt_on_error=1:exitcode=66:die_after_fork=0
TSAN_OPTS=$TSAN_OPTS:allocator_may_return_null=1

# The throttled mode's busy loop must not outlive an interrupted run.
busy=
kill_busy() {
	if [ -n "$busy" ]; then
		{ kill "$busy" && wait "$busy"; } 2>/dev/null
		busy=
	fi
}
trap kill_busy EXIT
trap 'kill_busy; exit 130' INT TERM

# The CPU of the throttled mode: the first this shell may run on.
throttle_cpu=$(taskset -pc $$ 2>/dev/null | sed -e 's/.*: *//' \
	-e 's/[-,].*//')
[ -n "$throttle_cpu" ] || throttle_cpu=0

logdir=$out/logs
mkdir -p "$logdir"

for entry in "${plan[@]}"; do
	set -- $entry
	libc=$1
	mode=$2
	t=$3
	name="selftests: $libc/$mode: $t"
	log=$logdir/$libc-${mode//=/-}-$t.log
	dir=$out/$libc
	bkey=$libc/$t
	case $mode in
	tsan)
		dir=$out/glibc-tsan
		bkey=tsan/$t
		;;
	asan)
		dir=$out/glibc-asan
		bkey=asan/$t
		;;
	seccomp)
		[ -n "${build_err[seccomp/$t]:-}" ] && bkey=seccomp/$t
		;;
	esac
	err=${build_err[$bkey]:-}

	if [ $quiet = 0 ]; then
		echo "# $name"
	fi
	case $err in
	SKIP*)
		report SKIP "$name" "${err#SKIP }"
		continue
		;;
	FAIL*)
		if [ -z "${build_shown[$bkey]:-}" ]; then
			build_shown[$bkey]=1
			if [ "$err" = "FAIL build failed" ] &&
			   [ -f "$dir/$t.build.log" ]; then
				diag <"$dir/$t.build.log"
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

	# shellcheck disable=SC2207
	args=($(test_args "$mode" "$t"))
	cmd=("./$t" "${args[@]}")
	limit=$TIMEOUT
	case $mode in
	valgrind)
		if [ $have_vg = 0 ]; then
			report SKIP "$name" "$VALGRIND not installed"
			continue
		fi
		cmd=("$VALGRIND" --error-exitcode=99 -q "${cmd[@]}")
		limit=$VG_TIMEOUT
		;;
	seccomp)
		cmd=("$out/tools/no_rseq" "${cmd[@]}")
		;;
	vlimit64 | vlimit32)
		# shellcheck disable=SC2016
		cmd=(bash -c 'ulimit -v "$0" && exec "$@"'
		     $((${mode#vlimit} * 1024)) "${cmd[@]}")
		;;
	throttled)
		if ! command -v taskset >/dev/null 2>&1; then
			report SKIP "$name" "taskset not installed"
			continue
		fi
		# A competitor for the one CPU, started first, killed after.
		(exec taskset -c "$throttle_cpu" sh -c 'while :; do :; done') \
			</dev/null >/dev/null 2>&1 &
		busy=$!
		cmd=(taskset -c "$throttle_cpu" "${cmd[@]}")
		;;
	tsan)
		limit=$VG_TIMEOUT
		;;
	esac
	start=$(date +%s)
	# The braces keep bash's "Aborted ..." job reports out of the TAP.
	# shellcheck disable=SC2046
	{ (cd "$dir" && exec env $(mode_env "$mode") \
		timeout -k 5 "$limit" "${cmd[@]}") </dev/null >"$log" 2>&1; } \
		2>/dev/null
	rc=$?
	secs=$(($(date +%s) - start))
	kill_busy
	if [ $rc = 0 ]; then
		[ $quiet = 0 ] && diag <"$log"
		report OK "$name"
	elif [ $rc = 4 ]; then
		[ $quiet = 0 ] && diag <"$log"
		report SKIP "$name" "$(tail -n 1 "$log")"
	elif [ "$mode" = tsan ] && [ $rc = 1 ] && grep -q '^FAIL' "$log" &&
	     ! grep '^FAIL' "$log" | grep -qv ': \(RSS\|VSZ\) grew by'; then
		# TSan's shadow memory grows with every thread: thread_exit's
		# RSS verdict means nothing here, its race-freedom does.
		[ $quiet = 0 ] && diag <"$log"
		report SKIP "$name" "no race; growth check void under TSan"
	else
		[ $quiet = 1 ] && echo "# $name"
		diag <"$log"
		if [ $rc = 124 ] || [ $rc = 137 ]; then
			report FAIL "$name" "TIMEOUT $limit seconds"
		elif [ $rc = 99 ] && [ "$mode" = valgrind ]; then
			report FAIL "$name" "valgrind reported errors"
		elif [ $rc = 66 ] && [ "$mode" = tsan ]; then
			report FAIL "$name" "ThreadSanitizer: $(grep -m 1 \
				'^SUMMARY: ThreadSanitizer' "$log" |
				sed -e 's/^SUMMARY: ThreadSanitizer: //' \
				    -e "s|$root/||")"
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
