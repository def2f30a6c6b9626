#!/bin/bash
# SPDX-License-Identifier: MIT
# build.sh: build the benchmark programs of tools/bench/ for every allocator
# configuration that can be had on this machine.
#
#   tools/bench/build.sh            build what is missing or out of date
#
# Output, all under build/bench/ (BENCH_DIR):
#   bin/<config>/<prog>   the programs: seed larson prodcons cache sizemix
#                         fastpath bigbuf rss speedtest1
#   runone                the timing wrapper (tools/bench/runone.c)
#   configs.txt           one line per configuration: NAME ok|skip|FAIL NOTE
#   src/                  Debian source packages (apt-get source mimalloc
#                         sqlite3), never committed
#   build.log             the commands and their output (V=1 shows them)
#
# Configurations: musl, musl+slab, musl+mimalloc (static musl, mimalloc's
# src/static.c linked before libc.a), glibc, glibc+slab, glibc+mimalloc,
# glibc+jemalloc, glibc+tcmalloc (dynamic glibc, -lmimalloc, -ljemalloc,
# -ltcmalloc_minimal). One that cannot be built is marked skip with the
# reason and the others go on; a binary that does not really use its
# allocator (checked by running it, see verify()) marks the configuration
# FAIL.
#
# The slab archives must be built already (`make all`); when this script is
# not run from make, it runs `make all` itself.
set -uo pipefail

