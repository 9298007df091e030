#!/usr/bin/python3
"""The figure of docs/keypoints-pipeline.md from pipeline.py --json's results: per
configuration, the time of a training step split into data loading, the heatmap loss and
the rest, and the peak RSS.

usage: plot.py results.json out.png   (needs python3-matplotlib)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    results = json.load(open(sys.argv[1]))
    best = results["best"]
    names = {"a": "a: reference\n(numpy + _neg_loss)", "b": "b: dafl dense\n(render + fused)",
             "c": "c: dafl keypoint-fused\n(no heatmaps)"}
    configs = sorted(best)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    left = [0.0] * len(configs)
    for part, colour in (("data", "#8da0cb"), ("loss", "#fc8d62"), ("rest", "#66c2a5")):
        ms = [1e3 * best[c][part] / best[c]["steps"] for c in configs]
        ax1.barh([names[c] for c in configs], ms, left=left, color=colour, label=part)
        for i, (l, v) in enumerate(zip(left, ms)):
            if part != "rest":
                ax1.text(l + v + 5, i + (0.22 if part == "data" else -0.22),
                         f"{part} {v:.0f} ms", va="center", fontsize=8)
        left = [l + v for l, v in zip(left, ms)]
    ax1.invert_yaxis()
    ax1.set_xlabel("ms per training step (fastest repetition)")
    ax1.legend(loc="lower right", fontsize=8)
    ax1.set_title("training step, split")
    main_rss = [best[c]["rss_main_mib"] for c in configs]
    worker_rss = [best[c]["rss_worker_mib"] for c in configs]
    xs = range(len(configs))
    ax2.bar([x - 0.2 for x in xs], main_rss, 0.4, label="main process")
    ax2.bar([x + 0.2 for x in xs], worker_rss, 0.4, label="largest worker")
    ax2.set_xticks(list(xs))
    ax2.set_xticklabels([names[c].split("\n")[0] for c in configs])
    ax2.set_ylabel("peak RSS (MiB)")
    ax2.legend(fontsize=8)
    ax2.set_title("peak memory")
    fig.suptitle(results["machine"], fontsize=9)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
