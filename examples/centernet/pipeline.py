#!/usr/bin/python3
"""A CenterNet-style detector trained three ways over the same data, measured end to end.

    PYTHONPATH=build/python /usr/bin/python3 examples/centernet/pipeline.py          # the table
    PYTHONPATH=build/python /usr/bin/python3 examples/centernet/pipeline.py --quick  # CI

The detector: torchvision's resnet18 (random weights) up to layer3 (stride 16), a neck of
two upsample + 3x3 conv blocks back to stride 4, and CenterNet's three heads (3x3 conv,
ReLU, 1x1 conv): class heatmaps (logits, bias -2.19), box size and centre offset.  The
data: a synthetic detection set generated on the fly from the index (noise background,
filled boxes whose colour depends on their class), boxes and classes per image; a
DataLoader with workers.  Three configurations, same seed, same images, same model:

  a  reference  CenterNet's code path: in each worker, per object a numpy Gaussian
                (draw_umich_gaussian, written below from CenterNet's published formula)
                into np.zeros planes, default_collate stacks them; the loss is
                _neg_loss in PyTorch on clamp(sigmoid(logits), 1e-4, 1 - 1e-4).
  b  dafl dense the workers collate keypoint rows and render the batch's heatmaps
                with dafl.torch.render_heatmaps (into shared memory); the loss is
                dafl.torch.CenterNetFocalLoss on them.
  c  dafl fused keypoint rows only, no heatmap tensor anywhere: the loss is
                CenterNetFocalKeypointLoss(logits, keypoints, counts).

Size and offset losses (CenterNet's RegL1Loss on the object centres) are the same in all
three.  Each configuration runs in a fresh process (so that its peak RSS is its own);
measured per step: data loading (waiting for the loader), the heatmap loss (forward +
backward of the loss alone, on the detached head output), and the rest (model forward
and backward, the other losses, the optimizer).  Peak RSS: the main process's
(ru_maxrss) and the largest worker's (RUSAGE_CHILDREN, after the workers exit).  The
first batch's heatmap loss of a, b and c must agree (b and c bit for bit, a to float
rounding): the process exits with status 1 otherwise.
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

import dafl
import dafl.torch

try:  # the keypoint API, wherever this dafl exports it
    from dafl.torch import (CenterNetFocalKeypointLoss, collate_keypoints,  # noqa: F401
                            render_heatmaps)
except ImportError:
    from dafl._keypoints_torch import (CenterNetFocalKeypointLoss, collate_keypoints,
                                       render_heatmaps)

CONFIGS = {"a": "reference (numpy drawing + _neg_loss)",
           "b": "dafl dense (render_heatmaps + CenterNetFocalLoss)",
           "c": "dafl keypoint-fused (no heatmap tensor)"}
MAX_OBJECTS = 64
STRIDE = 4


# ---- CenterNet's target drawing, from its published formula -------------------------------

def gaussian_radius(height, width, min_overlap=0.7):
    """CornerNet's radius: the smallest of the three quadratics' roots, each taken as
    (b + sqrt(b^2 - 4ac)) / 2 as CenterNet's code does."""
    def root(a, b, c):
        return (b + math.sqrt(max(b * b - 4 * a * c, 0.0))) / 2
    r1 = root(1, height + width, width * height * (1 - min_overlap) / (1 + min_overlap))
    r2 = root(4, 2 * (height + width), (1 - min_overlap) * width * height)
    r3 = root(4 * min_overlap, -2 * min_overlap * (height + width),
              (min_overlap - 1) * width * height)
    return min(r1, r2, r3)


def gaussian2d(diameter, sigma):
    m = (diameter - 1.0) / 2.0
    y, x = np.ogrid[-m:m + 1, -m:m + 1]
    g = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    g[g < np.finfo(g.dtype).eps * g.max()] = 0
    return g


