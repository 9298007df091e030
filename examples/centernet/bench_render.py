#!/usr/bin/python3
"""Rendering a batch of CenterNet targets from Python, and the memory of the loss.

    PYTHONPATH=build/python /usr/bin/python3 examples/centernet/bench_render.py [--repeat N]

The batch is bench/render_vs_numpy.py's (bench/dafl_bench.cc's keypoints_coco):
8 images x 80 classes x 128 x 128, 1 to 13 objects per image, CenterNet's radii.  Timed,
as interleaved repetitions (one of each per round; the fastest of each is reported):

  numpy         CenterNet's numpy drawing per object into np.zeros planes + np.stack
  reused        dafl.render_heatmaps into one preallocated array (1 and 2 threads)
  fresh         dafl.render_heatmaps(..., shape) into a new array (np.empty) each time
  torch fresh   dafl.torch.render_heatmaps into a new tensor; and into shared memory
                (what a DataLoader worker gets)

Every dafl result is compared with the numpy batch bit for bit.  Then the loss's peak
extra memory, each in a fresh process (ru_maxrss after minus the RSS before, with the
logits allocated and touched first): render + CenterNetFocalLoss forward and backward
(the dense path), the keypoint-fused loss, and CenterNet's _neg_loss in PyTorch on the
rendered targets; the peak is VmHWM, reset to the current RSS just before the loss
(/proc/self/clear_refs).  All three produce the (N, C, H, W) gradient, counted apart.
"""

import argparse
import os
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import render_vs_numpy as ref  # noqa: E402  (the batch and CenterNet's drawing)

import dafl  # noqa: E402

SHAPE = (ref.IMAGES, ref.CLASSES, ref.SIDE, ref.SIDE)


def rows():
    per = [[] for _ in range(ref.IMAGES)]
    for image, cls, cx, cy, radius in ref.coco_batch():
        per[image].append((cx, cy, cls, radius))
    return dafl.collate_keypoints(per)


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


MEMORY_SCRIPT = """
import resource, sys, numpy as np, torch
sys.path.insert(0, {here!r})
import bench_render as b
import dafl, dafl.torch
try:
    from dafl.torch import CenterNetFocalKeypointLoss, render_heatmaps
except ImportError:
    from dafl._keypoints_torch import CenterNetFocalKeypointLoss, render_heatmaps
sys.path.insert(0, {here!r})
from pipeline import neg_loss
kp, counts = b.rows()
kp, counts = torch.from_numpy(kp), torch.from_numpy(counts)
x = torch.randn(b.SHAPE).requires_grad_(True)
dafl.set_num_threads(1)
torch.set_num_threads(1)
before = b.rss_mib()
open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the RSS now
if {mode!r} == "dense":
    y = render_heatmaps(kp, counts, b.SHAPE)
    dafl.torch.CenterNetFocalLoss()(x, y).backward()
elif {mode!r} == "fused":
    CenterNetFocalKeypointLoss()(x, kp, counts).backward()
else:
    y = render_heatmaps(kp, counts, b.SHAPE)
    neg_loss(x, y).backward()
peak = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")][0] / 1024
print(peak - before)
"""


def memory(mode):
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT.format(here=HERE, mode=mode)],
                         env=env, capture_output=True, text=True, check=True).stdout
    return float(out.split()[-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=15)
    args = p.parse_args()
    import torch
    try:
        from dafl.torch import render_heatmaps as torch_render
    except ImportError:
        from dafl._keypoints_torch import render_heatmaps as torch_render
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    print(f"machine: {cpu}, {os.cpu_count()} CPUs, dafl ISA {dafl.active_isa()}, "
          f"numpy {np.__version__}, torch {torch.__version__}")
    kp, counts = rows()
    print(f"batch {SHAPE}, {int(counts.sum())} objects")
    objects = ref.coco_batch()
    reused = np.empty(SHAPE, np.float32)
    expected = np.stack(ref.draw_images(objects))

    def render_reused():
        dafl.render_heatmaps(kp, counts, out=reused)
        return reused

    cases = {
        "numpy drawing + np.stack (CenterNet)": (None, lambda: np.stack(ref.draw_images(objects))),
        "render_heatmaps, reused buffer, 1 thread": (1, render_reused),
        "render_heatmaps, reused buffer, 2 threads": (2, render_reused),
        "render_heatmaps, fresh array, 1 thread": (1, lambda: dafl.render_heatmaps(kp, counts, SHAPE)),
        "render_heatmaps, fresh array, 2 threads": (2, lambda: dafl.render_heatmaps(kp, counts, SHAPE)),
        "dafl.torch.render_heatmaps, fresh tensor, 2 threads":
            (2, lambda: torch_render(kp, counts, SHAPE, shared=False).numpy()),
        "dafl.torch.render_heatmaps, fresh shared-memory tensor, 2 threads":
            (2, lambda: torch_render(kp, counts, SHAPE, shared=True).numpy()),
    }
    best = {name: float("inf") for name in cases}
    for _ in range(args.repeat):
        for name, (threads, fn) in cases.items():
            if threads:
                dafl.set_num_threads(threads)
            start = time.perf_counter()
            result = fn()
            best[name] = min(best[name], time.perf_counter() - start)
            if not np.array_equal(result.view(np.uint32), expected.view(np.uint32)):
                raise SystemExit(f"{name}: differs from CenterNet's drawing")
    base = best["numpy drawing + np.stack (CenterNet)"]
    print(f"fastest of {args.repeat} interleaved repetitions (every dafl result equal to "
          "the numpy batch bit for bit):")
    for name, t in best.items():
        print(f"  {name:<66} {t * 1e3:8.3f} ms  {base / t:6.1f}x")
    dense, fused, torch_ref = memory("dense"), memory("fused"), memory("reference")
    grad = np.prod(SHAPE) * 4 / 2**20
    print(f"loss peak extra memory (RSS, fresh process; the {grad:.0f} MiB gradient "
          "included / excluded):")
    for name, m in (("render + CenterNetFocalLoss (dense)", dense),
                    ("CenterNetFocalKeypointLoss (fused)", fused),
                    ("render + _neg_loss in PyTorch", torch_ref)):
        print(f"  {name:<40} {m:8.1f} MiB / {m - grad:8.1f} MiB")
    print(f"  fused / dense, beyond the gradient: {(fused - grad) / (dense - grad):.4f}")


if __name__ == "__main__":
    sys.exit(main())
