"""Where a VIP5 training step spends its time: the top operators, before and after the
training forward's masks were made once per step (issue 15, item 2).

"before" is transformers' plain call, as ``VIP5.forward`` did it: the (B, L) padding mask
is handed over as it is, so every attention call of every layer expands it to a
(B, 1, Q, L) boolean mask and selects from it, and T5's position bias is added as a
strided view. "after" is ``VIP5.forward`` now: an additive (B, 1, 1, L) mask made once
and a contiguous position bias (:mod:`mfmrec.models.vip5.packing`, shared with
inference). Both run the SAME model on the SAME batches in one process, alternating;
each variant's steps are profiled with ``torch.profiler`` (forward + backward, adapters)
and timed without the profiler.

Usage (results in docs/benchmarks.md):
  python benchmarks/train_step_profile.py --data DATA --image-features rand512 \
      --tokenizer ../shared/models/t5-small-tokenizer --steps 4 --batch-size 16
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def build(args: argparse.Namespace):
    from mfmrec.config import build as build_config
    from mfmrec.data import load_dataset
    from mfmrec.models.vip5 import VIP5Config, build_vip5

    dataset = load_dataset(args.data)
    config = build_config(VIP5Config, dict(
        backbone=args.shape, tokenizer=args.tokenizer, tuning=args.tuning, init_seed=0,
        image_features=args.image_features, image_tokens=2 if args.image_features else 0,
        tasks=["sequential", "direct"], sampling="paper", max_input_length=512, dropout=0.0))
    model = build_vip5(config, dataset).train()
    samples = model.train_data(dataset, "train", seed=0)
    order = np.random.default_rng(0).permutation(len(samples))
    batches = [model.collate([samples[int(i)] for i in order[s:s + args.batch_size]])
               for s in range(0, args.steps * args.batch_size, args.batch_size)]
    return model, batches


def before(model, batch: dict) -> torch.Tensor:
    """The training forward as it was: transformers' call with the 2D mask."""
    batch = model._on_device(batch)
    return model.backbone(inputs_embeds=model.input_embeds(batch),
                          attention_mask=batch["attention_mask"], labels=batch["labels"]).loss


def after(model, batch: dict) -> torch.Tensor:
    return model.training_loss(batch)


def step(model, fn, batch: dict) -> float:
    tick = time.perf_counter()
    fn(model, batch).backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - tick


def profile(model, fn, batches: list[dict], top: int) -> str:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches:
            step(model, fn, batch)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top,
                                     max_name_column_width=40)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--tokenizer", default=None)
    p.add_argument("--image-features", default=None)
    p.add_argument("--shape", default="small")
    p.add_argument("--tuning", default="adapters")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--rounds", type=int, default=2, help="timed passes per variant")
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args()
    model, batches = build(args)
    step(model, after, batches[0])  # warm-up
    variants = {"before": before, "after": after}
    seconds = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            seconds[name].append(sum(step(model, fn, b) for b in batches))
    shapes = [tuple(b["input_ids"].shape) for b in batches]
    print(f"batches (input_ids): {shapes}; threads {torch.get_num_threads()}")
    best = {name: min(s) for name, s in seconds.items()}
    for name in variants:
        print(f"{name}: {best[name]:.2f} s for {len(batches)} steps (best of {args.rounds})")
    print(f"after / before time: {best['after'] / best['before']:.3f}")
    for name, fn in variants.items():
        print(f"\n== {name}: top operators by self CPU time ({len(batches)} steps)")
        print(profile(model, fn, batches, args.top))


if __name__ == "__main__":
    main()
