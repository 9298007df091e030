#!/usr/bin/python3
"""Runs dafl's benchmark suite and writes the results: docs/benchmarks.md and a plot.

    /usr/bin/python3 bench/report.py [--build-dir build] [--quick]

It runs build/bench/dafl-bench with --benchmark_format=json (every benchmark measured
--min-time seconds, --repetitions times, the fastest repetition reported), optionally the PyTorch
comparison (bench/torch_eager.py, when Debian's python3-torch is installed), and writes
  - docs/benchmarks.md, all of it: the machine (read from /proc/cpuinfo, the core clock
    and the TSC measured by tools/core_clock.c before and after the run), the targets of
    issue #4 with what was measured, the tables, the PyTorch comparison; and, in the
    order DOCUMENT below gives, the sections written by hand, which live in bench/notes/
    and are copied in as they are (a note records a measurement of its own, such as an
    interleaved comparison of two builds, that this script does not repeat);
  - docs/bench-throughput.png: the headline call on each ISA as a multiple of the naive
    loop (with the auto-vectorized loop and the bandwidth limit), thread scaling, and
    bars of every loss at three sizes.
The plot needs matplotlib (Debian: python3-matplotlib); without it only the Markdown is
written.  To change a hand-written section, edit its file in bench/notes/, not
docs/benchmarks.md, which the next run overwrites.

The document states how long its run took.  --quick (short measurements, one repetition)
is a few times shorter.  --from-json re-renders the documents from an earlier run's raw
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
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTES = ROOT / "bench" / "notes"
CENTERNET = 8 * 80 * 128 * 128
HEADLINE = "penalty_focal.logits.one_pass"

SHORT_TITLES = {
    "penalty_focal.logits.default": "penalty focal, logits, default call",
    "penalty_focal.logits.one_pass": "penalty focal, logits, one pass",
    "penalty_focal.clamped.one_pass": "penalty focal, clamped, one pass",
    "sigmoid_focal.gamma2": "sigmoid focal, gamma 2",
    "sigmoid_focal.gamma2_5": "sigmoid focal, gamma 2.5",
    "sigmoid_focal.gamma2.hard": "sigmoid focal, gamma 2, hard targets",
    "bce_with_logits": "BCE with logits",
    "softmax_focal.c16": "softmax focal, 16 classes",
    "softmax_focal.c19": "softmax focal, 19 classes",
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
    "sigmoid_focal.gamma2.hard": "sigmoid focal, gamma 2, hard (0/1) targets",
    "bce_with_logits": "BCE with logits",
    "softmax_focal.c16": "softmax focal, 16 classes",
    "softmax_focal.c19": "softmax focal, 19 classes",
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
        sys.exit(f"report.py: {exe.name} failed (exit status {proc.returncode})")
    return json.loads("".join(lines))


def run_torch(lib, repeats, out_json):
    script = ROOT / "bench" / "torch_eager.py"
    cmd = ["/usr/bin/python3", str(script), "--lib", str(lib), "--repeats", str(repeats),
           "--json", str(out_json)]
    print("running:", " ".join(cmd), flush=True)
    status = subprocess.call(cmd)
    if status != 0:
        sys.exit("report.py: the PyTorch comparison failed (see above)")
    return json.loads(out_json.read_text())


def measure_clock(build):
    """The core clock and the TSC's rate in GHz from tools/core_clock.c, built into the
    build directory on first use; None where it cannot run (not x86-64, no compiler).

    Cycles per element are given at the core clock: on a virtual machine the TSC ticks at
    a fixed rate that can be far from the core's (Google Benchmark's "MHz" is the TSC's)."""
    source = ROOT / "tools" / "core_clock.c"
    exe = build / "bench" / "core_clock"
    if platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        if not exe.exists() or exe.stat().st_mtime < source.stat().st_mtime:
            exe.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cc", "-O2", "-o", str(exe), str(source)], check=True)
        print("measuring the core clock (tools/core_clock.c)...", flush=True)
        out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"report.py: tools/core_clock.c could not run ({e}): no core clock")
        return None
    core = re.search(r"core clock: ([\d.]+) GHz", out)
    tsc = re.search(r"TSC: ([\d.]+) GHz", out)
    return {"core_ghz": float(core.group(1)) if core else None,
            "tsc_ghz": float(tsc.group(1)) if tsc else None}


