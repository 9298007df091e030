#!/usr/bin/python3
"""dafl against PyTorch eager on CenterNet's heatmap head, in one process, one thread each.

The same arrays (a batch of 8 images x 80 COCO classes x 128 x 128, Gaussian targets,
logits) go through
  - CenterNet's penalty-reduced focal loss written in PyTorch (the semantics of its
    _neg_loss: positives where gt == 1, negatives weighted by (1 - gt)^4, normalised by
    the number of positives), forward and backward(), once on sigmoid(x) (against dafl's
    DAFL_INPUT_LOGITS) and once on clamp(sigmoid(x), 1e-4, 1 - 1e-4), CenterNet's own
    prediction (against DAFL_INPUT_CLAMPED_LOGITS);
  - torchvision.ops.sigmoid_focal_loss (alpha 0.25, gamma 2, summed), forward and
    backward(), against dafl_sigmoid_focal;
and dafl, loaded with ctypes from the shared library of a build tree.  The script checks
that losses and gradients agree to float tolerance, then prints how many times faster
dafl's fused call is.  It exits with status 1 when they disagree; a time never fails it.

Needs Debian's PyTorch (not installed by CI):
    sudo apt-get install python3-torch python3-torchvision
Run from anywhere, after building (meson setup build && ninja -C build):
    /usr/bin/python3 bench/torch_eager.py [--lib build/libdafl.so] [--json out.json]

End to end (--end-to-end): a training step's loss work, forward + loss.backward() into
the logits' .grad, through the dafl Python package (dafl.torch, found on PYTHONPATH, e.g.
build/python) against the same losses written in PyTorch, eager, and under torch 2.x also
through torch.compile (inductor; its compile time reported apart).  Each runs in two
child processes: glibc's default allocator, which returns PyTorch's 40 MB temporaries to
the kernel and faults them in again every step, and glibc told to keep its memory
(MALLOC_MMAP_MAX_=0: no mmap'd chunks, MALLOC_TRIM_THRESHOLD_ huge: no trimming), as a
tuned trainer's allocator (jemalloc, tcmalloc, these variables) does.  It also times
one fused pass into a preallocated buffer, and one with the gradient freshly allocated,
the floor that loss.backward() through dafl.torch is compared with:
    PYTHONPATH=build/python /usr/bin/python3 bench/torch_eager.py --end-to-end
    PYTHONPATH=build/python venv-torch2/bin/python bench/torch_eager.py --end-to-end
"""

import argparse
import ctypes
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

try:
    import torch
except ImportError as e:  # say what to install rather than show a traceback
    sys.exit(f"torch_eager.py: {e}; install Debian's PyTorch with\n"
             "    sudo apt-get install python3-torch python3-torchvision\n"
             "and run this script with /usr/bin/python3")
try:
    import torchvision
    from torchvision.ops import sigmoid_focal_loss
except ImportError as e:  # PyPI's torchvision does not import beside torch 2.13 here
    torchvision = None
    TORCHVISION_MISSING = str(e)

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHAPE = (8, 80, 128, 128)  # CenterNet's COCO heatmap head: batch 8, 80 classes, stride 4

# Tolerances for "agree": float32 results of two different formulas.
RTOL = 1e-4
ATOL_FRACTION = 1e-6  # absolute slack, as a fraction of the largest gradient magnitude


# ---- dafl through ctypes (mirrors include/dafl.h) ----------------------------------

DAFL_OK = 0
DAFL_ISA_AUTO = 0
DAFL_INPUT_LOGITS, DAFL_INPUT_PROBABILITIES, DAFL_INPUT_CLAMPED_LOGITS = 0, 1, 2
DAFL_REDUCTION_SUM, DAFL_REDUCTION_POSITIVES, DAFL_REDUCTION_NORMALIZER = 1, 3, 4
DAFL_FLAG_TRUST_TARGETS = 0x1


class PenaltyFocalParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("alpha", ctypes.c_float),
                ("beta", ctypes.c_float), ("pos_weight", ctypes.c_float),
                ("neg_weight", ctypes.c_float), ("input_mode", ctypes.c_int),
                ("clamp_eps", ctypes.c_float), ("reduction", ctypes.c_int),
                ("normalizer", ctypes.c_float), ("grad_scale", ctypes.c_float),
                ("flags", ctypes.c_uint32), ("log_eps", ctypes.c_float),
                ("reserved", ctypes.c_uint32), ("input_dtype", ctypes.c_int),
                ("target_dtype", ctypes.c_int), ("grad_dtype", ctypes.c_int)]


