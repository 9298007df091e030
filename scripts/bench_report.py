#!/usr/bin/python3
"""Runs dafl's benchmark suite and writes the results: docs/benchmarks.md and a plot.

    /usr/bin/python3 scripts/bench_report.py [--build-dir build] [--quick]

It runs build/bench/dafl-bench with --benchmark_format=json (every benchmark measured
--min-time seconds, --repetitions times, the fastest repetition reported), optionally the PyTorch
comparison (scripts/bench_torch.py, when Debian's python3-torch is installed), and writes
  - docs/benchmarks.md: the machine, the targets of issue #4 with what was measured, the
    tables, the PyTorch comparison;
  - docs/bench-throughput.png: elements/s against size, one line per ISA and per
    baseline, with the memory-bandwidth limit drawn in.
The plot uses matplotlib (Debian: sudo apt-get install python3-matplotlib); without it a
plainer PNG is drawn by this script itself.

A full run takes about ten minutes on a 2-core machine; --quick (short measurements, one
repetition) about two.  --from-json re-renders the documents from an earlier run's raw
results without measuring again.  Times are reported, never checked: the script fails
only when the benchmark program or the PyTorch comparison fails its correctness checks.
"""

import argparse
import datetime
import json
import math
import os
import pathlib
import platform
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CENTERNET = 8 * 80 * 128 * 128
HEADLINE = "penalty_focal.logits.one_pass"

SHORT_TITLES = {
    "penalty_focal.logits.default": "penalty focal, logits, default call",
    "penalty_focal.logits.one_pass": "penalty focal, logits, one pass",
    "penalty_focal.clamped.one_pass": "penalty focal, clamped, one pass",
    "sigmoid_focal.gamma2": "sigmoid focal, gamma 2",
    "sigmoid_focal.gamma2_5": "sigmoid focal, gamma 2.5",
    "bce_with_logits": "BCE with logits",
    "softmax_focal.c16": "softmax focal, 16 classes",
    "mse.c16": "MSE, 16 channels",
}

LOSS_TITLES = {
    "penalty_focal.logits.default": "penalty-reduced focal, logits, default call "
                                    "(divide by positives, targets validated)",
    "penalty_focal.logits.one_pass": "penalty-reduced focal, logits, one pass "
                                     "(NORMALIZER + TRUST_TARGETS)",
    "penalty_focal.clamped.one_pass": "penalty-reduced focal, CenterNet's clamped logits, "
                                      "one pass",
    "sigmoid_focal.gamma2": "sigmoid focal, gamma 2",
    "sigmoid_focal.gamma2_5": "sigmoid focal, gamma 2.5",
    "bce_with_logits": "BCE with logits",
    "softmax_focal.c16": "softmax focal, 16 classes",
    "mse.c16": "heatmap MSE, 16 weighted channels",
}


# ---- running ----------------------------------------------------------------------

def run_suite(exe, min_time, repetitions, max_elements):
    """Runs the benchmark program, shows progress, returns its parsed JSON output."""
    cmd = [str(exe), "--benchmark_format=json", f"--benchmark_min_time={min_time}"]
    if repetitions > 1:
        cmd.append(f"--benchmark_repetitions={repetitions}")  # every repetition reported
    if max_elements:
        cmd.append(f"--dafl_max_elements={max_elements}")
    print("running:", " ".join(cmd), flush=True)
    lines = []
    done = 0
    name = ""
    # The JSON arrives one benchmark at a time; a line per finished benchmark shows that
    # the run is alive (the full run takes minutes).
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            lines.append(line)
            m = re.match(r'\s*"run_name": "(.*)",', line)
            if m:
                name = m.group(1)
            finished = (repetitions == 1 and m) or '"aggregate_name": "median"' in line
            if finished:
                done += 1
                print(f"\r{done:4d} {name[:70]:70s}", end="", flush=True)
        proc.wait()
    print()
    if proc.returncode != 0:
        sys.exit(f"bench_report.py: {exe.name} failed (exit status {proc.returncode})")
    return json.loads("".join(lines))


def run_torch(lib, repeats, out_json):
    script = ROOT / "scripts" / "bench_torch.py"
    cmd = ["/usr/bin/python3", str(script), "--lib", str(lib), "--repeats", str(repeats),
           "--json", str(out_json)]
    print("running:", " ".join(cmd), flush=True)
    status = subprocess.call(cmd)
    if status != 0:
        sys.exit("bench_report.py: the PyTorch comparison failed (see above)")
    return json.loads(out_json.read_text())


def torch_available():
    probe = "import torch, torchvision"
    return subprocess.call(["/usr/bin/python3", "-c", probe], stderr=subprocess.DEVNULL) == 0


# ---- results ----------------------------------------------------------------------

