"""IISAN's quality claim, measured: HR@10 / NDCG@10 of full fine-tuning (FFT), cached IISAN,
IISAN-Versa and ID-only SASRec trained on the same data and batches, each to (near)
convergence, in one table with the ratio IISAN / FFT on HR@10.

Every method trains through the ordinary trainer from its shipped config with the same
overrides as ``benchmarks/iisan_efficiency.py`` (seed, batch size, ``model.max_len``), so
all methods see the same batches, and a checkpoint is kept at every epoch end. Each
epoch's checkpoint is evaluated on the VALIDATION split (full ranking over all items, the
shared evaluator); the checkpoint with the best validation HR@10 (ties: the earlier one) is
then evaluated on the TEST split, and so is the last one.

Full fine-tuning is slow on a CPU (about 10 minutes per epoch at batch 8), so a run can be
trained in pieces: ``--stop-step N`` stops right after optimizer step N (its checkpoint is
on disk) and ``--resume`` continues to the configured number of epochs, reaching the same
weights an uninterrupted run reaches (the learning-rate schedule spans all epochs).

Usage:
  python benchmarks/iisan_quality.py train METHOD --data DATA --run-dir RUN --epochs E \
      [--stop-step N] [--resume] [--set key=value]
  python benchmarks/iisan_quality.py eval RUN --data DATA
  python benchmarks/iisan_quality.py table RUN [RUN ...] [--baseline RUN] [--target RUN]

``DATA`` must hold the layer caches for the IISAN methods (``mfmrec features extract DATA
--encoder minilm --layers`` and ``--encoder efficientnet-lite0 --layers``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from iisan_efficiency import CONFIGS, METHODS  # noqa: E402


class StopTraining(Exception):
    """Raised by the stop callback; the checkpoint of that step is already on disk."""


# ---- training --------------------------------------------------------------------------
def train_overrides(args: argparse.Namespace) -> list[str]:
    """The efficiency benchmark's overrides, plus the epochs and a checkpoint per epoch."""
    return [f"train.batch_size={args.batch_size}", f"train.seed={args.seed}",
            f"train.epochs={args.epochs}", "train.log_every=1", "train.checkpoint_every=0",
            "train.keep_checkpoints=0", f"model.max_len={args.max_len}", *args.set]


def train_command(args: argparse.Namespace) -> None:
    import torch

    from mfmrec.training.config import load_run_config
    from mfmrec.training.runs import train

    torch.set_num_threads(1)
    config = load_run_config(CONFIGS / METHODS[args.method][0], train_overrides(args))

    def stop(state) -> None:
        if args.stop_step and state.step >= args.stop_step:
            raise StopTraining(f"stopped after step {state.step}")

    try:
        train(config, args.data, args.run_dir, resume=args.resume, quiet=True, callbacks=[stop])
    except StopTraining as exc:
        print(f"[{args.method}] {exc}; continue with --resume", flush=True)


# ---- evaluation ------------------------------------------------------------------------
def _metrics(run, split: str) -> dict:
    from mfmrec.evaluation.config import EvalConfig
    from mfmrec.evaluation.evaluator import evaluate

    result = evaluate(run.model,
                      run.dataset,
                      EvalConfig(tasks=["sequential"], split=split),
                      progress=False)
    return result["tasks"]["sequential"]["prompts"]["-"]


def _step(path: Path) -> int:
    return int(path.name.split("-")[1])


def _load(run_dir: Path, data: Path, checkpoint: Path):
    from mfmrec.training.runs import load_run

    return load_run(run_dir, data, checkpoint)


def eval_command(args: argparse.Namespace) -> None:
    """Validation curve over every epoch checkpoint, then test at the best and the last."""
    import torch

    from mfmrec.training.checkpoint import list_checkpoints

    torch.set_num_threads(1)
    out = args.run_dir / "quality.json"
    done = json.loads(out.read_text()) if out.is_file() else {"valid": {}, "test": {}}
    checkpoints = list_checkpoints(args.run_dir)
    if not checkpoints:
        raise SystemExit(f"{args.run_dir}: no checkpoints to evaluate")
    for ckpt in checkpoints:
        if ckpt.name not in done["valid"]:
            done["valid"][ckpt.name] = _metrics(_load(args.run_dir, args.data, ckpt), "valid")
            print(f"{ckpt.name} valid {done['valid'][ckpt.name]}", flush=True)
            out.write_text(json.dumps(done, indent=1))
    best = max(checkpoints, key=lambda p: (done["valid"][p.name]["HR@10"], -_step(p)))
    done["best"], done["last"] = best.name, checkpoints[-1].name
    for ckpt in {best, checkpoints[-1]}:
        if ckpt.name not in done["test"]:
            done["test"][ckpt.name] = _metrics(_load(args.run_dir, args.data, ckpt), "test")
            print(f"{ckpt.name} test {done['test'][ckpt.name]}", flush=True)
    out.write_text(json.dumps(done, indent=1))


