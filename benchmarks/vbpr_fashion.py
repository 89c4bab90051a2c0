"""VBPR vs BPR-MF on the fashion catalogue whose titles hide the colour (SIMULATED users).

The fashion-products catalogue (real products and photos) is imported with SIMULATED
users whose tastes depend on colour and article type, ``baseColour`` removed from every
title (``--hide-in-text baseColour``), as in ``benchmarks/vip5_images.py`` (whose
``prepare_data`` and ``ensure_features`` this script reuses). Colour is then visible
only in the photos, i.e. in the ``efficientnet-lite0`` image features VBPR reads and
BPR-MF does not.

BPR-MF (``configs/bpr-mf.yaml``, 64 factors) and VBPR (``configs/vbpr.yaml``, 32
collaborative + 32 visual factors) are trained by the shared trainer with the same
epochs, learning rate, batch size, weight decay and seed, and evaluated by the shared
evaluator on the test split (leave-one-out: each user's last item) twice: ranking the
100 stored candidates, and full ranking over all items with the history excluded.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/vbpr_fashion.py --work /tmp/h6/vbpr \\
        --users 2000 --features-from /tmp/w4/data-u600-s2022/features \\
        --epochs 50 --lr 1e-3 --skip-existing

Prints one table (HR@5/10, NDCG@5/10 per protocol and model) and writes
``WORK/vbpr_fashion.json``. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runs import train_timed  # noqa: E402
from vip5_images import ensure_features, prepare_data  # noqa: E402

from mfmrec.data import load_dataset  # noqa: E402
from mfmrec.evaluation.config import EvalConfig  # noqa: E402
from mfmrec.evaluation.evaluator import evaluate  # noqa: E402
from mfmrec.models.base import DIRECT, SEQUENTIAL  # noqa: E402
from mfmrec.training.runs import load_run  # noqa: E402

MODELS = {"bpr-mf": "bpr-mf.yaml", "vbpr": "vbpr.yaml"}
KS = (5, 10)
METRICS = [f"HR@{k}" for k in KS] + [f"NDCG@{k}" for k in KS]
PROTOCOLS = {DIRECT: "100 candidates", SEQUENTIAL: "full ranking"}


def shared_overrides(args) -> list[str]:
    """The settings held equal for both models (then any ``--set`` extras)."""
    return [f"train.epochs={args.epochs}", f"train.lr={args.lr}", f"train.seed={args.seed}",
            f"train.weight_decay={args.weight_decay}", *args.set]


def train_model(key: str, args, data_dir: Path) -> tuple[Path, float | None]:
    """Train (or reuse with ``--skip-existing``) one model; (run dir, seconds or None)."""
    return train_timed(MODELS[key], shared_overrides(args), data_dir, args.work / "runs" / key,
                       skip_existing=args.skip_existing, quiet=True)


def score(run) -> dict[str, dict[str, float]]:
    """{protocol: {metric: value}} of a loaded run on the test split."""
    cfg = EvalConfig(tasks=[DIRECT, SEQUENTIAL], split="test", exclude_history=True,
                     hr_ks=KS, ndcg_ks=KS, batch_size=512)
    res = evaluate(run.model, run.dataset, cfg, progress=False)
    return {PROTOCOLS[t]: {m: float(res["tasks"][t]["prompts"]["-"][m]) for m in METRICS}
            for t in PROTOCOLS}


def rank_breakdown(model, dataset, attrs: tuple[str, str] = ("articleType", "baseColour"),
                   chunk: int = 512) -> dict[str, float]:
    """Where full ranking puts each test item (history excluded): its median rank, and how
    many items outrank it, split by whether they share its ``attrs`` (the catalogue's hidden
    attributes), plus the top-10's share of the test item's values."""
    users, hists, targets = dataset.targets("test")
    first, second = (np.asarray([str(a.get(k, "")) for a in dataset.attributes])
                     for k in attrs)  # (N,) each
    ranks, counts, shares = [], np.zeros(4), np.zeros(2)
    model.eval()
    for s in range(0, len(users), chunk):
        with torch.no_grad():
            scores = model.score_items(torch.as_tensor(users[s:s + chunk]), None).numpy()
        for row, hist, t in zip(scores, hists[s:s + chunk], targets[s:s + chunk], strict=True):
            row[hist] = -np.inf
            above = row > row[t]  # (N,)
            a, b = first == first[t], second == second[t]
            counts += [(above & a & b).sum(), (above & a & ~b).sum(),
                       (above & ~a & b).sum(), (above & ~a & ~b).sum()]
            top = np.argsort(-row)[:10]
            shares += [np.mean(first[top] == first[t]), np.mean(second[top] == second[t])]
            ranks.append(above.sum())
    n = len(ranks)
    k1, k2 = attrs
    labels = [f"above: same {k1}+{k2}", f"above: same {k1} only", f"above: same {k2} only",
              "above: neither"]
    return {"median rank": float(np.median(ranks)), **dict(zip(labels, counts / n, strict=True)),
            f"top-10 share of its {k1}": shares[0] / n, f"top-10 share of its {k2}": shares[1] / n}


def table(rows: dict[str, dict[str, dict[str, float]]]) -> str:
    cols = [(p, m) for p in PROTOCOLS.values() for m in METRICS]
    head = " | ".join(f"{p} {m}" for p, m in cols)
    lines = [f"| model | {head} |", "|---" * (len(cols) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[p][m]:.4f}" for p, m in cols) + " |")
    if {"vbpr", "bpr-mf"} <= set(rows):
        ratio = [rows["vbpr"][p][m] / rows["bpr-mf"][p][m] if rows["bpr-mf"][p][m] else
                 float("nan") for p, m in cols]
        lines.append("| vbpr / bpr-mf | " + " | ".join(f"{r:.3f}" for r in ratio) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for data and runs")
    parser.add_argument("--users", type=int, default=2000, help="SIMULATED users")
    parser.add_argument("--data-seed", type=int, default=2022, help="seed of the import")
    parser.add_argument("--features-from", type=Path, default=None,
                        help="folder with efficientnet-lite0.safetensors to copy when its "
                             "item order matches (else the features are extracted)")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=2022, help="training seed (both models)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra dotted overrides applied to both configs")
    parser.add_argument("--skip-existing", action="store_true",
                        help="reuse the import and finished runs found in --work")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    torch.set_num_threads(1)
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    data_dir = prepare_data(args)
    features = ensure_features(data_dir, args.features_from)
    dataset = load_dataset(data_dir)
    rows, seconds, ranks = {}, {}, {}
    for key in MODELS:
        run_dir, seconds[key] = train_model(key, args, data_dir)
        run = load_run(run_dir)
        rows[key] = score(run)
        ranks[key] = rank_breakdown(run.model, run.dataset)
    report = {"dataset": dataset.name, "simulated": dataset.simulated, "data": str(data_dir),
              "users": dataset.num_users, "items": dataset.num_items, "features": features,
              "shared_overrides": shared_overrides(args), "train_seconds": seconds,
              "command": " ".join(sys.argv), "results": rows, "rank_breakdown": ranks}
    (args.work / "vbpr_fashion.json").write_text(json.dumps(report, indent=2))
    print(f"{dataset.name} (SIMULATED users: {dataset.num_users}, {dataset.num_items} real "
          f"items, baseColour hidden in titles), test split")
    print("equal settings: " + " ".join(report["shared_overrides"]))
    print(table(rows))
    print("\nfull ranking, test items (history excluded): mean counts of items ranked above "
          "the test item, by the hidden attributes they share with it")
    names = list(next(iter(ranks.values())))
    print("| model | " + " | ".join(names) + " |\n" + "|---" * (len(names) + 1) + "|")
    for key, row in ranks.items():
        print(f"| {key} | " + " | ".join(f"{row[n]:.3f}" if n.startswith("top")
                                        else f"{row[n]:.1f}" for n in names) + " |")


if __name__ == "__main__":
    main()