class Results:
    """Elements/s for every loss/pass/impl/size of one run: the fastest repetition.

    On a shared machine other work only ever slows a repetition down, so the fastest one
    is the steadiest estimate of what the code itself costs (medians moved by 10 % and
    more between runs here)."""

    def __init__(self, raw):
        self.context = raw.get("context", {})
        self.rate = {}  # (loss, pass, impl, size) -> elements per second
        self.bytes_rate = {}
        medians = {}
        for b in raw["benchmarks"]:
            if b.get("error_occurred"):
                continue
            # a benchmark timed in real time (the threaded ones) carries a suffix
            parts = b["run_name"].removesuffix("/real_time").split("/")
            if len(parts) != 4:
                continue
            key = (parts[0], parts[1], parts[2], int(parts[3]))
            if b.get("run_type") == "aggregate":
                # results saved with aggregates only (older runs): their medians
                if b.get("aggregate_name") == "median":
                    medians[key] = b
                continue
            if b["items_per_second"] > self.rate.get(key, 0.0):
                self.rate[key] = b["items_per_second"]
                self.bytes_rate[key] = b.get("bytes_per_second", 0.0)
        for key, b in medians.items():
            if key not in self.rate:
                self.rate[key] = b["items_per_second"]
                self.bytes_rate[key] = b.get("bytes_per_second", 0.0)
        self.sizes = sorted({k[3] for k in self.rate})
        self.isas = self.context.get("dafl_isas_measured", "").split()
        self.skipped = [s for s in self.context.get("dafl_isas_skipped", "").split()
                        if s != "none"]

    def get(self, loss, pas, impl, size):
        return self.rate.get((loss, pas, impl, size))

    def bandwidth(self, pas, size):
        return self.get("bandwidth", pas, "memory", size)

    def naive(self, impl, size):
        return self.get("naive_penalty_focal.clamped", "fwd_grad", impl, size)

    def threaded_impls(self):
        return sorted({k[2] for k in self.rate if re.fullmatch(r"\w+-t\d+", k[2])})

    def threaded(self, impl, size):
        """A threaded run: dafl's headline call (avx2-t2) or the bandwidth loop (memory-t2)."""
        loss = "bandwidth" if impl.startswith("memory-") else HEADLINE
        return self.get(loss, "fwd_grad", impl, size)


def ratio(a, b):
    return a / b if a is not None and b else None


def size_name(n):
    if n == CENTERNET:
        return "8x80x128x128"
    for unit, div in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


def rate_text(r):
    if r is None:
        return "—"
    if r >= 1e9:
        return f"{r / 1e9:.2f} G"
    return f"{r / 1e6:.0f} M" if r >= 1e8 else f"{r / 1e6:.1f} M"


def x_text(r, digits=1):
    return "—" if r is None else f"{r:.{digits}f}x"


def frac_text(r):
    return "—" if r is None else f"{r:.2f}"


# ---- the machine ------------------------------------------------------------------

def machine_description(context):
    info = {"model": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "flags": set()}
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
        if m:
            info["model"] = m.group(1).strip()
        m = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
        if m:
            info["flags"] = set(m.group(1).split())
        info["cpus"] = len(re.findall(r"^processor\s*:", text, re.M)) or info["cpus"]
    except OSError:
        pass
    try:
        m = re.search(r"MemTotal:\s*(\d+) kB", pathlib.Path("/proc/meminfo").read_text())
        info["memory_gib"] = int(m.group(1)) / (1 << 20) if m else None
    except OSError:
        info["memory_gib"] = None
    try:
        info["compiler"] = subprocess.run(["cc", "--version"], capture_output=True,
                                          text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        info["compiler"] = "unknown"
    caches = context.get("caches", [])
    info["caches"] = ", ".join(
        f"L{c['level']} {'data' if c['type'] == 'Data' else c['type'].lower()} "
        f"{c['size'] // 1024} KiB" for c in caches if c["type"] in ("Data", "Unified"))
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                "src", "arch", "include"],
                               capture_output=True, text=True).stdout.strip()
        info["commit"] = (head + (" with uncommitted changes to the library" if dirty else "")
                          if head else "unknown")
    except OSError:
        info["commit"] = "unknown"
    simd = [f for f in ("sse4_2", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "asimd")
            if f in info["flags"]]
    info["simd"] = " ".join(simd) or "none listed"
    info["vm"] = "hypervisor" in info["flags"]
    return info


# ---- the plot ---------------------------------------------------------------------

PLOT_COLORS = {"bandwidth": "#555555", "O2": "#d62728", "autovec": "#ff7f0e",
               "scalar": "#9467bd", "avx2": "#1f77b4", "avx512": "#2ca02c", "neon": "#17becf"}


