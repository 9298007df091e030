"""The Markdown report and the plots of a keypoints run (train.py)."""

import os

import numpy as np
import torch

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from data import CLASS_NAMES  # noqa: E402
from evaluate import agnostic_peaks  # noqa: E402

CLASS_COLOURS = ((1.0, 0.25, 0.25), (0.25, 1.0, 0.25), (0.3, 0.5, 1.0), (1.0, 1.0, 0.2))
COLUMNS = (("ap2", "AP@2", 3), ("f1_1", "F1@1", 3), ("f1_2", "F1@2", 3), ("f1_4", "F1@4", 3),
           ("p2", "P@2", 3), ("r2", "R@2", 3), ("loc_error", "loc. error (px)", 2),
           ("class_acc", "class acc.", 3))


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def shown_image(val):
    """The validation image the prediction figure shows: the first with at least three
    objects of at least two classes (image 0 when there is none)."""
    for i, kp in enumerate(val.keypoints):
        if len(kp) >= 3 and len(set(kp[:, 2].tolist())) >= 2:
            return i
    return 0


def _mean_sd(values, digits):
    v = np.asarray(values, float)
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def _curve_step(runs, fraction, steps):
    """The step of the convergence curve's point nearest to fraction * steps."""
    return min((p[0] for p in runs[0]["curve"]), key=lambda s: abs(s - fraction * steps))


def _curve_at(run, step):
    return next(ap for s, ap in run["curve"] if s == step)


