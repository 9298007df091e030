#!/usr/bin/python3
"""CenterNet-style per-object heatmap drawing in numpy, timed on the keypoints_coco batch
of bench/dafl_bench.cc, next to dafl_render_heatmaps on the same batch.

The batch: 8 images x 80 classes x 128 x 128, 1 to 13 objects per image (about 7), box
sides log-uniform in 3 .. 96 output pixels, drawn from the same splitmix64 stream as the
C benchmark (its "radii sum" line and this script's must agree).  The numpy side is what
CenterNet's data loader does per image, written here from its published description:
  - radius = max(0, int(gaussian_radius((ceil(h), ceil(w)), 0.7))), CornerNet's formula
    with each root taken as (b + sqrt(b^2 - 4ac)) / 2;
  - a (2r+1) x (2r+1) Gaussian with sigma = (2r+1)/6 from np.ogrid, values below
    eps * max set to 0;
  - merged into the class plane of a fresh np.zeros((80, 128, 128), float32) by
    np.maximum on the window clipped at the borders;
  - the images stacked into one N x C x H x W batch (what a collate function does).
Timed two ways: the per-image drawing alone, and drawing plus the stack into the batch.
With a path to libdafl.so the script also calls dafl_render_heatmaps on the same batch
through ctypes, times it in this process and compares the two heatmaps bit for bit
(exit status 1 when they differ: CI runs it as a check against this independent
implementation).

usage: bench_keypoints_numpy.py [path/to/libdafl.so] [--repeat N]
"""
import ctypes
import math
import sys
import time

import numpy as np

IMAGES, CLASSES, SIDE = 8, 80, 128
MASK = (1 << 64) - 1


class SplitMix:
    def __init__(self, seed):
        self.state = seed

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next() >> 11) * (1.0 / 9007199254740992.0)


def gaussian_radius(height, width, min_overlap):
    """CornerNet's radius, with the roots as CenterNet master computes them."""
    a1, b1 = 1.0, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(max(b1 * b1 - 4 * a1 * c1, 0.0))) / 2
    a2, b2 = 4.0, 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(max(b2 * b2 - 4 * a2 * c2, 0.0))) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(max(b3 * b3 - 4 * a3 * c3, 0.0))) / 2
    return min(r1, r2, r3)


def coco_batch():
    """(image, class, cx, cy, radius) per object, as bench/dafl_bench.cc draws them."""
    rng = SplitMix(2024)
    objects = []
    for image in range(IMAGES):
        for _ in range(1 + int(rng.uniform() * 13.0)):
            cls = int(math.floor(rng.uniform() * CLASSES))
            bw = math.exp(math.log(3.0) + rng.uniform() * math.log(32.0))
            bh = math.exp(math.log(3.0) + rng.uniform() * math.log(32.0))
            cx, cy = rng.uniform() * SIDE, rng.uniform() * SIDE
            radius = max(0, int(gaussian_radius(math.ceil(bh), math.ceil(bw), 0.7)))
            objects.append((image, cls, int(cx), int(cy), radius))
    return objects


def gaussian_2d(diameter, sigma):
    m = (diameter - 1.0) / 2.0
    y, x = np.ogrid[-m:m + 1, -m:m + 1]
    g = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    g[g < np.finfo(g.dtype).eps * g.max()] = 0
    return g


def draw_umich(plane, cx, cy, radius, k=1.0):
    diameter = 2 * radius + 1
    gaussian = gaussian_2d(diameter, sigma=diameter / 6)
    height, width = plane.shape
    left, right = min(cx, radius), min(width - cx, radius + 1)
    top, bottom = min(cy, radius), min(height - cy, radius + 1)
    window = plane[cy - top:cy + bottom, cx - left:cx + right]
    part = gaussian[radius - top:radius + bottom, radius - left:radius + right]
    if min(part.shape) > 0 and min(window.shape) > 0:
        np.maximum(window, part * k, out=window)


def draw_images(objects):
    planes = [np.zeros((CLASSES, SIDE, SIDE), dtype=np.float32) for _ in range(IMAGES)]
    for image, cls, cx, cy, radius in objects:
        draw_umich(planes[image][cls], cx, cy, radius)
    return planes


def fastest(fn, repeat):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


class Keypoint(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("image", ctypes.c_int64),
                ("channel", ctypes.c_int64), ("x", ctypes.c_double), ("y", ctypes.c_double),
                ("size", ctypes.c_double), ("k", ctypes.c_float), ("style", ctypes.c_int)]


def main():
    args = sys.argv[1:]
    repeat = 20
    if "--repeat" in args:
        i = args.index("--repeat")
        repeat = int(args[i + 1])
        del args[i:i + 2]
    objects = coco_batch()
    print(f"keypoints_coco: {len(objects)} objects in {IMAGES} images, "
          f"radii sum {sum(o[4] for o in objects)}")

    draw_s, planes = fastest(lambda: draw_images(objects), repeat)
    stack_s, batch = fastest(lambda: np.stack(draw_images(objects)), repeat)
    print(f"numpy per-object drawing, {IMAGES} images:       {draw_s * 1e3:8.3f} ms "
          f"(fastest of {repeat})")
    print(f"numpy drawing + np.stack into the batch:  {stack_s * 1e3:8.3f} ms")
    if not args:
        return 0

    lib = ctypes.CDLL(args[0])
    lib.dafl_render_heatmaps.restype = ctypes.c_int
    lib.dafl_render_heatmaps.argtypes = [ctypes.POINTER(Keypoint), ctypes.c_size_t,
                                         ctypes.c_size_t, ctypes.c_size_t, ctypes.c_size_t,
                                         ctypes.c_size_t, ctypes.c_void_p]
    points = (Keypoint * len(objects))()
    for p, (image, cls, cx, cy, radius) in zip(points, objects):
        p.struct_size, p.image, p.channel = ctypes.sizeof(Keypoint), image, cls
        p.x, p.y, p.size, p.k, p.style = cx, cy, radius, 1.0, 0
    out = np.empty((IMAGES, CLASSES, SIDE, SIDE), dtype=np.float32)
    ptr = out.ctypes.data

    def render():
        status = lib.dafl_render_heatmaps(points, len(objects), IMAGES, CLASSES, SIDE, SIDE, ptr)
        assert status == 0, status
    for threads in (1, 2):
        lib.dafl_set_threads(threads)
        render_s, _ = fastest(render, repeat)
        print(f"dafl_render_heatmaps, {threads} thread(s):          {render_s * 1e3:8.3f} ms: "
              f"{draw_s / render_s:5.1f}x the drawing, {stack_s / render_s:5.1f}x drawing + stack")
    differ = np.count_nonzero(out.view(np.uint32) != batch.view(np.uint32))
    worst = float(np.max(np.abs(out.astype(np.float64) - batch)))
    print(f"heatmaps compared: {differ} of {out.size} floats differ in any bit "
          f"(largest difference {worst:.3g})")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
