#!/bin/sh
# Checks that the numbers a release has to change together agree (run by `meson test`):
#   - the project version in meson.build and the DAFL_VERSION_* macros of dafl.h;
#   - the upstream part of the newest debian/changelog entry;
#   - the soversion, the Debian runtime package libdafl<soversion>, its symbols file and
#     the ABI baseline tests/packaging/abi/libdafl.so.<soversion>.abi.
# tests/packaging/abi/README.md describes a soversion bump step by step.
#
# usage: check_version.sh SOURCE_ROOT VERSION SOVERSION
set -eu

root=$1
version=$2
soversion=$3
status=0

fail() { echo "FAIL: $*"; status=1; }

macro() { sed -n "s/^#define $1 //p" "$root/include/dafl.h"; }
header_version="$(macro DAFL_VERSION_MAJOR).$(macro DAFL_VERSION_MINOR).$(macro DAFL_VERSION_PATCH)"
[ "$header_version" = "$version" ] ||
    fail "dafl.h has DAFL_VERSION_MAJOR/MINOR/PATCH $header_version, meson.build has $version"
[ "$(macro DAFL_VERSION_STRING)" = "\"$version\"" ] ||
    fail "dafl.h has DAFL_VERSION_STRING $(macro DAFL_VERSION_STRING), meson.build has $version"

if [ -f "$root/debian/changelog" ]; then
    # "dafl (0.1.0-1) unstable; urgency=medium": the upstream version is before the last '-'.
    deb_version=$(sed -n '1s/^[^ ]* (\(.*\)).*/\1/p' "$root/debian/changelog")
    [ "${deb_version%-*}" = "$version" ] ||
        fail "debian/changelog is at $deb_version, meson.build at $version (dch -v $version-1)"

    package=libdafl$soversion
    grep -qx "Package: $package" "$root/debian/control" ||
        fail "debian/control has no package $package for soversion $soversion"
    symbols=$root/debian/$package.symbols
    if [ -f "$symbols" ]; then
        head -n 1 "$symbols" | grep -q "^libdafl\.so\.$soversion $package " ||
            fail "$(basename "$symbols") does not start with 'libdafl.so.$soversion $package'"
    else
        fail "debian/$package.symbols is missing"
    fi
fi

baseline=$root/tests/packaging/abi/libdafl.so.$soversion.abi
if [ -f "$baseline" ]; then
    grep -q "soname='libdafl\.so\.$soversion'" "$baseline" ||
        fail "$(basename "$baseline") was not made from libdafl.so.$soversion"
else
    fail "no ABI baseline tests/packaging/abi/libdafl.so.$soversion.abi (tests/packaging/gen_abi_baseline.sh)"
fi

[ $status -ne 0 ] || echo "version $version, soversion $soversion: consistent"
exit $status