def results_table(specs, results, steps):
    early = [_curve_step(results[specs[0].name], f, steps) for f in (0.25, 0.5)]
    head = ["loss"] + [c[1] for c in COLUMNS] + [f"AP@2 at {early[0]} steps",
                                                 f"at {early[1]}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for spec in specs:
        runs = results[spec.name]
        cells = [_mean_sd([r[key] for r in runs], digits) for key, _, digits in COLUMNS]
        cells += [_mean_sd([_curve_at(r, step) for r in runs], 3) for step in early]
        lines.append("| " + " | ".join([spec.label] + cells) + " |")
    return "\n".join(lines)


def timing_table(specs, timing, results):
    head = ["loss", "step, dafl (ms)", "loss fwd+bwd, dafl (ms)", "share",
            "step, PyTorch-written (ms)", "loss fwd+bwd, PyTorch-written (ms)", "share",
            "loss: PyTorch / dafl"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for spec in specs:
        d, p = timing[spec.name]["dafl"], timing[spec.name]["pytorch"]
        lines.append(
            f"| {spec.label} | {d['step_ms']:.1f} | {d['loss_ms']:.2f} | "
            f"{100 * d['loss_ms'] / d['step_ms']:.1f} % | {p['step_ms']:.1f} | "
            f"{p['loss_ms']:.2f} | {100 * p['loss_ms'] / p['step_ms']:.1f} % | "
            f"{p['loss_ms'] / d['loss_ms']:.1f}x |")
    return "\n".join(lines)


def plot_convergence(path, specs, results, cfg):
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for spec in specs:
        runs = results[spec.name]
        steps = np.array([p[0] for p in runs[0]["curve"]])
        ap = np.array([[p[1] for p in r["curve"]] for r in runs])
        line, = ax.plot(steps, ap.mean(0), marker="o", ms=3, label=spec.label)
        if len(runs) > 1:
            ax.fill_between(steps, ap.min(0), ap.max(0), color=line.get_color(), alpha=0.15)
    ax.set_xlabel("training step")
    ax.set_ylabel(f"class-aware AP at 2 px ({cfg.curve_images} validation images)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"Convergence: mean over {len(cfg.seeds)} seed(s), band = min..max")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _composite(score):
    """(C, H, W) scores -> an RGB image, class c in CLASS_COLOURS[c], scaled so that the
    image's highest score is full brightness (negative scores, possible with MSE, black)."""
    score = np.clip(score, 0, None) / max(float(score.max()), 1e-12)
    rgb = np.zeros(score.shape[1:] + (3,))
    for c in range(score.shape[0]):
        rgb += score[c][..., None] * np.array(CLASS_COLOURS[c])
    return np.clip(rgb, 0, 1)


def _mark(ax, xy, classes, ring, size):
    """Points in their class colours: rings (predicted peaks) or crosses (keypoints)."""
    for (x, y), c in zip(xy, classes):
        if ring:
            ax.scatter([x], [y], s=size, marker="o", facecolors="none",
                       edgecolors=[CLASS_COLOURS[c]], linewidths=1.2)
        else:
            ax.scatter([x], [y], s=size, marker="x", c=[CLASS_COLOURS[c]], linewidths=1.2)


def plot_predictions(path, specs, val, shown):
    idx = shown_image(val)
    truth = val.keypoints[idx]
    fig, axes = plt.subplots(1, len(specs) + 1, figsize=(2.6 * (len(specs) + 1), 3.1))
    axes[0].imshow(val.images[idx, 0], cmap="gray")
    _mark(axes[0], truth[:, :2], truth[:, 2], False, 40)
    axes[0].set_title("input, keypoints\n" + ", ".join(
        f"{CLASS_NAMES[c]}" for c in range(val.heatmaps.shape[1])), fontsize=8)
    for ax, spec in zip(axes[1:], specs):
        score, threshold = shown[spec.name]
        ax.imshow(_composite(score))
        s, xy, cls = agnostic_peaks(torch.from_numpy(score[None]), 20)[0]
        keep = s >= threshold
        _mark(ax, xy[keep], cls[keep], True, 70)
        _mark(ax, truth[:, :2], truth[:, 2], False, 25)
        ax.set_title(f"{spec.label}\npeaks >= {threshold:.2f}", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("One validation image: predicted heatmaps (colour = class, scaled to their "
                 "maximum), peaks (circles) above the validation threshold, keypoints "
                 "(crosses)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_all(out, name, cfg, env, specs, results, timing, agreement, val, shown):
    """{name}.md, {name}-convergence.png and {name}-predictions.png in ``out``."""
    plot_convergence(os.path.join(out, f"{name}-convergence.png"), specs, results, cfg)
    plot_predictions(os.path.join(out, f"{name}-predictions.png"), specs, val, shown)
    write_markdown(out, name, cfg, env, specs, results, timing, agreement)


def write_markdown(out, name, cfg, env, specs, results, timing, agreement):
    """{name}.md in ``out``: the tables (from results.json's contents as well)."""
    worst = max(max(a) for a in agreement.values())
    text = f"""# Sparse keypoints: what each loss learns (measured)

Written by `{env['command']}` in {env['seconds'] / 60:.1f} minutes
on {env['cpu']} ({env['machine']}), torch and dafl on {cfg.threads} thread(s), {env['dafl']},
torch {env['torch']}.

Setup: {cfg.train_images} training and {cfg.val_images} validation images of
{cfg.size}x{cfg.size}, {cfg.classes} classes ({", ".join(CLASS_NAMES[:cfg.classes])}),
1 to 4 objects each among clutter (lines, dots, ellipses) and noise, one keypoint per object at its
centre; network HeatmapNet(width {cfg.width}) at output stride 1; Adam, lr {cfg.lr},
cosine decay, batch {cfg.batch}, {cfg.steps} steps, seeds {", ".join(map(str, cfg.seeds))}
(mean ± standard deviation over seeds). Every loss trains through dafl.torch.

Metrics on the validation split (examples/keypoints/evaluate.py): AP@2 is the
class-aware average precision at 2 px (mean over classes, every threshold); P, R and F1
at d px are class-agnostic (peaks of the maximum over class channels), at the threshold
that maximizes F1@2 on the validation split; localization error is the mean distance of
the peaks matched within 4 px; class accuracy is the share of those whose highest
channel is the keypoint's class. The last two columns are AP@2 on the first
{cfg.curve_images} validation images early in training (convergence).

{results_table(specs, results, cfg.steps)}

![convergence]({name}-convergence.png)

![predictions]({name}-predictions.png)

## Time per training step, and the loss's share

The same training step (batch {cfg.batch}, {cfg.classes}x{cfg.size}x{cfg.size} heatmaps)
with the dafl.torch loss and with the same loss written in PyTorch (F.binary_cross_entropy_with_logits,
F.mse_loss, and the penalty-reduced focal loss in PyTorch operations), interleaved in
one process, fastest of {cfg.timing_reps} steps each; the loss's time is its forward and
backward.

{timing_table(specs, timing, results)}

Before training, every dafl loss and its gradient were checked against the
PyTorch-written loss in float64 on the same batch: worst relative difference
{worst:.1e}.
"""
    with open(os.path.join(out, f"{name}.md"), "w") as f:
        f.write(text)
