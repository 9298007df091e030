"""Synthetic keypoint data: grey images with a few objects of C classes in clutter and
noise, one keypoint per object at its centre.

Classes differ by shape only (their sizes, intensities and rotations are drawn from the
same ranges): 0 disc, 1 square, 2 triangle, 3 plus sign (up to 4 classes).  Clutter is
thin line segments, small dots and elongated ellipses (objects of no class, as large as
the objects) of the same intensities, drawn under the objects,
over a background with a random level and gradient; Gaussian noise is added last.
Every object's centre is an integer pixel and is its keypoint.

Targets are CenterNet's: per class channel, a Gaussian of radius
gaussian_radius(size, size, 0.7) (dafl.gaussian_radius, CornerNet's formula) drawn
with dafl.draw_gaussian, equal to exactly 1 at the keypoint and below 1 elsewhere; the
hard labels are the pixels equal to 1.

Everything comes from one numpy Generator seeded by the caller: the same seed gives the
same images on every machine.
"""

from dataclasses import dataclass

import numpy as np

import dafl

CLASS_NAMES = ("disc", "square", "triangle", "plus")
SUPERSAMPLE = 4  # shapes are rendered on a 4x finer grid and averaged (anti-aliasing)


@dataclass
class KeypointSet:
    """images (N, 1, H, W) float32, standardized; heatmaps (N, C, H, W) float32
    (Gaussian targets); keypoints: per image an int array (K, 3) of (x, y, class)."""
    images: np.ndarray
    heatmaps: np.ndarray
    keypoints: list

    def __len__(self):
        return len(self.images)

    def hard_labels(self):
        """1 at every keypoint, 0 elsewhere (the pixels where the Gaussian is 1)."""
        return (self.heatmaps == 1.0).astype(np.float32)


def _inside(shape, u, v, r):
    """Whether the points (u, v), in the object's rotated frame centred on its centre,
    are inside a shape of circumradius r."""
    if shape == 0:  # disc
        return u * u + v * v <= r * r
    if shape == 1:  # square, half side r / sqrt(2) (its corners on the circle)
        h = r / np.sqrt(2.0)
        return (np.abs(u) <= h) & (np.abs(v) <= h)
    if shape == 2:  # equilateral triangle, centroid at the centre: within r/2 of 3 edges
        inside = np.ones(u.shape, dtype=bool)
        for k in range(3):
            a = np.pi / 2 + 2 * np.pi * k / 3
            inside &= -(u * np.cos(a) + v * np.sin(a)) <= r / 2
        return inside
    if shape == 3:  # plus sign, arms of width 0.7 r
        w = 0.35 * r
        return ((np.abs(u) <= w) & (np.abs(v) <= r)) | ((np.abs(v) <= w) & (np.abs(u) <= r))
    raise ValueError(f"no shape {shape}")