def plot_series(res):
    """The lines of the left panel: (label, color, dashed, [(size, rate)])."""
    series = [("memory bandwidth limit (12 B/element)", PLOT_COLORS["bandwidth"], True,
               [(n, res.bandwidth("fwd_grad", n)) for n in res.sizes]),
              ("naive C loop, -O2", PLOT_COLORS["O2"], False,
               [(n, res.naive("O2", n)) for n in res.sizes]),
              ("naive C loop, -O3 -march=native -ffast-math", PLOT_COLORS["autovec"], False,
               [(n, res.naive("autovec", n)) for n in res.sizes])]
    for isa in res.isas:
        series.append((f"dafl {isa}", PLOT_COLORS.get(isa, "#000000"), False,
                       [(n, res.get(HEADLINE, "fwd_grad", isa, n)) for n in res.sizes]))
    if res.isas:
        best = res.isas[-1]
        series.append((f"dafl {best}, default call", PLOT_COLORS.get(best, "#000000"), True,
                       [(n, res.get("penalty_focal.logits.default", "fwd_grad", best, n))
                        for n in res.sizes]))
    for impl in res.threaded_impls():  # e.g. avx2-t2: all of dafl's threads
        isa, threads = impl.split("-t")
        what = "bandwidth loop" if isa == "memory" else f"dafl {isa}"
        series.append((f"{what} on {threads} threads (wall-clock time)",
                       "#7f7f7f" if isa == "memory" else "#000000", True,
                       [(n, res.threaded(impl, n)) for n in res.sizes]))
    return [(label, color, dashed, [(n, r) for n, r in points if r])
            for label, color, dashed, points in series]


def loss_series(res):
    """The right panel: every loss with its gradient on the best ISA."""
    if not res.isas:
        return []
    best = res.isas[-1]
    palette = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
               "#7f7f7f"]
    out = [("memory bandwidth limit", PLOT_COLORS["bandwidth"], True,
            [(n, res.bandwidth("fwd_grad", n)) for n in res.sizes])]
    for i, loss in enumerate(LOSS_TITLES):
        pts = [(n, res.get(loss, "fwd_grad", best, n)) for n in res.sizes]
        out.append((LOSS_TITLES[loss].split(" (")[0], palette[i % len(palette)], False,
                    [(n, r) for n, r in pts if r]))
    return out


def write_plot(res, machine, path, title_date, plain=False):
    left, right = plot_series(res), loss_series(res)
    best = res.isas[-1] if res.isas else "?"
    title = (f"dafl throughput — {machine['model']}, {machine['cpus']} cores"
             f"{' (a shared virtual machine)' if machine['vm'] else ''}, {title_date}")
    try:
        if plain:
            raise ImportError("--plain-png")
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not found (sudo apt-get install python3-matplotlib): "
              "drawing a plain PNG instead")
        write_plain_png(left, path, title)
        return
    fig, axes = plt.subplots(1, 2, figsize=(15, 8), sharey=True)
    panels = [(axes[0], left, "penalty-reduced focal loss, logits, forward + gradient, one thread"),
              (axes[1], right, f"every loss, forward + gradient, dafl {best}, one thread")]
    caches = [c for c in res.context.get("caches", []) if c["type"] in ("Data", "Unified")]
    for ax, series, subtitle in panels:
        for label, color, dashed, points in series:
            if not points:
                continue
            xs, ys = zip(*points)
            ax.plot(xs, ys, label=label, color=color, linestyle="--" if dashed else "-",
                    linewidth=2.4 if "bandwidth" in label else 1.6, marker="o", markersize=3)
        # Where the 12 bytes per element of a call stop fitting in each cache level.
        marks = [(c["size"] / 12, f"L{c['level']}") for c in caches]
        marks.append((CENTERNET, "8x80x128x128"))
        for x, text in marks:
            if res.sizes and res.sizes[0] <= x <= res.sizes[-1]:
                ax.axvline(x, color="#bbbbbb", linewidth=0.8, linestyle=":")
                ax.text(x, 1.01, text, transform=ax.get_xaxis_transform(), ha="center",
                        fontsize=8, color="#777777")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("elements per call")
        ax.set_title(subtitle, fontsize=10, pad=16)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2,
                  frameon=False)
        # CenterNet's size sits next to 16M: its line and the label above the plot say it.
        ax.set_xticks(res.sizes)
        ax.set_xticklabels(["" if n == CENTERNET else size_name(n) for n in res.sizes],
                           fontsize=8)
    axes[0].set_ylabel("elements per second")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# A plain PNG without matplotlib: lines and a legend of coloured swatches with labels in
