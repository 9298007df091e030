#!/usr/bin/env bash
# What only a CPU with AVX-512 can show, in one run of at most 8 minutes on an x86-64
# machine (e.g. a 16-core machine lent for a short run): everything is written under
# "$OUT" (default: ./build-device-check).
#
#   1. machine.txt / machine.json   the CPU, its flags, cores, memory, compiler
#   2. build.log                    dafl built from this tree (release, native flags off)
#   3. test-ISA.log / .json         the whole suite with DAFL_ISA=scalar, avx2, avx512:
#                                   the fidelity test of the AVX-512 intrinsics on the
#                                   hardware, the compiler's own AVX-512 code and SLEEF's
#                                   AVX-512 branches against the scalar kernels bit for bit
#   4. golden.log                   the golden digests on every ISA
#   5. bench.json / bench.txt       dafl-bench, one thread: penalty focal, sigmoid focal,
#                                   softmax focal at 64 K, 8x80x128x128 and 64 M elements,
#                                   avx2 and avx512, next to the bandwidth loop
#   6. threads.jsonl / summary.txt  the same losses and sizes on 1, 2, 4, 8, 16 threads per
#                                   ISA (tools/device_thread_sweep.c), next to the
#                                   bandwidth loop on as many threads
#   7. device-check.json            what ran, what was skipped, and each step's status
#
# Without AVX-512 (or off x86-64) it writes a report saying so and exits 0.  With
# --dry-run it runs every step anyway with the ISAs the machine has (to try the script
# where there is no AVX-512; the avx512 cases are then skipped, the timings are not
# AVX-512's).  BUILD=dir reuses a build directory.  Exit status: 0 when every step that
# ran passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-$PWD/build-device-check}
BUILD=${BUILD:-build-device}
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
mkdir -p "$OUT"
START=$SECONDS
DEADLINE=$((START + 470)) # 8 minutes, less a margin for the summary
steps=()
failed=0

exec 3>&1 # the console, whatever a step's output is redirected to
log() { echo "device-check: $*" | tee -a "$OUT/device-check.log" >&3; }

# step NAME SECONDS COMMAND...: run with a time limit (never past the deadline), log it
step() {
    local name=$1 limit=$2
    shift 2
    local left=$((DEADLINE - SECONDS))
    if [ "$left" -lt 10 ]; then
        log "$name: SKIPPED, out of time"
        steps+=("{\"step\": \"$name\", \"status\": \"skipped: out of time\"}")
        failed=1
        return 1
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    local t0=$SECONDS
    log "$name (limit ${limit}s)"
    timeout "$limit" "$@"
    local rc=$?
    local status=ok
    if [ $rc -eq 124 ]; then status="timed out after ${limit}s"; elif [ $rc -ne 0 ]; then status="failed ($rc)"; fi
    [ "$status" = ok ] || failed=1
    log "$name: $status in $((SECONDS - t0))s"
    steps+=("{\"step\": \"$name\", \"status\": \"$status\", \"seconds\": $((SECONDS - t0))}")
    return $rc
}

finish() {
    {
        echo "{"
        echo "  \"avx512\": $avx512, \"dry_run\": $DRY, \"seconds\": $((SECONDS - START)),"
        echo "  \"note\": \"$1\","
        echo "  \"steps\": ["
        local i
        for i in "${!steps[@]}"; do
            printf '    %s%s\n' "${steps[$i]}" "$([ "$i" -lt $((${#steps[@]} - 1)) ] && echo ,)"
        done
        echo "  ]"
        echo "}"
    } >"$OUT/device-check.json"
    log "$1 (report: $OUT)"
    exit "$2"
}

# ---- 1. the machine ---------------------------------------------------------------------
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2)
model=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//')
cores=$(nproc)
has() { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }
avx512=false
if [ "$(uname -m)" = x86_64 ] && has avx512f && has avx512dq && has avx512bw && has avx512vl; then
    avx512=true
fi
{
    echo "model: $model"
    echo "cores: $cores"
    echo "memory: $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB"}')"
    echo "kernel: $(uname -srm)"
    echo "compiler: $(cc --version 2>/dev/null | head -1)"
    echo "avx512 F/DQ/BW/VL: $avx512"
    echo "flags:$flags"
    lscpu 2>/dev/null
} >"$OUT/machine.txt"
printf '{"model": "%s", "cores": %s, "avx512": %s, "x86_64": %s}\n' "$model" "$cores" "$avx512" \
    "$([ "$(uname -m)" = x86_64 ] && echo true || echo false)" >"$OUT/machine.json"
log "machine: $model, $cores cores, AVX-512 F/DQ/BW/VL: $avx512"

if [ "$avx512" != true ] && [ $DRY -eq 0 ]; then
    finish "no AVX-512 on this machine: nothing measured (run with --dry-run to try the steps)" 0
fi

# ---- 2. build ------------------------------------------------------------------------------
missing=""
for tool in meson ninja cc c++ pkg-config; do
    command -v $tool >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
    finish "missing tools:$missing (Debian: meson ninja-build build-essential pkg-config libsleef-dev check libbenchmark-dev)" 1
