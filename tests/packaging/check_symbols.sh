#!/bin/sh
# Checks the dynamic interface of the shared library (run by `meson test`):
#   - the SONAME is the expected libdafl.so.<soversion>;
#   - every defined dynamic symbol is a public dafl_ function: the sources are built with
#     -fvisibility=hidden and only DAFL_API marks a symbol for export, so anything else
#     here is an internal function leaking out (a missing `static` or a stray attribute);
#   - the exported functions are exactly those the header declares with DAFL_API, so a
#     declaration whose definition was dropped, or an export nobody declared, fails too.
#
# usage: check_symbols.sh LIBRARY HEADER SONAME
# NM and READELF may name the tools to use (a cross build passes the target's).
set -eu

lib=$1
header=$2
soname=$3
nm=${NM:-nm}
readelf=${READELF:-readelf}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

status=0

actual_soname=$("$readelf" -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$actual_soname" != "$soname" ]; then
    echo "FAIL: SONAME is '$actual_soname', expected '$soname'"
    status=1
fi

# Symbols the linker itself defines in every shared object; they are not ours.
linker_symbols='^(_init|_fini|__bss_start|_edata|_end|__end__|_DYNAMIC|_GLOBAL_OFFSET_TABLE_)$'

# `nm -D --defined-only` prints "ADDRESS TYPE NAME[@VERSION]".
"$nm" -D --defined-only "$lib" | awk '{ print $NF }' | sed 's/@.*//' |
    grep -Ev "$linker_symbols" | LC_ALL=C sort -u > "$tmp/exported"

if grep -v '^dafl_' "$tmp/exported" > "$tmp/foreign"; then
    echo "FAIL: symbols exported without the dafl_ prefix (make them static or hidden):"
    sed 's/^/    /' "$tmp/foreign"
    status=1
fi

# Every DAFL_API declaration names its function on the DAFL_API line itself.
grep '^DAFL_API' "$header" | grep -o 'dafl_[A-Za-z0-9_]*[[:space:]]*(' |
    sed 's/[[:space:]]*($//' | LC_ALL=C sort -u > "$tmp/declared"

LC_ALL=C comm -23 "$tmp/declared" "$tmp/exported" > "$tmp/missing"
LC_ALL=C comm -13 "$tmp/declared" "$tmp/exported" > "$tmp/undeclared"
if [ -s "$tmp/missing" ]; then
    echo "FAIL: declared with DAFL_API in $(basename "$header") but not exported:"
    sed 's/^/    /' "$tmp/missing"
    status=1
fi
if [ -s "$tmp/undeclared" ]; then
    echo "FAIL: exported but not declared with DAFL_API in $(basename "$header"):"
    sed 's/^/    /' "$tmp/undeclared"
    status=1
fi

echo "$(wc -l < "$tmp/exported") exported symbols, $(wc -l < "$tmp/declared") declared, SONAME $actual_soname"
exit $status