def load_average():
    """The 1-minute load average (other work on the machine while it measured)."""
    try:
        return float(pathlib.Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


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
            if len(parts) != 4 or not parts[3].isdigit():
                continue  # the keypoint batch rows have no size; README covers them
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
        # The model name alone does not tell generations apart ("AMD EPYC" is printed by
        # Zen 3, family 25 model 1, and by Zen 4, family 25 model 17): these do.
        for key, field in (("family", "cpu family"), ("cpu_model", "model"),
                           ("stepping", "stepping"), ("vendor", "vendor_id")):
            m = re.search(rf"^{field}\s*:\s*(.*)$", text, re.M)
            if m:
                info[key] = m.group(1).strip()
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
    simd = [f for f in ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq",
                        "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16", "avx512_vbmi",
                        "asimd", "fphp", "asimdhp") if f in info["flags"]]
    info["simd"] = " ".join(simd) or "none listed"
    info["vm"] = "hypervisor" in info["flags"]
    info["flags"] = sorted(info["flags"])  # kept with the raw results (JSON has no sets)
    return info


def cpu_text(machine):
    """The CPU as /proc/cpuinfo names it, with the numbers that tell generations apart."""
    ids = [f"{name} {machine[key]}" for name, key in
           (("family", "family"), ("model", "cpu_model"), ("stepping", "stepping"))
           if machine.get(key) is not None]
    return machine["model"] + (f" (CPU {', '.join(ids)})" if ids else "")


# ---- the plot ---------------------------------------------------------------------

PLOT_COLORS = {"bandwidth": "#555555", "O2": "#d62728", "autovec": "#ff7f0e",
               "scalar": "#9467bd", "avx2": "#1f77b4", "avx512": "#2ca02c", "neon": "#17becf"}
PLOT_MARKERS = {"bandwidth": "s", "autovec": "^", "scalar": "v", "avx2": "o", "avx512": "D",
                "neon": "o"}


def speedup_series(res):
    """Panel 1: the headline call and the references as multiples of the naive -O2 loop
    of the same size and run: (label, colour, marker, line style, [(size, ratio)])."""
    def over_naive(rate_of):
        return [(n, ratio(rate_of(n), res.naive("O2", n))) for n in res.sizes]

    series = [("memory bandwidth limit (12 B/element)", PLOT_COLORS["bandwidth"], "s", "--",
               over_naive(lambda n: res.bandwidth("fwd_grad", n))),
              ("naive C loop, -O3 -march=native -ffast-math", PLOT_COLORS["autovec"], "^",
               ":", over_naive(lambda n: res.naive("autovec", n)))]
    for isa in res.isas:
        series.append((f"dafl {isa}", PLOT_COLORS.get(isa, "#000000"),
                       PLOT_MARKERS.get(isa, "o"), "-",
                       over_naive(lambda n, isa=isa: res.get(HEADLINE, "fwd_grad", isa, n))))
    if res.isas:
        best = res.isas[-1]
        series.append((f"dafl {best}, default call (targets validated, positives counted)",
                       PLOT_COLORS.get(best, "#000000"), "x", "--",
                       over_naive(lambda n: res.get("penalty_focal.logits.default", "fwd_grad",
                                                    best, n))))
    return [(label, color, marker, style, [(n, r) for n, r in points if r])
            for label, color, marker, style, points in series]


def thread_series(res):
    """Panel 2: the headline call on N threads against one, both in wall-clock time:
    (label, colour, N, [(size, ratio)])."""
    out = []
    for impl in res.threaded_impls():
        isa, threads = impl.split("-t")
        if isa == "memory" or threads == "1":
            continue
        points = [(n, ratio(res.threaded(impl, n), res.threaded(f"{isa}-t1", n)))
                  for n in res.sizes]
        out.append((f"dafl {isa}, {threads} threads / 1 thread", PLOT_COLORS.get(isa, "#000000"),
                    int(threads), [(n, r) for n, r in points if r]))
    return out


