#!/bin/bash
# SPDX-License-Identifier: MIT
# redis.sh: one timed run of redis-server under redis-benchmark over
# loopback, for run.sh.
#
#   tools/bench/redis.sh SERVER REQUESTS
#
# Starts SERVER (a redis-server linked with one allocator) on 127.0.0.1 at
# a free port, with persistence off, waits until it answers PING, drives
# it with redis-benchmark (the glibc build in $BENCH_DIR/bin/, the same
# client for every configuration): REQUESTS requests for each of 12
# commands, 50 clients, pipelines of 16, random keys among 100000 and
# values of 200 bytes, so the server allocates and frees keys, values,
# lists, sets, hashes and sorted-set nodes. Then it prints the server's
# peak RSS (VmHWM) and its CPU time and shuts it down. Exits non-zero if
# the server does not start or answer, or the client fails.
#
# The timer around this script sees the client and the server: the wall
# time is that of the whole exchange, the CPU time and peak RSS include
# the client's (the same for every configuration).
set -uo pipefail

B=${BENCH_DIR:-build/bench}
server=${1:?usage: redis.sh SERVER REQUESTS}
n=${2:?usage: redis.sh SERVER REQUESTS}
client=$B/bin/redis-benchmark
cli=$B/bin/redis-cli

die() {
	echo "redis.sh: $*" >&2
	[ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null
	exit 1
}

[ -x "$server" ] || die "$server is not built"
if [ ! -x "$client" ] || [ ! -x "$cli" ]; then
	die "$client or $cli is not built"
fi

pid=
for _ in 1 2 3 4 5; do
	port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
	"$server" --port "$port" --bind 127.0.0.1 --save "" \
		--appendonly no --protected-mode no --logfile "" \
		--daemonize no >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		if [ "$("$cli" -p "$port" ping 2>/dev/null)" = PONG ]; then
			break 2
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=
done
[ -n "$pid" ] || die "$server did not start (5 ports tried)"

"$client" -h 127.0.0.1 -p "$port" -q -n "$n" -c 50 -P 16 -r 100000 \
	-d 200 -t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,lrange_100 ||
	die "redis-benchmark failed"
echo "server: $(grep VmHWM /proc/"$pid"/status)"
echo "server: cpu ticks $(awk '{ print $14 + $15 }' /proc/"$pid"/stat)"
"$cli" -p "$port" shutdown nosave >/dev/null 2>&1
# Exited: gone, or a zombie until the wait below.
for _ in $(seq 200); do
	state=$(awk '{ print $3 }' /proc/"$pid"/stat 2>/dev/null)
	[ -z "$state" ] || [ "$state" = Z ] && break
	sleep 0.05
done
[ -z "$state" ] || [ "$state" = Z ] || die "the server did not shut down"
wait "$pid"
st=$?
[ $st = 0 ] || die "the server exited with status $st"
