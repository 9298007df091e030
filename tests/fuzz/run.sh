#!/usr/bin/env bash
# Build the libFuzzer harnesses of tests/fuzz/ with Clang (-fsanitize=fuzzer,address,
# undefined) against the library compiled with the same sanitizers, re-run every saved
# crash input under tests/fuzz/regressions/, then fuzz each harness for a bounded time.
#
#   tests/fuzz/run.sh [seconds per harness, default 60] [harness ...]
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz), CC (default clang).
# A crash, leak, timeout or out-of-memory input found while fuzzing is copied to
# tests/fuzz/regressions/<harness>/ (commit it: from then on it is re-run here) and the
# script exits non-zero.  Only Debian packages are needed: clang and libclang-rt-*-dev.
set -euo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER_HARNESS=${1:-60}
shift || true
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
export CC=${CC:-clang}
HARNESSES=(penalty_focal sigmoid_focal bce mse softmax_focal stats targets dispatch
           count_positives pool keypoints half)
if [ $# -gt 0 ]; then HARNESSES=("$@"); fi

# Every sanitizer report is fatal; impossible allocations return NULL (the library
# reports DAFL_ERR_OUT_OF_MEMORY) instead of aborting.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
SAN_FLAGS=("-fsanitize=address,undefined" -fno-sanitize-recover=all -fno-omit-frame-pointer)

# Clang leaves FP_FAST_FMA undefined under the project's -ffp-contract=off, even with
# -mfma, and without it sleef.h hides the purecfma functions that src/kernels_scalar.c
# needs; GCC defines it.  Say so explicitly (harmless for the other translation units).
CLANG_FMA=-DFP_FAST_FMA=1

echo "::: building the library with $CC and ASan + UBSan (coverage for libFuzzer)"
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" -Dbuildtype=debugoptimized -Db_sanitize=address,undefined \
        -Db_lundef=false -Dtests=false -Ddemo=false -Dbench=false -Dmpi_example=disabled \
        -Dman=disabled \
        "-Dc_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all \
-fno-omit-frame-pointer $CLANG_FMA"
fi
ninja -C "$BUILD" libdafl.a

# The library's dependencies, as its build links them (SLEEF, libm, threads).
read -r -a SLEEF_LIBS <<< "$(pkg-config --libs sleef 2>/dev/null || echo -lsleef)"

echo "::: building the harnesses"
mkdir -p "$BUILD/fuzz"
for h in "${HARNESSES[@]}"; do
    src=tests/fuzz/fuzz_$h.c
    [ -f "$src" ] || { echo "no harness $src" >&2; exit 2; }
    "$CC" -std=c11 -g -O1 -Wall -Wextra -fsanitize=fuzzer "${SAN_FLAGS[@]}" \
        -Iinclude "$src" "$BUILD/libdafl.a" "${SLEEF_LIBS[@]}" -lm -pthread \
        -o "$BUILD/fuzz/fuzz_$h"
done

echo "::: re-running saved crash inputs (tests/fuzz/regressions/)"
for h in "${HARNESSES[@]}"; do
    dir=tests/fuzz/regressions/$h
    [ -d "$dir" ] || continue
    mapfile -t inputs < <(find "$dir" -type f ! -name '*.md' | sort)
    [ ${#inputs[@]} -gt 0 ] || continue
    echo "fuzz_$h: ${#inputs[@]} regression input(s)"
    "$BUILD/fuzz/fuzz_$h" "${inputs[@]}" > "$BUILD/fuzz/regressions-$h.log" 2>&1 || {
        cat "$BUILD/fuzz/regressions-$h.log" >&2
        echo "fuzz_$h fails on a saved regression input" >&2
        exit 1
    }
done

[ "$SECONDS_PER_HARNESS" -gt 0 ] || { echo "::: fuzzing skipped (0 s)"; exit 0; }

echo "::: fuzzing, $SECONDS_PER_HARNESS s per harness"
failed=()
summary=()
for h in "${HARNESSES[@]}"; do
    work=$BUILD/fuzz/corpus-$h
    artifacts=$BUILD/fuzz/artifacts-$h
    rm -rf "$artifacts"
    mkdir -p "$work" "$artifacts"
    seeds=tests/fuzz/corpus/$h
    log=$BUILD/fuzz/fuzz-$h.log
    status=0
    # New inputs go to the first (scratch) corpus; the seeds are only read.
    "$BUILD/fuzz/fuzz_$h" -max_total_time="$SECONDS_PER_HARNESS" -timeout=20 \
        -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$work" "$seeds" > "$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 || true)
    summary+=("$(printf 'fuzz_%-16s %10s executions  %s' "$h" "${execs:-?}" "$cov")")
    found=$(find "$artifacts" -type f | sort)
    if [ $status -ne 0 ] || [ -n "$found" ]; then
        tail -n 60 "$log" >&2
        mkdir -p "tests/fuzz/regressions/$h"
        for a in $found; do
            cp "$a" "tests/fuzz/regressions/$h/"
            echo "saved $(basename "$a") to tests/fuzz/regressions/$h/" >&2
        done
        failed+=("$h")
    fi
done

echo "::: executions per harness"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "::: fuzzing found problems in: ${failed[*]}" >&2
    echo "    (the inputs are saved under tests/fuzz/regressions/)" >&2
    exit 1
fi
echo "::: no crashes"
