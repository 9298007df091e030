#!/bin/sh
# Writes the ABI baseline that tests/packaging/abi checks against: the abidw description of
# libdafl.so built with debug info from SOURCE_DIR (default: this checkout).
#
# usage: tests/packaging/gen_abi_baseline.sh [SOURCE_DIR [OUTPUT_DIR]]
#   OUTPUT_DIR defaults to tests/packaging/abi of this checkout; the file is named after the
#   SONAME of what was built (libdafl.so.0.abi).
#
# Take the baseline from the released sources, e.g.
#   git archive v0.1.0 | tar -x -C /tmp/dafl-0.1.0 && tests/packaging/gen_abi_baseline.sh /tmp/dafl-0.1.0
# Needs meson, ninja, SLEEF and abidw (Debian package abigail-tools).
set -eu

here=$(cd "$(dirname "$0")/../.." && pwd)
src=$(cd "${1:-$here}" && pwd)
out=${2:-$here/tests/packaging/abi}

command -v abidw > /dev/null || { echo "abidw not found: install abigail-tools" >&2; exit 1; }

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT

# Debug info is what lets abidw describe types, not only symbols.  The optimisation
# level does not change the ABI, so debugoptimized is as good as the release build.
meson setup "$build" "$src" -Dbuildtype=debugoptimized \
    -Dtests=false -Ddemo=false -Dbench=false > "$build/setup.log"
ninja -C "$build" > "$build/build.log"

lib=$(readlink -f "$build/libdafl.so")
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')

# The options keep the file stable across machines and checkouts: only what the public
# header declares, no source locations, no paths of the build, hash-based type ids.
# The DT_NEEDED list is left out: which libraries dafl itself links is not its ABI.
# Translation-unit paths are as the compiler saw them (relative to the build folder);
# the sed makes them relative to the source root.
mkdir -p "$out"
abidw --headers-dir "$src/include" \
    --drop-private-types --exported-interfaces-only --no-elf-needed \
    --no-show-locs --no-corpus-path --no-comp-dir-path --type-id-style hash \
    "$lib" |
    sed "s#path='[^']*/\(src\|arch\)/#path='\1/#" > "$out/$soname.abi"

echo "wrote $out/$soname.abi ($(grep -c '<elf-symbol ' "$out/$soname.abi") symbols)"
