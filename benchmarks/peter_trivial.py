"""Does PETER beat a trivial explanation baseline? (real Amazon reviews)

On a dataset with reviews (e.g. Musical Instruments 2014, ``mfmrec data import amazon``)
this scores, on the test reviews and with the shared evaluator (``mfmrec.evaluation``,
BLEU-4 and ROUGE-1/2/L in both ``standard`` and ``p5`` modes):

* ``item-mode``: for each test review, the most frequent training explanation of its
  item (ties: the first in training order; an item without training reviews falls
  back to the whole-set one);
* ``global-mode``: the most frequent training explanation of the whole set, always;
* PETER (``configs/peter.yaml``) and optionally PETER+ (``configs/peter-plus.yaml``),
  trained by ``mfmrec.training.runs.train`` with the same dotted overrides (``--set``).

The baselines are the library's ``most-frequent-explanation`` model
(:mod:`mfmrec.models.most_frequent`), passed to the same ``evaluate`` call as PETER, so
every row goes through the same requests, references and metric code.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/peter_trivial.py --data /tmp/h6/mi \\
        --out /tmp/h6/peter-bench --models peter peter-plus \\
        --set model.hidden=256 model.ffn=1024 train.epochs=10 --skip-existing

Prints one table (rows: methods; columns: metric per mode) and writes
``OUT/peter_trivial.json``. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from bench_runs import train_timed

from mfmrec.data import load_dataset
from mfmrec.evaluation.config import EvalConfig
from mfmrec.evaluation.evaluator import evaluate
from mfmrec.evaluation.text_metrics import TEXT_METRICS, TEXT_MODES
from mfmrec.models.base import EXPLANATION
from mfmrec.models.most_frequent import MostFrequentExplanation
from mfmrec.training.runs import load_run

MODELS = {"peter": "peter.yaml", "peter-plus": "peter-plus.yaml"}


def scores(result: dict) -> dict[str, float]:
    """``{"standard BLEU-4": ..., "p5 ROUGE-L": ...}`` from an evaluate() result."""
    row = result["tasks"][EXPLANATION]["prompts"]["-"]
    return {f"{mode} {m}": float(row[mode][m]) for mode in TEXT_MODES for m in TEXT_METRICS}


def examples(result: dict, n: int = 3) -> list[dict]:
    return result["tasks"][EXPLANATION]["prompts"]["-"]["examples"][:n]


def train_model(key: str, args, data_dir: Path) -> tuple[Path, float | None]:
    """Train (or reuse with ``--skip-existing``) one PETER variant; (run dir, seconds)."""
    return train_timed(MODELS[key], args.set, data_dir, args.out / key,
                       skip_existing=args.skip_existing, quiet=args.quiet)


def evaluate_text(model, dataset, split: str) -> dict:
    return evaluate(model,
                    dataset,
                    EvalConfig(tasks=[EXPLANATION], split=split, batch_size=256),
                    progress=False)


def table(rows: dict[str, dict[str, float]]) -> str:
    cols = list(next(iter(rows.values())))
    lines = ["| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[c]:.2f}" for c in cols) + " |")
    return "\n".join(lines)


def verdict(rows: dict[str, dict[str, float]], model: str) -> str:
    """Whether ``model`` beats both trivial rows on BLEU-4 and ROUGE-L in both modes."""
    keys = [f"{mode} {m}" for mode in TEXT_MODES for m in ("BLEU-4", "ROUGE-L")]
    best = {k: max(rows["item-mode"][k], rows["global-mode"][k]) for k in keys}
    lost = [k for k in keys if rows[model][k] <= best[k]]
    return f"{model}: " + ("beats both trivial baselines on " + ", ".join(keys)
                           if not lost else "does NOT beat the best trivial baseline on "
                           + ", ".join(lost))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="dataset with reviews")
    parser.add_argument("--out", type=Path, required=True, help="folder for runs and JSON")
    parser.add_argument("--models", nargs="*", choices=sorted(MODELS), default=["peter"],
                        help="PETER variants to train (none: baselines only)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="dotted overrides applied to every PETER config")
    parser.add_argument("--split", default="test", help="split to score")
    parser.add_argument("--skip-existing", action="store_true",
                        help="reuse finished runs in --out instead of retraining")
    parser.add_argument("--quiet", action="store_true", help="no training progress bars")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    torch.set_num_threads(1)
    args = parse_args(argv)
    dataset = load_dataset(args.data)
    if not dataset.has_reviews:
        sys.exit(f"{args.data}: the dataset has no reviews.parquet; import one with reviews")
    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, float]] = {}
    info: dict[str, dict] = {}
    for per_item in (True, False):
        baseline = MostFrequentExplanation(dataset, per_item)
        result = evaluate_text(baseline, dataset, args.split)
        rows[baseline.label] = scores(result)
        info[baseline.label] = {"examples": examples(result)}
        protocol = result["tasks"][EXPLANATION]["protocol"]
    for key in args.models:
        run_dir, seconds = train_model(key, args, args.data)
        run = load_run(run_dir)
        result = evaluate_text(run.model, run.dataset, args.split)
        rows[key] = scores(result)
        info[key] = {"run": str(run_dir), "train_seconds": seconds, "overrides": args.set,
                     "examples": examples(result)}
    report = {"dataset": dataset.name, "simulated": dataset.simulated, "split": args.split,
              "protocol": protocol,
              "command": " ".join(sys.argv), "rows": rows, "details": info,
              "verdicts": [verdict(rows, k) for k in args.models]}
    (args.out / "peter_trivial.json").write_text(json.dumps(report, indent=2))
    label = " (SIMULATED data)" if dataset.simulated else ""
    print(f"explanations on {dataset.name}{label}, {report['protocol']}")
    print(table(rows))
    for line in report["verdicts"]:
        print(line)


if __name__ == "__main__":
    main()
