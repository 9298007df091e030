"""Validation metrics for keypoint heatmaps.

Peaks are CenterNet's: a pixel is a peak when it equals the maximum of its 3x3
neighbourhood (3x3 max-pooling); the highest ``top_k`` of an image are kept.  A peak
matches the nearest not yet matched keypoint within d pixels (Euclidean), peaks taken in
descending score order (greedy, as in COCO and VOC evaluation); so the matches of the
peaks above any threshold do not depend on the peaks below it, and one sorted list gives
precision and recall at every threshold.

Three views:
- where: peaks of the class-agnostic map max_c score_c; precision, recall and F1 at
  d = 1, 2 and 4 pixels, at the threshold that maximizes F1 at 2 pixels on this split;
  the mean distance of the peaks matched at 4 pixels (localization error);
- what: of those matched peaks, the share whose argmax class is the keypoint's class
  (classification accuracy, the "semantic information");
- both: class-aware average precision at 2 pixels (each class channel's own peaks
  matched to that class's keypoints; area under the interpolated precision-recall
  curve over all thresholds; mean over classes), threshold-free.
"""

import numpy as np
import torch
import torch.nn.functional as F

DISTANCES = (1, 2, 4)


def _local_maxima(score):
    """score (N, C, H, W) -> the score where it is its 3x3 neighbourhood's maximum, -inf
    elsewhere."""
    return torch.where(score == F.max_pool2d(score, 3, 1, 1), score,
                       torch.full_like(score, -float("inf")))