class SigmoidFocalParams(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("gamma", ctypes.c_float),
                ("alpha", ctypes.c_float), ("reduction", ctypes.c_int),
                ("normalizer", ctypes.c_float), ("grad_scale", ctypes.c_float),
                ("flags", ctypes.c_uint32), ("input_dtype", ctypes.c_int),
                ("target_dtype", ctypes.c_int), ("grad_dtype", ctypes.c_int)]


FLOAT_P = ctypes.POINTER(ctypes.c_float)


def float_ptr(a):
    assert a.dtype == np.float32 and a.flags["C_CONTIGUOUS"]
    return a.ctypes.data_as(FLOAT_P)


class Dafl:
    def __init__(self, path):
        self.lib = lib = ctypes.CDLL(str(path))
        lib.dafl_status_string.restype = ctypes.c_char_p
        lib.dafl_isa_name.restype = ctypes.c_char_p
        lib.dafl_version.restype = ctypes.c_char_p
        for name in ("dafl_penalty_focal", "dafl_sigmoid_focal"):
            getattr(lib, name).argtypes = [FLOAT_P, FLOAT_P, ctypes.c_size_t, ctypes.c_void_p,
                                           FLOAT_P, FLOAT_P, ctypes.c_void_p]
        lib.dafl_draw_gaussian.argtypes = [FLOAT_P, ctypes.c_size_t, ctypes.c_size_t,
                                           ctypes.c_long, ctypes.c_long, ctypes.c_long,
                                           ctypes.c_float]
        self.check(lib.dafl_set_isa(DAFL_ISA_AUTO))
        # One thread, like PyTorch below; a dafl without a thread pool is one thread anyway.
        if hasattr(lib, "dafl_set_threads"):
            self.check(lib.dafl_set_threads(1))
        # The structs above must have the library's layout: init writes its own sizeof
        # (into a buffer larger than any version's struct, so that a newer library's
        # longer struct cannot overrun it before the check).
        for cls, init in ((PenaltyFocalParams, lib.dafl_penalty_focal_params_init),
                          (SigmoidFocalParams, lib.dafl_sigmoid_focal_params_init)):
            buf = (ctypes.c_uint64 * 64)()
            init(buf)
            p = cls.from_buffer(buf)
            if p.struct_size != ctypes.sizeof(cls):
                sys.exit(f"torch_eager.py: {cls.__name__} has {ctypes.sizeof(cls)} bytes here "
                         f"but {p.struct_size} in the library: update this script")

    def check(self, status):
        if status != DAFL_OK:
            raise RuntimeError(self.lib.dafl_status_string(status).decode())

    def isa(self):
        return self.lib.dafl_isa_name(self.lib.dafl_active_isa()).decode()

    def version(self):
        return self.lib.dafl_version().decode()

    def penalty_focal(self, x, y, grad, mode, one_pass_normalizer=None):
        p = PenaltyFocalParams()
        self.lib.dafl_penalty_focal_params_init(ctypes.byref(p))
        p.input_mode = mode
        if one_pass_normalizer is not None:  # the one-pass call of a trainer that knows N
            p.reduction = DAFL_REDUCTION_NORMALIZER
            p.normalizer = one_pass_normalizer
            p.flags = DAFL_FLAG_TRUST_TARGETS
        loss = ctypes.c_float()
        self.check(self.lib.dafl_penalty_focal(float_ptr(x), float_ptr(y), x.size,
                                               ctypes.byref(p), ctypes.byref(loss),
                                               float_ptr(grad), None))
        return loss.value

    def sigmoid_focal(self, x, y, grad, gamma=2.0, alpha=0.25, trust=False):
        p = SigmoidFocalParams()
        self.lib.dafl_sigmoid_focal_params_init(ctypes.byref(p))
        p.gamma, p.alpha, p.reduction = gamma, alpha, DAFL_REDUCTION_SUM
        if trust:
            p.flags = DAFL_FLAG_TRUST_TARGETS
        loss = ctypes.c_float()
        self.check(self.lib.dafl_sigmoid_focal(float_ptr(x), float_ptr(y), x.size,
                                               ctypes.byref(p), ctypes.byref(loss),
                                               float_ptr(grad), None))
        return loss.value

    def draw_gaussian(self, plane, cx, cy, radius):
        self.check(self.lib.dafl_draw_gaussian(float_ptr(plane), plane.shape[0],
                                               plane.shape[1], cx, cy, radius, 1.0))