def draw_umich_gaussian(plane, cx, cy, radius):
    """A (2r+1)^2 Gaussian of sigma (2r+1)/6 merged by np.maximum, clipped to the plane."""
    d = 2 * radius + 1
    g = gaussian2d(d, d / 6)
    h, w = plane.shape
    left, right = min(cx, radius), min(w - cx, radius + 1)
    top, bottom = min(cy, radius), min(h - cy, radius + 1)
    window = plane[cy - top:cy + bottom, cx - left:cx + right]
    part = g[radius - top:radius + bottom, radius - left:radius + right]
    if min(part.shape) > 0 and min(window.shape) > 0:
        np.maximum(window, part, out=window)


# ---- the synthetic detection set ------------------------------------------------------------

class SyntheticDetection(Dataset):
    """Image i: from default_rng((seed, i)), 3 x S x S noise with 1..max_objects filled
    boxes (sides 8 .. S/2 pixels), class-coloured.  Returns the image, the targets of
    the configuration (see __getitem__) and CenterNet's size/offset targets."""

    def __init__(self, length, size, classes, max_objects, config, seed=0):
        self.length, self.size, self.classes = length, size, classes
        self.max_objects, self.config, self.seed = max_objects, config, seed
        palette = np.random.default_rng(seed + 99).uniform(-1, 1, (classes, 3))
        self.palette = palette.astype(np.float32)

    def __len__(self):
        return self.length

    def objects(self, i):
        rng = np.random.default_rng((self.seed, i))
        s = self.size
        image = rng.normal(0, 0.3, (3, s, s)).astype(np.float32)
        boxes = []
        for _ in range(int(rng.integers(1, self.max_objects + 1))):
            bw, bh = rng.uniform(8, s / 2, 2)
            x1, y1 = rng.uniform(0, s - bw), rng.uniform(0, s - bh)
            cls = int(rng.integers(self.classes))
            image[:, int(y1):int(y1 + bh), int(x1):int(x1 + bw)] = self.palette[cls][:, None, None]
            boxes.append((x1, y1, x1 + bw, y1 + bh, cls))
        return image, boxes

    def __getitem__(self, i):
        image, boxes = self.objects(i)
        out = self.size // STRIDE
        wh = np.zeros((MAX_OBJECTS, 2), np.float32)
        reg = np.zeros((MAX_OBJECTS, 2), np.float32)
        ind = np.zeros(MAX_OBJECTS, np.int64)
        mask = np.zeros(MAX_OBJECTS, np.float32)
        rows = []  # (x, y, class, radius) per object: the keypoint format
        for k, (x1, y1, x2, y2, cls) in enumerate(boxes):
            x1, y1, x2, y2 = (v / STRIDE for v in (x1, y1, x2, y2))
            h, w = y2 - y1, x2 - x1
            radius = max(0, int(gaussian_radius(math.ceil(h), math.ceil(w))))
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            ix, iy = int(cx), int(cy)
            rows.append((ix, iy, cls, radius))
            wh[k] = w, h
            reg[k] = cx - ix, cy - iy
            ind[k] = iy * out + ix
            mask[k] = 1
        extra = (torch.from_numpy(wh), torch.from_numpy(reg), torch.from_numpy(ind),
                 torch.from_numpy(mask))
        if self.config == "a":  # CenterNet: the heatmaps drawn per object in numpy
            hm = np.zeros((self.classes, out, out), np.float32)
            for ix, iy, cls, radius in rows:
                draw_umich_gaussian(hm[cls], ix, iy, radius)
            return (torch.from_numpy(image), torch.from_numpy(hm)) + extra
        return (torch.from_numpy(image), np.array(rows, np.float32).reshape(-1, 4)) + extra


def collate(config, classes, out):
    def dense(batch):
        images = torch.stack([b[0] for b in batch])
        rest = [torch.stack([b[j] for b in batch]) for j in range(2, 6)]
        kp, counts = collate_keypoints([b[1] for b in batch])
        if config == "b":  # render the batch here, in the worker, into shared memory
            hm = render_heatmaps(kp, counts, (len(batch), classes, out, out))
            return [images, hm] + rest
        return [images, kp, counts] + rest
    return None if config == "a" else dense