def agnostic_peaks(score, top_k):
    """Per image, (scores, xy (P, 2), classes) of the top_k peaks of max_c score,
    descending."""
    best, cls = score.max(dim=1, keepdim=True)
    peak = _local_maxima(best).flatten(1)
    k = min(top_k, peak.shape[1])
    values, index = peak.topk(k, dim=1)
    width = score.shape[-1]
    out = []
    for n in range(score.shape[0]):
        keep = torch.isfinite(values[n])
        idx = index[n][keep]
        out.append((values[n][keep].numpy(),
                    torch.stack([idx % width, idx // width], 1).numpy(),
                    cls[n, 0].flatten()[idx].numpy()))
    return out


def class_peaks(score, top_k):
    """Per image and class, (scores, xy (P, 2)) of the top_k peaks of that channel."""
    n, c, h, w = score.shape
    peak = _local_maxima(score).reshape(n, c, h * w)
    values, index = peak.topk(min(top_k, h * w), dim=2)
    out = []
    for i in range(n):
        per_class = []
        for j in range(c):
            keep = torch.isfinite(values[i, j])
            idx = index[i, j][keep]
            per_class.append((values[i, j][keep].numpy(),
                              torch.stack([idx % w, idx // w], 1).numpy()))
        out.append(per_class)
    return out


def greedy_match(xy, truth, dist):
    """Peaks xy (P, 2) in descending score order against keypoints truth (K, 2): for each
    peak the index of the keypoint it matches within ``dist`` (-1: none) and the
    distance."""
    matched = np.full(len(xy), -1)
    distance = np.full(len(xy), np.inf)
    if len(truth) == 0 or len(xy) == 0:
        return matched, distance
    d = np.hypot(xy[:, None, 0] - truth[None, :, 0], xy[:, None, 1] - truth[None, :, 1])
    free = np.ones(len(truth), dtype=bool)
    for p in range(len(xy)):
        cand = np.where(free & (d[p] <= dist))[0]
        if len(cand):
            g = cand[np.argmin(d[p, cand])]
            matched[p], distance[p], free[g] = g, d[p, g], False
    return matched, distance


def average_precision(scores, tp, positives):
    """Area under the interpolated precision-recall curve (every threshold), VOC style."""
    if positives == 0:
        return float("nan")
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(tp[order])
    precision = hits / np.arange(1, len(hits) + 1)
    recall = hits / positives
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # interpolation
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * precision))


@torch.no_grad()
def predict(model, images, score_fn, batch=64):
    model.eval()
    out = torch.cat([score_fn(model(torch.from_numpy(images[i:i + batch])))
                     for i in range(0, len(images), batch)])
    model.train()
    return out


def class_aware_ap(score, keypoints, dist=2, top_k=10):
    """Mean over classes of the AP at ``dist`` pixels, per-channel peaks."""
    classes = score.shape[1]
    scores = [[] for _ in range(classes)]
    hits = [[] for _ in range(classes)]
    positives = np.zeros(classes, int)
    for per_class, truth in zip(class_peaks(score, top_k), keypoints):
        for c, (s, xy) in enumerate(per_class):
            mine = truth[truth[:, 2] == c, :2]
            positives[c] += len(mine)
            matched, _ = greedy_match(xy, mine, dist)
            scores[c].append(s)
            hits[c].append(matched >= 0)
    aps = [average_precision(np.concatenate(scores[c]), np.concatenate(hits[c]), positives[c])
           for c in range(classes)]
    return float(np.nanmean(aps))


def evaluate(score, keypoints, top_k=20):
    """All metrics of one model's scores (N, C, H, W) on keypoints (per image (K, 3))."""
    positives = sum(len(k) for k in keypoints)
    rows = []  # per peak: score, matched at each d, distance and class right at 4 px
    for (s, xy, cls), truth in zip(agnostic_peaks(score, top_k), keypoints):
        hit = [greedy_match(xy, truth[:, :2], d)[0] >= 0 for d in DISTANCES]
        matched4, distance4 = greedy_match(xy, truth[:, :2], 4)
        right = np.zeros(len(s), bool)
        right[matched4 >= 0] = cls[matched4 >= 0] == truth[matched4[matched4 >= 0], 2]
        rows.append(np.column_stack([s, *hit, distance4, right]).astype(np.float64))
    table = np.concatenate(rows)
    table = table[np.argsort(-table[:, 0], kind="stable")]
    count = np.arange(1, len(table) + 1)

    def pr(col, upto):
        hits = np.cumsum(table[:, col])[:upto]
        return hits / count[:upto], hits / max(positives, 1)

    precision2, recall2 = pr(2, len(table))
    f1_2 = 2 * precision2 * recall2 / np.maximum(precision2 + recall2, 1e-12)
    cut = int(np.argmax(f1_2)) + 1  # keep the `cut` best peaks: threshold = their lowest
    result = {"threshold": float(table[cut - 1, 0]), "ap2": class_aware_ap(score, keypoints)}
    for i, d in enumerate(DISTANCES):
        p, r = pr(1 + i, cut)
        p, r = p[-1], r[-1]
        result[f"p{d}"], result[f"r{d}"] = p, r
        result[f"f1_{d}"] = 2 * p * r / max(p + r, 1e-12)
    kept = table[:cut]
    matched4 = kept[:, 3].astype(bool)
    result["loc_error"] = float(kept[matched4, 4].mean()) if matched4.any() else float("nan")
    result["class_acc"] = float(kept[matched4, 5].mean()) if matched4.any() else float("nan")
    result["agnostic_ap2"] = average_precision(table[:, 0], table[:, 2].astype(bool), positives)
    return result


def check_on_ground_truth(heatmaps, keypoints):
    """The metrics of the target heatmaps themselves (a perfect prediction) and of the
    targets moved 2 px to the right (every peak 2 px off, classes right): raises
    AssertionError unless they are what they must be."""
    exact = evaluate(torch.from_numpy(heatmaps), keypoints)
    moved = evaluate(torch.from_numpy(np.roll(heatmaps, 2, axis=3)), keypoints)
    want_exact = {"ap2": 1.0, "f1_1": 1.0, "f1_2": 1.0, "f1_4": 1.0, "loc_error": 0.0,
                  "class_acc": 1.0}
    want_moved = {"ap2": 1.0, "f1_1": 0.0, "f1_2": 1.0, "f1_4": 1.0, "loc_error": 2.0,
                  "class_acc": 1.0}
    for name, got, want in (("targets", exact, want_exact), ("targets moved 2 px", moved,
                                                              want_moved)):
        bad = {k: got[k] for k in want if abs(got[k] - want[k]) > 1e-9}
        if bad:
            raise AssertionError(f"metrics of the {name}: {bad}, want {want}")
