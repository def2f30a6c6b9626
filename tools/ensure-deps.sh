#!/bin/sh
# SPDX-License-Identifier: MIT
# ensure-deps.sh: check that the tools `make demo` and `make check` need are
# installed; as root on Debian/Ubuntu, install the missing ones with apt-get.
#
#   tools/ensure-deps.sh            check, install as root if anything lacks
#   tools/ensure-deps.sh --check    only check (exit 2 if something lacks)
#
# Required: cc, make and ar (build-essential), musl-gcc (musl-tools),
# pkg-config, the check unit test library (check), valgrind.
# Optional: hyperfine (the demo falls back to a shell timing loop).
#
# Exit status: 0 all required tools present (now), 1 the install failed,
# 2 something required is missing and was not installed (not root, --check,
# SLAB_NO_APT=1, or no apt-get). Not root: prints the sudo line to run.
set -u

prog=ensure-deps
install=y
case ${1:-} in
--check) install= ;;
"") ;;
*) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
[ "${SLAB_NO_APT:-}" = 1 ] && install=

have() {
	command -v "$1" >/dev/null 2>&1
}

missing=
optional=

# Fill $missing and $optional with the Debian packages that provide what is
# not there.
probe() {
	missing=
	optional=
	{ have cc && have make && have ar; } || missing="$missing build-essential"
	have musl-gcc || missing="$missing musl-tools"
	if have pkg-config; then
		pkg-config --exists check || missing="$missing check"
	else
		missing="$missing pkg-config check"
	fi
	have valgrind || missing="$missing valgrind"
	have hyperfine || optional="$optional hyperfine"
	missing=${missing# }
	optional=${optional# }
}

probe
if [ -z "$missing" ] && [ -z "$optional" ]; then
	exit 0
fi

if [ -z "$missing" ] && [ -z "$install" ]; then
	echo "$prog: optional: $optional not installed (the demo times with a shell loop)" >&2
	exit 0
fi

if [ -n "$install" ] && [ "$(id -u)" = 0 ] && have apt-get; then
	pkgs="$missing${missing:+${optional:+ }}$optional"
	echo "$prog: installing $pkgs" >&2
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086 # $pkgs is a list of package names
	if ! apt-get update -q ||
	   ! apt-get install -y -q --no-install-recommends $pkgs; then
		# hyperfine alone failing (an old release without it) is no error.
		if [ -n "$missing" ]; then
			echo "$prog: apt-get install $pkgs failed" >&2
			exit 1
		fi
	fi
	probe
	if [ -n "$missing" ]; then
		echo "$prog: still missing after apt-get install: $missing" >&2
		exit 1
	fi
	[ -z "$optional" ] ||
		echo "$prog: optional: $optional not installed (the demo times with a shell loop)" >&2
	exit 0
fi

if [ -z "$missing" ]; then
	echo "$prog: optional: $optional not installed (the demo times with a shell loop)" >&2
	echo "$prog: to install it: sudo apt-get install $optional" >&2
	exit 0
fi

echo "$prog: missing: $missing${optional:+ (optional: $optional)}" >&2
if have apt-get; then
	echo "$prog: run this, then try again:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends $missing${optional:+ $optional}" >&2
else
	echo "$prog: install the equivalents of these Debian packages with your" \
		"distribution's package manager, then try again" >&2
fi
exit 2
