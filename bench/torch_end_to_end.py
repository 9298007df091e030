#!/usr/bin/env python3
"""End-to-end forward+backward of the losses as a PyTorch training step runs them:
PyTorch eager, torch.compile of that same eager code, and dafl.torch.

    PYTHONPATH=build/python python3 bench/torch_end_to_end.py [--quick] [--json out.json]
    python3 bench/torch_end_to_end.py --all [--quick] [--json out.json]

A step is what a training loop does: ``x.grad = None; loss = f(x, target);
loss.backward()`` with the logits ``x`` a leaf tensor that requires grad.  Losses:

  centernet      CenterNet's _neg_loss on clamp(sigmoid(x), 1e-4, 1-1e-4), written from its
                 published formula (including its ``if num_pos == 0`` branch, a graph break
                 under torch.compile as in CenterNet's code) / dafl.torch.CenterNetFocalLoss
  sigmoid_focal  torchvision.ops.sigmoid_focal_loss's formula, ce * (1-p_t)^2 * alpha_t,
                 reduction "mean", binary targets / dafl.torch.sigmoid_focal_loss
  bce            F.binary_cross_entropy_with_logits (mean) / dafl.torch's drop-in
  softmax_focal  -(1-p_t)^2 log p_t over log_softmax (mean), 19 classes, int64 labels
                 / dafl.torch.softmax_focal_loss(gamma=2)

Implementations: eager and dafl, each on contiguous and channels_last logits + target
(softmax focal: channels_last logits, (N, H, W) labels); torch.compile (default mode,
torch >= 2 only) on contiguous inputs, as the interpreter's environment has it
("compile") and, with --all, also with Debian's libsleef.so.3 in LD_PRELOAD
("compile+sleef"): without it inductor's vector-ISA probe fails on this machine (undefined
symbol Sleef_expf16_u10) and it emits scalar C++.  Each table header and each JSON
record says which inductor ISA the probe picked (or "scalar"), which malloc is loaded and
which torch; below each table, how many of inductor's kernels came out vectorized.
Inductor's FX graph and AOT autograd caches are turned off in every process here: they do
not key on the probed ISA, and would hand a process with libsleef the scalar code that
one without it compiled earlier.

Every configuration (implementation, layout, loss, size, thread count) runs in its own
process, so that its minor page faults per step (getrusage ru_minflt, over the timed
steps) and its peak RSS (ru_maxrss; a process-wide high-water mark) are its own.  The
processes are forked from one server per environment that has imported torch and dafl
(a fork costs milliseconds where an import costs seconds); each child resets the kernel's
high-water mark at its start (/proc/self/clear_refs), so "peak RSS" is the imported
interpreter plus what the configuration itself used, as a fresh process would show.

Timing: the first step (compile, first allocation) is reported apart (JSON); then warm-up
steps; then up to --reps rounds in which every configuration of a group (same loss, size,
threads) runs a block of steps (about --block-s seconds) in turn - interleaved, so that a
noisy shared machine slows all of them alike - and each configuration's figure is its
fastest block's time per step.  A slow configuration (eager at 8x80x128x128 takes over a
second a step) sits out the rounds past --min-reps once its blocks have taken --worker-s.

--all runs every environment: Debian's torch 1.13 (/usr/bin/python3) and PyPI torch 2.x
(--torch2-python, default /work/v2/bin/python), each with glibc's malloc and with a tuned
one (--tuned-allocator, LD_PRELOADed: tcmalloc, the default, keeps freed 42 MB blocks;
jemalloc 5.3 with its defaults hands them back to the kernel at once, so every one faults
again as under glibc, unless --malloc-conf dirty_decay_ms:-1), one thread and all
threads, at 8x80x128x128 (softmax: 8x19x128x128) and 2x80x32x32 (2x19x32x32): four
tables, about ten minutes on a 2-CPU machine.  Progress goes to stderr, the Markdown tables to stdout;
--render re-prints them from a --json file.  --quick: a tiny size (2x8x16x16), one
thread, three short rounds: to check that it works (about 10 s for one interpreter, a
minute with --all), not to measure.

--half (one process, the interpreter that runs this script, --pythonpath first on its
path): dafl.torch's CenterNetFocalLoss forward + backward with half-precision logits, at
--sizes (default large) and --threads (default 1): float32 logits and targets; bfloat16
and float16 logits with float32 Gaussian targets and with targets of their own dtype,
read in place (the gradient written in the logits' dtype by the C call); the same half
configurations through the widening path of the previous release (the half operands
copied into float32 buffers, a float32 gradient, then rounded into a new tensor of the
logits' dtype: dafl.torch with only float32 read in place); and the C call alone
(dafl._dafl.penalty_focal into a preallocated gradient).  Every configuration runs a block
of steps in turn, --reps rounds (default 15), interleaved; each figure is its fastest
block's time per step, with the minor page faults per step.  The configurations share
one process, and dafl.torch's buffer cache keeps up to 16 buffers per shape and dtype
for them (2 by default): each finds its buffers as it would alone.
"""

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBDIR = "/usr/lib/x86_64-linux-gnu"
ALLOCATORS = {
    "jemalloc": os.path.join(LIBDIR, "libjemalloc.so.2"),           # Debian libjemalloc2
    "tcmalloc": os.path.join(LIBDIR, "libtcmalloc_minimal.so.4"),   # libtcmalloc-minimal4
}
SLEEF = os.path.join(LIBDIR, "libsleef.so.3")                       # Debian libsleef3

LOSSES = ("centernet", "sigmoid_focal", "bce", "softmax_focal")
LOSS_TITLES = {"centernet": "CenterNet focal", "sigmoid_focal": "sigmoid focal (torchvision)",
               "bce": "BCE with logits", "softmax_focal": "softmax focal (gamma 2)"}
