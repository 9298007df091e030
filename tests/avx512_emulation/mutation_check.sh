#!/bin/sh
# Shows that the AVX-512 emulation tests fail when they should.  Each step breaks one
# thing on purpose and passes only if the tests named for it FAIL:
#   1. _mm512_extractf32x8_ps returns the low half for either index
#      (DAFL_AVX512_EMULATION_MUTANT=1): the kernel tests isa and golden, and the
#      fidelity test, must fail;
#   2. SIMDe's own _mm512_abs_ps, which keeps the sign of -0.0 and of negative NaNs
#      (DAFL_AVX512_EMULATION_MUTANT=2): the fidelity test must fail;
#   3. _mm512_cvtps_ph truncates whatever rounding its immediate asks for
#      (DAFL_AVX512_EMULATION_MUTANT=3): the half-precision tests (half, guard's float16
#      cases compare with the scalar kernels) and the fidelity test must fail;
#   4. the AVX-512 kernel compiled with real AVX-512 flags: check_no_avx512.sh must
#      reject it;
#   5. the (unbroken) emulation build on a CPU without AVX2, under qemu-x86_64 -cpu
#      Nehalem, where it offers no avx512 kernels: every test must fail rather than skip
#      (only where qemu-x86_64 is installed).
# Steps 4 and 5 run first, on the unbroken build as it is, then 1 to 3.
# Usage: tests/avx512_emulation/mutation_check.sh [WORK_DIR]   (default: build-mutant; an
# existing emulation build may be given: it is left with mutant 0, as configured before)
# Exit status 0 when every step failed as it should.
set -eu
cd "$(dirname "$0")/../.."
work=${1:-build-mutant}
here=tests/avx512_emulation
status=0

expect_failures() { # LOG TEST...: each named test must be reported FAIL in LOG
    log=$1
    shift
    for t in "$@"; do
        if grep -E "dafl:$t +FAIL" "$log" >/dev/null; then
            echo "    as it should: $t FAILS"
        else
            echo "    WRONG: $t did not fail"
            status=1
        fi
    done
}

mutant() { # N: the emulation build with mutant N (only the emulated kernel and the
    # fidelity test take the option, so only they are compiled again)
    if [ -d "$work" ]; then
        meson configure "$work" -Davx512_emulation_mutant="$1" >/dev/null
    else
        meson setup "$work" -Davx512_emulation=true -Ddemo=false -Dbench=false -Dman=disabled \
            -Dmpi_example=disabled -Dpython=disabled -Davx512_emulation_mutant="$1" >/dev/null
    fi
    ninja -C "$work" >/dev/null
}

mutant 0 # the unbroken build first (as configured: nothing to compile)
echo "::: the instruction check rejects a real AVX-512 build of the kernel"
cc -std=c11 -O2 -ffp-contract=off -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma \
    -DDAFL_BUILDING_LIBRARY -Iinclude -Isrc -c arch/x86/losses_avx512.c \
    -o "$work/losses_avx512_native.o"
if "$here/check_no_avx512.sh" "$work/losses_avx512_native.o" >"$work/native-check.log"; then
    echo "    WRONG: no AVX-512 instruction found in the native object"
    status=1
else
    echo "    as it should: $(head -1 "$work/native-check.log" | sed 's/.*: //')"
    sed -n 2,3p "$work/native-check.log" | sed 's/^/    /'
fi

echo "::: the emulation build on a CPU without AVX2 (qemu-x86_64 -cpu Nehalem)"
if command -v qemu-x86_64 >/dev/null; then
    meson test -C "$work" accuracy semantics errors isa golden guard threads \
        --wrapper 'qemu-x86_64 -cpu Nehalem' --timeout-multiplier 4 >"$work/nehalem.log" 2>&1 || true
    grep -E '^ *[0-9]+/[0-9]+ ' "$work/nehalem.log" | sed 's/^/    /'
    # every test program that links the suite's helpers must fail (reference and targets
    # run only the default ISA and have no avx512 case to skip)
    expect_failures "$work/nehalem.log" accuracy semantics errors isa golden guard threads
    meson test -C "$work" --suite avx512 --wrapper 'qemu-x86_64 -cpu Nehalem' \
        >"$work/nehalem-fidelity.log" 2>&1 || true
    expect_failures "$work/nehalem-fidelity.log" avx512-fidelity
else
    echo "    not run: qemu-x86_64 is not installed"
fi

echo "::: mutant 1: _mm512_extractf32x8_ps(v, 1) returns the low half"
mutant 1
meson test -C "$work" isa golden avx512-fidelity >"$work/mutant1.log" 2>&1 || true
grep -E '^ *[0-9]+/[0-9]+ ' "$work/mutant1.log" | sed 's/^/    /'
expect_failures "$work/mutant1.log" isa golden avx512-fidelity
grep -h -m1 'F:.*extractf32x8\|F:.*reduced differs\|F:.*digest' \
    "$work"/meson-logs/testlog.txt | cut -c1-160 | sed 's/^/    first failure: /' || true

echo "::: mutant 2: SIMDe's own _mm512_abs_ps"
mutant 2
meson test -C "$work" --suite avx512 >"$work/mutant2.log" 2>&1 || true
grep -E '^ *[0-9]+/[0-9]+ ' "$work/mutant2.log" | sed 's/^/    /'
expect_failures "$work/mutant2.log" avx512-fidelity
grep -h -m1 'F:.*abs_ps' "$work"/meson-logs/testlog.txt | cut -c1-160 |
    sed 's/^/    first failure: /' || true

echo "::: mutant 3: _mm512_cvtps_ph truncates instead of rounding to nearest even"
mutant 3
meson test -C "$work" half guard avx512-fidelity >"$work/mutant3.log" 2>&1 || true
grep -E '^ *[0-9]+/[0-9]+ ' "$work/mutant3.log" | sed 's/^/    /'
expect_failures "$work/mutant3.log" half guard avx512-fidelity
grep -h -m1 'F:.*cvtps_ph\|F:.*narrowed\|F:.*grad\[' "$work"/meson-logs/testlog.txt |
    cut -c1-160 | sed 's/^/    first failure: /' || true


# back to the unbroken configuration; the next ninja compiles the kernel again
meson configure "$work" -Davx512_emulation_mutant=0 >/dev/null

if [ $status -eq 0 ]; then
    echo "mutation check: every deliberate break was caught"
else
    echo "mutation check: FAILED (a deliberate break went unnoticed)"
fi
exit $status