# ---- the table -------------------------------------------------------------------------
def summarise(run_dir: Path) -> dict:
    """One table row: training cost from metrics.jsonl, quality from quality.json."""
    from mfmrec.training.runs import RunDir

    config = RunDir(run_dir).read_config()
    log = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    q = json.loads((run_dir / "quality.json").read_text())
    steps_per_epoch = round(log[-1]["step"] / log[-1]["epoch"])
    curve = [(_step(Path(k)) / steps_per_epoch, v["HR@10"]) for k, v in q["valid"].items()]
    return {"run": run_dir.name, "model": config.model_name, "lr": config.train.lr,
            "steps": log[-1]["step"], "epochs": log[-1]["epoch"],
            "seconds": log[-1]["elapsed"], "best": q["best"], "last": q["last"],
            "best_epoch": _step(Path(q["best"])) / steps_per_epoch,
            "test_best": q["test"][q["best"]], "test_last": q["test"][q["last"]],
            "valid_curve": sorted(curve)}


def markdown(rows: list[dict]) -> str:
    head = ["run", "model", "lr", "epochs (steps)", "training time (s)", "best valid epoch",
            "valid HR@10 by epoch", "test HR@10 (best)", "test NDCG@10 (best)",
            "test HR@10 (last)", "test NDCG@10 (last)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        curve = ", ".join(f"{hr:.4f}" for _, hr in r["valid_curve"])
        if len(r["valid_curve"]) > 8:  # long curves: every 5th epoch
            curve = ", ".join(f"{e:g}:{hr:.4f}" for e, hr in r["valid_curve"]
                              if e % 5 == 0 or e == 1)
        lines.append("| " + " | ".join([
            r["run"], r["model"], f"{r['lr']:g}", f"{r['epochs']:g} ({r['steps']})",
            f"{r['seconds']:,.1f}", f"{r['best_epoch']:g}", curve,
            f"{r['test_best']['HR@10']:.4f}", f"{r['test_best']['NDCG@10']:.4f}",
            f"{r['test_last']['HR@10']:.4f}", f"{r['test_last']['NDCG@10']:.4f}"]) + " |")
    return "\n".join(lines) + "\n"


def table_command(args: argparse.Namespace) -> None:
    rows = [summarise(run) for run in args.runs]
    text = markdown(rows)
    by_run = {r["run"]: r for r in rows}
    if args.baseline and args.baseline.name in by_run:
        base = by_run[args.baseline.name]
        for r in rows:
            if r is base:
                continue
            best = r["test_best"]["HR@10"] / base["test_best"]["HR@10"]
            last = r["test_last"]["HR@10"] / base["test_last"]["HR@10"]
            text += (f"\nHR@10 ratio {r['run']} / {base['run']}: {best:.3f} (best-valid "
                     f"checkpoints), {last:.3f} (last checkpoints)")
        text += "\n"
    print(text)


# ---- command line ----------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train one method with a checkpoint per epoch")
    t.add_argument("method", choices=list(METHODS))
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--run-dir", type=Path, required=True)
    t.add_argument("--epochs", type=int, required=True)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--max-len", type=int, default=5, help="model.max_len (items per history)")
    t.add_argument("--seed", type=int, default=2022)
    t.add_argument("--stop-step", type=int, default=0, help="stop after this step (0: never)")
    t.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    t.add_argument("--set", action="append", default=[], help="extra key=value override")
    e = sub.add_parser("eval", help="validation curve, then test at the best and the last")
    e.add_argument("run_dir", type=Path)
    e.add_argument("--data", type=Path, required=True)
    s = sub.add_parser("table", help="one table over evaluated runs")
    s.add_argument("runs", type=Path, nargs="+")
    s.add_argument("--baseline", type=Path, help="the run the HR@10 ratios divide by (FFT)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    {"train": train_command, "eval": eval_command, "table": table_command}[args.command](args)


if __name__ == "__main__":
    main()