# ---- the detector ---------------------------------------------------------------------------

class CenterNetR18(nn.Module):
    def __init__(self, classes, head=64):
        super().__init__()
        import torchvision
        r = torchvision.models.resnet18(weights=None)
        self.backbone = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2,
                                      r.layer3)  # stride 16, 256 channels

        def up(cin, cout):
            return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                 nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
        self.neck = nn.Sequential(up(256, 128), up(128, 64))  # stride 4

        def head_(cout):
            return nn.Sequential(nn.Conv2d(64, head, 3, 1, 1), nn.ReLU(inplace=True),
                                 nn.Conv2d(head, cout, 1))
        self.hm, self.wh, self.reg = head_(classes), head_(2), head_(2)
        nn.init.constant_(self.hm[-1].bias, -2.19)

    def forward(self, x):
        f = self.neck(self.backbone(x))
        return self.hm(f), self.wh(f), self.reg(f)


def neg_loss(logits, gt):
    """CenterNet's _sigmoid then _neg_loss (the reference, in PyTorch)."""
    pred = torch.clamp(logits.sigmoid(), min=1e-4, max=1 - 1e-4)
    pos_inds = gt.eq(1).float()
    neg_inds = gt.lt(1).float()
    neg_weights = torch.pow(1 - gt, 4)
    pos_loss = (torch.log(pred) * torch.pow(1 - pred, 2) * pos_inds).sum()
    neg_loss = (torch.log(1 - pred) * torch.pow(pred, 2) * neg_weights * neg_inds).sum()
    num_pos = pos_inds.sum()
    if num_pos == 0:
        return -neg_loss
    return -(pos_loss + neg_loss) / num_pos


def reg_l1(output, mask, ind, target):
    """CenterNet's RegL1Loss: the head's values at the object centres."""
    n, c = output.shape[:2]
    feat = output.view(n, c, -1).permute(0, 2, 1).gather(1, ind.unsqueeze(2).expand(-1, -1, c))
    m = mask.unsqueeze(2).expand_as(feat)
    return F.l1_loss(feat * m, target * m, reduction="sum") / (m.sum() + 1e-4)


# ---- one configuration, in its own process ------------------------------------------------

def run_config(args):
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    dafl.set_num_threads(args.threads)
    out = args.size // STRIDE
    data = SyntheticDetection(args.images, args.size, args.classes, args.max_objects,
                              args.config, args.seed)
    loader = DataLoader(data, batch_size=args.batch, shuffle=False, drop_last=True,
                        num_workers=args.workers, collate_fn=collate(args.config, args.classes, out),
                        persistent_workers=False, prefetch_factor=2 if args.workers else None,
                        multiprocessing_context="fork" if args.workers else None)
    model = CenterNetR18(args.classes)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    fused = CenterNetFocalKeypointLoss()
    dense = dafl.torch.CenterNetFocalLoss()
    times = {"data": [], "loss": [], "rest": [], "step": []}
    first = None
    losses = []
    it = iter(loader)
    for step in range(args.steps):
        t0 = time.perf_counter()
        batch = next(it)
        t1 = time.perf_counter()
        images, wh, reg, ind, mask = batch[0], *batch[-4:]
        hm_out, wh_out, reg_out = model(images)
        t2 = time.perf_counter()
        leaf = hm_out.detach().requires_grad_(True)
        if args.config == "a":
            hm_loss = neg_loss(leaf, batch[1])
        elif args.config == "b":
            hm_loss = dense(leaf, batch[1])
        else:
            hm_loss = fused(leaf, batch[1], batch[2])
        hm_loss.backward()
        t3 = time.perf_counter()
        other = 0.1 * reg_l1(wh_out, mask, ind, wh) + reg_l1(reg_out, mask, ind, reg)
        opt.zero_grad(set_to_none=True)
        torch.autograd.backward([hm_out, other], [leaf.grad, None])
        opt.step()
        t4 = time.perf_counter()
        if first is None:
            first = hm_loss.item()
        losses.append(hm_loss.item() + other.item())
        times["data"].append(t1 - t0)
        times["loss"].append(t3 - t2)
        times["rest"].append((t2 - t1) + (t4 - t3))
        times["step"].append(t4 - t0)
    del it, loader  # the workers exit: RUSAGE_CHILDREN then holds the largest of them
    import gc
    gc.collect()
    time.sleep(0.2)
    skip = min(args.warmup, args.steps - 1)
    summary = {k: float(np.sum(v[skip:])) for k, v in times.items()}
    summary["steps"] = args.steps - skip
    summary["first_hm_loss"] = first
    summary["first_hm_loss_hex"] = float(np.float32(first)).hex()
    summary["losses"] = losses
    summary["rss_main_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary["rss_worker_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print("RESULT " + json.dumps(summary))


# ---- the driver ------------------------------------------------------------------------------

def machine():
    name = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} CPUs, dafl ISA {dafl.active_isa()}, torch {torch.__version__}"