SIZES = {"large": (8, 80, 128, 128), "small": (2, 80, 32, 32), "tiny": (2, 8, 16, 16)}
SOFTMAX_CLASSES = {"large": 19, "small": 19, "tiny": 8}
IMPLS = ("eager", "compile", "compile+sleef", "dafl")


def shape_of(loss, size):
    n, c, h, w = SIZES[size]
    return (n, SOFTMAX_CLASSES[size] if loss == "softmax_focal" else c, h, w)


def all_threads():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# =================================================================================
# Worker side: runs inside the interpreter under test (imports torch and dafl).
# =================================================================================

def _eager_losses():
    import torch
    import torch.nn.functional as F

    def centernet(logits, gt):
        # CenterNet's _sigmoid then _neg_loss (alpha 2, beta 4), from the published formula.
        pred = torch.clamp(torch.sigmoid(logits), min=1e-4, max=1 - 1e-4)
        pos_inds = gt.eq(1).float()
        neg_inds = gt.lt(1).float()
        neg_weights = torch.pow(1 - gt, 4)
        pos_loss = (torch.log(pred) * torch.pow(1 - pred, 2) * pos_inds).sum()
        neg_loss = (torch.log(1 - pred) * torch.pow(pred, 2) * neg_weights * neg_inds).sum()
        num_pos = pos_inds.sum()
        if num_pos == 0:
            return -neg_loss
        return -(pos_loss + neg_loss) / num_pos

    def sigmoid_focal(inputs, targets, alpha=0.25, gamma=2.0):
        # torchvision.ops.sigmoid_focal_loss's formula, reduction "mean".
        p = torch.sigmoid(inputs)
        ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
        p_t = p * targets + (1 - p) * (1 - targets)
        loss = ce * ((1 - p_t) ** gamma)
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        return (alpha_t * loss).mean()

    def bce(logits, targets):
        return F.binary_cross_entropy_with_logits(logits, targets)

    def softmax_focal(logits, labels, gamma=2.0):
        logp = F.log_softmax(logits, dim=1)
        logp_t = logp.gather(1, labels.unsqueeze(1)).squeeze(1)
        p_t = logp_t.exp()
        return (-((1 - p_t) ** gamma) * logp_t).mean()

    return {"centernet": centernet, "sigmoid_focal": sigmoid_focal, "bce": bce,
            "softmax_focal": softmax_focal}


def _dafl_losses():
    import dafl.torch as dt
    centernet = dt.CenterNetFocalLoss()
    return {
        "centernet": lambda x, y: centernet(x, y),
        "sigmoid_focal": lambda x, y: dt.sigmoid_focal_loss(x, y, reduction="mean"),
        "bce": lambda x, y: dt.binary_cross_entropy_with_logits(x, y),
        "softmax_focal": lambda x, y: dt.softmax_focal_loss(x, y, gamma=2),
    }


