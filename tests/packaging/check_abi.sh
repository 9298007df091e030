#!/bin/sh
# Compares the ABI of the built shared library with the committed baseline (run by
# `meson test`; tests/packaging/abi/README.md says when and how to change the baseline).
#
# Functions and variables may be added: old binaries keep working.  Anything else that
# abidiff reports fails: a removed function, a changed prototype, a public struct whose
# size or member offsets changed, an enumerator whose value changed.  abidiff's own
# "incompatible" bit (8) is set only for removed symbols, so the verdict is taken from a
# run that ignores additions (--no-added-syms) and fails on any remaining change (bit 4).
#
# The baseline already holds only what the public header declares (see
# tests/packaging/gen_abi_baseline.sh), so no --headers-dir is passed here: abidiff would treat
# the baseline's types as private for want of headers and filter their changes out.
#
# Types can only be compared when the library carries DWARF (buildtype=debug or
# debugoptimized, or a distribution build with -g); without it abidiff still sees the
# exported symbols, so a removed function is caught, and the test says that types were
# not checked.
#
# Enumerators added to an enum are harmless to libabigail and not reported.  Members
# appended to a parameter struct are compatible by dafl's own rule (struct_size), which
# the suppression file SUPPRESSIONS (tests/packaging/abi/dafl.suppr) tells abidiff.
#
# libabigail's has_data_member_inserted_at suppression (abigail-tools 2.2, Debian 12)
# also hides a member retyped or moved in such a struct, not only one appended: so with
# debug info the public structs' layouts and the enumerators' values are compared by
# dafl's rule as well, member by member (tests/packaging/abi_layouts.py, on abidw's description
# of LIBRARY with the same options as the baseline), after abidiff.
#
# usage: check_abi.sh LIBRARY BASELINE [SUPPRESSIONS]
# Exits 77 (skipped) when abidiff (Debian package abigail-tools) is not installed.
set -u

lib=$1
baseline=$2
suppressions=${3:-}
readelf=${READELF:-readelf}
# From here on "$@" holds the options common to both abidiff runs.
set --
if [ -n "$suppressions" ]; then set -- --suppressions "$suppressions"; fi

if ! command -v abidiff > /dev/null 2>&1; then
    echo "SKIP: abidiff not found (install the Debian package abigail-tools)"
    exit 77
fi

if "$readelf" -S "$lib" | grep -q '\.debug_info'; then
    echo "comparing functions and types with $(basename "$baseline")"
    types=yes
else
    types=no
    echo "NOTE: $(basename "$lib") has no debug info: only exported symbols are compared;"
    echo "      configure with -Dbuildtype=debugoptimized to compare types as well"
fi

# The full report, additions included, for the log.
abidiff "$@" "$baseline" "$lib"
rc=$?
if [ $((rc & 3)) -ne 0 ]; then
    echo "FAIL: abidiff could not compare (exit status $rc)"
    exit 1
fi

abidiff "$@" --no-added-syms "$baseline" "$lib" > /dev/null
rc=$?
if [ $((rc & 3)) -ne 0 ]; then
    echo "FAIL: abidiff could not compare (exit status $rc)"
    exit 1
fi
if [ "$rc" -ne 0 ]; then
    echo "FAIL: the ABI changed incompatibly against $(basename "$baseline") (see above)."
    echo "      If the break is intended, follow tests/packaging/abi/README.md (bump the soversion)."
    exit 1
fi

if [ "$types" = yes ]; then
    here=$(cd "$(dirname "$0")/../.." && pwd)
    current=$(mktemp)
    trap 'rm -f "$current"' EXIT
    abidw --headers-dir "$here/include" \
        --drop-private-types --exported-interfaces-only --no-elf-needed \
        --no-show-locs --no-corpus-path --no-comp-dir-path --type-id-style hash \
        "$lib" > "$current" || { echo "FAIL: abidw could not describe $lib"; exit 1; }
    if ! "${PYTHON3:-python3}" "$here/tests/packaging/abi_layouts.py" "$baseline" "$current"; then
        echo "FAIL: a public struct or enum changed incompatibly against $(basename "$baseline")."
        echo "      If the break is intended, follow tests/packaging/abi/README.md (bump the soversion)."
        exit 1
    fi
fi
echo "PASS: compatible with $(basename "$baseline")"
exit 0
