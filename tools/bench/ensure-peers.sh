#!/bin/sh
# SPDX-License-Identifier: MIT
# ensure-peers.sh: install what the benchmark suite compares slab with, when
# run as root on Debian or Ubuntu; otherwise print the command to run.
# Never fails: a peer that cannot be had is skipped by the suite.
#
#   tools/bench/ensure-peers.sh
#
# Packages: libmimalloc-dev, libjemalloc-dev, libgoogle-perftools-dev
# (tcmalloc), gnuplot-nox (the plot), time (BENCH_TIMER=time), dpkg-dev
# (unpacks `apt-get source`), tcl (tclsh makes the SQLite amalgamation).
# The musl+mimalloc configuration, speedtest1 and redis-server are built
# from Debian's source packages (mimalloc, sqlite3, redis): as root, this
# also enables deb-src in /etc/apt/sources.list.d/debian.sources when it is
# not enabled.
# SLAB_NO_APT=1 installs nothing.
set -u

prog=ensure-peers
pkgs="libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev gnuplot-nox time dpkg-dev tcl"
sources=/etc/apt/sources.list.d/debian.sources

missing=
for p in $pkgs; do
	dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null |
		grep -q 'install ok installed' || missing="$missing $p"
done
missing=${missing# }

# deb-src is on if some source list names it.
have_src() {
	grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list \
		/etc/apt/sources.list.d/
}

if [ -z "$missing" ] && have_src; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "$prog: no apt-get: install mimalloc, jemalloc, tcmalloc and gnuplot" \
		"with your package manager to compare slab with them" >&2
	exit 0
fi

if [ "$(id -u)" != 0 ] || [ "${SLAB_NO_APT:-}" = 1 ]; then
	if [ -n "$missing" ]; then
		echo "$prog: not installed: $missing; the suite skips what needs them." >&2
		echo "$prog: to install them:" >&2
		echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $missing" >&2
	fi
	have_src || echo "$prog: deb-src is not enabled: musl+mimalloc and speedtest1 need 'apt-get source' (add deb-src to the Types: line of $sources)" >&2
	exit 0
fi

export DEBIAN_FRONTEND=noninteractive
update=
if ! have_src && [ -f "$sources" ]; then
	echo "$prog: enabling deb-src in $sources" >&2
	sed -i 's/^Types: deb$/Types: deb deb-src/' "$sources"
	update=y
fi
if [ -n "$missing" ] || [ -n "$update" ]; then
	apt-get update -q >/dev/null 2>&1 ||
		echo "$prog: apt-get update failed; trying with the lists there are" >&2
fi
if [ -n "$missing" ]; then
	echo "$prog: installing $missing" >&2
	# One at a time, so that one missing package does not stop the rest.
	for p in $missing; do
		# shellcheck disable=SC2086 # one package name
		apt-get install -y -q --no-install-recommends $p >/dev/null 2>&1 ||
			echo "$prog: apt-get install $p failed: the suite skips what needs it" >&2
	done
fi
exit 0
