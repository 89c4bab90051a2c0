"""VIP5's training-efficiency claim, measured: full fine-tuning vs adapters (self-attention,
cross-attention and FFN, the paper's setting) vs adapters without the cross-attention ones.

The VIP5 paper reports that adapters save 21% of the training time and 18% of the GPU
memory of full fine-tuning. Here the SAME model (one backbone shape, one seed, so the
same frozen weights) trains on the SAME fixed list of collated batches in each mode:

* the batches are drawn once from ``model.train_data`` (:class:`PromptDataset`, epoch 0)
  with a seeded permutation; a batch does not depend on the tuning mode;
* each step is forward + backward + gradient clipping + AdamW step (the trainer's
  ``optimizer_groups``: trainable parameters only, no decay on vectors), dropout seeded
  per step;
* each mode runs in a FRESH subprocess, so one mode's peak memory never mixes with
  another's, and model building and imports happen before the memory monitor starts.

Reported per mode: trainable parameters; the seconds of the timed steps (warm-up steps
excluded: the first step allocates optimizer states) and their ratio to ``full``, as the
ratio of totals and as the median over steps of (this mode's step / full's step on the
same batch) -- batches differ a lot in length (a direct prompt lists 100 candidates), so
only same-batch ratios are comparable, and the median resists steps slowed by other jobs
on a shared machine; peak memory measured by the trainer's
:class:`~mfmrec.training.efficiency.MemoryMonitor` over warm-up and timed steps: on
CUDA ``torch.cuda.max_memory_allocated`` (weights included); on CPU the RSS sampled every
20 ms, shown as its increase during training (gradients, optimizer states, activations)
and as the absolute peak (weights, libraries and data included); and on CPU also the
*tensor* peak, the number a GPU reports (:mod:`mfmrec.training.tensor_memory`): one extra,
untimed step on the longest batch runs under the profiler, and the peak of live tensors is
the weights, optimizer state and batch plus the step's highest net allocation (the JSON
names the operators live at that peak). Ratios are to ``full``.
With ``--rounds R`` the modes run R times, alternating, and each step counts its fastest
round (other jobs on a shared machine only ever slow a step down); memory is the highest
peak of the rounds.

Usage (results in docs/benchmarks.md):
  python benchmarks/train_efficiency.py --data DATA --shape small --steps 8 --batch-size 8 \
      --rounds 2 [--image-features efficientnet-lite0] [--tasks sequential] \
      [--device cpu|cuda] [--modes full,adapters] [--sampling paper] \
      [--activation-checkpointing]

``--shape small`` uses the real T5 tokenizer (../shared/models/t5-small-tokenizer), so the
model is exactly t5-small's size; ``tiny`` trains a SentencePiece vocabulary on the data.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

MODES = ("full", "adapters", "adapters-self")
MARK = "RESULT "  # prefix of the worker's JSON line on stdout


# ---- worker: one tuning mode in its own process -------------------------------------------
def _model(args: argparse.Namespace, mode: str):
    from mfmrec.config import build
    from mfmrec.data import load_dataset
    from mfmrec.models.vip5 import VIP5Config, build_vip5

    dataset = load_dataset(args.data)
    tasks = [t for t in args.tasks.split(",") if t != "explanation" or dataset.has_reviews]
    config = build(VIP5Config, dict(
        backbone=args.shape, tokenizer=args.tokenizer, tuning=mode, init_seed=args.seed,
        image_features=args.image_features, image_tokens=2 if args.image_features else 0,
        tasks=tasks, max_input_length=args.max_length, sampling=args.sampling,
        attention_dropout=args.attention_dropout))
    model = build_vip5(config, dataset)
    if args.activation_checkpointing:  # as train.activation_checkpointing does
        model.enable_activation_checkpointing()
    return model, dataset


def _batches(model, dataset, args: argparse.Namespace) -> list[dict]:
    """``warmup + steps`` collated batches, a seeded draw from epoch 0 of the samples."""
    import numpy as np

    samples = model.train_data(dataset, "train", seed=args.seed)
    need = (args.warmup + args.steps) * args.batch_size
    order = np.random.default_rng(args.seed).permutation(len(samples))
    order = np.resize(order, need)  # wraps round when the data is smaller than asked
    return [model.collate([samples[int(i)] for i in order[s:s + args.batch_size]])
            for s in range(0, need, args.batch_size)]


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _tensor_peak(model, optimizer, batches: list[dict], step) -> dict:
    """One more, untimed step on the longest batch under the profiler: the tensor-level
    peak (what ``torch.cuda.max_memory_allocated`` counts on a GPU), with the weights, the
    optimizer state and the batch as resident and the operators live at the peak."""
    import torch

    from mfmrec.training.tensor_memory import TensorPeakProbe, model_and_optimizer_tensors

    at = max(range(len(batches)), key=lambda i: batches[i]["input_ids"].numel())
    batch = batches[at]
    resident = model_and_optimizer_tensors(model, optimizer)
    resident += [v for v in batch.values() if torch.is_tensor(v)]
    with TensorPeakProbe(resident) as probe:
        step(at, batch)
    if probe.result is None:
        return {"error": probe.error}
    return {**probe.result.as_dict(), "batch_shape": list(batch["input_ids"].shape)}


def worker(args: argparse.Namespace) -> None:
    import torch

    from mfmrec.training.efficiency import MemoryMonitor, parameter_counts
    from mfmrec.training.trainer import optimizer_groups

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model, dataset = _model(args, args.worker)
    batches = _batches(model, dataset, args)
    model.to(device).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(optimizer_groups(model, 0.01), lr=1e-4, eps=1e-6)
    monitor = MemoryMonitor(device).start()
    times, losses = [], []

    def step(i: int, batch: dict) -> float:
        torch.manual_seed(args.seed + i)  # the same dropout masks in every mode
        loss = model.training_loss(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 5.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    for i, batch in enumerate(batches):
        _sync(device)
        tick = time.perf_counter()
        losses.append(step(i, batch))
        _sync(device)
        times.append(time.perf_counter() - tick)
    memory = monitor.stop()
    tensors = None
    if device.type == "cpu" and args.tensor_memory:
        tensors = _tensor_peak(model, optimizer, batches, step)
    shape = [list(b["input_ids"].shape) for b in batches]
    print(MARK + json.dumps({
        "mode": args.worker, "parameters": parameter_counts(model), "memory": memory,
        "tensor_memory": tensors,
        "step_seconds": times[args.warmup:], "warmup_seconds": times[:args.warmup],
        "losses": losses, "batch_shapes": shape, "device": str(device)}), flush=True)


# ---- parent: every mode, then the comparison ---------------------------------------------
def _spawn(mode: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode]
    for key in ("data", "shape", "steps", "warmup", "batch_size", "device", "seed",
                "max_length", "threads", "tasks", "sampling"):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    if args.activation_checkpointing:
        cmd.append("--activation-checkpointing")
    if not args.tensor_memory:
        cmd.append("--no-tensor-memory")
    for key in ("tokenizer", "image_features", "attention_dropout"):
        if getattr(args, key) is not None:
            cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        sys.exit(f"{mode} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(MARK):])


def merge_rounds(rounds: list[dict]) -> dict:
    """One result from repeated runs of a mode: per step the FASTEST round (other jobs only
    ever slow a step down), and the HIGHEST peak memory."""
    out = dict(rounds[0])
    out["step_seconds"] = [min(ts) for ts in zip(*(r["step_seconds"] for r in rounds),
                                                 strict=True)]
    out["memory"] = max((r["memory"] for r in rounds),
                        key=lambda m: m["peak_memory_bytes"] or 0)
    out["rounds"] = len(rounds)
    return out


def _mib(n: int | None) -> float | None:
    return None if n is None else n / 2**20


def summarise(result: dict, base: dict) -> dict:
    """One mode's numbers; time ratios pair each step with the same batch's step in ``base``
    (the batches differ in length, so only same-batch ratios are comparable)."""
    mem, steps = result["memory"], result["step_seconds"]
    pairs = [t / b for t, b in zip(steps, base["step_seconds"], strict=True)]
    return {"mode": result["mode"],
            "trainable": result["parameters"]["trainable"],
            "trainable_pct": result["parameters"]["trainable_pct"],
            "total_s": sum(steps), "median_step_s": statistics.median(steps),
            "total_ratio": sum(steps) / sum(base["step_seconds"]),
            "median_pair_ratio": statistics.median(pairs),
            "peak_mib": _mib(mem["peak_memory_bytes"]),
            "increase_mib": _mib(mem.get("rss_increase_bytes")),
            "memory_kind": mem["memory_kind"],
            "tensor_peak_mib": _mib((result.get("tensor_memory") or {}).get(
                "tensor_peak_bytes")),
            "first_loss": result["losses"][0], "last_loss": result["losses"][-1]}


def _ratio(x: float | None, base: float | None) -> str:
    return "n/a" if x is None or not base else f"{x / base:.3f}"


def table(rows: list[dict], cpu: bool) -> str:
    base = next((r for r in rows if r["mode"] == "full"), rows[0])
    head = ["mode", "trainable", "s (timed steps)", "time vs full (total)",
            "time vs full (median per step)", "peak memory MiB", "peak vs full"]
    if cpu:
        head += ["RSS increase MiB", "increase vs full", "tensor peak MiB",
                 "tensor peak vs full"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["mode"], f"{r['trainable']:,} ({r['trainable_pct']:.2f}%)",
                 f"{r['total_s']:.2f}", f"{r['total_ratio']:.3f}",
                 f"{r['median_pair_ratio']:.3f}",
                 f"{r['peak_mib']:,.0f}", _ratio(r["peak_mib"], base["peak_mib"])]
        if cpu:
            tensor = r["tensor_peak_mib"]
            cells += [f"{r['increase_mib']:,.0f}", _ratio(r["increase_mib"],
                                                          base["increase_mib"]),
                      "n/a" if tensor is None else f"{tensor:,.0f}",
                      _ratio(tensor, base["tensor_peak_mib"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _default_tokenizer(shape: str) -> str | None:
    from mfmrec.paths import shared_path

    found = shared_path("models", "t5-small-tokenizer") if shape != "tiny" else None
    return str(found) if found else None


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="prepared dataset directory")
    p.add_argument("--shape", default="small", choices=("tiny", "small", "base"))
    p.add_argument("--tokenizer", help="tokenizer folder (default: the T5 one for small/base)")
    p.add_argument("--image-features", help="feature store name; none = text-only prompts")
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated tuning modes")
    p.add_argument("--tasks", default="sequential,direct,explanation",
                   help="prompt families trained on (explanation only with reviews)")
    p.add_argument("--sampling", default="per_template", choices=("per_template", "paper"),
                   help="the prompt mix (model.sampling); paper: VIP5's")
    p.add_argument("--activation-checkpointing", action="store_true",
                   help="recompute T5 blocks in backward (train.activation_checkpointing)")
    p.add_argument("--attention-dropout", type=float,
                   help="model.attention_dropout (default: as the backbone's dropout, 0.1)")
    p.add_argument("--no-tensor-memory", dest="tensor_memory", action="store_false",
                   help="on CPU, skip the extra profiled step that measures the peak of live "
                        "tensors (the GPU's max_memory_allocated)")
    p.add_argument("--steps", type=int, default=5, help="timed optimizer steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed first steps")
    p.add_argument("--rounds", type=int, default=1,
                   help="runs per mode, alternating; per step the fastest round counts")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-length", type=int, default=512, help="encoder tokens per prompt")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the raw results here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.tokenizer is None and args.worker is None:
        args.tokenizer = _default_tokenizer(args.shape)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        sys.exit(f"--modes: unknown {bad} (known: {', '.join(MODES)})")
    started = time.perf_counter()
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for round_ in range(args.rounds):  # modes alternate, so slow phases hit every mode
        for mode in modes:
            runs[mode].append(_spawn(mode, args))
            print(f"round {round_ + 1}, {mode}: done ({time.perf_counter() - started:.0f} s)",
                  file=sys.stderr)
    results = [merge_rounds(runs[m]) for m in modes]
    base = next((r for r in results if r["mode"] == "full"), results[0])
    rows = [summarise(r, base) for r in results]
    print(f"shape={args.shape} batch={args.batch_size} steps={args.steps} "
          f"(+{args.warmup} warm-up) rounds={args.rounds} device={args.device} "
          f"threads={args.threads} sampling={args.sampling} "
          f"activation_checkpointing={args.activation_checkpointing} "
          f"tasks={args.tasks}\nencoder input (B, L) per step: "
          f"{' '.join('x'.join(map(str, s)) for s in results[0]['batch_shapes'])}")
    print(table(rows, args.device == "cpu"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": results, "summary": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
