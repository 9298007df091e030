#!/bin/sh
# Fails unless every _mm512_* intrinsic and Sleef_* function that the AVX-512 kernel
# source uses is exercised by one of the tests named (the fidelity test; the AVX512_BF16
# table's two, vcvtneps2bf16 and vfpclassps, by test_avx512_bf16.c).
# Usage: fidelity_covers_kernel.sh KERNEL.c TEST.c...
set -eu
kernel=$1
shift
used=$(grep -o '_mm512_[a-z0-9_]*\|Sleef_[a-z0-9_]*' "$kernel" | sort -u)
missing=""
for name in $used; do
    cat "$@" | grep -q "$name(" || missing="$missing $name"
done
if [ -n "$missing" ]; then
    echo "not checked by $*:$missing"
    exit 1
fi
echo "all $(echo "$used" | wc -l) intrinsics and SLEEF functions of $(basename "$kernel") are checked"
