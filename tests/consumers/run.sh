#!/usr/bin/env bash
# Builds and runs the consumer projects the way users build theirs:
#   tests/consumers/run.sh cmake PREFIX      the CMake project against dafl installed
#                                            under PREFIX (e.g. a DESTDIR staging tree's
#                                            usr, or /usr), shared and static
#   tests/consumers/run.sh meson-subproject  the Meson project with this source tree as
#                                            its subproject: only the library is built
#   tests/consumers/run.sh meson-installed   the Meson project against the dafl that
#                                            pkg-config finds (no fallback)
# Run from the top of the source tree.
set -euo pipefail

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r tests/consumers/. "$work/"

case ${1:-} in
cmake)
    prefix=$(realpath "$2")
    cmake -S "$work/cmake" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    cmake --build "$work/build"
    libdir=$(dirname "$(find "$prefix"/lib* -maxdepth 2 -name 'libdafl.so.*' -type f | head -n 1)")
    LD_LIBRARY_PATH=$libdir "$work/build/consumer_shared"
    LD_LIBRARY_PATH=$libdir ldd "$work/build/consumer_shared" | grep -F "$libdir/libdafl.so." ||
        { echo "FAIL: consumer_shared does not load the libdafl.so.* of $prefix"; exit 1; }
    "$work/build/consumer_static"
    if ldd "$work/build/consumer_static" | grep -q 'libdafl\.so'; then
        echo "FAIL: consumer_static loads libdafl.so"; exit 1
    fi
    ;;
meson-subproject)
    # The committed and the untracked (not ignored) files: what a release tarball holds.
    mkdir -p "$work/meson/subprojects/dafl"
    git ls-files -z --cached --others --exclude-standard |
        xargs -0 cp --parents -t "$work/meson/subprojects/dafl"
    test -f "$work/meson/subprojects/dafl/meson.build"
    meson setup "$work/build" "$work/meson" --force-fallback-for=dafl
    targets=$(meson introspect --targets "$work/build" |
        python3 -c 'import json, sys; print(*sorted(t["name"] for t in json.load(sys.stdin)))')
    echo "targets: $targets"
    for target in $targets; do
        case $target in
        consumer | dafl | dafl_scalar* | dafl_avx2 | dafl_avx512 | dafl_avx512_bf16 | dafl_neon) ;;
        *) echo "FAIL: the subproject builds $target"; exit 1 ;;
        esac
    done
    dependencies=$(meson introspect --dependencies "$work/build" |
        python3 -c 'import json, sys; print(*sorted(d["name"] for d in json.load(sys.stdin)))')
    echo "dependencies: $dependencies"
    for dependency in $dependencies; do
        case $dependency in
        cairo | check | benchmark | mpi | ompi* | mpich*)
            echo "FAIL: the subproject looks for $dependency"; exit 1 ;;
        esac
    done
    ninja -C "$work/build"
    meson test -C "$work/build" --print-errorlogs
    ;;
meson-installed)
    meson setup "$work/build" "$work/meson" --wrap-mode=nofallback
    ninja -C "$work/build"
    meson test -C "$work/build" --print-errorlogs
    ;;
*)
    echo "usage: $0 cmake PREFIX | meson-subproject | meson-installed" >&2
    exit 2
    ;;
esac
