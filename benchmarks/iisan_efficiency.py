"""IISAN's efficiency claim, measured: full fine-tuning vs adapters inside the encoders vs
IISAN uncached vs IISAN cached (and ID-only SASRec), on the same data and batches.

Every method trains through the ordinary trainer (``mfmrec.training.runs.train``) from its
shipped config, with the same seed, batch size, sequence length and number of optimizer
steps, so all methods see exactly the same batches. Each method runs in a FRESH
subprocess, so peak memory of one never mixes with another's (and import/model loading
happen before the trainer starts its memory monitor). The trainer's efficiency report
gives trainable parameters, peak memory (CPU: RSS sampled during training, and its
increase over the RSS at the start; CUDA: peak allocated) and the mean seconds per epoch
(training time / epochs done, fractional with ``--steps``). Every step is logged, and the
headline time is the MEDIAN step time x steps per epoch: on a shared machine a few steps
slowed by other jobs move the mean far. TPME (time 0.45, parameters 0.1, memory 0.45,
min-max normalised across the compared multimodal methods;
:func:`mfmrec.training.efficiency.tpme`) uses the median-based time and the peak memory.

With ``--eval``, each trained model is also evaluated (full ranking over all items, test
split, HR@10 / NDCG@10) in a separate subprocess.

Usage (results in docs/benchmarks.md):
  python benchmarks/iisan_efficiency.py --data DATA --out OUT --steps 6 --batch-size 8 \
      --max-len 5 [--eval] [--methods mm-full-ft,iisan] [--set iisan:train.epochs=20]

``DATA`` must hold the layer caches (``mfmrec features extract DATA --encoder minilm
--layers`` and ``--encoder efficientnet-lite0 --layers``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
METHODS = {  # method -> (config file, what it is)
    "mm-full-ft": ("mm-full-ft.yaml", "full fine-tuning of both encoders"),
    "mm-encoder-adapters": ("mm-encoder-adapters.yaml", "adapters inside the encoders"),
    "iisan-uncached": ("iisan-uncached.yaml", "IISAN, frozen encoders run every step"),
    "iisan": ("iisan.yaml", "IISAN, cached layer states"),
    "iisan-versa": ("iisan-versa.yaml", "IISAN-Versa, asymmetric taps, image-to-text align"),
    "sasrec": ("mm-sasrec-id.yaml", "ID-only SASRec"),
}
BASELINE = "mm-full-ft"
MULTIMODAL = ("mm-full-ft", "mm-encoder-adapters", "iisan-uncached", "iisan")


# ---- worker: one method in its own process ----------------------------------------------
def worker(args: argparse.Namespace) -> None:
    from mfmrec.training.config import load_run_config
    from mfmrec.training.runs import train

    overrides = [f"train.batch_size={args.batch_size}", f"train.seed={args.seed}",
                 "train.log_every=1", "train.checkpoint_every=0", "train.keep_checkpoints=1"]
    if args.steps:
        overrides += ["train.epochs=1", f"train.max_steps={args.steps}"]
    overrides.append(f"model.max_len={args.max_len}")
    overrides += args.override
    config = load_run_config(CONFIGS / METHODS[args.worker][0], overrides)
    train(config, args.data, args.run_dir, quiet=True)


def evaluate_worker(args: argparse.Namespace) -> None:
    from mfmrec.evaluation.config import EvalConfig
    from mfmrec.evaluation.evaluator import evaluate
    from mfmrec.training.runs import load_run

    run = load_run(args.run_dir, args.data)
    result = evaluate(run.model, run.dataset, EvalConfig(tasks=["sequential"]), progress=False)
    metrics = result["tasks"]["sequential"]["prompts"]["-"]
    (Path(args.run_dir) / "bench-eval.json").write_text(json.dumps(metrics, indent=1))


# ---- parent: run every method, then compare ----------------------------------------------
def _spawn(flag: str, method: str, run_dir: Path, args: argparse.Namespace) -> None:
    cmd = [sys.executable, __file__, flag, method, "--run-dir", str(run_dir),
           "--data", str(args.data), "--batch-size", str(args.batch_size),
           "--max-len", str(args.max_len), "--steps", str(args.steps), "--seed", str(args.seed)]
    for override in args.set:
        target, _, text = override.partition(":")
        if target == method:
            cmd += ["--override", text]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    print(f"[{method}] {' '.join(cmd[2:])}", flush=True)
    subprocess.run(cmd, check=True, env=env)


def _mib(n: int | None) -> float | None:
    return None if n is None else n / 2**20


def median_epoch_seconds(run_dir: Path, eff: dict) -> float | None:
    """Median optimizer-step time x steps per epoch, from metrics.jsonl (logged every step).

    On a shared machine a few slow steps (another job's burst, the first step's one-time
    allocations) move the mean a lot; the median step is the steady-state cost.
    """
    path = run_dir / "metrics.jsonl"
    elapsed = [json.loads(line)["elapsed"] for line in path.read_text().splitlines() if line]
    steps = [b - a for a, b in zip([0.0] + elapsed, elapsed, strict=False)]
    if not steps or not eff.get("epochs"):
        return None
    return statistics.median(steps) * eff["steps"] / eff["epochs"]


def collect(methods: list[str], out: Path, with_eval: bool) -> list[dict]:
    from mfmrec.training.efficiency import tpme

    rows = []
    for m in methods:
        eff = json.loads((out / m / "efficiency.json").read_text())
        mem = eff["memory"]
        row = {"method": m, "what": METHODS[m][1], "steps": eff["steps"],
               "epochs": eff["epochs"], "mean_seconds_per_epoch": eff["seconds_per_epoch"],
               "seconds_per_epoch": median_epoch_seconds(out / m, eff),
               "trainable": eff["parameters"]["trainable"], "total": eff["parameters"]["total"],
               "peak_mib": _mib(mem["peak_memory_bytes"]),
               "increase_mib": _mib(mem.get("rss_increase_bytes")),
               "memory_kind": mem["memory_kind"], "device": eff.get("device")}
        if with_eval and (out / m / "bench-eval.json").is_file():
            row.update(json.loads((out / m / "bench-eval.json").read_text()))
        rows.append(row)
    multimodal = [r for r in rows if r["method"] in MULTIMODAL]
    if len(multimodal) >= 2:
        scored = [{"time": r["seconds_per_epoch"], "params": r["trainable"],
                   "memory": r["peak_mib"]} for r in multimodal]
        for r, score in zip(multimodal, tpme(scored), strict=True):
            r["tpme"] = score
    base = next((r for r in rows if r["method"] == BASELINE), None)
    for r in rows:
        if base is not None:
            r["time_x"] = base["seconds_per_epoch"] / r["seconds_per_epoch"]
            r["peak_x"] = base["peak_mib"] / r["peak_mib"]
            if base["increase_mib"] and r["increase_mib"]:
                r["increase_x"] = base["increase_mib"] / r["increase_mib"]
    return rows


def _fmt(x, spec: str, suffix: str = "") -> str:
    return "n/a" if x is None else format(x, spec) + suffix


def markdown(rows: list[dict], with_eval: bool) -> str:
    head = ["method", "trainable params", "s / epoch (median step)", "s / epoch (mean)",
            "epoch speed-up vs FFT",
            "peak RSS (MiB)", "peak ratio FFT/x", "RSS increase (MiB)", "increase ratio FFT/x",
            "TPME"]
    if with_eval:
        head += ["HR@10", "NDCG@10"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["method"], f"{r['trainable']:,}", _fmt(r["seconds_per_epoch"], ",.2f"),
                 _fmt(r["mean_seconds_per_epoch"], ",.2f"),
                 _fmt(r.get("time_x"), ".1f", "x"), _fmt(r["peak_mib"], ",.0f"),
                 _fmt(r.get("peak_x"), ".1f", "x"), _fmt(r["increase_mib"], ",.0f"),
                 _fmt(r.get("increase_x"), ".1f", "x"), _fmt(r.get("tpme"), ".3f")]
        if with_eval:
            cells += [_fmt(r.get("HR@10"), ".4f"), _fmt(r.get("NDCG@10"), ".4f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="prepared dataset with layer caches")
    p.add_argument("--out", type=Path, help="folder for the runs and the results")
    p.add_argument("--methods", default=",".join(MULTIMODAL),
                   help=f"comma-separated, from {', '.join(METHODS)}")
    p.add_argument("--steps", type=int, default=6,
                   help="optimizer steps per method (0: the config's epochs)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-len", type=int, default=5, help="model.max_len (items per history)")
    p.add_argument("--seed", type=int, default=2022)
    p.add_argument("--threads", type=int, default=1,
                   help="OMP threads of every method (1: robust on a shared machine)")
    p.add_argument("--eval", action="store_true", help="also evaluate HR@10 / NDCG@10")
    p.add_argument("--set", action="append", default=[],
                   help="METHOD:key=value, an extra override for one method")
    p.add_argument("--override", action="append", default=[], help=argparse.SUPPRESS)
    p.add_argument("--worker", choices=list(METHODS), help=argparse.SUPPRESS)
    p.add_argument("--evaluate", choices=list(METHODS), help=argparse.SUPPRESS)
    p.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.evaluate:
        return evaluate_worker(args)
    if args.out is None:
        p.error("--out is required")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    for m in methods:
        if not (args.out / m / "efficiency.json").is_file():  # finished runs are kept
            _spawn("--worker", m, args.out / m, args)
        if args.eval and not (args.out / m / "bench-eval.json").is_file():
            _spawn("--evaluate", m, args.out / m, args)
    rows = collect(methods, args.out, args.eval)
    table = markdown(rows, args.eval)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1))
    (args.out / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
