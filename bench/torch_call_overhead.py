#!/usr/bin/env python3
"""Per-call cost of dafl.torch on tiny tensors (2x3x8x8), where the loss itself is
negligible: what a call costs beyond the C kernel, forward only (no_grad) and forward +
backward, for each loss; and, where torch has Dynamo, the graph breaks
torch._dynamo.explain counts for a step calling the loss.

    PYTHONPATH=build/python python3 bench/torch_call_overhead.py [--rounds 15] \
        [--dtype bfloat16]

--dtype: the logits' dtype (float32; bfloat16 or float16: read in place, the gradient
written in that dtype, the loss returned in it); the targets stay float32.

Times are the fastest of --rounds rounds of 300 calls (a shared machine is noisy: run
the versions to compare alternately and take each one's fastest)."""

import argparse
import time

import torch

try:
    import torch._dynamo  # torch >= 2.0: graph breaks counted
except ImportError:
    pass

import dafl
import dafl.torch as dt


def cases(dtype=torch.float32):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8).to(dtype).requires_grad_()
    y = torch.rand(2, 3, 8, 8)
    y[0, 0, 1, 1] = 1
    labels = torch.randint(0, 3, (2, 8, 8))
    return x, {
        "penalty_focal_loss": lambda: dt.penalty_focal_loss(x, y),
        "CenterNetFocalLoss": lambda: dt.CenterNetFocalLoss()(x, y),
        "GaussianFocalLoss": lambda: dt.GaussianFocalLoss()(x.sigmoid(), y),
        "sigmoid_focal_loss": lambda: dt.sigmoid_focal_loss(x, y, reduction="mean"),
        "binary_cross_entropy": lambda: dt.binary_cross_entropy_with_logits(x, y),
        "softmax_focal_loss": lambda: dt.softmax_focal_loss(x, labels),
        "mse_loss": lambda: dt.mse_loss(x, y),
    }


def fastest(f, rounds, calls=300):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            f()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--no-explain", action="store_true", help="skip the graph-break count")
    ap.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                    help="the logits' dtype (targets float32)")
    args = ap.parse_args()
    x, losses = cases(getattr(torch, args.dtype))
    dafl.set_num_threads(1)
    print(f"torch {torch.__version__}, dafl {dafl.version()} ({dafl.active_isa()}), "
          f"custom operators: {getattr(dt, 'HAVE_CUSTOM_OPS', False)}, {args.dtype} logits")
    print(f"{'loss':22s} {'forward us':>10s} {'fwd+bwd us':>10s} {'graph breaks':>12s}")
    for name, loss in losses.items():
        def forward():
            with torch.no_grad():
                loss()

        def forward_backward():
            x.grad = None
            loss().backward()
        breaks = "-"
        if hasattr(torch, "_dynamo") and not args.no_explain:
            torch._dynamo.reset()
            breaks = torch._dynamo.explain(lambda: loss())().graph_break_count
        print(f"{name:22s} {fastest(forward, args.rounds):10.1f} "
              f"{fastest(forward_backward, args.rounds):10.1f} {breaks:>12}")


if __name__ == "__main__":
    main()