prog=bench-build
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
B=${BENCH_DIR:-build/bench}
case $B in /*) log=$B/build.log ;; *) log=$root/$B/build.log ;; esac
CC=${CC:-cc}
MUSL_CC=${MUSL_CC:-musl-gcc}
# Functions aligned to 64 bytes: the benchmarks' own hot loops then sit at
# the same offset in every configuration's binary. Without it, cache-thrash
# with one thread (no sharing at all) took 0.34 s or 0.44 s depending only
# on where the linker put the write loop.
CFLAGS=(-O2 -Wall -Wextra -pthread -falign-functions=64)
SQLITE_CFLAGS=(-O2 -DSQLITE_THREADSAFE=1 -DSQLITE_OMIT_LOAD_EXTENSION)
PROGS=(seed larson prodcons cache sizemix fastpath bigbuf rss speedtest1
	redis-server)
CONFIGS=(musl musl+slab musl+mimalloc glibc glibc+slab glibc+mimalloc
	glibc+jemalloc glibc+tcmalloc)

# Tiny arguments for the check run of each program.
declare -A tiny=(
	[seed]="1 1000"
	[larson]="2 1000 10"
	[prodcons]="2 1000"
	[cache]="scratch 2 1 8 10"
	[sizemix]="random 1 2 10"
	[fastpath]="batch 100"
	[bigbuf]="2 1 2"
	[rss]="1 1"
	[speedtest1]="--memdb --nomemstat --size 1"
	[redis-server]="--version"
)

declare -A cstate=() cnote=()

quiet() {
	printf '  %-7s %s\n' "$1" "$2"
}

note() {
	echo "$prog: $*" >&2
}

# run CMD...: log it (and show it with V=1); its output goes to the log.
run() {
	[ "${V:-}" = 1 ] && echo "$*"
	echo "+ $*" >>"$log"
	"$@" >>"$log" 2>&1
}

# stale TARGET DEP...: true if TARGET is missing or older than a DEP.
stale() {
	local t=$1 d

	shift
	[ -e "$t" ] || return 0
	for d in "$@"; do
		[ "$d" -nt "$t" ] && return 0
	done
	return 1
}

have() {
	command -v "$1" >/dev/null 2>&1
}

# can_link CC FLAGS...: does a trivial program link with these flags?
can_link() {
	local cc=$1

	shift
	echo 'int main(void) { return 0; }' |
		"$cc" -x c - -o "$B/.probe" "$@" >/dev/null 2>&1
	local ok=$?
	rm -f "$B/.probe"
	return $ok
}

skip() {
	cstate[$1]=skip
	cnote[$1]=$2
}

# fetch_src PKG: unpack Debian's source package PKG under $B/src/ and
# print its directory (the newest one already there is reused).
fetch_src() {
	local pkg=$1 dir

	dir=$(find "$B/src" -maxdepth 1 -type d -name "$pkg-[0-9]*" 2>/dev/null |
		sort | tail -n 1)
	if [ -z "$dir" ]; then
		have apt-get || return 1
		quiet SRC "apt-get source $pkg" >&2
		mkdir -p "$B/src"
		(cd "$B/src" && timeout 600 apt-get source -q "$pkg") \
			>>"$log" 2>&1 || return 1
		dir=$(find "$B/src" -maxdepth 1 -type d -name "$pkg-[0-9]*" |
			sort | tail -n 1)
	fi
	[ -n "$dir" ] || return 1
	echo "$dir"
}

# mimalloc for static musl: src/static.c is the whole allocator in one
# translation unit; with MI_MALLOC_OVERRIDE it defines malloc, free ... and,
# linked before libc.a, keeps musl's malloc out of the link. Its
# aligned_alloc is guarded by glibc's __USE_ISOC11, which musl's headers do
# not define: without -D__USE_ISOC11 musl's aligned_alloc stays in the
# link and mi_free() crashes on the pointers it returns.
build_mimalloc_musl() {
	local dir obj=$B/obj/musl/mimalloc-static.o

	if ! dir=$(fetch_src mimalloc) || [ ! -f "$dir/src/static.c" ]; then
		skip musl+mimalloc "apt-get source mimalloc failed (deb-src not enabled? run tools/bench/ensure-peers.sh as root)"
		return
	fi
	if stale "$obj" "$dir/src/static.c" tools/bench/build.sh; then
		quiet CC "$obj"
		run "$MUSL_CC" -O3 -DNDEBUG -DMI_MALLOC_OVERRIDE -D__USE_ISOC11=1 \
			-I"$dir/include" \
			-c "$dir/src/static.c" -o "$obj" ||
			skip musl+mimalloc "compiling mimalloc's src/static.c with musl-gcc failed (see $log)"
	fi
	[ -f "$obj" ] || skip musl+mimalloc "no mimalloc-static.o"
}

# SQLite: the Debian source has no amalgamation; configure and
# `make sqlite3.c` (needs tclsh) make one. Then sqlite3.o and speedtest1.o
# per libc.
sqlite_ok=
build_sqlite() {
	local dir s=$B/src/sqlite libc cc pids=() pid ok=y

	if [ ! -f "$s/sqlite3.c" ] || [ ! -f "$s/speedtest1.c" ]; then
		if ! dir=$(fetch_src sqlite3); then
			note "apt-get source sqlite3 failed: no speedtest1 (deb-src not enabled? run tools/bench/ensure-peers.sh as root)"
			return
		fi
		if ! have tclsh; then
			note "tclsh is missing (package tcl): cannot make the SQLite amalgamation, no speedtest1"
			return
		fi
		quiet GEN "$s/sqlite3.c"
		mkdir -p "$dir/bld" "$s"
		if ! (cd "$dir/bld" && run ../configure --disable-tcl &&
			run make sqlite3.c); then
			note "making the SQLite amalgamation failed (see $log): no speedtest1"
			return
		fi
		cp "$dir/bld/sqlite3.c" "$dir/bld/sqlite3.h" \
			"$dir/test/speedtest1.c" "$s/" || return
	fi
	# sqlite3.c takes half a minute per compiler: both at once.
	for libc in glibc musl; do
		cc=$CC
		if [ $libc = musl ]; then
			[ -n "$have_musl" ] || continue
			cc=$MUSL_CC
		fi
		if stale "$B/obj/$libc/sqlite3.o" "$s/sqlite3.c"; then
			quiet CC "$B/obj/$libc/sqlite3.o"
			run "$cc" "${SQLITE_CFLAGS[@]}" -c "$s/sqlite3.c" \
				-o "$B/obj/$libc/sqlite3.o" &
			pids+=($!)
		fi
		if stale "$B/obj/$libc/speedtest1.o" "$s/speedtest1.c"; then
			quiet CC "$B/obj/$libc/speedtest1.o"
			run "$cc" "${SQLITE_CFLAGS[@]}" -I"$s" -c "$s/speedtest1.c" \
				-o "$B/obj/$libc/speedtest1.o" || ok=
		fi
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || ok=
	done
	if [ -z "$ok" ]; then
		rm -f "$B"/obj/*/sqlite3.o
		note "compiling SQLite failed (see $log): no speedtest1"
		return
	fi
	sqlite_ok=y
}

