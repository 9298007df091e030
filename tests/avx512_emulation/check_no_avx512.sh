#!/bin/sh
# Fails if any of the given objects or libraries holds an AVX-512 instruction, so that
# the AVX-512 emulation build cannot die with SIGILL on an AVX2 CPU.  An AVX-512
# instruction is one that
#   - is EVEX-encoded: its first byte after any address-size or segment prefix is 0x62
#     (in 64-bit mode 0x62 is only ever the EVEX prefix), which also catches the AVX-512VL
#     forms on xmm/ymm registers (vpternlogd, vcvtusi2ss, vpbroadcastd from a GPR...);
#   - or names a zmm register, an opmask register %k0-%k7 (kmovw and the other VEX-encoded
#     opmask instructions) or xmm16-31/ymm16-31.
# Usage: check_no_avx512.sh FILE...   (exit 0: none found; 1: found, listed; 2: error)
set -eu
if [ $# -eq 0 ]; then
    echo "usage: $0 FILE..." >&2
    exit 2
fi
objdump=${OBJDUMP:-objdump}
status=0
for f in "$@"; do
    listing=$("$objdump" -d --no-addresses "$f" 2>/dev/null || "$objdump" -d "$f") || {
        echo "$f: objdump failed" >&2
        exit 2
    }
    instructions=$(printf '%s\n' "$listing" | grep -c '	' || true)
    found=$(printf '%s\n' "$listing" | awk -F '\t' '
        NF >= 3 {
            n = split($2, b, " ")
            i = 1
            while (i <= n && b[i] ~ /^(67|26|2e|36|3e|64|65)$/) i++
            if ((i <= n && b[i] == "62") ||
                $3 ~ /%zmm|%k[0-7]([^0-9]|$)|%[xy]mm(1[6-9]|2[0-9]|3[01])/)
                print
        }')
    if [ -n "$found" ]; then
        echo "$f: $(printf '%s\n' "$found" | wc -l) AVX-512 instructions, the first 20:"
        printf '%s\n' "$found" | head -20
        status=1
    else
        echo "$f: no AVX-512 instruction among $instructions lines of disassembly"
    fi
done
exit $status