# ---- the losses in PyTorch ---------------------------------------------------------

def centernet_focal(pred, gt):
    """CenterNet's penalty-reduced focal loss on predicted probabilities (its _neg_loss
    semantics): positives are gt == 1, every other pixel is a negative weighted by
    (1 - gt)^4, and the sum is divided by the number of positives (the negative sum
    alone when there is none)."""
    positive = gt.eq(1).float()
    negative = gt.lt(1).float()
    negative_weight = torch.pow(1 - gt, 4)
    positive_term = (torch.log(pred) * torch.pow(1 - pred, 2) * positive).sum()
    negative_term = (torch.log(1 - pred) * torch.pow(pred, 2) * negative_weight
                     * negative).sum()
    positives = positive.sum()
    if positives == 0:
        return -negative_term
    return -(positive_term + negative_term) / positives


def centernet_logits(x, gt):
    return centernet_focal(torch.sigmoid(x), gt)


def centernet_clamped(x, gt):
    # CenterNet's _sigmoid: the prediction clamped away from 0 and 1
    return centernet_focal(torch.clamp(torch.sigmoid(x), min=1e-4, max=1 - 1e-4), gt)


def torchvision_focal(x, gt):
    return sigmoid_focal_loss(x, gt, alpha=0.25, gamma=2.0, reduction="sum")


def sigmoid_focal_written(x, gt, alpha=0.25, gamma=2.0):
    """torchvision's sigmoid_focal_loss (sum) written out in PyTorch, the same operations
    in the same order, for torch.compile and for a torch without torchvision."""
    p = torch.sigmoid(x)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(x, gt, reduction="none")
    p_t = p * gt + (1 - p) * (1 - gt)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * gt + (1 - alpha) * (1 - gt)
    return (alpha_t * loss).sum()


def torch_forward_backward(loss_fn, x, gt):
    """One training step's worth of loss work: forward, backward(), the input's gradient."""
    leaf = x.detach().requires_grad_(True)
    loss = loss_fn(leaf, gt)
    loss.backward()
    return float(loss), leaf.grad


# ---- data --------------------------------------------------------------------------

def make_data(dafl, seed=1):
    """Targets like CenterNet's on COCO (1 to 14 objects per image, each a Gaussian of
    radius 1..12 in its class's plane, drawn by dafl_draw_gaussian) and logits that are
    mostly confident negatives and higher where the target is high."""
    rng = np.random.default_rng(seed)
    n, c, h, w = SHAPE
    gt = np.zeros(SHAPE, dtype=np.float32)
    for image in range(n):
        for _ in range(rng.integers(1, 15)):
            plane = gt[image, rng.integers(0, c)]
            dafl.draw_gaussian(plane, int(rng.integers(0, w)), int(rng.integers(0, h)),
                               int(rng.integers(1, 13)))
    spread = 6.0 * (rng.random(SHAPE) + rng.random(SHAPE) - 1.0)
    x = (-4.0 + spread + 8.0 * gt).astype(np.float32)
    return x, gt


# ---- timing ------------------------------------------------------------------------

def best_time(fn, repeats):
    """The fastest of `repeats` runs after one warm-up (the least disturbed by the rest of
    the machine), and the share of the CPU time spent in the operating system."""
    fn()
    best = float("inf")
    before = os.times()
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    after = os.times()
    user, system = after.user - before.user, after.system - before.system
    return best, system / (user + system) if user + system > 0 else 0.0


