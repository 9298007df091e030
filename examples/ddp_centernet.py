#!/usr/bin/python3
"""Data-parallel CenterNet heatmap loss with dafl.torch and torch.distributed (gloo).

    python3 -m torch.distributed.run --nproc_per_node 2 examples/ddp_centernet.py

Every rank builds the same global batch (fixed seeds), takes its shard of whole images,
and checks itself against one process computing the whole batch:

1. Normalizer: CenterNet divides the summed loss by the number of positives of the
   *whole* batch.  Each rank counts its shard's positives (dafl.count_positives), the
   counts are all-reduced, and each rank calls the loss with
   ``normalizer=max(global_positives, 1)``.  Its logits gradient is then exactly (bit
   for bit) its slice of the single-process gradient.
2. Loss value: the ranks' partial statistics (dafl.Stats, exact) are all-gathered and
   combined in rank order; reducing them gives the single-process loss bit for bit.
   (Adding the ranks' float losses would not: it rounds differently.)
3. DDP: DistributedDataParallel *averages* parameter gradients over the world size, so
   a DDP trainer passes ``grad_scale=world_size`` (the gradient is multiplied, the
   returned loss value is not), and DDP's average becomes the single-process gradient.
   Equivalently, call ``(loss * world_size).backward()`` (one more pass over the
   gradient).  The parameter gradients then agree with one process to float rounding
   (the all-reduce and the convolution's batch sum round in their own order).

The shards must start at a multiple of dafl.BLOCK_ELEMENTS (1024) elements of the whole
batch for the statistics to combine into the exact bits: here, whole images of
c*h*w = 8*32*32, a multiple of 1024.  Exits non-zero when a check fails.
"""

import gc
import os
import sys

import numpy as np
import torch
import torch.distributed as dist

import dafl
import dafl.torch

N, C, H, W, FEATURES = 4, 8, 32, 32, 16


def global_batch():
    """Backbone features, heatmap targets (dafl.draw_gaussian) and the head's weights."""
    rng = np.random.default_rng(2024)
    features = torch.tensor(rng.normal(0, 1, (N, FEATURES, H, W)).astype(np.float32))
    target = np.zeros((N, C, H, W), np.float32)
    for i in range(N):
        for _ in range(5):
            c = int(rng.integers(C))
            dafl.draw_gaussian(target[i, c], (int(rng.integers(W)), int(rng.integers(H))),
                               int(rng.integers(1, 4)))
    torch.manual_seed(7)
    head = torch.nn.Conv2d(FEATURES, C, 1)
    with torch.no_grad():
        head.bias.fill_(-2.19)  # CenterNet's heatmap prior
    return features, torch.tensor(target), head


def same_bits(a, b):
    return torch.equal(a.detach().view(torch.int32), b.detach().view(torch.int32))


def check_rank(rank, world):
    """This rank's checks against one process; returns the list of failures."""
    features, target, head = global_batch()
    lo, hi = rank * N // world, (rank + 1) * N // world
    failures = []

    # one process, the whole batch
    logits_1 = head(features)
    logits_1.retain_grad()
    loss_1 = dafl.torch.CenterNetFocalLoss()(logits_1, target)
    loss_1.backward()
    param_grads_1 = [p.grad.clone() for p in head.parameters()]
    head.zero_grad()

    # this rank's shard, under DDP
    model = torch.nn.parallel.DistributedDataParallel(head)
    positives = torch.tensor([dafl.count_positives(target[lo:hi].numpy())], dtype=torch.int64)
    dist.all_reduce(positives)  # the global positive count
    normalizer = max(int(positives.item()), 1)
    logits = model(features[lo:hi])
    logits.retain_grad()
    loss = dafl.torch.penalty_focal_loss(logits, target[lo:hi], normalizer=normalizer,
                                         input_mode="clamped_logits", grad_scale=world)
    loss.backward()  # DDP averages the parameter gradients over the ranks here

    # 1. each rank's logits gradient is its slice of the single-process one (times the
    #    grad_scale, a power of two here: exact)
    if not same_bits(logits.grad / world, logits_1.grad[lo:hi]):
        failures.append("logits gradient differs from the single-process slice")

    # 2. the loss: exact statistics all-gathered and combined in rank order
    _, _, stats = dafl.penalty_focal(logits.detach().numpy(), target[lo:hi].numpy(),
                                     input_mode="clamped_logits", gradient=False,
                                     return_stats=True)
    gathered = [None] * world
    dist.all_gather_object(gathered, stats.to_bytes())
    total = dafl.combine_stats(dafl.Stats.from_bytes(b) for b in gathered)
    loss_global = torch.tensor(dafl.reduce_stats(total, "positives"))
    if not same_bits(loss_global, loss_1):
        failures.append(f"combined loss {loss_global.item()!r} != {loss_1.item()!r}")
    if total.positives != positives.item():
        failures.append("the statistics' positive count differs from the all-reduce")

    # 3. DDP's averaged parameter gradients equal the single-process ones
    for p, g1 in zip(model.parameters(), param_grads_1):
        if not torch.allclose(p.grad, g1, rtol=1e-5, atol=1e-6 * g1.abs().max().item()):
            failures.append(f"parameter gradient differs: max error "
                            f"{(p.grad - g1).abs().max().item():.3g}")

    print(f"rank {rank}/{world}: images {lo}..{hi - 1}, global positives {normalizer}, "
          f"loss {loss_global.item():.9g} (one process {loss_1.item():.9g}): "
          + ("ok" if not failures else "; ".join(failures)), flush=True)
    return failures


def main():
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if N % world:
        sys.exit(f"the batch of {N} images does not split over {world} ranks")
    failures = check_rank(rank, world)
    ok = torch.tensor([0 if failures else 1])
    dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    # The DDP model holds the process group, whose gloo threads must end before the
    # interpreter shuts down: a gloo thread that still runs then is killed while it waits
    # for the GIL, and the process aborts ("terminate called without an active
    # exception").  The model died with check_rank, but only once the collector has
    # broken its reference cycles; then destroy_process_group drops the last reference.
    gc.collect()
    dist.destroy_process_group()
    return 0 if ok.item() == 1 else 1


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
