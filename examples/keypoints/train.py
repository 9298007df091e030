#!/usr/bin/env python3
"""Train one small heatmap network with each of five losses on synthetic keypoints, and
measure what each loss learns (see examples/keypoints/README.md).

    PYTHONPATH=build/python /usr/bin/python3 examples/keypoints/train.py          # full run
    PYTHONPATH=build/python /usr/bin/python3 examples/keypoints/train.py --quick  # CI

The full run (1000 steps, 3 seeds) writes docs/keypoints.md, docs/keypoints-convergence.png,
docs/keypoints-predictions.png and docs/keypoints-results.json; `--steps 300 --name
keypoints-300` is the short budget of docs/keypoints-300.*; --quick writes the same files,
from tiny data, to build/keypoints-quick/.  Every run (loss x seed) has the same
network, data, optimizer, schedule and budget; the seed sets the initial weights and the
batch order, the data sets have their own fixed seeds.  Runs are deterministic: the same
command gives the same metrics (the timings vary).
"""

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, asdict

import numpy as np
import torch

import losses
import report
from data import make_set
from evaluate import check_on_ground_truth, class_aware_ap, evaluate, predict
from model import HeatmapNet

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRAIN_SEED, VAL_SEED = 1001, 2002  # the data sets' seeds (never a run's seed)


@dataclass
class Config:
    size: int = 40          # image side, pixels (output stride 1: the heatmap's side too)
    classes: int = 3
    train_images: int = 1500
    val_images: int = 200
    curve_images: int = 80   # validation images scored along training (convergence)
    width: int = 12          # channels of the first block (then 2x, 3x)
    batch: int = 12
    steps: int = 1000
    lr: float = 2e-3         # Adam, cosine decay to 0 over the budget
    seeds: tuple = (0, 1, 2)
    curve_points: int = 10
    timing_reps: int = 15    # interleaved dafl / PyTorch-written steps per loss
    threads: int = 1         # torch's and dafl's (2 threads lost 2-10x on a loaded VM)


QUICK = dict(size=32, train_images=48, val_images=24, curve_images=24, width=8, batch=8,
             steps=24, seeds=(0,), curve_points=3, timing_reps=3)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny data and budget, one seed (under a minute; what CI runs)")
    ap.add_argument("--out", help="output folder (default docs/, or build/keypoints-quick "
                    "with --quick)")
    ap.add_argument("--name", default="keypoints",
                    help="file name prefix of the outputs (default keypoints)")
    ap.add_argument("--steps", type=int, help="training steps per run")
    ap.add_argument("--seeds", type=int, nargs="+", help="run seeds")
    ap.add_argument("--threads", type=int, help="torch and dafl threads (default 1)")
    ap.add_argument("--losses", nargs="+", help="a subset of the losses, by name")
    args = ap.parse_args()
    cfg = Config(**(QUICK if args.quick else {}))
    if args.steps:
        cfg.steps = args.steps
    if args.seeds:
        cfg.seeds = tuple(args.seeds)
    if args.threads:
        cfg.threads = args.threads
    out = args.out or os.path.join(ROOT, "build/keypoints-quick" if args.quick else "docs")
    return args, cfg, out


class Trainer:
    """One training run: model, optimizer and schedule for one loss and seed."""

    def __init__(self, cfg, spec, seed, train):
        torch.manual_seed(seed)
        self.cfg, self.spec, self.train = cfg, spec, train
        self.model = HeatmapNet(cfg.classes, cfg.width)
        self.model.init_output_bias(spec.prior)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, cfg.steps)
        self.rng = np.random.default_rng(seed + 10_000)
        self.targets = train.hard_labels() if spec.target == "hard" else train.heatmaps

    def step(self, impl="dafl"):
        """One step; returns (seconds for the step, seconds in the loss's forward and
        backward).  The loss runs on a detached copy of the output so that its share is
        measured apart from the network's backward, which then takes the loss's gradient."""
        idx = self.rng.integers(len(self.train), size=self.cfg.batch)
        x = torch.from_numpy(self.train.images[idx])
        y = torch.from_numpy(self.targets[idx])
        loss_fn = getattr(self.spec, impl)
        t0 = time.perf_counter()
        out = self.model(x)
        t1 = time.perf_counter()
        detached = out.detach().requires_grad_()
        loss = loss_fn(detached, y)
        loss.backward()
        t2 = time.perf_counter()
        out.backward(detached.grad)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.sched.step()
        t3 = time.perf_counter()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{self.spec.name}: loss {loss.item()} at a step")
        return t3 - t0, t2 - t1


def run_one(cfg, spec, seed, train, val):
    trainer = Trainer(cfg, spec, seed, train)
    curve_at = set(np.linspace(0, cfg.steps, cfg.curve_points + 1).astype(int).tolist())
    curve, step_times, loss_times = [], [], []
    head = val.images[:cfg.curve_images]
    head_kp = val.keypoints[:cfg.curve_images]
    start = time.perf_counter()
    for step in range(cfg.steps + 1):
        if step in curve_at:
            curve.append((step, class_aware_ap(predict(trainer.model, head, spec.score),
                                               head_kp)))
        if step < cfg.steps:
            t_step, t_loss = trainer.step()
            step_times.append(t_step)
            loss_times.append(t_loss)
    score = predict(trainer.model, val.images, spec.score)
    metrics = evaluate(score, val.keypoints)
    metrics.update(curve=curve, seconds=time.perf_counter() - start,
                   step_ms=1e3 * float(np.median(step_times)),
                   loss_share=float(np.sum(loss_times) / np.sum(step_times)))
    return metrics, score