def agreement(name, loss_dafl, grad_dafl, loss_torch, grad_torch, loss_exact, grad_exact):
    """Compares dafl and PyTorch (float32) with each other and with PyTorch in float64."""
    g_d = grad_dafl.astype(np.float64).ravel()
    g_t = grad_torch.astype(np.float64).ravel()
    g_x = grad_exact.ravel()
    atol = ATOL_FRACTION * np.max(np.abs(g_x))

    def worst(a, b):  # the largest |a - b| / (atol + rtol |b|): <= 1 means "agrees"
        return float(np.max(np.abs(a - b) / (atol + RTOL * np.abs(b))))

    result = {
        "loss_dafl": loss_dafl, "loss_torch": loss_torch, "loss_float64": loss_exact,
        "loss_rel_diff": abs(loss_dafl - loss_torch) / abs(loss_torch),
        "grad_worst_dafl_vs_torch": worst(g_d, g_t),
        "grad_max_abs_diff": float(np.max(np.abs(g_d - g_t))),
        "dafl_vs_float64_loss_rel": abs(loss_dafl - loss_exact) / abs(loss_exact),
        "torch_vs_float64_loss_rel": abs(loss_torch - loss_exact) / abs(loss_exact),
        "dafl_vs_float64_grad_max_abs": float(np.max(np.abs(g_d - g_x))),
        "torch_vs_float64_grad_max_abs": float(np.max(np.abs(g_t - g_x))),
        "rtol": RTOL, "atol": atol,
    }
    result["agree"] = (result["loss_rel_diff"] <= RTOL
                       and result["grad_worst_dafl_vs_torch"] <= 1.0)
    print(f"{name}: loss dafl {loss_dafl:.7g}, torch {loss_torch:.7g} (float64 {loss_exact:.9g}); "
          f"relative difference {result['loss_rel_diff']:.1e}")
    print(f"{'':{len(name)}}  gradient: max |dafl - torch| {result['grad_max_abs_diff']:.2e} "
          f"(tolerance rtol {RTOL:g}, atol {atol:.1e}: worst element at "
          f"{result['grad_worst_dafl_vs_torch']:.2f} of it); max error vs float64: "
          f"dafl {result['dafl_vs_float64_grad_max_abs']:.2e}, "
          f"torch {result['torch_vs_float64_grad_max_abs']:.2e}"
          f"{'' if result['agree'] else '   <-- DISAGREE'}")
    return result


# ---- end to end: dafl.torch against PyTorch eager and torch.compile ----------------

ALLOCATORS = {
    "glibc default": {},
    "glibc keeping its memory": {"MALLOC_MMAP_MAX_": "0",
                                 "MALLOC_TRIM_THRESHOLD_": str(1 << 40)},
}


def step_time(loss_fn, x, gt, repeats):
    """Best time of forward + loss.backward() into a fresh .grad (a training step's loss
    work), after one warm-up; the warm-up's own time is returned too (torch.compile
    compiles there)."""
    leaf = x.detach().clone().requires_grad_(True)

    def step():
        leaf.grad = None
        loss_fn(leaf, gt).backward()
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best, first, leaf.grad


def end_to_end_child(repeats):
    """One allocator's measurements (this process's environment), as JSON on stdout."""
    import dafl
    import dafl.torch
    torch.set_num_threads(1)
    dafl.set_num_threads(1)

    class Targets:  # make_data's drawing through the package
        @staticmethod
        def draw_gaussian(plane, cx, cy, radius):
            dafl.draw_gaussian(plane, (cx, cy), radius)
    x, gt = make_data(Targets)
    x_t, gt_t = torch.from_numpy(x), torch.from_numpy(gt)
    compile_ok = hasattr(torch, "compile") and int(torch.__version__.split(".")[0]) >= 2
    sigmoid_peer = torchvision_focal if torchvision is not None else sigmoid_focal_written
    cases = {
        "CenterNet focal (clamped sigmoid)": (centernet_clamped, dafl.torch.CenterNetFocalLoss()),
        "torchvision sigmoid_focal_loss (sum)": (
            sigmoid_peer, lambda v, y: dafl.torch.sigmoid_focal_loss(v, y, reduction="sum")),
    }
    out = {"torch": torch.__version__, "dafl": dafl.version(), "isa": dafl.active_isa(),
           "elements": x.size, "sigmoid_peer": sigmoid_peer.__name__, "losses": {}}
    for name, (peer, ours) in cases.items():
        t_eager, _, g_eager = step_time(peer, x_t, gt_t, repeats)
        t_dafl, _, g_dafl = step_time(ours, x_t, gt_t, 3 * repeats)
        r = {"eager": t_eager, "dafl": t_dafl,
             "grad_max_abs_diff": float((g_eager - g_dafl).abs().max())}
        if compile_ok:
            written = centernet_clamped if peer is centernet_clamped else sigmoid_focal_written
            compiled = torch.compile(written)
            t_comp, first, g_comp = step_time(compiled, x_t, gt_t, repeats)
            r.update({"compiled": t_comp, "compile_seconds": first - t_comp,
                      "compiled_grad_max_abs_diff": float((g_comp - g_dafl).abs().max())})
        out["losses"][name] = r

    # loss.backward() against one fused pass: the C call into a preallocated gradient,
    # the same with the gradient allocated as autograd's would be, and dafl.torch end to end
    from dafl import _dafl
    grad = torch.empty_like(x_t)

    def one_pass(g):
        _dafl.penalty_focal(x_t, gt_t, None, g, input_mode=_dafl.INPUT_CLAMPED_LOGITS)
    out["fused_pass"] = best_time(lambda: one_pass(grad), 10 * repeats)[0]
    out["fused_pass_alloc"] = best_time(lambda: one_pass(torch.empty_like(x_t)),
                                        10 * repeats)[0]
    out["dafl_torch_step"] = step_time(dafl.torch.CenterNetFocalLoss(), x_t, gt_t,
                                       10 * repeats)[0]
    print(json.dumps(out))