def run_child(args, config):
    cmd = [sys.executable, os.path.abspath(__file__), "--config", config]
    for k in ("steps", "warmup", "batch", "size", "classes", "max_objects", "workers",
              "threads", "images", "seed", "lr"):
        cmd += [f"--{k.replace('_', '-')}", str(getattr(args, k))]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"configuration {config} failed ({proc.returncode})")
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a few small steps (CI)")
    p.add_argument("--config", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=24)
    p.add_argument("--warmup", type=int, default=4, help="steps left out of the timings")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=256, help="input side (output: size/4)")
    p.add_argument("--classes", type=int, default=80)
    p.add_argument("--max-objects", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--images", type=int, default=0, help="dataset length (default: enough)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--repeat", type=int, default=2, help="interleaved repetitions (a b c a b c"
                   " ...); the fastest of each configuration is reported")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    if args.quick:
        args.steps, args.warmup, args.batch, args.size = 3, 1, 4, 128
        args.classes, args.repeat = 20, 1
    if not args.images:
        args.images = args.steps * args.batch
    if args.config:
        return run_config(args)

    print(f"machine: {machine()}")
    print(f"batch {args.batch} x 3 x {args.size}^2, heatmaps {args.batch} x {args.classes} x "
          f"{args.size // STRIDE}^2, up to {args.max_objects} objects per image, "
          f"{args.workers} workers, {args.threads} threads, {args.steps} steps "
          f"({args.warmup} warm-up)")
    runs = {c: [] for c in CONFIGS}
    for r in range(args.repeat):
        for c in CONFIGS:
            runs[c].append(run_child(args, c))
    best = {c: min(rs, key=lambda s: s["step"]) for c, rs in runs.items()}
    first = {c: runs[c][0]["first_hm_loss"] for c in CONFIGS}
    ok = (first["b"] == first["c"] and
          abs(first["a"] - first["b"]) <= 1e-5 * abs(first["a"]) + 1e-6 and
          all(rs[0]["first_hm_loss"] == first[c] for c, rs in runs.items()))
    print(f"first batch heatmap loss: a {first['a']!r}, b {first['b']!r}, c {first['c']!r}: "
          + ("agree (b and c bit for bit)" if ok else "MISMATCH"))
    print(f"{'config':<48} {'steps/s':>8} {'data ms':>8} {'loss ms':>8} {'rest ms':>8} "
          f"{'RSS main':>9} {'RSS worker':>10}")
    for c, s in best.items():
        n = s["steps"]
        print(f"{c} {CONFIGS[c]:<46} {n / s['step']:8.3f} {1e3 * s['data'] / n:8.1f} "
              f"{1e3 * s['loss'] / n:8.1f} {1e3 * s['rest'] / n:8.1f} "
              f"{s['rss_main_mib']:7.0f} M {s['rss_worker_mib']:8.0f} M")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "args": vars(args), "runs": runs,
                       "best": best}, f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