def time_implementations(cfg, spec, train):
    """The same training steps with the dafl loss and the PyTorch-written loss,
    interleaved in one process: the fastest of cfg.timing_reps of each (after 3 warm-up
    steps), the step and the loss's share of it."""
    trainer = Trainer(cfg, spec, 0, train)
    for _ in range(3):
        trainer.step("dafl")
        trainer.step("pytorch")
    times = {"dafl": [], "pytorch": []}
    for _ in range(cfg.timing_reps):
        for impl in times:
            times[impl].append(trainer.step(impl))
    result = {}
    for impl, t in times.items():
        t = np.array(t)
        result[impl] = {"step_ms": 1e3 * t[:, 0].min(), "loss_ms": 1e3 * t[:, 1].min(),
                        "step_ms_median": 1e3 * np.median(t[:, 0]),
                        "loss_ms_median": 1e3 * np.median(t[:, 1])}
    return result


def main():
    args, cfg, out = parse_args()
    torch.set_num_threads(cfg.threads)
    torch.set_num_interop_threads(1)
    losses.set_threads(cfg.threads)
    specs = [losses.BY_NAME[n] for n in args.losses] if args.losses else list(losses.LOSSES)
    os.makedirs(out, exist_ok=True)
    began = time.perf_counter()

    train = make_set(cfg.train_images, TRAIN_SEED, cfg.size, cfg.classes)
    val = make_set(cfg.val_images, VAL_SEED, cfg.size, cfg.classes)
    print(f"data: {cfg.train_images} train, {cfg.val_images} validation images of "
          f"{cfg.size}x{cfg.size}, {cfg.classes} classes, "
          f"{sum(map(len, train.keypoints))} / {sum(map(len, val.keypoints))} keypoints "
          f"({time.perf_counter() - began:.1f} s); {losses.dafl_version()}, "
          f"torch {torch.__version__}, {cfg.threads} threads", flush=True)

    check_on_ground_truth(val.heatmaps, val.keypoints)
    # dafl's losses against the PyTorch-written ones (float64) on a real batch
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn((8, cfg.classes, cfg.size, cfg.size), generator=gen) * 2 - 2
    agreement = {}
    for spec in specs:
        targets = train.hard_labels() if spec.target == "hard" else train.heatmaps
        agreement[spec.name] = losses.check_against_pytorch(
            spec, logits, torch.from_numpy(targets[:8]))
        print(f"check {spec.name}: dafl vs PyTorch-written (float64): loss relative "
              f"{agreement[spec.name][0]:.1e}, gradient {agreement[spec.name][1]:.1e}",
              flush=True)

    results, shown = {}, {}
    shown_index = report.shown_image(val)
    for spec in specs:
        results[spec.name] = []
        for seed in cfg.seeds:
            metrics, score = run_one(cfg, spec, seed, train, val)
            results[spec.name].append(metrics)
            if seed == cfg.seeds[0]:
                shown[spec.name] = score[shown_index].numpy(), metrics["threshold"]
            print(f"{spec.name:14s} seed {seed}: AP@2 {metrics['ap2']:.3f}  F1@1/2/4 "
                  f"{metrics['f1_1']:.3f}/{metrics['f1_2']:.3f}/{metrics['f1_4']:.3f}  "
                  f"loc {metrics['loc_error']:.2f} px  class {metrics['class_acc']:.3f}  "
                  f"({metrics['seconds']:.0f} s, {metrics['step_ms']:.0f} ms/step, "
                  f"loss {100 * metrics['loss_share']:.1f} %)", flush=True)

    timing = {}
    for spec in specs:
        timing[spec.name] = time_implementations(cfg, spec, train)
        d, p = timing[spec.name]["dafl"], timing[spec.name]["pytorch"]
        print(f"timing {spec.name:14s}: step {d['step_ms']:.1f} / {p['step_ms']:.1f} ms, "
              f"loss {d['loss_ms']:.2f} / {p['loss_ms']:.2f} ms (dafl / PyTorch-written)",
              flush=True)

    env = {"seconds": time.perf_counter() - began, "dafl": losses.dafl_version(),
           "torch": torch.__version__, "cpu": report.cpu_name(), "machine": platform.machine(),
           "command": " ".join(["examples/keypoints/train.py"] + sys.argv[1:])}
    with open(os.path.join(out, f"{args.name}-results.json"), "w") as f:
        json.dump({"config": asdict(cfg), "env": env, "agreement": agreement,
                   "results": results, "timing": timing}, f, indent=1)
    report.write_all(out, args.name, cfg, env, specs, results, timing, agreement, val, shown)
    print(f"wrote {out} in {env['seconds']:.0f} s")


if __name__ == "__main__":
    main()