def end_to_end(repeats, json_path):
    results = {}
    for name, env in ALLOCATORS.items():
        cmd = [sys.executable, __file__, "--end-to-end-child", "--repeats", str(repeats)]
        print(f"running ({name}):", " ".join(f"{k}={v}" for k, v in env.items()),
              " ".join(cmd), flush=True)
        # a cold inductor cache for each child: its compile time is a first compile's
        with tempfile.TemporaryDirectory() as cache:
            r = subprocess.run(cmd, env={**os.environ, **env, "TORCHINDUCTOR_CACHE_DIR": cache},
                               capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"torch_eager.py: the child failed:\n{r.stdout}\n{r.stderr}")
        results[name] = json.loads(r.stdout.strip().splitlines()[-1])
    first = next(iter(results.values()))
    print(f"\nloss.backward() end to end, {'x'.join(map(str, SHAPE))}, one thread: "
          f"PyTorch {first['torch']} against dafl {first['dafl']} ({first['isa']}) through "
          "dafl.torch; best of several steps (forward + backward into a fresh .grad)\n")
    print("| loss | allocator | PyTorch eager | torch.compile (compile time) | dafl.torch "
          "| eager / dafl | compiled / dafl |")
    print("|---|---|---|---|---|---|---|")
    for alloc, r in results.items():
        for loss, t in r["losses"].items():
            comp = (f"{t['compiled'] * 1e3:.0f} ms ({t['compile_seconds']:.1f} s)"
                    if "compiled" in t else "— (torch 1.x)")
            ratio = f"{t['compiled'] / t['dafl']:.1f}x" if "compiled" in t else "—"
            print(f"| {loss} | {alloc} | {t['eager'] * 1e3:.0f} ms | {comp} "
                  f"| {t['dafl'] * 1e3:.1f} ms | **{t['eager'] / t['dafl']:.0f}x** | {ratio} |")
    print("\n| allocator | one fused pass (preallocated) | fused pass + allocation "
          "| dafl.torch forward + loss.backward() | step / (pass + allocation) |")
    print("|---|---|---|---|---|")
    for alloc, r in results.items():
        print(f"| {alloc} | {r['fused_pass'] * 1e3:.1f} ms | {r['fused_pass_alloc'] * 1e3:.1f} ms "
              f"| {r['dafl_torch_step'] * 1e3:.1f} ms "
              f"| {r['dafl_torch_step'] / r['fused_pass_alloc']:.2f} |")
    if json_path:
        pathlib.Path(json_path).write_text(json.dumps(results, indent=1))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--end-to-end", action="store_true",
                    help="dafl.torch against PyTorch eager / torch.compile, both allocators")
    ap.add_argument("--end-to-end-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--lib", default=str(ROOT / "build" / "libdafl.so"),
                    help="dafl's shared library (default: build/libdafl.so)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed PyTorch runs per loss (dafl gets 10x as many)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args()
    if args.end_to_end_child:
        return end_to_end_child(args.repeats)
    if args.end_to_end:
        return end_to_end(args.repeats, args.json)
    if torchvision is None:
        sys.exit(f"torch_eager.py: {TORCHVISION_MISSING}; the ctypes comparison needs "
                 "Debian's python3-torchvision (or use --end-to-end)")

    lib_path = pathlib.Path(args.lib)
    if not lib_path.exists():
        sys.exit(f"torch_eager.py: {lib_path} not found: build first "
                 "(meson setup build && ninja -C build) or pass --lib")
    dafl = Dafl(lib_path)
    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)

    x, gt = make_data(dafl)
    elements = x.size
    positives = int(np.count_nonzero(gt == 1.0))
    print(f"dafl {dafl.version()} ({dafl.isa()}, 1 thread) against PyTorch {torch.__version__} "
          f"/ torchvision {torchvision.__version__} (eager, {torch.get_num_threads()} thread)")
    print(f"heatmaps {'x'.join(map(str, SHAPE))} = {elements} elements, {positives} positives")

    x_t, gt_t = torch.from_numpy(x), torch.from_numpy(gt)
    x64, gt64 = x_t.double(), gt_t.double()
    grad = np.empty_like(x)
    results = {"shape": SHAPE, "elements": elements, "positives": positives,
               "torch": torch.__version__, "torchvision": torchvision.__version__,
               "dafl": dafl.version(), "isa": dafl.isa(), "losses": {}}

    cases = [
        # name, torch loss, dafl default call, dafl one-pass call (None: same as default)
        ("CenterNet focal, sigmoid (DAFL_INPUT_LOGITS)", centernet_logits,
         lambda g: dafl.penalty_focal(x, gt, g, DAFL_INPUT_LOGITS),
         lambda g: dafl.penalty_focal(x, gt, g, DAFL_INPUT_LOGITS, float(max(positives, 1)))),
        ("CenterNet focal, clamped (DAFL_INPUT_CLAMPED_LOGITS)", centernet_clamped,
         lambda g: dafl.penalty_focal(x, gt, g, DAFL_INPUT_CLAMPED_LOGITS),
         lambda g: dafl.penalty_focal(x, gt, g, DAFL_INPUT_CLAMPED_LOGITS,
                                      float(max(positives, 1)))),
        ("torchvision sigmoid_focal_loss, gamma 2, sum", torchvision_focal,
         lambda g: dafl.sigmoid_focal(x, gt, g),
         lambda g: dafl.sigmoid_focal(x, gt, g, trust=True)),
    ]
    all_agree = True
    for name, torch_loss, dafl_call, dafl_one_pass in cases:
        loss_d = dafl_call(grad)
        grad_d = grad.copy()
        loss_t, grad_t = torch_forward_backward(torch_loss, x_t, gt_t)
        loss_x, grad_x = torch_forward_backward(torch_loss, x64, gt64)
        r = agreement(name, loss_d, grad_d, loss_t, grad_t.numpy(), loss_x, grad_x.numpy())
        all_agree = all_agree and r["agree"]

        t_torch, system_torch = best_time(lambda: torch_forward_backward(torch_loss, x_t, gt_t),
                                          args.repeats)
        t_dafl, _ = best_time(lambda: dafl_call(grad), 10 * args.repeats)
        t_one, _ = best_time(lambda: dafl_one_pass(grad), 10 * args.repeats)
        r.update({"seconds_torch": t_torch, "seconds_dafl": t_dafl, "seconds_dafl_one_pass": t_one,
                  "speedup": t_torch / t_dafl, "speedup_one_pass": t_torch / t_one,
                  "torch_system_share": system_torch})
        # PyTorch's temporaries (about 40 MB each here) are fresh memory on every step, and
        # the operating system's time to provide it is part of what eager mode costs.
        print(f"{'':{len(name)}}  forward + gradient: PyTorch {t_torch * 1e3:.1f} ms "
              f"({elements / t_torch / 1e6:.1f} M elements/s, {100 * system_torch:.0f} % of its "
              f"CPU time in the kernel), dafl {t_dafl * 1e3:.2f} ms "
              f"({elements / t_dafl / 1e6:.0f} M/s), one-pass call {t_one * 1e3:.2f} ms: "
              f"dafl is {t_torch / t_dafl:.0f}x faster ({t_torch / t_one:.0f}x one-pass)")
        results["losses"][name] = r

    results["all_agree"] = all_agree
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=1))
    if not all_agree:
        print("torch_eager.py: dafl and PyTorch disagree beyond float tolerance (see above)")
        return 1
    print("losses and gradients agree (rtol %g, atol %g of the largest gradient)"
          % (RTOL, ATOL_FRACTION))
    return 0


if __name__ == "__main__":
    sys.exit(main())