# a 5x7 pixel font (capitals, digits and a little punctuation), written with zlib.
FONT = {
    "A": "01110100011000111111100011000110001", "B": "11110100011000111110100011000111110",
    "C": "01110100011000010000100001000101110", "D": "11110100011000110001100011000111110",
    "E": "11111100001000011110100001000011111", "F": "11111100001000011110100001000010000",
    "G": "01110100011000010111100011000101111", "H": "10001100011000111111100011000110001",
    "I": "01110001000010000100001000010001110", "J": "00111000100001000010000101001001100",
    "K": "10001100101010011000101001001010001", "L": "10000100001000010000100001000011111",
    "M": "10001110111010110101100011000110001", "N": "10001100011100110101100111000110001",
    "O": "01110100011000110001100011000101110", "P": "11110100011000111110100001000010000",
    "Q": "01110100011000110001101011001001101", "R": "11110100011000111110101001001010001",
    "S": "01111100001000001110000010000111110", "T": "11111001000010000100001000010000100",
    "U": "10001100011000110001100011000101110", "V": "10001100011000110001100010101000100",
    "W": "10001100011000110101101011010101010", "X": "10001100010101000100010101000110001",
    "Y": "10001100010101000100001000010000100", "Z": "11111000010001000100010001000011111",
    "0": "01110100011001110101110011000101110", "1": "00100011000010000100001000010001110",
    "2": "01110100010000100010001000100011111", "3": "11111000100010000010000011000101110",
    "4": "00010001100101010010111110001000010", "5": "11111100001111000001000011000101110",
    "6": "00110010001000011110100011000101110", "7": "11111000010001000100010000100001000",
    "8": "01110100011000101110100011000101110", "9": "01110100011000101111000010001001100",
    "-": "00000000000000011111000000000000000", ".": "00000000000000000000000000110001100",
    ",": "00000000000000000000001100010001000", "(": "00010001000100001000010000010000010",
    ")": "01000001000001000010000100010001000", "/": "00000000010001000100010001000000000",
    "+": "00000001000010011111001000010000000", ":": "00000011000110000000011000110000000",
    "=": "00000000001111100000111110000000000", "x": "00000000001000101010001000101010001",
}


