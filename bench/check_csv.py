#!/usr/bin/python3
"""Checks that dafl-bench's CSV output parses with one column set for every row.

    check_csv.py DAFL_BENCH OUT_FILE

Runs DAFL_BENCH on a few rows that carry different counters (the bandwidth loop, a
float32 loss, a bfloat16 loss, a keypoint batch: the only rows with extra_MiB), printing
CSV and writing CSV to OUT_FILE, then checks both: every row has the header's column
count, each of those rows is there, and the counters that apply have values.  Google
Benchmark's CSV reporter aborts when a row has a counter the first row lacked; this is the
test that it no longer can.
"""
import csv
import io
import math
import pathlib
import subprocess
import sys

# One row of each kind, named so that they match on any ISA: the scalar kernels always
# run, and the keypoint rows use the best ISA, whatever it is.
FILTER = ("^(bandwidth/fwd_grad/memory/4096"
          "|penalty_focal\\.logits\\.one_pass/fwd_grad/scalar/4096"
          "|penalty_focal\\.logits\\.one_pass\\.bf16/fwd_grad/scalar/65536"
          "|keypoints_coco/render/dafl/[^/]*-t1/)")
WANTED = {  # row name prefix -> counters that must have a value there
    "bandwidth/fwd_grad/memory/4096": ["dafl_threads"],
    "penalty_focal.logits.one_pass/fwd_grad/scalar/4096": ["bw_frac", "bytes_per_element"],
    "penalty_focal.logits.one_pass.bf16/fwd_grad/scalar/65536": ["bytes_per_element"],
    "keypoints_coco/render/dafl/": ["extra_MiB"],
}


def check(text, where):
    """Checks the CSV in text; lines before its header, if any, are skipped."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("name,")), None)
    if start is None:
        sys.exit(f"check_csv: no CSV header in {where}:\n{text}")
    rows = list(csv.reader(io.StringIO("\n".join(lines[start:]))))
    header, body = rows[0], rows[1:]
    bad = [r for r in body if len(r) != len(header)]
    if bad:
        sys.exit(f"check_csv: {where}: {len(bad)} rows without the header's {len(header)} "
                 f"columns, e.g. {bad[0]}")
    for prefix, counters in WANTED.items():
        row = next((r for r in body if r[0].startswith(prefix)), None)
        if row is None:
            sys.exit(f"check_csv: {where}: no row named {prefix}...")
        for name in counters:
            if name not in header:
                sys.exit(f"check_csv: {where}: no column {name}")
            value = row[header.index(name)]
            if not value or math.isnan(float(value)):
                sys.exit(f"check_csv: {where}: {row[0]} has no {name} ({value!r})")
    print(f"check_csv: {where}: {len(body)} rows x {len(header)} columns: {' '.join(header)}")


def main():
    exe, out_file = sys.argv[1], pathlib.Path(sys.argv[2])
    # 8x80x128x128 is the smallest largest-size that still registers the keypoint rows.
    cmd = [exe, "--benchmark_format=csv", "--benchmark_min_time=0.001",
           "--dafl_max_elements=10485760", f"--benchmark_filter={FILTER}",
           f"--benchmark_out={out_file}", "--benchmark_out_format=csv"]
    print("running:", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        print(proc.stdout)
        sys.exit(f"check_csv: dafl-bench failed (exit status {proc.returncode})")
    check(proc.stdout, "stdout")
    check(out_file.read_text(), str(out_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
