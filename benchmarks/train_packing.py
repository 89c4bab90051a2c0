"""Does sequence packing pay in VIP5 training? Per-sample step time and padding of plain,
length-bucketed and packed batches of the SAME samples (issue 15).

One model (adapters, dropout 0) and one seeded draw of ``steps x batch-size`` training
samples (epoch 0 of ``model.train_data``); each variant cuts the same samples into
batches of ``batch-size``:

* ``plain``: in the drawn (random) order, as without ``train.length_bucketing``;
* ``bucketed``: sorted by encoder length (stable) and cut, as ``train.length_bucketing``
  does within a window of global batches (here the window is the whole draw; the lengths
  are those of the encoded prompts, which ``PromptDataset.lengths`` gives for every
  prompt that fits);
* ``bucketed+packed``: the bucketed batches with ``model.pack_training`` and
  ``pack_length: 0`` (rows no longer than the batch's longest prompt);
* ``bucketed+packed@N`` / ``plain+packed@N``: ``pack_length: N`` (``--max-length``,
  rows of up to N encoder tokens), after bucketing or on the random batches.

A step is forward + backward (the loss of :meth:`VIP5.training_loss`). The variants run
alternately for ``--rounds`` rounds in one process and each batch counts its fastest
round (other jobs on a shared machine only ever slow a step down). Reported per variant:
seconds per sample, its ratio to ``plain``, rows per batch, the padded share of the
encoder and decoder positions computed, and the largest difference of a batch's loss
from the same samples' unpacked loss (packing must not change it).

Usage (results in docs/benchmarks.md):
  python benchmarks/train_packing.py --data DATA --image-features efficientnet-lite0 \\
      --shape tiny --tokenizer ../shared/models/t5-small-tokenizer --steps 8 \\
      --batch-size 16 --rounds 3
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
        backbone=args.shape, tokenizer=args.tokenizer, init_seed=0,
        image_features=args.image_features, image_tokens=2 if args.image_features else 0,
        tasks=args.tasks.split(","), sampling=args.sampling, max_input_length=args.max_length,
        dropout=0.0))
    model = build_vip5(config, dataset).train()
    data = model.train_data(dataset, "train", seed=0)
    order = np.random.default_rng(args.seed).permutation(len(data))
    return model, [data[int(i)] for i in order[:args.steps * args.batch_size]]


def batches(model, samples: list, size: int, bucketed: bool, pack_length: int | None):
    """The collated batches of one variant; ``pack_length`` None: unpacked."""
    if bucketed:
        samples = sorted(samples, key=lambda s: len(s.input_ids))
    cfg = model.config
    cfg.pack_training, cfg.pack_length = pack_length is not None, pack_length or 0
    out = [model.collate(samples[s:s + size]) for s in range(0, len(samples), size)]
    cfg.pack_training, cfg.pack_length = False, 0
    return out


def padding(batch: dict) -> tuple[int, int, int, int]:
    """(encoder positions, real encoder tokens, decoder positions, real target tokens)."""
    labels = batch["labels"]
    return (batch["input_ids"].numel(), int(batch["attention_mask"].sum()), labels.numel(),
            int((labels != -100).sum()))


def step(model, batch: dict) -> tuple[float, float]:
    tick = time.perf_counter()
    loss = model.training_loss(batch)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - tick, float(loss.detach())


def variants(model, samples: list, args: argparse.Namespace) -> dict[str, list[dict]]:
    n = args.max_length
    return {"plain": batches(model, samples, args.batch_size, False, None),
            "bucketed": batches(model, samples, args.batch_size, True, None),
            "bucketed+packed": batches(model, samples, args.batch_size, True, 0),
            f"bucketed+packed@{n}": batches(model, samples, args.batch_size, True, n),
            f"plain+packed@{n}": batches(model, samples, args.batch_size, False, n)}


def report(runs: dict[str, list[dict]], best: dict[str, list[float]],
           losses: dict[str, list[float]], num_samples: int) -> None:
    base = sum(best["plain"]) / num_samples
    print("| variant | s / sample | vs plain | rows / batch | encoder padded | "
          "decoder padded | max loss diff |")
    print("|---|---|---|---|---|---|---|")
    for name, batch_list in runs.items():
        enc, enc_real, dec, dec_real = np.sum([padding(b) for b in batch_list], axis=0)
        rows = np.mean([b["input_ids"].shape[0] for b in batch_list])
        ref = losses["plain" if name.startswith("plain") else "bucketed"]
        diff = max(abs(a - b) for a, b in zip(losses[name], ref, strict=True))
        per = sum(best[name]) / num_samples
        print(f"| {name} | {per:.4f} | {per / base:.3f} | {rows:.1f} | "
              f"{1 - enc_real / enc:.1%} | {1 - dec_real / dec:.1%} | {diff:.1e} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--tokenizer", default=None)
    p.add_argument("--image-features", default=None)
    p.add_argument("--shape", default="tiny")
    p.add_argument("--tasks", default="sequential,direct,explanation")
    p.add_argument("--sampling", default="paper", help="paper: a 10/10/1 mix per user/review")
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--steps", type=int, default=8, help="batches of the plain variant")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    model, samples = build(args)
    runs = variants(model, samples, args)
    step(model, runs["plain"][0])  # warm-up
    times = {name: [[] for _ in b] for name, b in runs.items()}
    losses: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, batch_list in runs.items():
            results = [step(model, b) for b in batch_list]
            losses.setdefault(name, [loss for _, loss in results])
            for i, (seconds, _) in enumerate(results):
                times[name][i].append(seconds)
    print(f"{len(samples)} samples, batch {args.batch_size}, shape {args.shape}, "
          f"threads {torch.get_num_threads()}, best of {args.rounds} rounds per batch")
    print("plain widths:", [tuple(b["input_ids"].shape) for b in runs["plain"]])
    print("bucketed widths:", [tuple(b["input_ids"].shape) for b in runs["bucketed"]])
    print("bucketed+packed widths:",
          [tuple(b["input_ids"].shape) for b in runs["bucketed+packed"]])
    best = {name: [min(t) for t in ts] for name, ts in times.items()}
    report(runs, best, losses, len(samples))


if __name__ == "__main__":
    main()