def write_plain_png(series, path, title):
    import struct
    import zlib
    width, height = 1100, 650
    px = bytearray(b"\xff" * (width * height * 3))

    def put(x, y, rgb):
        if 0 <= x < width and 0 <= y < height:
            i = (y * width + x) * 3
            px[i:i + 3] = bytes(rgb)

    def line(x0, y0, x1, y1, rgb, thick=1, dashed=False):
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for s in range(steps + 1):
            if dashed and (s // 6) % 2:
                continue
            x = round(x0 + (x1 - x0) * s / steps)
            y = round(y0 + (y1 - y0) * s / steps)
            for dx in range(thick):
                for dy in range(thick):
                    put(x + dx, y + dy, rgb)

    def text(x, y, s, rgb=(0, 0, 0)):
        for ch in s.upper():
            glyph = FONT.get(ch)
            if glyph:
                for i, bit in enumerate(glyph):
                    if bit == "1":
                        put(x + i % 5, y + i // 5, rgb)
            x += 6

    def hex_rgb(h):
        return tuple(int(h[i:i + 2], 16) for i in (1, 3, 5))

    points = [p for _, _, _, pts in series for p in pts]
    if not points:
        return
    x_lo, x_hi = math.log2(min(p[0] for p in points)), math.log2(max(p[0] for p in points))
    y_lo = math.floor(math.log10(min(p[1] for p in points)))
    y_hi = math.ceil(math.log10(max(p[1] for p in points)))
    left, right, top, bottom = 90, width - 30, 50, height - 190

    def to_px(n, r):
        fx = (math.log2(n) - x_lo) / max(x_hi - x_lo, 1e-9)
        fy = (math.log10(r) - y_lo) / max(y_hi - y_lo, 1e-9)
        return round(left + fx * (right - left)), round(bottom - fy * (bottom - top))

    text(left, 20, title[:160])
    line(left, bottom, right, bottom, (0, 0, 0))
    line(left, top, left, bottom, (0, 0, 0))
    for decade in range(y_lo, y_hi + 1):
        _, y = to_px(2 ** x_lo, 10 ** decade)
        line(left, y, right, y, (220, 220, 220))
        text(10, y - 3, f"1E{decade}/S")
    for n in sorted({p[0] for p in points}):
        x, _ = to_px(n, 10 ** y_lo)
        line(x, bottom, x, bottom + 5, (0, 0, 0))
        text(x - 12, bottom + 10, size_name(n))
    text(left + (right - left) // 2 - 60, bottom + 25, "ELEMENTS PER CALL")
    for k, (label, color, dashed, pts) in enumerate(series):
        rgb = hex_rgb(color)
        xy = [to_px(n, r) for n, r in pts]
        for (a, b), (c, d) in zip(xy, xy[1:]):
            line(a, b, c, d, rgb, thick=2, dashed=dashed)
        ly = bottom + 50 + 16 * k
        line(left, ly + 3, left + 30, ly + 3, rgb, thick=2, dashed=dashed)
        text(left + 40, ly, label)

    raw = b"".join(b"\x00" + bytes(px[y * width * 3:(y + 1) * width * 3])
                   for y in range(height))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff))

    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    pathlib.Path(path).write_bytes(png)


# ---- the Markdown -----------------------------------------------------------------

def targets_table(res, torch_results):
    """Issue #4's targets: what was measured against each (measured, never asserted)."""
    rows = []
    has = set(res.isas)
    k64, m64 = 1 << 16, 1 << 26

    def verdict(value, goal, higher_is_better=True):
        if value is None:
            return "not measured"
        ok = value >= goal if higher_is_better else value <= goal
        return "met" if ok else "not met"

    # Written out one by one: each target names its own ISA, size and reference.
    specs = [
        ("avx512", k64, "O2", 20, "AVX-512, 64K elements: speed-up over the naive loop at -O2"),
        ("avx512", k64, "autovec", 8, "AVX-512, 64K elements: speed-up over the auto-vectorized loop"),
        ("avx512", m64, "bw", 0.45, "AVX-512, 64M elements: fraction of the bandwidth loop's elements/s"),
        ("avx2", k64, "O2", 12, "AVX2, 64K elements: speed-up over the naive loop at -O2"),
    ]
    for isa, n, ref, goal, what in specs:
        d = res.get(HEADLINE, "fwd_grad", isa, n)
        if ref == "bw":
            value = ratio(d, res.bandwidth("fwd_grad", n))
            shown = frac_text
            goal_text = f"{goal}"
        else:
            value = ratio(d, res.naive(ref, n))
            shown = x_text
            goal_text = f"{goal}x"
        if isa not in has or value is None:
            why = ("not measured: this CPU has no AVX-512" if isa == "avx512" and isa not in has
                   else "not measured")
            rows.append((what, ">= " + goal_text, "—", why))
        else:
            rows.append((what, ">= " + goal_text, shown(value), verdict(value, goal)))
    for isa in res.isas:
        for n in (k64, m64):
            g2 = res.get("sigmoid_focal.gamma2", "fwd_grad", isa, n)
            g25 = res.get("sigmoid_focal.gamma2_5", "fwd_grad", isa, n)
            value = ratio(g2, g25)  # time(2.5) / time(2) = rate(2) / rate(2.5)
            rows.append((f"sigmoid focal, {isa}, {size_name(n)}: time of gamma 2.5 / gamma 2",
                         "<= 1.5", "—" if value is None else f"{value:.2f}",
                         verdict(value, 1.5, False)))
    if torch_results:
        for name, r in torch_results["losses"].items():
            if "clamped" in name:
                continue  # the logits version is the target's; the clamped one is below
            rows.append((f"{name}, 8x80x128x128: speed-up over PyTorch eager", ">= 100x",
                         f"{r['speedup']:.0f}x", verdict(r["speedup"], 100)))
    else:
        rows.append(("dafl vs PyTorch eager, 8x80x128x128", ">= 100x", "—",
                     "not measured (run with python3-torch installed)"))
    lines = ["| target (one thread, forward + gradient) | goal | measured | |",
             "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return lines


def same_targets_on_avx2(res):
    """What the AVX-512 targets read on the best ISA this machine has, for orientation."""
    best = res.isas[-1] if res.isas else None
    if not best or best == "avx512":
        return []
    k64, m64 = 1 << 16, 1 << 26
    d64 = res.get(HEADLINE, "fwd_grad", best, k64)
    dm = res.get(HEADLINE, "fwd_grad", best, m64)
    parts = [f"x naive -O2 {x_text(ratio(d64, res.naive('O2', k64)))}",
             f"x auto-vectorized {x_text(ratio(d64, res.naive('autovec', k64)))} at 64K",
             f"{frac_text(ratio(dm, res.bandwidth('fwd_grad', m64)))} of the bandwidth loop "
             "at 64M"]
    return [f"For orientation, the AVX-512 targets read on {best} (the best ISA here): "
            + ", ".join(parts) + "."]


def one_pass_gain(res):
    """How much the one-pass call gains over the default call, at the largest size."""
    if not res.isas or not res.sizes:
        return []
    best, n = res.isas[-1], res.sizes[-1]
    gain = ratio(res.get(HEADLINE, "fwd_grad", best, n),
                 res.get("penalty_focal.logits.default", "fwd_grad", best, n))
    if gain is None:
        return []
    return [f"At {size_name(n)} elements on {best}, the one-pass call runs at {gain:.2f}x "
            "the speed of the default call (which reads the targets once more to count the "
            "positives and validate them)."]


def thread_scaling(res):
    """dafl on all its threads against one, and against the bandwidth loop on as many."""
    lines = []
    for impl in res.threaded_impls():
        isa, threads = impl.split("-t")
        if isa == "memory" or threads == "1":
            continue
        parts = []
        for n in (1 << 16, CENTERNET, 1 << 26):
            many, one = res.threaded(impl, n), res.threaded(f"{isa}-t1", n)
            memory = res.threaded(f"memory-t{threads}", n)
            if many is None or one is None:
                continue
            text = f"{size_name(n)}: {ratio(many, one):.2f}x"
            if memory:
                text += f" ({frac_text(ratio(many, memory))} of the bandwidth loop on " \
                        f"{threads} threads)"
            parts.append(text)
        if parts:
            lines.append(f"Threads, wall-clock: {isa} on {threads} threads against one, "
                         + "; ".join(parts) + ".")
    return lines


def headline_table(res):
    best = res.isas[-1] if res.isas else None
    head = ["elements", "bandwidth 12 B/el.", "naive -O2", "auto-vec."]
    head += [f"dafl {isa}" for isa in res.isas]
    head += [f"default call {best}"] if best else []
    head += res.threaded_impls()
    head += [f"{best}: x naive -O2", f"{best}: x auto-vec.", f"{best}: of bandwidth"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in res.sizes:
        d = res.get(HEADLINE, "fwd_grad", best, n)
        cells = [size_name(n), rate_text(res.bandwidth("fwd_grad", n)),
                 rate_text(res.naive("O2", n)), rate_text(res.naive("autovec", n))]
        cells += [rate_text(res.get(HEADLINE, "fwd_grad", isa, n)) for isa in res.isas]
        cells += [rate_text(res.get("penalty_focal.logits.default", "fwd_grad", best, n))]
        cells += [rate_text(res.threaded(t, n)) for t in res.threaded_impls()]
        cells += [x_text(ratio(d, res.naive("O2", n))), x_text(ratio(d, res.naive("autovec", n))),
                  frac_text(ratio(d, res.bandwidth("fwd_grad", n)))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def all_losses_table(res):
    head = ["loss", "pass", "ISA"] + [size_name(n) for n in res.sizes]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for pas in ("fwd", "fwd_grad"):
        cells = ["memory bandwidth loop", pas, "—"]
        cells += [rate_text(res.bandwidth(pas, n)) for n in res.sizes]
        lines.append("| " + " | ".join(cells) + " |")
    for loss, title in SHORT_TITLES.items():
        for pas in ("fwd", "fwd_grad"):
            for isa in res.isas:
                cells = [title, pas, isa]
                cells += [rate_text(res.get(loss, pas, isa, n)) for n in res.sizes]
                lines.append("| " + " | ".join(cells) + " |")
    return lines


def bandwidth_fraction_table(res):
    """Fraction of the bandwidth loop at the sizes that live in DRAM, forward + gradient."""
    big = [n for n in res.sizes if n >= (1 << 22)]
    head = ["loss (forward + gradient)", "ISA"] + [size_name(n) for n in big]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for loss, title in SHORT_TITLES.items():
        for isa in res.isas:
            cells = [title, isa]
            cells += [frac_text(ratio(res.get(loss, "fwd_grad", isa, n),
                                      res.bandwidth("fwd_grad", n))) for n in big]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def torch_section(torch_results):
    if not torch_results:
        return ["Not run: `sudo apt-get install python3-torch python3-torchvision`, then "
                "`/usr/bin/python3 scripts/bench_torch.py` (or this script again)."]
    t = torch_results
    lines = [f"`scripts/bench_torch.py`: PyTorch {t['torch']} / torchvision {t['torchvision']} "
             f"eager against dafl {t['dafl']} ({t['isa']}) through ctypes, one thread each, in "
             f"one process, on the same arrays: {t['elements']} elements (8x80x128x128), "
             f"{t['positives']} positives. Times are the best of several runs of forward + "
             "`backward()` (PyTorch) and of one fused call (dafl).", "",
             "| loss | loss dafl / PyTorch (rel. diff.) | gradient: worst element / tolerance "
             "| PyTorch (in the OS) | dafl default call | dafl one-pass | speed-up |",
             "|---|---|---|---|---|---|---|"]
    for name, r in t["losses"].items():
        system = r.get("torch_system_share")
        lines.append(
            f"| {name} | {r['loss_dafl']:.7g} / {r['loss_torch']:.7g} ({r['loss_rel_diff']:.1e}) "
            f"| {r['grad_worst_dafl_vs_torch']:.2f} (rtol {r['rtol']:g}, atol {r['atol']:.1e}) "
            f"| {r['seconds_torch'] * 1e3:.0f} ms"
            + (f" ({100 * system:.0f} %)" if system is not None else "") +
            f" | {r['seconds_dafl'] * 1e3:.1f} ms "
            f"| {r['seconds_dafl_one_pass'] * 1e3:.1f} ms | **{r['speedup']:.0f}x** "
            f"({r['speedup_one_pass']:.0f}x one-pass) |")
    lines += ["", "PyTorch's time includes the share its process spent in the operating "
              "system (in brackets): its temporaries, about 40 MB each at this size, are "
              "fresh memory on every step. dafl writes into the caller's gradient buffer "
              "and allocates nothing.",
              "", "Agreement: " + ("losses and gradients agree to float tolerance "
                                   "(a gradient element agrees when |dafl - PyTorch| <= "
                                   "atol + rtol |PyTorch|; the column shows the worst "
                                   "element's share of that bound)."
                                   if t["all_agree"] else "**they disagree** (see the table).")]
    return lines


def write_markdown(res, torch_results, machine, path, args, when):
    best = res.isas[-1] if res.isas else "?"
    ctx = res.context
    skipped = ", ".join(res.skipped) or "none"
    md = ["# dafl benchmarks", "",
          "Measured by `scripts/bench_report.py` (Google Benchmark program `bench/dafl_bench.cc`"
          " and `scripts/bench_torch.py`); every number below comes from one run. "
          "Benchmarks measure, they never fail on a time.", "",
          "## Machine", "",
          f"- CPU: {machine['model']}, {machine['cpus']} logical cores"
          + (f", {machine['memory_gib']:.0f} GiB memory" if machine.get("memory_gib") else "")
          + (" (virtual machine)" if machine["vm"] else ""),
          f"- SIMD flags: {machine['simd']}; dafl measured on: {' '.join(res.isas)}; "
          f"skipped: {skipped}"
          + (" (the CPU lacks it)" if res.skipped else ""),
          f"- caches (as Google Benchmark reads them): {machine['caches'] or 'unknown'}",
          f"- compiler: {machine['compiler']}; Google Benchmark from Debian's "
          f"libbenchmark-dev (it calls itself a {ctx.get('library_build_type', '?')} build, "
          "which slows only its own bookkeeping between timed iterations)",
          f"- dafl: commit {machine['commit']}",
          f"- date: {when}; `--benchmark_min_time={args.min_time}`, "
          f"{args.repetitions} repetition(s)"
          + (", the fastest of them" if args.repetitions > 1 else ""),
          "",
          "**This is a shared 2-core virtual machine**: what its neighbours run varies, so "
          "absolute numbers are noisy (each figure is the fastest of its repetitions, still "
          "often 10 % below a quiet minute). Compare the ratios, which come from the same "
          "run: each dafl result and its references are measured at the same size, back "
          "to back.", "",
          "## Targets (issue #4; measured, not asserted)", ""]
    md += targets_table(res, torch_results)
    md += [""] + same_targets_on_avx2(res)
    md += ["", "## Penalty-reduced focal loss, forward + gradient, one thread", "",
           "Elements per second (G = 10^9, M = 10^6). dafl columns are the one-pass call "
           "(`DAFL_REDUCTION_NORMALIZER`, `DAFL_FLAG_TRUST_TARGETS`); \"default call\" divides "
           "by the positives it counts and validates the targets first (one more read of the "
           "targets). The naive loop computes CenterNet's clamped form of the same loss; "
           "`bench/naive_focal.c`.", ""]
    md += headline_table(res)
    md += [""] + one_pass_gain(res)
    md += [""] + thread_scaling(res)
    md += ["", "![throughput against size](bench-throughput.png)", "",
           "## Every loss: fraction of the memory-bandwidth loop (DRAM sizes)", "",
           "1.00 would be a loss computed as fast as its bytes can be moved.", ""]
    md += bandwidth_fraction_table(res)
    md += ["", "## Every loss, every ISA, every size (elements per second)", ""]
    md += all_losses_table(res)
    md += ["", "## Against PyTorch (8 x 80 x 128 x 128)", ""]
    md += torch_section(torch_results)
    md += ["", "## How these were measured", "",
           "- `bench/dafl_bench.cc`: every loss x every ISA the CPU has (forced with "
           "`dafl_set_isa`; the run's label is the ISA) x 4K..64M elements, forward only and "
           "forward + gradient, one thread. Items/s are elements (logits) per second; "
           "bytes/s count the least traffic of a call: 12 bytes per element with the "
           "gradient (input, target, gradient), 8 without; softmax focal reads one int32 "
           "label per pixel of 16 logits.",
           "- References in the same binary, at every size: `bench/bandwidth.c` (read input "
           "and target, write the output: 12 B/element; forward: read only, 8 B/element; "
           "`-O3 -march=native`), and `bench/naive_focal.c`, the loss as a trainer would "
           "write it (`expf`, `logf`, `powf`, clamp to [1e-4, 1-1e-4]) built at `-O2` and "
           "at `-O3 -march=native -ffast-math` (GCC vectorizes it with glibc's libmvec).",
           "- Before measuring, the program checks that every ISA gives the scalar "
           "kernels' bits and that the naive loops agree with dafl's clamped-logits mode "
           "(loss to 1e-4 relative); it measures nothing when a check fails.",
           "- The console output of `meson test --benchmark -C build` (a short run) shows "
           "counters computed from the references measured at the same size: `bw_frac` on "
           "every dafl result (its elements/s over the bandwidth loop's; printed with SI "
           "prefixes, so `23m` is 0.023), and `x_naive_O2` and `x_autovec` on the "
           "penalty-reduced focal results with the gradient, the work the naive loop does.",
           "- Data: 128x128 heatmap planes, 80 per image, 1..14 Gaussian objects per image "
           "(`dafl_draw_gaussian`), logits mostly confident negatives, some beyond the "
           "clamp limits.", "",
           "Reproduce: `meson setup build && ninja -C build && /usr/bin/python3 "
           "scripts/bench_report.py` (about ten minutes; `--quick` for a short run).", ""]
    pathlib.Path(path).write_text("\n".join(md))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=str(ROOT / "build"),
                    help="meson build directory with bench/dafl-bench and libdafl.so")
    ap.add_argument("--min-time", type=float, default=0.1,
                    help="seconds each benchmark is measured (default 0.1)")
    ap.add_argument("--repetitions", type=int, default=5,
                    help="repetitions per benchmark; the fastest is reported (default 5)")
    ap.add_argument("--max-elements", type=int, help="largest size to measure")
    ap.add_argument("--quick", action="store_true",
                    help="short run: --min-time 0.02, one repetition, PyTorch once")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    ap.add_argument("--from-json", help="render from this earlier raw results file instead "
                    "of measuring (its *.torch.json beside it is used when present)")
    ap.add_argument("--raw", help="where to keep the raw results "
                    "(default <build>/bench/results.json)")
    ap.add_argument("--plain-png", action="store_true",
                    help="draw the plot without matplotlib even where it is installed")
    ap.add_argument("--markdown", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--plot", default=str(ROOT / "docs" / "bench-throughput.png"))
    args = ap.parse_args()
    if args.quick:
        args.min_time, args.repetitions = 0.02, 1

    build = pathlib.Path(args.build_dir)
    raw_path = pathlib.Path(args.raw or build / "bench" / "results.json")
    torch_path = raw_path.with_suffix(".torch.json")
    if args.from_json:
        raw_path = pathlib.Path(args.from_json)
        torch_path = raw_path.with_suffix(".torch.json")
        raw = json.loads(raw_path.read_text())
        torch_results = json.loads(torch_path.read_text()) if torch_path.exists() else None
        meta = raw.get("dafl_report", {})
        when = meta.get("date", raw.get("context", {}).get("date", "?"))
        args.min_time = meta.get("min_time", args.min_time)
        args.repetitions = meta.get("repetitions", args.repetitions)
    else:
        exe = build / "bench" / "dafl-bench"
        if not exe.exists():
            sys.exit(f"bench_report.py: {exe} not found: meson setup {build} && ninja -C {build}")
        when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        raw = run_suite(exe, args.min_time, args.repetitions, args.max_elements)
        raw["dafl_report"] = {"min_time": args.min_time, "repetitions": args.repetitions,
                              "date": when, "commit": machine_description({})["commit"]}
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        raw_path.write_text(json.dumps(raw, indent=1))
        torch_results = None
        if not args.no_torch:
            if torch_available():
                torch_results = run_torch(build / "libdafl.so", 1 if args.quick else 3,
                                          torch_path)
            else:
                print("PyTorch not found: sudo apt-get install python3-torch "
                      "python3-torchvision (skipping the comparison)")
    res = Results(raw)
    machine = machine_description(res.context)
    machine["commit"] = raw.get("dafl_report", {}).get("commit", machine["commit"])
    pathlib.Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
    write_plot(res, machine, args.plot, when, args.plain_png)
    write_markdown(res, torch_results, machine, args.markdown, args, when)
    print(f"wrote {args.markdown} and {args.plot} (raw results: {raw_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
