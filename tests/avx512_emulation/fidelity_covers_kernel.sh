#!/bin/sh
# Fails unless every _mm512_* intrinsic and Sleef_* function that the AVX-512 kernel
# source uses is exercised by the fidelity test.
# Usage: fidelity_covers_kernel.sh KERNEL.c FIDELITY_TEST.c
set -eu
used=$(grep -o '_mm512_[a-z0-9_]*\|Sleef_[a-z0-9_]*' "$1" | sort -u)
missing=""
for name in $used; do
    grep -q "$name(" "$2" || missing="$missing $name"
done
if [ -n "$missing" ]; then
    echo "not checked by $(basename "$2"):$missing"
    exit 1
fi
echo "all $(echo "$used" | wc -l) intrinsics and SLEEF functions of $(basename "$1") are checked"