fi
bench=true
pkg-config --exists benchmark || bench=false
if [ ! -d "$BUILD" ]; then
    step setup 120 meson setup "$BUILD" -Ddemo=false -Dman=disabled -Dmpi_example=disabled \
        -Dbench=$bench >"$OUT/build.log" 2>&1 || finish "meson setup failed (build.log)" 1
fi
step build 240 ninja -C "$BUILD" -j "$cores" >>"$OUT/build.log" 2>&1 || finish "build failed (build.log)" 1

# ---- 3, 4. the suite on every ISA, the golden digests ----------------------------------------
for isa in scalar avx2 avx512; do
    DAFL_ISA=$isa step "tests-$isa" 150 meson test -C "$BUILD" --no-suite packaging \
        --num-processes "$cores" --print-errorlogs >"$OUT/test-$isa.log" 2>&1
    cp "$BUILD/meson-logs/testlog.json" "$OUT/test-$isa.json" 2>/dev/null
    grep -h 'SKIPPED\|active ISA\|golden digests' "$BUILD/meson-logs/testlog.txt" |
        sort | uniq -c >"$OUT/test-$isa-skips.txt"
done
: >"$OUT/golden.log"
for isa in scalar avx2 avx512; do
    DAFL_ISA=$isa step "golden-$isa" 60 "$BUILD/tests/test_golden" >>"$OUT/golden.log" 2>&1
done

# ---- 5. dafl-bench, one thread ----------------------------------------------------------------
sizes='(65536|10485760|67108864)'
losses='(penalty_focal\.logits\.one_pass|sigmoid_focal\.gamma2|softmax_focal\.c16)'
filter="^(${losses}/fwd_grad/(avx2|avx512)(-t[0-9]+)?|bandwidth/fwd_grad/memory(-t[0-9]+)?)/${sizes}\$"
if [ $bench = true ]; then
    step bench 150 "$BUILD/bench/dafl-bench" --benchmark_filter="$filter" \
        --benchmark_min_time=0.1 --benchmark_repetitions=3 \
        --benchmark_out="$OUT/bench.json" --benchmark_out_format=json \
        >"$OUT/bench.txt" 2>&1
else
    log "bench: SKIPPED, Google Benchmark (libbenchmark-dev) not installed"
    steps+=('{"step": "bench", "status": "skipped: no libbenchmark-dev"}')
fi

# ---- 6. threads ---------------------------------------------------------------------------------
sweep="$BUILD/device_thread_sweep"
step sweep-build 60 cc -std=c11 -O2 -Iinclude -Ibench -o "$sweep" tools/device_thread_sweep.c \
    bench/bandwidth.c "$BUILD/libdafl.a" $(pkg-config --libs --static sleef 2>/dev/null || echo -lsleef) \
    -lm -lpthread >"$OUT/sweep-build.log" 2>&1 &&
    step threads 150 "$sweep" avx2 avx512 -- 1 2 4 8 16 >"$OUT/threads.jsonl" 2>"$OUT/threads.err"
# Per loss, size and thread count: elements/s per ISA, avx512 over avx2, and each ISA's
# share of the bandwidth loop's elements/s on as many threads.
summarise() {
    awk '
    function get(k,   v) {
        if (!match($0, "\"" k "\": [^,}]*")) return ""
        v = substr($0, RSTART + length(k) + 4, RLENGTH - length(k) - 4)
        gsub(/"/, "", v)
        return v
    }
    /"name"/ {
        name = get("name"); key = get("elements") " " get("threads")
        if (name == "bandwidth") bw[key] = get("elements_per_second")
        else { r[name " " key " " get("isa")] = get("elements_per_second"); seen[name " " key] = 1 }
    }
    function ratio(a, b) { return (a != "" && b != "" && b > 0) ? sprintf("%.3f", a / b) : "-" }
    function num(a) { return a != "" ? sprintf("%.4g", a) : "-" }
    END {
        for (s in seen) {
            split(s, p, " "); k = p[2] " " p[3]
            a = r[s " avx2"]; b = r[s " avx512"]
            printf "%-14s %9d %3d %12s %12s %7s %8s %8s\n", p[1], p[2], p[3], num(a), num(b),
                   ratio(b, a), ratio(a, bw[k]), ratio(b, bw[k])
        }
    }' "$1" | sort -k1,1 -k2,2n -k3,3n
}
{
    printf "%-14s %9s %3s %12s %12s %7s %8s %8s\n" loss elements thr "avx2 el/s" "avx512 el/s" \
        512/2 "bw avx2" "bw 512"
    summarise "$OUT/threads.jsonl"
} >"$OUT/summary.txt"
cat "$OUT/summary.txt"

if [ "$avx512" != true ]; then
    finish "dry run without AVX-512: every step ran, the avx512 cases were skipped and nothing here is an AVX-512 figure" $failed
fi
finish "AVX-512 run complete" $failed