def _heatmaps(shape, gen):
    """CenterNet-like targets: per image about one object per 40x40 pixels (at least 2),
    each a Gaussian of radius 2-12 (sigma = (2 radius + 1) / 6) cut at its radius, 1.0 at
    its centre, in a random class channel; 0 elsewhere."""
    import torch
    n, c, h, w = shape
    out = torch.zeros(shape)
    yy = torch.arange(h, dtype=torch.float32).view(h, 1)
    xx = torch.arange(w, dtype=torch.float32).view(1, w)
    objects = max(2, (h * w) // 1600)
    for i in range(n):
        for _ in range(objects):
            k = int(torch.randint(0, c, (1,), generator=gen))
            cy = int(torch.randint(0, h, (1,), generator=gen))
            cx = int(torch.randint(0, w, (1,), generator=gen))
            r = int(torch.randint(2, 13, (1,), generator=gen))
            sigma = (2 * r + 1) / 6
            d2 = (yy - cy) ** 2 + (xx - cx) ** 2
            g = torch.exp(-d2 / (2 * sigma * sigma))
            g = g * (((yy - cy).abs() <= r) & ((xx - cx).abs() <= r))
            out[i, k] = torch.maximum(out[i, k], g)
    return out


def _rusage():
    return resource.getrusage(resource.RUSAGE_SELF)


def _status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss():
    """Linux >= 4.0: '5' resets the process's RSS high-water mark (VmHWM, which
    ru_maxrss reports) to its current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _inductor_isa():
    """What inductor's vector-ISA probe picked: its name, "scalar" when the probe failed
    (inductor then emits scalar C++), or why there is no inductor."""
    import torch
    if int(torch.__version__.split(".")[0]) < 2:
        return "n/a (no torch.compile before torch 2)"
    pick = None
    for mod in ("torch._inductor.cpu_vec_isa", "torch._inductor.codecache"):
        try:
            pick = getattr(__import__(mod, fromlist=["pick_vec_isa"]), "pick_vec_isa")
            break
        except (ImportError, AttributeError):
            continue
    if pick is None:
        return "unknown (no pick_vec_isa in this torch)"
    try:
        isa = pick()
    except Exception as e:  # noqa: BLE001 - report, do not fail
        return f"unknown (pick_vec_isa raised {type(e).__name__})"
    return str(isa) if isa else "scalar"


def _loaded_libraries():
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and "/" in parts[5]:
                    libs.add(os.path.basename(parts[5]))
    except OSError:
        pass
    return libs


def environment_info():
    import torch
    import dafl
    import dafl.torch as dt
    libs = _loaded_libraries()
    allocator = "glibc malloc"
    for name, key in (("jemalloc", "libjemalloc"), ("tcmalloc", "libtcmalloc")):
        if any(lib.startswith(key) for lib in libs):
            allocator = name
    return {
        "python": platform.python_version(),
        "executable": sys.executable,
        "torch": torch.__version__,
        "torch_file": os.path.dirname(torch.__file__),
        "dafl": dafl.version(),
        "dafl_isa": dafl.active_isa(),
        "dafl_file": os.path.dirname(dafl.__file__),
        "custom_ops": bool(getattr(dt, "HAVE_CUSTOM_OPS", False)),
        "allocator": allocator,
        "sleef_loaded": any(lib.startswith("libsleef.so") for lib in libs),
        "sleef_preloaded": "libsleef" in os.environ.get("LD_PRELOAD", ""),
        "ld_preload": os.environ.get("LD_PRELOAD", ""),
        "malloc_env": {k: v for k, v in os.environ.items()
                       if k == "MALLOC_CONF" or k.startswith("MALLOC_")
                       or k.startswith("TCMALLOC_")},
        "inductor_isa": _inductor_isa(),
        "cpus": all_threads(),
    }


class Case:
    """One configuration, set up in a forked child: inputs, the loss, the first step."""

    def __init__(self, cfg):
        import torch
        import dafl
        self.cfg = cfg
        self.torch = torch
        threads = cfg["threads"]
        torch.set_num_threads(threads)
        dafl.set_num_threads(threads)
        self.rss_base_kib = _status_kib("VmRSS")
        self.peak_reset = _reset_peak_rss()

        loss, impl = cfg["loss"], cfg["impl"]
        shape = tuple(cfg["shape"])
        gen = torch.Generator().manual_seed(1234)
        logits = torch.randn(shape, generator=gen) * 2
        if loss == "softmax_focal":
            target = torch.randint(0, shape[1], (shape[0],) + shape[2:], generator=gen)
        else:
            target = _heatmaps(shape, gen)
            if loss in ("sigmoid_focal", "bce"):
                target = target.eq(1).float()
        if cfg["layout"] == "channels_last":
            logits = logits.contiguous(memory_format=torch.channels_last)
            if target.dim() == 4:
                target = target.contiguous(memory_format=torch.channels_last)
        self.x = logits.detach().requires_grad_(True)
        self.y = target

        if impl == "dafl":
            fn = _dafl_losses()[loss]
        else:
            fn = _eager_losses()[loss]
            if impl.startswith("compile"):
                import torch._dynamo  # noqa: F401
                torch._dynamo.reset()
                fn = torch.compile(fn)
        self.fn = fn

        self.info = {}
        if impl.startswith("compile"):
            try:
                import torch._inductor.metrics as metrics
                metrics.reset()
            except ImportError:
                metrics = None
        ru0, t0 = _rusage(), time.perf_counter()
        value = self.step()
        t1, ru1 = time.perf_counter(), _rusage()
        self.info["first_step_ms"] = (t1 - t0) * 1e3
        self.info["first_step_faults"] = ru1.ru_minflt - ru0.ru_minflt
        self.info["loss_value"] = float(value)
        g = self.x.grad
        self.info["grad_layout"] = (
            "contiguous" if g.is_contiguous() else
            "channels_last" if g.is_contiguous(memory_format=torch.channels_last) else
            "strided")
        if impl.startswith("compile") and metrics is not None:
            self.info["inductor_kernels"] = getattr(metrics, "generated_kernel_count", None)
            self.info["inductor_vec_kernels"] = getattr(
                metrics, "generated_cpp_vec_kernel_count", None)
        t_step, t_warm = float("inf"), time.perf_counter()
        for _ in range(max(1, cfg["warmup"])):
            t0 = time.perf_counter()
            self.step()
            t_step = min(t_step, time.perf_counter() - t0)
            if time.perf_counter() - t_warm >= cfg["warmup_s"]:
                break  # a slow configuration: one warm-up step is enough
        self.info["warm_step_ms"] = t_step * 1e3
        # Peak RSS over the timed steps alone (the steady state, without the first
        # step's or the compiler's memory): the high-water mark reset again here.
        self.setup_peak_kib = _rusage().ru_maxrss
        self.steady_reset = _reset_peak_rss()
        self.info["steps_per_block"] = max(1, min(cfg["max_steps"],
                                                  round(cfg["block_s"] / max(t_step, 1e-7))))
        self.minflt = 0
        self.steps = 0

    def step(self):
        self.x.grad = None
        loss = self.fn(self.x, self.y)
        loss.backward()
        return loss.detach()

    def block(self):
        n = self.info["steps_per_block"]
        step = self.step
        ru0 = _rusage()
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        t = time.perf_counter() - t0
        faults = _rusage().ru_minflt - ru0.ru_minflt
        self.minflt += faults
        self.steps += n
        return {"ms_per_step": t / n * 1e3, "faults_per_step": faults / n, "steps": n,
                "s": t}

    def close(self):
        return {"faults_per_step": self.minflt / max(self.steps, 1),
                "timed_steps": self.steps,
                "peak_rss_mib": max(self.setup_peak_kib, _rusage().ru_maxrss) / 1024,
                "steady_peak_rss_mib": (_rusage().ru_maxrss / 1024 if self.steady_reset
                                        else None),
                "rss_base_mib": (self.rss_base_kib or 0) / 1024,
                "peak_reset": self.peak_reset}


# =================================================================================
# --half: half-precision logits read in place, against float32 and the widening path
# =================================================================================

HALF_CONFIGS = (  # name, logits dtype, target dtype, path
    ("float32", "float32", "float32", "in place"),
    ("bfloat16 logits, float32 target", "bfloat16", "float32", "in place"),
    ("bfloat16 logits and target", "bfloat16", "bfloat16", "in place"),
    ("float16 logits, float32 target", "float16", "float32", "in place"),
    ("float16 logits and target", "float16", "float16", "in place"),
    ("bfloat16 logits, float32 target", "bfloat16", "float32", "widened"),
    ("bfloat16 logits and target", "bfloat16", "bfloat16", "widened"),
    ("float16 logits, float32 target", "float16", "float32", "widened"),
    ("float16 logits and target", "float16", "float16", "widened"),
    ("float32", "float32", "float32", "C call"),
    ("bfloat16 logits, float32 target", "bfloat16", "float32", "C call"),
    ("bfloat16 logits and target", "bfloat16", "bfloat16", "C call"),
    ("float16 logits, float32 target", "float16", "float32", "C call"),
    ("float16 logits and target", "float16", "float16", "C call"),
)


def run_half(args):
    if args.pythonpath not in sys.path:
        sys.path.insert(0, args.pythonpath)
    import torch
    import dafl
    import dafl.torch as dt
    from dafl import _buffers, _dafl, _torch_ops
    # the configurations share this process and dafl.torch's buffer cache: room for all
    # their buffers (2 per shape and dtype by default), so that none takes another's and
    # pays page faults a process of its own would not
    _buffers.MAX_ENTRIES = 16
    env = environment_info()
    print(f"torch {env['torch']}, dafl {env['dafl']} ({env['dafl_isa']}), "
          f"{env['allocator']}, {platform.machine()}, {all_threads()} CPUs; "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    loss_fn = dt.CenterNetFocalLoss()
    arrays = _torch_ops._T
    in_place = arrays.in_place
    results = []
    for size in args.sizes:
        shape = SIZES[size]
        for threads in args.threads:
            torch.set_num_threads(threads)
            dafl.set_num_threads(threads)
            gen = torch.Generator().manual_seed(1234)
            logits = torch.randn(shape, generator=gen) * 2
            target = _heatmaps(shape, gen)
            cases = []
            for name, xd, yd, path in HALF_CONFIGS:
                x = logits.to(getattr(torch, xd), copy=True).requires_grad_(path != "C call")
                y = target.to(getattr(torch, yd), copy=True)
                if path == "C call":
                    g = torch.empty_like(x)

                    def step(x=x, y=y, g=g):
                        _dafl.penalty_focal(x, y, None, g,
                                            input_mode=_dafl.INPUT_CLAMPED_LOGITS)
                else:
                    def step(x=x, y=y):
                        x.grad = None
                        loss_fn(x, y).backward()
                cases.append({"name": name, "path": path, "step": step,
                              "in_place": in_place if path != "widened"
                              else (torch.float32,), "best": float("inf"), "faults": None})

            def block(case, n):
                arrays.in_place = case["in_place"]
                try:
                    ru0, t0 = _rusage(), time.perf_counter()
                    for _ in range(n):
                        case["step"]()
                    t, ru1 = time.perf_counter() - t0, _rusage()
                finally:
                    arrays.in_place = in_place
                return t / n, (ru1.ru_minflt - ru0.ru_minflt) / n

            for case in cases:  # warm-up: first calls, buffer cache, page faults
                t, _ = block(case, 2)
                case["n"] = max(1, min(args.max_steps, round(args.block_s / max(t, 1e-7))))
            for r in range(args.reps):
                order = cases if r % 2 == 0 else cases[::-1]
                for case in order:
                    t, faults = block(case, case["n"])
                    if t < case["best"]:
                        case["best"], case["faults"] = t, faults
                log(f"--half {size} {threads} thread(s): round {r + 1}/{args.reps}")
            base = {c["path"]: c["best"] for c in cases if c["name"] == "float32"}
            widened = {c["name"]: c["best"] for c in cases if c["path"] == "widened"}
            print(f"\n### CenterNetFocalLoss forward + backward, {'x'.join(map(str, shape))}, "
                  f"{threads} thread(s): fastest of {args.reps} interleaved blocks\n")
            print("| path | logits, target | ms per step | vs float32 | vs widened | "
                  "minor faults per step |")
            print("|---|---|--:|--:|--:|--:|")
            for c in cases:
                ref = base["C call" if c["path"] == "C call" else "in place"]
                w = widened.get(c["name"]) if c["path"] == "in place" else None
                vs_widened = f"{c['best'] / w:.2f}x" if w else ""
                print(f"| {c['path']} | {c['name']} | {c['best'] * 1e3:.2f} | "
                      f"{c['best'] / ref:.2f}x | {vs_widened} | {c['faults']:.0f} |")
                results.append({"size": size, "shape": shape, "threads": threads,
                                "path": c["path"], "config": c["name"],
                                "ms_per_step": c["best"] * 1e3,
                                "faults_per_step": c["faults"]})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "argv": sys.argv[1:], "reps": args.reps,
                       "records": results}, f, indent=1)
        log(f"wrote {args.json}")


def _write_line(fd, obj):
    data = (json.dumps(obj) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


class _LineReader:
    def __init__(self, fd):
        self.fd, self.buf = fd, b""

    def readline(self):
        while b"\n" not in self.buf:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def _child_main(cfg, cmd_r, res_w):
    try:
        case = Case(cfg)
        _write_line(res_w, {"ok": True, "info": case.info})
    except Exception as e:  # noqa: BLE001 - reported to the driver
        import traceback
        traceback.print_exc()
        _write_line(res_w, {"ok": False, "error": f"{type(e).__name__}: {e}"})
        return
    reader = _LineReader(cmd_r)
    while True:
        cmd = reader.readline()
        if cmd is None:
            return
        if cmd["op"] == "block":
            _write_line(res_w, {"ok": True, "block": case.block()})
        elif cmd["op"] == "close":
            _write_line(res_w, {"ok": True, "final": case.close()})
            return


def serve():
    """Fork server: imports torch and dafl once, reports the environment, then for each
    'spawn' forks a child that sets up one configuration and serves 'block' / 'close'.
    Protocol: JSON lines on stdin / on the original stdout (stdout itself goes to stderr,
    so that nothing torch prints can corrupt it)."""
    proto = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        info = environment_info()
        if _torch_major(info["torch"]) >= 2:
            # What every compiling child would otherwise import for itself (seconds);
            # importing runs no kernel, so no OpenMP pool exists at fork time.
            import importlib
            for mod in ("torch._dynamo", "torch._inductor.compile_fx",
                        "torch._inductor.codegen.cpp", "torch._functorch.aot_autograd"):
                try:
                    importlib.import_module(mod)
                except ImportError:
                    pass
    except Exception as e:  # noqa: BLE001
        _write_line(proto, {"ok": False, "error": f"{type(e).__name__}: {e}"})
        return
    _write_line(proto, {"ok": True, "env": info})
    children = {}  # id -> (pid, cmd_w, reader)
    stdin = _LineReader(0)
    while True:
        msg = stdin.readline()
        if msg is None or msg["op"] == "quit":
            break
        op, cid = msg["op"], msg.get("id")
        if op == "spawn":
            cmd_r, cmd_w = os.pipe()
            res_r, res_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(proto)
                os.close(cmd_w)
                os.close(res_r)
                for _, w, rd in children.values():
                    os.close(w)
                    os.close(rd.fd)
                code = 0
                try:
                    _child_main(msg["config"], cmd_r, res_w)
                except BaseException:  # noqa: BLE001
                    code = 1
                finally:
                    sys.stderr.flush()
                    os._exit(code)
            os.close(cmd_r)
            os.close(res_w)
            reader = _LineReader(res_r)
            reply = reader.readline()
            if reply is None or not reply.get("ok"):
                os.waitpid(pid, 0)
                os.close(cmd_w)
                os.close(res_r)
                _write_line(proto, reply or {"ok": False, "error": "worker died in setup"})
                continue
            children[cid] = (pid, cmd_w, reader)
            _write_line(proto, reply)
        elif op in ("block", "close"):
            pid, cmd_w, reader = children[cid]
            _write_line(cmd_w, {"op": op})
            reply = reader.readline() or {"ok": False, "error": "worker died"}
            if op == "close" or not reply.get("ok"):
                os.waitpid(pid, 0)
                os.close(cmd_w)
                os.close(reader.fd)
                del children[cid]
            _write_line(proto, reply)
    for pid, cmd_w, reader in children.values():
        os.close(cmd_w)
        os.close(reader.fd)
        os.waitpid(pid, 0)


# =================================================================================
# Driver side: no torch needed.
# =================================================================================

def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Server:
    """A fork server in one environment (interpreter + LD_PRELOAD)."""

    def __init__(self, name, python, preload, pythonpath, extra_env, logdir, verbose):
        import subprocess
        env = dict(os.environ)
        if preload is not None:
            env["LD_PRELOAD"] = ":".join(preload)
            if not preload:
                del env["LD_PRELOAD"]
        if pythonpath is not None:
            env["PYTHONPATH"] = pythonpath
        env.update(extra_env)
        # One compile process (no worker pool beside the timed ones); numpy's BLAS idle.
        env.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        # Inductor's on-disk FX graph / AOT autograd caches do not key on the vector ISA
        # the probe picked: a process with libsleef preloaded gets the scalar code that a
        # process without it compiled earlier (and reports its kernel counts).  Every
        # compile here generates code for its own process (g++ output is still cached by
        # source hash, so the vectorized and the scalar C++ each compile once).
        env["TORCHINDUCTOR_FX_GRAPH_CACHE"] = "0"
        env["TORCHINDUCTOR_AUTOGRAD_CACHE"] = "0"
        self.name = name
        self.logpath = os.path.join(logdir, name.replace(" ", "_").replace("/", "_") + ".log")
        self.logfile = open(self.logpath, "w")
        self.proc = subprocess.Popen(
            [python, os.path.abspath(__file__), "--serve"], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=None if verbose else self.logfile)
        self.next_id = 0
        hello = self._read()
        if not hello.get("ok"):
            raise RuntimeError(f"{name}: {hello.get('error')}; see {self.logpath}")
        self.env = hello["env"]

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"{self.name}: server exited ({self.proc.returncode}); "
                               f"log tail:\n{self.log_tail()}")
        return json.loads(line)

    def log_tail(self, n=20):
        self.logfile.flush()
        try:
            with open(self.logpath) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def request(self, msg):
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        self.proc.stdin.flush()
        return self._read()

    def spawn(self, config):
        self.next_id += 1
        reply = self.request({"op": "spawn", "id": self.next_id, "config": config})
        return (self.next_id if reply.get("ok") else None), reply

    def close(self):
        try:
            self.request({"op": "quit"})
        except (BrokenPipeError, RuntimeError, ValueError):
            pass
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.wait()
        self.logfile.close()


def _torch_major(version):
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def _column(impl, layout):
    return impl if layout == "contiguous" else f"{impl} CL"


T0 = time.perf_counter()


def run_table(table, servers, args):
    """table: {"name", "workers": [(impl, layout, server key)], ...} -> result records."""
    records = []
    groups = [(loss, size, threads) for loss in args.losses for size in args.sizes
              for threads in args.threads]
    for gi, (loss, size, threads) in enumerate(groups, 1):
        shape = shape_of(loss, size)
        label = (f"[{table['name']}] {gi}/{len(groups)} {loss} "
                 f"{'x'.join(map(str, shape))} threads={threads}")
        live = []
        for impl, layout, skey in table["workers"]:
            server = servers[skey]
            if impl.startswith("compile") and _torch_major(server.env["torch"]) < 2:
                continue  # no torch.compile before torch 2
            cfg = {"loss": loss, "shape": shape, "threads": threads, "impl": impl,
                   "layout": layout, "warmup": args.warmup, "warmup_s": args.warmup_s,
                   "block_s": args.block_s,
                   "max_steps": args.max_steps}
            t0 = time.perf_counter()
            wid, reply = server.spawn(cfg)
            rec = {"table": table["name"], "loss": loss, "size": size, "shape": list(shape),
                   "threads": threads, "impl": impl, "layout": layout,
                   "column": _column(impl, layout),
                   "torch": server.env["torch"], "allocator": server.env["allocator"],
                   "inductor_isa": server.env["inductor_isa"] if impl.startswith("compile")
                   else None,
                   "sleef_preloaded": server.env["sleef_preloaded"], "server": skey}
            if wid is None:
                rec["error"] = reply.get("error")
                log(f"{label} {rec['column']}: FAILED: {rec['error']}\n{server.log_tail()}")
                records.append(rec)
                continue
            rec.update(reply["info"])
            log(f"{label} {rec['column']}: set up in {time.perf_counter() - t0:.1f} s "
                f"(first step {rec['first_step_ms']:.0f} ms, "
                f"{rec['steps_per_block']} steps/block)")
            rec["blocks"] = []
            live.append((server, wid, rec))
            records.append(rec)
        for rnd in range(args.reps):
            for server, wid, rec in live:
                if (rnd >= args.min_reps
                        and sum(b["s"] for b in rec["blocks"]) >= args.worker_s):
                    continue  # a slow configuration: its minimum rounds are enough
                reply = server.request({"op": "block", "id": wid})
                if not reply.get("ok"):
                    rec["error"] = reply.get("error")
                    continue
                rec["blocks"].append(reply["block"])
            live = [w for w in live if "error" not in w[2]]
        for server, wid, rec in live:
            reply = server.request({"op": "close", "id": wid})
            if reply.get("ok"):
                rec.update(reply["final"])
            rec["ms_per_step"] = min(b["ms_per_step"] for b in rec["blocks"])
        summary = ", ".join(f"{r['column']} {r['ms_per_step']:.2f} ms"
                            for _, _, r in live if "ms_per_step" in r)
        log(f"{label}: {summary} [{time.perf_counter() - T0:.0f} s]")
    return records


def _fmt_ms(ms):
    return f"{ms:.3g}" if ms < 10 else f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}"


def _fmt_faults(f):
    return f"{f:.0f}" if f >= 10 else f"{f:.1f}"


def _cell(rec):
    if rec is None:
        return "-"
    if "error" in rec or "ms_per_step" not in rec:
        return "failed"
    return (f"{_fmt_ms(rec['ms_per_step'])} ms · {_fmt_faults(rec['faults_per_step'])} pf · "
            f"{rec['peak_rss_mib']:.0f} MiB")


def render(result, out=sys.stdout):
    """Markdown: one table per environment; rows = loss, size, threads; cells = fastest
    ms per forward+backward step · minor page faults per step · peak RSS."""
    for table in result["tables"]:
        recs = [r for r in result["records"] if r["table"] == table["name"]]
        if not recs:
            continue
        cols = []
        for r in recs:
            if r["column"] not in cols:
                cols.append(r["column"])
        order = {c: i for i, c in enumerate(
            ["eager", "eager CL", "compile", "compile+sleef", "dafl", "dafl CL"])}
        cols.sort(key=lambda c: order.get(c, 99))
        out.write(f"\n### {table['name']}\n\n")
        for skey, env in table["envs"].items():
            out.write(f"- `{skey}`: torch {env['torch']} (Python {env['python']}), "
                      f"{env['allocator']}"
                      f"{', libsleef.so.3 in LD_PRELOAD' if env['sleef_preloaded'] else ''}"
                      f"{''.join(f', {k}={v}' for k, v in env.get('malloc_env', {}).items())}; "
                      f"inductor vector ISA: {env['inductor_isa']}; dafl {env['dafl']} "
                      f"({env['dafl_isa']}), custom ops: {'yes' if env['custom_ops'] else 'no'}"
                      "\n")
        bases = {}
        for r in recs:
            if r.get("rss_base_mib"):
                bases[r["server"]] = min(bases.get(r["server"], 1e18), r["rss_base_mib"])
        if bases:
            out.write("- RSS of the imported interpreter before any configuration ran: "
                      + ", ".join(f"`{k}` {v:.0f} MiB" for k, v in bases.items()) + "\n")
        used = {c: next(r for r in recs if r["column"] == c)["server"] for c in cols}
        out.write("- columns: " + "; ".join(f"{c} from `{s}`" for c, s in used.items())
                  + "\n\n")
        compile_col = next((c for c in ("compile+sleef", "compile") if c in cols), None)
        extra = []
        if compile_col and "dafl" in cols:
            extra.append(f"{compile_col} / dafl")
        if "eager" in cols and "dafl" in cols:
            extra.append("eager / dafl")
        if "dafl CL" in cols and "dafl" in cols:
            extra.append("dafl CL / dafl")
        head = ["loss", "shape", "thr"] + cols + extra
        out.write("| " + " | ".join(head) + " |\n")
        out.write("|" + "|".join(["---"] * 3 + ["--:"] * (len(head) - 3)) + "|\n")
        keys = []
        for r in recs:
            k = (r["loss"], r["size"], r["threads"])
            if k not in keys:
                keys.append(k)
        for k in keys:
            row = {r["column"]: r for r in recs if (r["loss"], r["size"], r["threads"]) == k}
            any_rec = next(iter(row.values()))

            def ms(c):
                r = row.get(c)
                return r.get("ms_per_step") if r else None

            cells = [LOSS_TITLES[k[0]], "x".join(map(str, any_rec["shape"])), str(k[2])]
            cells += [_cell(row.get(c)) for c in cols]
            for num, den in ((compile_col, "dafl"), ("eager", "dafl"), ("dafl CL", "dafl")):
                if f"{num} / {den}" not in extra:
                    continue
                a, b = ms(num), ms(den)
                cells.append(f"{a / b:.2f}x" if a and b else "-")
            out.write("| " + " | ".join(cells) + " |\n")
        out.write("\nms: fastest block's time per forward+backward step; pf: minor page "
                  "faults per step over all timed steps; MiB: peak RSS of the "
                  "configuration's own process. CL: channels_last logits and target.\n")
        bad = [r for r in recs if r.get("loss_value") is not None]
        by_key = {}
        for r in bad:
            by_key.setdefault((r["loss"], r["size"], r["threads"]), []).append(r)
        for k, rs in by_key.items():
            ref = next((r["loss_value"] for r in rs if r["column"] == "eager"), None)
            for r in rs:
                if ref is not None and abs(r["loss_value"] - ref) > 1e-3 * max(abs(ref), 1e-6):
                    out.write(f"\nWARNING: {r['column']} {k}: loss {r['loss_value']:.7g} vs "
                              f"eager {ref:.7g}\n")
            for r in rs:
                if r["layout"] == "channels_last" and r.get("grad_layout") != "channels_last":
                    out.write(f"\nnote: {r['column']} {k[0]} {k[1]} thr={k[2]}: gradient "
                              f"comes back {r.get('grad_layout')}\n")
        comp = [r for r in recs if r["impl"].startswith("compile")
                and r.get("inductor_kernels") is not None]
        if comp:
            counts = {}
            for r in comp:
                counts.setdefault((r["column"], r["loss"]), []).append(
                    f"{r['inductor_vec_kernels']}/{r['inductor_kernels']}")
            out.write("\ninductor's C++ kernels, vectorized/generated (forward and "
                      "backward graphs, over the sizes and thread counts): " + "; ".join(
                          f"{c} {loss} {' '.join(dict.fromkeys(v))}"
                          for (c, loss), v in counts.items()) + "\n")
    out.flush()


def plan(args):
    """The environments (fork servers) and tables to run."""
    pp = args.pythonpath
    if args.all:
        t1, t2 = args.torch1_python, args.torch2_python
        tuned = ALLOCATORS[args.tuned_allocator]
        for path in (tuned, SLEEF):
            if not os.path.exists(path):
                sys.exit(f"{path} is missing (apt-get install libjemalloc2 "
                         "libtcmalloc-minimal4 libsleef3)")
        a = args.tuned_allocator
        conf = {"MALLOC_CONF": args.malloc_conf} if args.malloc_conf else {}
        servers = {
            "t1-glibc": (t1, [], pp, {}),
            f"t1-{a}": (t1, [tuned], pp, conf),
            "t2-glibc": (t2, [], pp, {}),
            "t2-glibc+sleef": (t2, [SLEEF], pp, {}),
            f"t2-{a}": (t2, [tuned], pp, conf),
            f"t2-{a}+sleef": (t2, [tuned, SLEEF], pp, conf),
        }
        full = [("eager", "contiguous"), ("eager", "channels_last"),
                ("dafl", "contiguous"), ("dafl", "channels_last")]
        # Under the tuned malloc eager's channels_last column only with --eager-cl-tuned
        # (at 8x80x128x128 one eager step takes over a second on one thread).
        tuned_base = full if args.eager_cl_tuned else [w for w in full
                                                       if w != ("eager", "channels_last")]
        name = a + (f" (MALLOC_CONF={args.malloc_conf})" if args.malloc_conf else "")
        tables = [
            {"name": "torch 1.13 (Debian), glibc malloc",
             "workers": [(i, l, "t1-glibc") for i, l in full]},
            {"name": f"torch 1.13 (Debian), {name}",
             "workers": [(i, l, f"t1-{a}") for i, l in tuned_base]},
            {"name": "torch 2 (PyPI), glibc malloc",
             "workers": [(i, l, "t2-glibc") for i, l in full]
             + [("compile", "contiguous", "t2-glibc"),
                ("compile+sleef", "contiguous", "t2-glibc+sleef")]},
            {"name": f"torch 2 (PyPI), {name}",
             "workers": [(i, l, f"t2-{a}") for i, l in tuned_base]
             + ([("compile", "contiguous", f"t2-{a}")] if args.scalar_compile_tuned else [])
             + [("compile+sleef", "contiguous", f"t2-{a}+sleef")]},
        ]
        if args.skip_torch1:
            tables = tables[2:]
            servers = {k: v for k, v in servers.items() if not k.startswith("t1")}
    else:
        servers = {"this": (sys.executable, None, None, {})}
        tables = [{"name": f"{os.path.basename(sys.executable)}, "
                           f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '') or '(none)'}",
                   "workers": [("eager", "contiguous", "this"),
                               ("eager", "channels_last", "this"),
                               ("compile", "contiguous", "this"),
                               ("dafl", "contiguous", "this"),
                               ("dafl", "channels_last", "this")]}]
    if args.impls:
        for t in tables:
            t["workers"] = [w for w in t["workers"] if w[0] in args.impls]
    if args.layouts:
        for t in tables:
            t["workers"] = [w for w in t["workers"] if w[1] in args.layouts]
    return servers, tables


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--all", action="store_true",
                    help="every environment: torch 1.13 and 2.x, glibc and tuned malloc, "
                         "compile as-is and with libsleef")
    ap.add_argument("--quick", action="store_true",
                    help="tiny size, one thread, 3 short rounds (a smoke test)")
    ap.add_argument("--json", metavar="PATH", help="write every record and environment here")
    ap.add_argument("--render", metavar="JSON", help="print the tables of an earlier --json")
    ap.add_argument("--losses", nargs="+", choices=LOSSES, default=list(LOSSES))
    ap.add_argument("--sizes", nargs="+", choices=list(SIZES))
    ap.add_argument("--threads", nargs="+", type=int,
                    help="thread counts (default: 1 and all CPUs this process may use)")
    ap.add_argument("--impls", nargs="+", choices=IMPLS)
    ap.add_argument("--layouts", nargs="+", choices=("contiguous", "channels_last"))
    ap.add_argument("--reps", type=int, help="interleaved rounds (default 5; quick 3)")
    ap.add_argument("--min-reps", type=int, default=3,
                    help="rounds every configuration runs; beyond them a configuration "
                         "whose blocks took --worker-s seconds in all sits out")
    ap.add_argument("--worker-s", type=float, default=3.0)
    ap.add_argument("--warmup", type=int, default=2,
                    help="most untimed steps after the first (fewer past --warmup-s)")
    ap.add_argument("--warmup-s", type=float, default=1.0)
    ap.add_argument("--block-s", type=float, help="seconds per timed block (default 0.15; "
                                                  "quick 0.02); at least one step")
    ap.add_argument("--max-steps", type=int, default=500, help="most steps in a block")
    ap.add_argument("--torch1-python", default="/usr/bin/python3")
    ap.add_argument("--torch2-python", default="/work/v2/bin/python")
    ap.add_argument("--pythonpath", default=os.path.join(REPO, "build", "python"),
                    help="PYTHONPATH for --all (where dafl is); default build/python")
    ap.add_argument("--tuned-allocator", choices=sorted(ALLOCATORS), default="tcmalloc",
                    help="LD_PRELOADed for the tuned tables (default tcmalloc: with its "
                         "defaults it keeps freed 42 MB blocks; jemalloc 5.3's defaults "
                         "hand them back to the kernel at once, every one faulting again, "
                         "unless --malloc-conf dirty_decay_ms:-1)")
    ap.add_argument("--malloc-conf", help="MALLOC_CONF for the tuned tables (jemalloc)")
    ap.add_argument("--scalar-compile-tuned", action="store_true",
                    help="with --all, also time scalar torch.compile under the tuned malloc")
    ap.add_argument("--eager-cl-tuned", action="store_true",
                    help="with --all, also time eager channels_last under the tuned malloc")
    ap.add_argument("--skip-torch1", action="store_true", help="with --all: torch 2 only")
    ap.add_argument("--verbose", action="store_true", help="servers' stderr to stderr")
    ap.add_argument("--half", action="store_true",
                    help="half-precision logits in place vs float32 and the widening path "
                         "(CenterNet loss, this interpreter)")
    args = ap.parse_args()

    if args.serve:
        serve()
        return
    if args.render:
        with open(args.render) as f:
            render(json.load(f))
        return
    if args.quick:
        args.sizes = args.sizes or ["tiny"]
        args.threads = args.threads or [1]
        args.reps = args.reps or 3
        args.block_s = args.block_s or 0.02
    if args.half:
        args.sizes = args.sizes or ["large"]
        args.threads = args.threads or [1]
        args.reps = args.reps or 15
        args.block_s = args.block_s or 0.15
        run_half(args)
        return
    args.sizes = args.sizes or ["large", "small"]
    args.threads = args.threads or sorted({1, all_threads()})
    args.reps = args.reps or 5
    args.block_s = args.block_s or 0.15

    server_specs, tables = plan(args)
    t_start = time.perf_counter()
    logdir = tempfile.mkdtemp(prefix="dafl_e2e_")
    servers = {}
    records = []
    try:
        needed = {w[2] for t in tables for w in t["workers"]}
        for key, (python, preload, pp, extra) in server_specs.items():
            if key not in needed:
                continue
            t0 = time.perf_counter()
            servers[key] = Server(key, python, preload, pp, extra, logdir, args.verbose)
            e = servers[key].env
            log(f"server {key}: torch {e['torch']}, {e['allocator']}, inductor ISA "
                f"{e['inductor_isa']}, dafl {e['dafl']} {e['dafl_isa']} "
                f"({time.perf_counter() - t0:.1f} s)")
        for t in tables:
            t["envs"] = {k: servers[k].env for k in dict.fromkeys(w[2] for w in t["workers"])}
            records += run_table(t, servers, args)
    finally:
        for s in servers.values():
            s.close()
    result = {
        "meta": {"host": platform.node(), "machine": platform.machine(),
                 "cpus": all_threads(), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                 "argv": sys.argv[1:], "reps": args.reps, "warmup": args.warmup,
                 "block_s": args.block_s, "wall_s": time.perf_counter() - t_start,
                 "logs": logdir},
        "tables": [{"name": t["name"], "envs": t["envs"],
                    "workers": [list(w) for w in t["workers"]]} for t in tables],
        "records": records,
    }
    render(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        log(f"wrote {args.json}")
    log(f"total {time.perf_counter() - t_start:.0f} s (server logs in {logdir})")


if __name__ == "__main__":
    main()