# Redis from Debian's source, once per libc, with its own allocator off
# (MALLOC=libc) and no TLS or systemd: `make` builds the objects (and a
# redis-server that we do not use), then link() links redis-server per
# configuration from the objects make -n names for it. The glibc build's
# redis-benchmark and redis-cli drive every server (tools/bench/redis.sh).
redis_ok=
build_redis() {
	local dir libc tree args=() list

	if ! dir=$(fetch_src redis); then
		note "apt-get source redis failed: no redis benchmark (deb-src not enabled? run tools/bench/ensure-peers.sh as root)"
		return
	fi
	for libc in glibc musl; do
		args=(MALLOC=libc BUILD_TLS=no USE_SYSTEMD=no)
		if [ $libc = musl ]; then
			[ -n "$have_musl" ] || continue
			args+=(CC="$MUSL_CC" LDFLAGS=-static)
		fi
		tree=$B/src/redis-$libc
		list=$B/obj/$libc/redis-server.objs
		if [ ! -s "$list" ] || stale "$list" tools/bench/build.sh; then
			rm -rf "$tree" "$list"
			cp -r "$dir" "$tree" || return
			quiet MAKE "$tree"
			if ! run make -C "$tree" -j"$(nproc)" "${args[@]}"; then
				note "building redis for $libc failed (see $log): no redis benchmark"
				return
			fi
			rm -f "$tree/src/redis-server"
			# Once each: the dry run may list an object twice (the
			# musl tree recompiles release.o, naming it again).
			make -s -C "$tree/src" -n redis-server "${args[@]}" 2>/dev/null |
				tr ' ' '\n' | grep -E '\.(o|a)$' |
				sed -e "s|^\.\./|$tree/|;t" -e "s|^|$tree/src/|" |
				awk '!seen[$0]++' >"$list.tmp"
			if [ ! -s "$list.tmp" ]; then
				rm -f "$list.tmp"
				note "cannot list the objects of redis-server: no redis benchmark"
				return
			fi
			mv "$list.tmp" "$list"
		fi
	done
	mkdir -p "$B/bin"
	cp "$B/src/redis-glibc/src/redis-benchmark" \
		"$B/src/redis-glibc/src/redis-cli" "$B/bin/" || return
	redis_ok=y
}

# objs LIBC PROG: the objects of PROG for LIBC.
objs() {
	if [ "$2" = speedtest1 ]; then
		echo "$B/obj/$1/speedtest1.o $B/obj/$1/sqlite3.o"
	elif [ "$2" = redis-server ]; then
		[ -n "$redis_ok" ] && [ -s "$B/obj/$1/redis-server.objs" ] &&
			tr '\n' ' ' <"$B/obj/$1/redis-server.objs"
	else
		echo "$B/obj/$1/$2.o"
	fi
}

# link CONFIG PROG: link bin/CONFIG/PROG if out of date.
link() {
	local c=$1 p=$2 libc=${1%%+*} out=$B/bin/$1/$2 cc flags=() deps o
	local -a ob

	read -r -a ob <<<"$(objs "$libc" "$p")"
	[ ${#ob[@]} -gt 0 ] || return 0
	for o in "${ob[@]}"; do
		[ -f "$o" ] || return 0
	done
	deps=("${ob[@]}")
	case $c in
	musl) cc=$MUSL_CC flags=(-static) ;;
	musl+slab)
		cc=$MUSL_CC
		read -r -a flags <<<"-static $slab_musl"
		deps+=(build/musl/libslab.a)
		;;
	musl+mimalloc)
		cc=$MUSL_CC flags=(-static "$B/obj/musl/mimalloc-static.o")
		deps+=("$B/obj/musl/mimalloc-static.o")
		;;
	glibc) cc=$CC flags=(-pthread) ;;
	glibc+slab)
		cc=$CC
		read -r -a flags <<<"$slab_glibc -pthread"
		deps+=(build/glibc/libslab.a)
		;;
	glibc+mimalloc) cc=$CC flags=(-lmimalloc -pthread) ;;
	glibc+jemalloc) cc=$CC flags=(-ljemalloc -pthread) ;;
	glibc+tcmalloc) cc=$CC flags=(-ltcmalloc_minimal -pthread) ;;
	esac
	[ "$p" = speedtest1 ] && flags+=(-lm)
	[ "$p" = redis-server ] && flags+=(-lm -ldl -pthread -lrt)
	stale "$out" "${deps[@]}" || return 0
	mkdir -p "$B/bin/$c"
	quiet LD "$out"
	# The objects come first, the allocator's flags after them (before
	# libc): for static musl that keeps libc.a's malloc out of the link.
	if ! run "$cc" "${ob[@]}" "${flags[@]}" -o "$out"; then
		rm -f "$out"
		cstate[$c]=FAIL
		cnote[$c]="linking $p failed (see $log)"
		return 1
	fi
	rm -f "$out.checked"
}