def end_label_offsets(values, min_gap=0.07, step=9):
    """Vertical offsets in points for labels at the right end of lines on a log axis,
    so that labels of lines ending close together do not overlap."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    offsets = [0] * len(values)
    previous, shift = None, 0
    for i in order:
        close = previous is not None and math.log10(values[i] / values[previous]) < min_gap
        shift = shift + step if close else 0
        offsets[i] = shift
        previous = i
    return offsets


def bar_sizes(res):
    """The sizes the loss bars show: in cache, CenterNet's batch, in DRAM."""
    wanted = [n for n in (1 << 16, CENTERNET, 1 << 26) if n in res.sizes]
    return wanted or res.sizes[-3:]


def write_plot(res, machine, path, title_date):
    best = res.isas[-1] if res.isas else "?"
    title = (f"dafl throughput — {cpu_text(machine)}, {machine['cpus']} cores"
             f"{' (a virtual machine)' if machine['vm'] else ''}, {title_date}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not found (Debian: python3-matplotlib): the plot was not written")
        return
    fig = plt.figure(figsize=(15, 12.5))
    grid = fig.add_gridspec(2, 2, width_ratios=[1.55, 1], height_ratios=[1, 1.1],
                            hspace=0.55, wspace=0.18)
    speed, threads, losses = (fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]),
                              fig.add_subplot(grid[1, :]))

    def size_axis(ax):
        ax.set_xscale("log", base=2)
        ax.set_xticks(res.sizes)
        # CenterNet's size sits next to 16M: the dotted line and its label say it.
        ax.set_xticklabels(["" if n == CENTERNET else size_name(n) for n in res.sizes],
                           fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel("elements per call")
        ax.grid(True, which="major", alpha=0.3)
        if res.sizes and res.sizes[0] <= CENTERNET <= res.sizes[-1]:
            ax.axvline(CENTERNET, color="#bbbbbb", linewidth=0.8, linestyle=":")
            ax.text(CENTERNET, 1.01, "8x80x128x128", transform=ax.get_xaxis_transform(),
                    ha="center", fontsize=8, color="#777777")

    # Every line labelled at its right end as well as in the legend.
    lines = [line for line in speedup_series(res) if line[4]]
    offsets = end_label_offsets([points[-1][1] for *_, points in lines])
    for (label, color, marker, style, points), offset in zip(lines, offsets):
        xs, ys = zip(*points)
        speed.plot(xs, ys, label=label, color=color, marker=marker, markersize=4,
                   linestyle=style, linewidth=1.8)
        speed.annotate(f"{ys[-1]:.1f}x", (xs[-1], ys[-1]), xytext=(6, offset),
                       textcoords="offset points", va="center", fontsize=8, color=color)
    speed.axhline(1.0, color=PLOT_COLORS["O2"], linewidth=1.2)
    speed.text(res.sizes[0] if res.sizes else 1, 1.0, " naive C loop, -O2 = 1", va="bottom",
               fontsize=8, color=PLOT_COLORS["O2"])
    speed.set_yscale("log")
    speed.set_ylabel("times the elements/s of the naive loop at -O2 (same size, same run)")
    speed.set_title("penalty-reduced focal loss, logits, forward + gradient, one thread",
                    fontsize=10, pad=16)
    size_axis(speed)
    speed.set_xlim(right=(res.sizes[-1] * 2.2) if res.sizes else None)
    speed.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2,
                 frameon=False)

    top = 1
    for label, color, count, points in thread_series(res):
        if not points:
            continue
        xs, ys = zip(*points)
        threads.plot(xs, ys, label=label, color=color, marker="o", markersize=4, linewidth=1.8)
        for x, y in points:
            threads.annotate(f"{y:.2f}", (x, y), xytext=(0, 6), textcoords="offset points",
                             ha="center", fontsize=7.5, color=color)
        threads.axhline(count, color=color, linewidth=0.8, linestyle="--")
        threads.text(xs[0], count, f" {count} threads: the most there is", va="bottom",
                     fontsize=8, color=color)
        top = max(top, count, max(ys))
    threads.axhline(1.0, color="#999999", linewidth=0.8)
    threads.set_ylim(0, top * 1.15)
    threads.set_ylabel("elements/s on N threads / on one (wall-clock)")
    threads.set_title(f"threads, dafl {best}: below 32K elements a call stays on one",
                      fontsize=10, pad=16)
    size_axis(threads)
    threads.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1,
                   frameon=False)

    # Bars per loss: elements/s at each shown size, with the fraction of the bandwidth
    # loop's elements/s at that size written beside each bar.
    sizes = bar_sizes(res)
    names = list(LOSS_TITLES)
    height = 0.8 / max(len(sizes), 1)
    shades = ["#9ecae1", "#4292c6", "#08519c"]
    for k, n in enumerate(sizes):
        ys = [i + (k - (len(sizes) - 1) / 2) * height for i in range(len(names))]
        rates = [res.get(loss, "fwd_grad", best, n) or 0.0 for loss in names]
        losses.barh(ys, [r / 1e6 for r in rates], height=height * 0.92,
                    color=shades[k % len(shades)], label=f"{size_name(n)} elements")
        bandwidth = res.bandwidth("fwd_grad", n)
        for y, r in zip(ys, rates):
            if r:
                note = f" {rate_text(r)}/s"
                if bandwidth:
                    note += f", {r / bandwidth:.2f} of bandwidth"
                losses.text(r / 1e6, y, note, va="center", fontsize=7.5)
    losses.set_yticks(range(len(names)))
    losses.set_yticklabels([SHORT_TITLES[loss] for loss in names], fontsize=9)
    losses.invert_yaxis()
    losses.set_xlabel("million elements per second")
    losses.set_xlim(0, losses.get_xlim()[1] * 1.25)
    losses.grid(True, axis="x", alpha=0.3)
    losses.set_title(f"every loss, forward + gradient, dafl {best}, one thread "
                     "(bandwidth: the loop moving the same 12 B/element)", fontsize=10)
    losses.legend(fontsize=8, loc="center right")
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


