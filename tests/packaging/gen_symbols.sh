#!/bin/sh
# Updates the Debian symbols file (debian/libdafl<soversion>.symbols) from a built
# shared library: symbols already listed keep the version that introduced them, new
# ones get VERSION (default: the upstream version of debian/changelog).  A listed symbol
# the library no longer exports is kept, and reported: removing one is an ABI break
# (tests/packaging/abi/README.md), and dpkg-gensymbols fails the package build on it.
#
# usage: tests/packaging/gen_symbols.sh LIBRARY [VERSION]
#   e.g. tests/packaging/gen_symbols.sh build/libdafl.so
set -eu

here=$(cd "$(dirname "$0")/../.." && pwd)
lib=$1
version=${2:-$(sed -n '1s/^[^ ]* (\(.*\)-[^-]*).*/\1/p' "$here/debian/changelog")}

soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
package=libdafl${soname#libdafl.so.}
symbols=$here/debian/$package.symbols

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$lib" | awk '{ print $NF }' | sed 's/@.*//' | grep '^dafl_' |
    LC_ALL=C sort -u > "$tmp/exported"

# Existing entries: " name@Base version" -> "name version".
if [ -f "$symbols" ]; then
    sed -n 's/^ \([A-Za-z0-9_]*\)@Base \(.*\)$/\1 \2/p' "$symbols" | LC_ALL=C sort > "$tmp/listed"
else
    : > "$tmp/listed"
fi

{
    echo "$soname $package #MINVER#"
    echo "* Build-Depends-Package: libdafl-dev"
    cut -d' ' -f1 "$tmp/listed" | LC_ALL=C sort -u - "$tmp/exported" |
    while read -r name; do
        since=$(awk -v n="$name" '$1 == n { print $2 }' "$tmp/listed")
        if [ -z "$since" ]; then
            since=$version
            echo "added: $name ($version)" >&2
        elif ! grep -qx "$name" "$tmp/exported"; then
            echo "WARNING: $name is listed but no longer exported (an ABI break)" >&2
        fi
        echo " $name@Base $since"
    done
} > "$tmp/symbols"

mv "$tmp/symbols" "$symbols"
echo "wrote $symbols ($(grep -c '@Base' "$symbols") symbols)"