# verify CONFIG PROG: run the program with its allocator's introspection
# switched on and check that the allocator answered:
#   slab       SLAB_STATS=stderr prints "slab statistics" at exit
#   mimalloc   MIMALLOC_VERBOSE=1 prints "mimalloc: option ..." at start
#   jemalloc   MALLOC_CONF=stats_print:true prints its statistics at exit
#   tcmalloc   MALLOCSTATS=1 prints "MALLOC: ..." lines at exit
#   musl, glibc: none of the above may answer (no allocator slipped in)
verify() {
	local c=$1 p=$2 bin=$B/bin/$1/$2 out pat="" args

	[ -x "$bin" ] || return 0
	[ "$bin.checked" -nt "$bin" ] && return 0
	read -r -a args <<<"${tiny[$p]}"
	out=$(SLAB_STATS=stderr MIMALLOC_VERBOSE=1 MALLOC_CONF=stats_print:true \
		MALLOCSTATS=1 timeout 60 "$bin" "${args[@]}" 2>&1 >/dev/null)
	local rc=$?
	case $c in
	*+slab) pat='^slab statistics' ;;
	*+mimalloc) pat='^mimalloc: option' ;;
	*+jemalloc) pat='Begin jemalloc statistics' ;;
	*+tcmalloc) pat='^MALLOC: ' ;;
	esac
	if [ $rc != 0 ]; then
		cstate[$c]=FAIL
		cnote[$c]="$p ${tiny[$p]} failed (exit $rc)"
		return 1
	fi
	if [ -n "$pat" ] && ! grep -q "$pat" <<<"$out"; then
		cstate[$c]=FAIL
		cnote[$c]="$p does not use its allocator (no '$pat' on stderr)"
		return 1
	fi
	if [ -z "$pat" ] && grep -qE '^slab statistics|^mimalloc: |jemalloc statistics|^MALLOC: ' <<<"$out"; then
		cstate[$c]=FAIL
		cnote[$c]="$p answers another allocator's switch"
		return 1
	fi
	touch "$bin.checked"
}

mkdir -p "$B/obj/glibc" "$B/obj/musl" "$B/bin"
: >"$log"

if [ -z "${MAKELEVEL:-}" ]; then
	${MAKE:-make} --no-print-directory all || exit 1
fi

have_musl=
if have "$MUSL_CC"; then
	have_musl=y
else
	for c in musl musl+slab musl+mimalloc; do
		skip "$c" "$MUSL_CC is not installed (package musl-tools)"
	done
fi

if stale "$B/runone" tools/bench/runone.c; then
	quiet CC "$B/runone"
	run "$CC" -O2 -Wall -Wextra tools/bench/runone.c -o "$B/runone" || {
		note "cannot build runone (see $log)"
		exit 1
	}
fi

slab_glibc=$(tools/slab-config --libc glibc --ldflags) || exit 1
slab_musl=
if [ -n "$have_musl" ]; then
	slab_musl=$(tools/slab-config --libc musl --ldflags) ||
		skip musl+slab "build/musl/libslab.a is not built"
fi

can_link "$CC" -lmimalloc ||
	skip glibc+mimalloc "-lmimalloc does not link (package libmimalloc-dev)"
can_link "$CC" -ljemalloc ||
	skip glibc+jemalloc "-ljemalloc does not link (package libjemalloc-dev)"
can_link "$CC" -ltcmalloc_minimal ||
	skip glibc+tcmalloc "-ltcmalloc_minimal does not link (package libgoogle-perftools-dev)"
[ -n "$have_musl" ] && build_mimalloc_musl

# The programs, once per libc.
for p in "${PROGS[@]}"; do
	[ "$p" = speedtest1 ] || [ "$p" = redis-server ] && continue
	src=tools/bench/$p.c
	[ "$p" = seed ] && src=tools/demo/seed.c
	for libc in glibc musl; do
		cc=$CC
		if [ $libc = musl ]; then
			[ -n "$have_musl" ] || continue
			cc=$MUSL_CC
		fi
		o=$B/obj/$libc/$p.o
		if stale "$o" "$src" tools/bench/bench.h tools/bench/build.sh; then
			quiet CC "$o"
			run "$cc" "${CFLAGS[@]}" -c "$src" -o "$o" || {
				note "compiling $src for $libc failed (see $log)"
				exit 1
			}
		fi
	done
done
build_sqlite
build_redis

for c in "${CONFIGS[@]}"; do
	[ -n "${cstate[$c]:-}" ] && continue
	cstate[$c]=ok
	for p in "${PROGS[@]}"; do
		link "$c" "$p" && verify "$c" "$p"
	done
	if [ "${cstate[$c]}" = ok ] && [ -z "$sqlite_ok" ]; then
		cnote[$c]="no speedtest1 (SQLite could not be built)"
	fi
	if [ "${cstate[$c]}" = ok ] && [ -z "$redis_ok" ]; then
		cnote[$c]="${cnote[$c]:+${cnote[$c]}; }no redis (Redis could not be built)"
	fi
done

{
	for c in "${CONFIGS[@]}"; do
		printf '%s %s %s\n' "$c" "${cstate[$c]}" "${cnote[$c]:-}"
	done
} >"$B/configs.txt"
for c in "${CONFIGS[@]}"; do
	[ "${cstate[$c]}" = ok ] ||
		note "$c: ${cstate[$c]}: ${cnote[$c]}"
done
exit 0
