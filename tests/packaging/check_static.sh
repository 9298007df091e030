#!/bin/sh
# Checks that the installed static library carries the per-ISA kernels (run by
# `meson test`).  The AVX2/AVX-512/NEON kernels are compiled into static libraries of
# their own, each with only its ISA's flags, whose objects are pulled into libdafl; a
# libdafl.a that lost them would still link for a user, and silently run the scalar code
# (or fail at link time with an undefined kernel table).
#
# usage: check_static.sh LIBDAFL_A ISA_LIBRARY...
# NM may name the nm to use (a cross build passes the target's).
set -eu

archive=$1
shift
nm=${NM:-nm}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Defined global symbols, one per line: nm prints "ADDRESS TYPE NAME" for each.
defined() { "$nm" -g --defined-only "$1" | awk 'NF == 3 { print $3 }' | LC_ALL=C sort -u; }

defined "$archive" > "$tmp/archive"
status=0
for isa_lib in "$@"; do
    defined "$isa_lib" > "$tmp/isa"
    if [ ! -s "$tmp/isa" ]; then
        echo "FAIL: $(basename "$isa_lib") defines no global symbol"
        status=1
        continue
    fi
    LC_ALL=C comm -23 "$tmp/isa" "$tmp/archive" > "$tmp/missing"
    if [ -s "$tmp/missing" ]; then
        echo "FAIL: $(basename "$archive") lacks what $(basename "$isa_lib") defines:"
        sed 's/^/    /' "$tmp/missing"
        status=1
    else
        echo "ok: $(basename "$isa_lib") ($(paste -sd ' ' "$tmp/isa"))"
    fi
done
exit $status