def _segment_distance(px, py, x0, y0, x1, y1):
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((px - x0) * dx + (py - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
    return np.hypot(px - (x0 + t * dx), py - (y0 + t * dy))


class _Canvas:
    """A grey image composed by alpha-blending anti-aliased coverage masks."""

    def __init__(self, size, rng):
        self.size = size
        level = rng.uniform(0.0, 0.3)
        gx, gy = rng.uniform(-0.2, 0.2, size=2) / size
        yy, xx = np.mgrid[0:size, 0:size]
        self.image = level + gx * (xx - size / 2) + gy * (yy - size / 2)

    def blend(self, inside, intensity, box):
        """inside(fx, fy) -> bool mask on the fine grid over the pixels of ``box`` (x0, y0,
        x1, y1), averaged to per-pixel coverage: image = image (1 - cover) + value cover."""
        s = SUPERSAMPLE
        x0, y0 = (max(0, int(np.floor(v))) for v in box[:2])
        x1, y1 = (min(self.size, int(np.ceil(v)) + 1) for v in box[2:])
        if x0 >= x1 or y0 >= y1:
            return
        # the supersamples of pixel j lie at j + (k + 0.5) / s - 0.5, k < s
        fx, fy = np.meshgrid((np.arange(x0 * s, x1 * s) + 0.5) / s - 0.5,
                             (np.arange(y0 * s, y1 * s) + 0.5) / s - 0.5)
        cover = inside(fx, fy).reshape(y1 - y0, s, x1 - x0, s).mean(axis=(1, 3))
        region = self.image[y0:y1, x0:x1]
        region *= 1 - cover
        region += intensity * cover


def _place_objects(rng, size, count, r_min, r_max):
    """Integer centres and radii for up to ``count`` non-overlapping objects."""
    placed = []
    for _ in range(50 * count):
        if len(placed) == count:
            break
        r = rng.uniform(r_min, r_max)
        margin = int(np.ceil(r)) + 1
        cx, cy = rng.integers(margin, size - margin, size=2)
        if all(np.hypot(cx - x, cy - y) >= r + q + 2 for x, y, q in placed):
            placed.append((int(cx), int(cy), r))
    return placed


def make_image(rng, size, classes, max_objects=4, r_min=4.0, r_max=7.0, noise=0.12):
    """One image (size, size) and its keypoints (K, 3) of (x, y, class)."""
    canvas = _Canvas(size, rng)
    for _ in range(rng.integers(3, 7)):  # clutter: line segments ...
        x0, y0 = rng.uniform(0, size, size=2)
        ang, length = rng.uniform(0, np.pi), rng.uniform(6, 20)
        x1, y1 = x0 + length * np.cos(ang), y0 + length * np.sin(ang)
        width = rng.uniform(0.4, 0.9)
        canvas.blend(lambda fx, fy: _segment_distance(fx, fy, x0, y0, x1, y1) <= width,
                     rng.uniform(0.45, 1.0), (min(x0, x1) - 1, min(y0, y1) - 1,
                                              max(x0, x1) + 1, max(y0, y1) + 1))
    for _ in range(rng.integers(2, 6)):  # ... and dots
        x0, y0 = rng.uniform(0, size, size=2)
        rad = rng.uniform(0.8, 1.8)
        canvas.blend(lambda fx, fy: np.hypot(fx - x0, fy - y0) <= rad, rng.uniform(0.45, 1.0),
                     (x0 - 2, y0 - 2, x0 + 2, y0 + 2))
    for _ in range(rng.integers(0, 3)):  # ... and ellipses, axes ratio 2.2 to 3
        x0, y0 = rng.uniform(0, size, size=2)
        a = rng.uniform(r_min, r_max)
        b = a / rng.uniform(2.2, 3.0)
        ang = rng.uniform(0, np.pi)
        c, s = np.cos(ang), np.sin(ang)
        canvas.blend(lambda fx, fy: ((c * (fx - x0) + s * (fy - y0)) / a) ** 2
                     + ((-s * (fx - x0) + c * (fy - y0)) / b) ** 2 <= 1,
                     rng.uniform(0.45, 1.0), (x0 - a - 1, y0 - a - 1, x0 + a + 1, y0 + a + 1))
    keypoints = []
    for cx, cy, r in _place_objects(rng, size, rng.integers(1, max_objects + 1), r_min, r_max):
        cls = int(rng.integers(classes))
        theta = rng.uniform(0, 2 * np.pi)
        c, s = np.cos(theta), np.sin(theta)

        def inside(fx, fy):
            dx, dy = fx - cx, fy - cy
            return _inside(cls, c * dx + s * dy, -s * dx + c * dy, r)
        canvas.blend(inside, rng.uniform(0.45, 1.0), (cx - r - 1, cy - r - 1, cx + r + 1, cy + r + 1))
        keypoints.append((cx, cy, cls, r))
    image = canvas.image + rng.normal(0, noise, size=canvas.image.shape)
    return image.astype(np.float32), keypoints


def make_set(count, seed, size=48, classes=3, min_overlap=0.7):
    """``count`` images of size x size with ``classes`` shape classes, from ``seed``."""
    if not 1 <= classes <= len(CLASS_NAMES):
        raise ValueError(f"classes must be 1..{len(CLASS_NAMES)}, got {classes}")
    rng = np.random.default_rng(seed)
    images = np.empty((count, 1, size, size), np.float32)
    heatmaps = np.zeros((count, classes, size, size), np.float32)
    keypoints = []
    for n in range(count):
        image, objects = make_image(rng, size, classes)
        images[n, 0] = image
        for cx, cy, cls, r in objects:
            box = 2 * r  # the object's bounding box side
            radius = max(0, int(dafl.gaussian_radius(box, box, min_overlap)))
            dafl.draw_gaussian(heatmaps[n, cls], (cx, cy), radius)
        keypoints.append(np.array([(x, y, c) for x, y, c, _ in objects], np.int64).reshape(-1, 3))
    images = (images - 0.25) / 0.25  # roughly zero mean, unit spread
    return KeypointSet(images, heatmaps, keypoints)