# ---- the Markdown -----------------------------------------------------------------

def targets_table(res, torch_results, why_not=None):
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
                     f"not measured: {why_not or 'no PyTorch results in this run'}"))
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


HALF_DTYPES = (("", "float32", 12), (".bf16", "bfloat16", 6), (".f16", "float16", 6),
               (".bf16_logits", "bfloat16 logits, float32 targets", 8))


def half_losses(res):
    """The losses measured in half precision (rows named loss.bf16 etc.), in table order."""
    found = {k[0][:-len(".bf16")] for k in res.rate if k[0].endswith(".bf16")}
    return [loss for loss in SHORT_TITLES if loss in found]


def half_table(res):
    """Half precision against float32: ns per element and the time relative to float32's,
    one thread at 64K and 64M, and on dafl's threads at 64M (wall-clock)."""
    if not res.isas:
        return []
    best = res.isas[-1]
    losses = half_losses(res)
    if not losses:
        return ["Not measured (no half-precision rows in this run)."]
    head = ["loss", "elements", "ISA, threads"] + \
        [f"{name} ({b} B/el.)" for _, name, b in HALF_DTYPES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    configs = [(1 << 16, isa) for isa in res.isas] + [(1 << 26, isa) for isa in res.isas]
    configs += [(1 << 26, impl) for impl in res.threaded_impls() if not impl.startswith("memory")]
    for loss in losses:
        for n, impl in configs:
            f32 = res.get(loss, "fwd_grad", impl, n)
            if f32 is None:
                continue
            isa, _, threads = impl.partition("-t")
            cells = [SHORT_TITLES[loss], size_name(n),
                     f"{isa}, {threads} thread{'s' if threads != '1' else ''} (wall-clock)"
                     if threads else f"{isa}, 1 thread"]
            for suffix, _, _ in HALF_DTYPES:
                r = res.get(loss + suffix, "fwd_grad", impl, n)
                if r is None:
                    cells.append("—")
                elif not suffix:
                    cells.append(f"{1e9 / r:.3f} ns")
                else:
                    cells.append(f"{1e9 / r:.3f} ns ({f32 / r:.2f}x)")
            lines.append("| " + " | ".join(cells) + " |")
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
    both = "avx2" in res.isas and "avx512" in res.isas
    for loss, title in SHORT_TITLES.items():
        for pas in ("fwd", "fwd_grad"):
            for isa in res.isas:
                cells = [title, pas, isa]
                cells += [rate_text(res.get(loss, pas, isa, n)) for n in res.sizes]
                lines.append("| " + " | ".join(cells) + " |")
            if both:  # the speed-up of the wider vectors, from the same run
                cells = [title, pas, "avx512 / avx2"]
                cells += [x_text(ratio(res.get(loss, pas, "avx512", n),
                                       res.get(loss, pas, "avx2", n)), 2) for n in res.sizes]
                lines.append("| " + " | ".join(cells) + " |")
    return lines


def avx512_absent(res, machine):
    """Why there is no avx512 / avx2 ratio, or None when both ISAs ran."""
    if "avx2" in res.isas and "avx512" in res.isas:
        return None
    if "avx512" not in res.isas:
        if "avx512f" not in machine.get("flags", []):
            return "not measured: this CPU has no AVX-512"
        return "not measured: this build of dafl has no AVX-512 kernels"
    return "not measured: this CPU has no AVX2"


def isa_table(res, machine, n, core_ghz):
    """Every loss at one size, one thread, forward + gradient: ns per element on each ISA,
    cycles per element at the measured core clock, and avx512 over avx2 where both ran."""
    vector = [isa for isa in res.isas if isa != "scalar"]
    head = ["loss (forward + gradient)"] + [f"{isa}, ns/el." for isa in res.isas]
    if core_ghz:
        head += [f"{isa}, cycles/el." for isa in vector]
    head += ["avx512 / avx2"]
    absent = avx512_absent(res, machine)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for loss, title in SHORT_TITLES.items():
        rates = {isa: res.get(loss, "fwd_grad", isa, n) for isa in res.isas}
        if not any(rates.values()):
            continue
        cells = [title + (" (per logit)" if loss.startswith("softmax") else "")]
        cells += ["—" if rates[isa] is None else f"{1e9 / rates[isa]:.3f}" for isa in res.isas]
        if core_ghz:
            cells += ["—" if rates[isa] is None else f"{core_ghz * 1e9 / rates[isa]:.2f}"
                      for isa in vector]
        cells.append("—" if absent else
                     x_text(ratio(rates.get("avx512"), rates.get("avx2")), 2))
        lines.append("| " + " | ".join(cells) + " |")
    if absent:
        lines += ["", f"avx512 / avx2: {absent}."]
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


def torch_section(torch_results, why_not=None):
    if not torch_results:
        return [f"Not run in this run: {why_not or 'no PyTorch results'}. "
                "`bench/torch_eager.py` measures it (it needs `python3-torch` and "
                "`python3-torchvision`); the figures of an earlier run follow."]
    t = torch_results
    lines = [f"`bench/torch_eager.py`: PyTorch {t['torch']} / torchvision {t['torchvision']} "
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


# The document, in order: a name is a section this script writes from the run ("generated"
# below), a file name is a section written by hand, copied in from bench/notes/ as it is.
# Every file in bench/notes/ must be named here (the script stops otherwise), so that no
# hand-written section is dropped when the document is written again.
DOCUMENT = [
    "header", "machine",
    "avx512-issue25.md",           # issue 25's AVX-512 run on Zen 4, 2026-12-07
    "core-limit-issue13.md",       # issue 13's interleaved before/after run, 2026-12-01
    "half-precision-issue26.md",   # issue 26's interleaved runs and AVX512_BF16, 2026-12-07
    "targets", "penalty_focal", "isa_tables", "half", "bandwidth_fraction", "all_losses",
    "pytorch",
    "pytorch-2026-11-28.md",       # the PyTorch comparison of 2026-11-28
    "pytorch-end-to-end.md",       # dafl.torch in a training step, measured by hand
    "how",
    "avx512-device-check.md",      # how an AVX-512 machine is measured
]


def read_notes():
    """The hand-written sections, by file name; stops when bench/notes/ and DOCUMENT
    disagree, so that a section is neither dropped nor missing."""
    files = {f.name: f.read_text().strip("\n") for f in sorted(NOTES.glob("*.md"))}
    named = [part for part in DOCUMENT if part.endswith(".md")]
    missing = [f for f in named if f not in files]
    unnamed = [f for f in files if f not in named]
    if missing or unnamed:
        sys.exit(f"report.py: bench/notes/ and DOCUMENT disagree: missing {missing}, "
                 f"not in DOCUMENT {unnamed}")
    return files


def minutes(seconds):
    return f"{seconds / 60:.1f} min" if seconds is not None else "?"


def machine_section(res, machine, meta, args, when):
    ctx = res.context
    skipped = ", ".join(res.skipped) or "none"
    cpus = machine["cpus"]
    md = ["## Machine", "",
          f"- CPU: {cpu_text(machine)}"
          + (f", {machine['vendor']}" if machine.get("vendor") else "")
          + f"; {cpus} logical cores"
          + (f", {machine['memory_gib']:.0f} GiB memory" if machine.get("memory_gib") else "")
          + ("; a virtual machine (its CPU flags list `hypervisor`)" if machine["vm"] else "")]
    before, after = meta.get("clock_before") or {}, meta.get("clock_after") or {}
    core = core_clock(meta)
    if core:
        tsc = after.get("tsc_ghz") or before.get("tsc_ghz")
        md.append(f"- core clock: {before.get('core_ghz') or '?'} GHz before the run, "
                  f"{after.get('core_ghz') or '?'} GHz after (`tools/core_clock.c`: a chain "
                  "of dependent integer adds, one per cycle, the fastest of 7 rounds in the "
                  f"thread's CPU time); cycles per element below are at their mean, "
                  f"{core:.2f} GHz"
                  + (f". The TSC ticks at {tsc} GHz (Google Benchmark's \"MHz\" line); "
                     "TSC cycles are not core cycles" if tsc else "") + ".")
    else:
        md.append("- core clock: not measured (`tools/core_clock.c` runs on x86-64 only)")
    md += [f"- SIMD flags (of those dafl can use): {machine['simd']}; dafl measured on: "
           f"{' '.join(res.isas)}; skipped: {skipped}"
           + ((" (the CPU lacks AVX-512)" if "avx512f" not in machine.get("flags", [])
               else " (this build lacks it)") if res.skipped else ""),
           f"- caches (as Google Benchmark reads them): {machine['caches'] or 'unknown'}",
           f"- compiler: {machine['compiler']}; Google Benchmark from Debian's "
           f"libbenchmark-dev (it calls itself a {ctx.get('library_build_type', '?')} build, "
           "which slows only its own bookkeeping between timed iterations)",
           f"- dafl: commit {machine['commit']}",
           f"- date: {when}; `--benchmark_min_time={args.min_time}`, "
           f"{args.repetitions} repetition(s)"
           + (", the fastest of them" if args.repetitions > 1 else "")
           + (f"; `--dafl_max_elements={meta['max_elements']}`" if meta.get("max_elements")
              else "")]
    if meta.get("seconds_total") is not None:
        md.append(f"- this run of `bench/report.py` took {minutes(meta['seconds_total'])}: "
                  f"the benchmark program {minutes(meta.get('seconds_suite'))}"
                  + (f", the PyTorch comparison {minutes(meta['seconds_torch'])}"
                     if meta.get("seconds_torch") is not None else ""))
    loads = [meta.get("load_before"), meta.get("load_after")]
    md.append("")
    if None not in loads:
        md.append(f"Other work on the machine: the load average (1 minute) was "
                  f"{loads[0]:.1f} when the run began and {loads[1]:.1f} when it ended, on "
                  f"{cpus} logical cores"
                  + (", and as a virtual machine it also shares its host" if machine["vm"]
                     else "")
                  + ". Such work only ever slows a measurement down, so each figure is the "
                  "fastest of its repetitions; absolute numbers still move with it. The "
                  "ratios are steadier: each dafl result and its references are measured at "
                  "the same size, back to back.")
    return md


def core_clock(meta):
    """The run's core clock in GHz: the mean of the measurements before and after it."""
    values = [c["core_ghz"] for c in (meta.get("clock_before"), meta.get("clock_after"))
              if c and c.get("core_ghz")]
    return sum(values) / len(values) if values else None


def write_markdown(res, torch_results, machine, meta, path, args, when):
    best = res.isas[-1] if res.isas else "?"
    core = core_clock(meta)
    generated = {}
    generated["header"] = [
        "# dafl benchmarks", "",
        "Written by `bench/report.py`, all of it. The sections it measures come from one "
        "run, on the machine below, of the Google Benchmark program `bench/dafl_bench.cc` "
        "(and of `bench/torch_eager.py` where its section says so). The sections written by hand, each with its own "
        "date and method, are copied in from `bench/notes/` (the file is named in a comment "
        "above each): edit them there. Benchmarks measure, they never fail on a time."]
    generated["machine"] = machine_section(res, machine, meta, args, when)
    generated["targets"] = (["## Targets (issue #4; measured, not asserted)", ""]
                            + targets_table(res, torch_results, meta.get("torch_not_run"))
                            + [""] + same_targets_on_avx2(res))
    generated["penalty_focal"] = (
        ["## Penalty-reduced focal loss, forward + gradient, one thread", "",
         "Elements per second (G = 10^9, M = 10^6). dafl columns are the one-pass call "
         "(`DAFL_REDUCTION_NORMALIZER`, `DAFL_FLAG_TRUST_TARGETS`); \"default call\" divides "
         "by the positives it counts and validates the targets first (one more read of the "
         "targets). The naive loop computes CenterNet's clamped form of the same loss; "
         "`bench/naive_focal.c`.", ""]
        + headline_table(res) + [""] + one_pass_gain(res) + [""] + thread_scaling(res))
    isa_lines = ["## Every loss on every ISA, one thread, forward + gradient", "",
                 "ns per element (per logit for softmax focal), the fastest repetition; "
                 + (f"cycles per element at the core clock measured with the run "
                    f"({core:.2f} GHz); " if core else "")
                 + "avx512 / avx2 is avx512's speed over avx2's in this run (above 1: "
                 "avx512 faster)."]
    for n in (1 << 16, 1 << 26):
        if n in res.sizes:
            isa_lines += ["", f"**{size_name(n)} elements**", ""]
            isa_lines += isa_table(res, machine, n, core)
    generated["isa_tables"] = isa_lines
    generated["half"] = (
        ["## Half precision against float32, forward + gradient", "",
         "ns per element; in brackets the time relative to float32's (below 1: faster). "
         "Bytes per element with the gradient: float32 12, bfloat16 or float16 "
         "throughout 6, bfloat16 logits and gradient with float32 targets 8. One-thread "
         "rows in CPU time, \"N threads\" rows in wall-clock time.", ""]
        + half_table(res) + ["", "![throughput against size](bench-throughput.png)"])
    generated["bandwidth_fraction"] = (
        ["## Every loss: fraction of the memory-bandwidth loop (DRAM sizes)", "",
         "1.00 would be a loss computed as fast as its bytes can be moved.", ""]
        + bandwidth_fraction_table(res))
    absent = avx512_absent(res, machine)
    generated["all_losses"] = (
        ["## Every loss, every ISA, every size (elements per second)", ""]
        + ([f"avx512 / avx2: {absent}.", ""] if absent else
           ["The rows \"avx512 / avx2\" give avx512's speed over avx2's at each size.", ""])
        + all_losses_table(res))
    generated["pytorch"] = (["## Against PyTorch (8 x 80 x 128 x 128)", ""]
                            + torch_section(torch_results, meta.get("torch_not_run")))
    generated["how"] = [
        "## How these were measured", "",
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
        "- The core clock: `tools/core_clock.c`, run by `bench/report.py` just before "
        "and just after the benchmark program; the CPU's name, family, model and stepping, "
        "its flags and core count come from `/proc/cpuinfo` as the run began.",
        "- The console output of `meson test --benchmark -C build` (a short run) shows "
        "counters computed from the references measured at the same size: `bw_frac` on "
        "every dafl result (its elements/s over the bandwidth loop's; printed with SI "
        "prefixes, so `23m` is 0.023), and `x_naive_O2` and `x_autovec` on the "
        "penalty-reduced focal results with the gradient, the work the naive loop does; "
        "it ends with a summary, every loss in ns per element on each ISA at 64K and 64M "
        "elements (`bench/README.md` says where each output goes).",
        "- Data: 128x128 heatmap planes, 80 per image, 1..14 Gaussian objects per image "
        "(`dafl_draw_gaussian`), logits mostly confident negatives, some beyond the "
        "clamp limits.", "",
        "Reproduce: `meson setup build && ninja -C build && /usr/bin/python3 "
        "bench/report.py` (this run's duration is under Machine; `--quick` for a short "
        "run)."]
    notes = read_notes()
    md = []
    for part in DOCUMENT:
        if part.endswith(".md"):
            md += [f"<!-- bench/notes/{part}: written by hand, copied in by bench/report.py -->",
                   notes[part], ""]
        else:
            md += generated[part] + [""]
    pathlib.Path(path).write_text("\n".join(md).rstrip("\n") + "\n")


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
    ap.add_argument("--markdown", default=str(ROOT / "docs" / "benchmarks.md"))
    ap.add_argument("--plot", default=str(ROOT / "docs" / "bench-throughput.png"))
    args = ap.parse_args()
    if args.quick:
        args.min_time, args.repetitions = 0.02, 1

    read_notes()  # a hand-written section missing stops the script before it measures
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
            sys.exit(f"report.py: {exe} not found: meson setup {build} && ninja -C {build}")
        when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
        start = time.monotonic()
        # What the machine is and how fast its core runs, recorded with the results, so
        # that a document rendered later (--from-json) states the machine that measured.
        meta = {"min_time": args.min_time, "repetitions": args.repetitions, "date": when,
                "max_elements": args.max_elements, "load_before": load_average(),
                "machine": machine_description({}), "clock_before": measure_clock(build)}
        suite_start = time.monotonic()
        raw = run_suite(exe, args.min_time, args.repetitions, args.max_elements)
        meta["seconds_suite"] = time.monotonic() - suite_start
        meta["clock_after"] = measure_clock(build)
        meta["load_after"] = load_average()
        raw["dafl_report"] = meta
        # Saved before the PyTorch comparison, which can fail: --from-json renders it.
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        raw_path.write_text(json.dumps(raw, indent=1))
        torch_results = None
        if args.no_torch:
            meta["torch_not_run"] = "skipped (`--no-torch`)"
        elif not torch_available():
            meta["torch_not_run"] = "PyTorch is not installed here"
            print("PyTorch not found: sudo apt-get install python3-torch "
                  "python3-torchvision (skipping the comparison)")
        else:
            torch_start = time.monotonic()
            torch_results = run_torch(build / "libdafl.so", 1 if args.quick else 3,
                                      torch_path)
            meta["seconds_torch"] = time.monotonic() - torch_start
        meta["seconds_total"] = time.monotonic() - start
        raw_path.write_text(json.dumps(raw, indent=1))
    meta = raw.get("dafl_report", {})
    res = Results(raw)
    # The machine as recorded by the run; results from before it was recorded get this one.
    machine = dict(meta.get("machine") or machine_description({}))
    machine["caches"] = machine_description(res.context)["caches"]
    machine["commit"] = meta.get("commit", machine["commit"])
    pathlib.Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
    write_plot(res, machine, args.plot, when)
    write_markdown(res, torch_results, machine, meta, args.markdown, args, when)
    print(f"wrote {args.markdown} and {args.plot} (raw results: {raw_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
