#!/usr/bin/env bash
# The test suite under the dynamic checkers, each failing on its first report:
#
#   asan      AddressSanitizer + UndefinedBehaviorSanitizer, every test
#   tsan      ThreadSanitizer, the threaded tests (every test whose name has "thread")
#   valgrind  memcheck (leaks included) of every test with DAFL_ISA=scalar
#
#   tests/sanitize.sh [asan] [tsan] [valgrind]      (default: all three, in that order)
#
# Environment: SANITIZE_BUILD_DIR (default build-sanitize; one sub-directory per checker),
# CC (default gcc; clang works too), TIMEOUT_MULTIPLIER (default 10, for meson and Check).
# Needs only Debian packages: gcc (or clang with libclang-rt-*-dev) and valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${SANITIZE_BUILD_DIR:-build-sanitize}
export CC=${CC:-gcc}
MULT=${TIMEOUT_MULTIPLIER:-10}
# Check's own per-test timeouts stretch with meson's.
export CK_TIMEOUT_MULTIPLIER=$MULT
CHECKS=("$@")
[ ${#CHECKS[@]} -gt 0 ] || CHECKS=(asan tsan valgrind)

# The packaging suite inspects the built binaries (symbols, ABI) rather than running
# code, so it is left to the ordinary build.  Options that would only add noise (the
# demo's PNGs, the benchmark suite, the MPI example, the manual page) are off; the
# library and every test are built.
COMMON=(-Dbuildtype=debugoptimized -Ddemo=false -Dbench=false -Dmpi_example=disabled
        -Dman=disabled)
EXTRA_CFLAGS=""
if "$CC" --version 2>/dev/null | grep -qi clang; then
    # Clang leaves FP_FAST_FMA undefined under -ffp-contract=off even with -mfma;
    # sleef.h needs it to declare the purecfma functions of the scalar kernels.
    EXTRA_CFLAGS="-DFP_FAST_FMA=1"
fi

# The names of a build's tests, without project and suite prefixes (meson 1.0 prints
# "dafl / threads", later versions "dafl:threads" or "packaging - dafl:abi").
list_tests() { # dir, meson test options...
    meson test -C "$@" --list 2>/dev/null | sed -E 's/^.*(:| \/ )//'
}

configure() { # dir, meson options...
    local dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "${COMMON[@]}" "$@"
    fi
    ninja -C "$dir"
}

run_asan() {
    echo "::: AddressSanitizer + UndefinedBehaviorSanitizer ($CC)"
    configure "$OUT/asan" -Db_sanitize=address,undefined -Db_lundef=false \
        "-Dc_args=-fno-sanitize-recover=all -fno-omit-frame-pointer $EXTRA_CFLAGS"
    # allocator_may_return_null: one test provokes DAFL_ERR_OUT_OF_MEMORY with an
    # impossible calloc, which must return NULL rather than abort.
    ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        meson test -C "$OUT/asan" --print-errorlogs --timeout-multiplier "$MULT" \
        --no-suite packaging
}

run_tsan() {
    echo "::: ThreadSanitizer ($CC): the threaded tests (threads, environments, unloading)"
    configure "$OUT/tsan" -Db_sanitize=thread -Db_lundef=false \
        "-Dc_args=-fno-omit-frame-pointer $EXTRA_CFLAGS"
    mapfile -t threaded < <(list_tests "$OUT/tsan" | grep -iE 'thread|fpenv|unload' || true)
    if [ ${#threaded[@]} -eq 0 ]; then
        echo "no threaded tests found: the test list could not be read" >&2
        return 1
    fi
    echo "tests: ${threaded[*]}"
    # die_after_fork=0: the fork tests start threads in the child of a threaded parent,
    # which TSan refuses by default (its own state may be inconsistent there).
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:report_signal_unsafe=0:die_after_fork=0 \
        meson test -C "$OUT/tsan" --print-errorlogs --timeout-multiplier "$MULT" \
        "${threaded[@]}"
}

run_valgrind() {
    echo "::: valgrind memcheck, DAFL_ISA=scalar"
    command -v valgrind > /dev/null || { echo "valgrind is not installed" >&2; return 1; }
    configure "$OUT/valgrind" "-Dc_args=$EXTRA_CFLAGS"
    # The isa test compares every SIMD ISA with the scalar kernels bit for bit, and
    # valgrind's emulation of AVX2/FMA does not reproduce every bit (the sign of some
    # zero results), so it is left out; the guard test honours DAFL_ISA=scalar.
    # fpenv sets rounding modes, FTZ and traps, which valgrind does not emulate; the
    # Python suite (a whole interpreter and PyTorch) is not valgrind's to check; threads
    # and keypoints (64-thread calls, forks, races, large batches: 6 and 2 minutes under
    # valgrind) are left to ASan (with LeakSanitizer) and TSan above.
    mapfile -t tests < <(list_tests "$OUT/valgrind" --no-suite packaging --no-suite python |
                         grep -vxE 'isa|fpenv|threads|keypoints')
    if [ ${#tests[@]} -eq 0 ]; then
        echo "no tests found: the test list could not be read" >&2
        return 1
    fi
    local VALGRIND="valgrind -q --error-exitcode=1 --leak-check=full --show-possibly-lost=no"
    VALGRIND+=" --errors-for-leak-kinds=definite,indirect"
    # CK_FORK=no: every test runs in the process valgrind watches.
    DAFL_ISA=scalar CK_FORK=no \
        meson test -C "$OUT/valgrind" --print-errorlogs --timeout-multiplier "$MULT" \
        --wrapper "$VALGRIND" \
        "${tests[@]}"
}

for c in "${CHECKS[@]}"; do
    case "$c" in
    asan) run_asan ;;
    tsan) run_tsan ;;
    valgrind) run_valgrind ;;
    *) echo "unknown check '$c' (asan, tsan or valgrind)" >&2; exit 2 ;;
    esac
done
echo "::: sanitizers clean: ${CHECKS[*]}"
