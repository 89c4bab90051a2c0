"""Peer benchmark: mfmrec's SASRec / BPR-MF beside RecBole's on the same split.

    pip install recbole        # not an mfmrec dependency; only this script needs it
    python benchmarks/peer_recbole.py --data data/beauty --model sasrec --epochs 50 \\
        --out runs/peer-sasrec-beauty

Held equal on both sides: the item sequences (exported from the mfmrec dataset as RecBole
atomic files, the position in the sequence as the timestamp), leave-one-out (RecBole
``LS: valid_and_test`` with ``order: TO``; the test history includes the validation item
on both sides), full ranking over all items with the user's history excluded, HR@k and
NDCG@k, the model sizes, Adam with the same learning rate, batch size and epochs, and
a fixed number of epochs (RecBole's early stopping is disabled and its last model is
tested, as mfmrec does). Left different and reported: initialisation and sampling RNGs,
RecBole's evaluation of the validation split, and mfmrec's weight-decay grouping.

Prints the two rows and their ratio and writes ``OUT/peer.json``. ``--only mfmrec`` runs
the mfmrec side alone (e.g. where RecBole is not installed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from mfmrec.data import load_dataset
from mfmrec.evaluation.evaluator import evaluate
from mfmrec.training.checkpoint import load_run
from mfmrec.training.config import load_run_config
from mfmrec.training.run import train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECBOLE_MODEL = {"sasrec": "SASRec", "bpr-mf": "BPR"}
KS = (5, 10)


def export_atomic(dataset, root: Path, name: str) -> Path:
    """``root/name/name.inter``: one row per interaction, position as the timestamp."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user, seq in enumerate(dataset.sequences):
        lines += [f"{user}\t{int(item)}\t{pos}" for pos, item in enumerate(seq)]
    (folder / f"{name}.inter").write_text("\n".join(lines) + "\n")
    return folder


def run_config(model: str, epochs: int, extra: list[str]):
    return load_run_config(CONFIGS / f"{model}.yaml", [f"train.epochs={epochs}", *extra])


def recbole_settings(model: str, cfg, root: Path, name: str, version: tuple[int, ...]) -> dict:
    m, t = cfg.model, cfg.train
    settings = {
        "data_path": str(root), "dataset": name, "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "epochs": t.epochs, "train_batch_size": t.batch_size, "learning_rate": t.lr,
        "weight_decay": t.weight_decay, "seed": t.seed, "stopping_step": t.epochs + 1,
        "eval_step": t.epochs, "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO",
                                             "group_by": "user", "mode": "full"},
        "metrics": ["Hit", "NDCG"], "topk": list(KS), "valid_metric": "NDCG@10",
        "use_gpu": torch.cuda.is_available(), "show_progress": False,
    }
    neg_key = "train_neg_sample_args" if version >= (1, 1) else "neg_sampling"
    if model == "sasrec":
        settings.update({
            "MAX_ITEM_LIST_LENGTH": m["max_len"], "n_layers": m["layers"],
            "n_heads": m["heads"], "hidden_size": m["hidden"], "inner_size": m["inner"],
            "hidden_dropout_prob": m["hidden_dropout"], "attn_dropout_prob": m["attn_dropout"],
            "loss_type": m["loss"].upper(), "layer_norm_eps": m["norm_eps"],
            "initializer_range": m["init_std"], "hidden_act": "gelu",
        })
        if m["loss"] == "ce":
            settings[neg_key] = None
    else:
        settings["embedding_size"] = m["dim"]
    if neg_key not in settings:
        settings[neg_key] = ({"distribution": "uniform", "sample_num": 1}
                             if version >= (1, 1) else {"uniform": 1})
    return settings


def recbole_side(model: str, cfg, dataset, out: Path) -> dict:
    try:
        import recbole
        from recbole.quick_start import run_recbole
    except ImportError:
        sys.exit("RecBole is not installed: `pip install recbole`, or pass --only mfmrec")
    version = tuple(int(x) for x in recbole.__version__.split(".")[:2] if x.isdigit())
    name = f"mfmrec_{dataset.name}".replace("-", "_")
    export_atomic(dataset, out / "recbole_data", name)
    settings = recbole_settings(model, cfg, out / "recbole_data", name, version)
    start = time.perf_counter()
    # saved=False: test the last model, as mfmrec does, not RecBole's best-valid one
    result = run_recbole(model=RECBOLE_MODEL[model], config_dict=settings, saved=False)
    seconds = time.perf_counter() - start
    test = {k.lower(): float(v) for k, v in result["test_result"].items()}
    return {"version": recbole.__version__, "seconds": round(seconds, 1), "settings": settings,
            **{f"HR@{k}": test[f"hit@{k}"] for k in KS},
            **{f"NDCG@{k}": test[f"ndcg@{k}"] for k in KS}}


def mfmrec_side(cfg, data_dir: Path, out: Path) -> dict:
    start = time.perf_counter()
    train(cfg, data_dir, out / "mfmrec_run", quiet=True)
    seconds = time.perf_counter() - start
    run = load_run(out / "mfmrec_run")
    res = evaluate(run.model, run.dataset, tasks=["sequential"], exclude_history=True,
                   hr_ks=KS, ndcg_ks=KS, batch_size=1024, progress=False)
    row = res["tasks"]["sequential"]["prompts"]["-"]
    return {"seconds": round(seconds, 1), **{k: float(row[k]) for k in row if "@" in k}}


def table(rows: dict[str, dict]) -> str:
    names = [f"HR@{k}" for k in KS] + [f"NDCG@{k}" for k in KS] + ["seconds"]
    lines = ["| side | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for side, row in rows.items():
        cells = [f"{row.get(n, float('nan')):.{1 if n == 'seconds' else 4}f}" for n in names]
        lines.append(f"| {side} | " + " | ".join(cells) + " |")
    if len(rows) == 2:
        a, b = rows["mfmrec"], rows["recbole"]
        ratio = [a[n] / b[n] if b.get(n) else float("nan") for n in names]
        lines.append("| mfmrec / recbole | " + " | ".join(f"{r:.3f}" for r in ratio) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="prepared mfmrec dataset")
    parser.add_argument("--model", choices=sorted(RECBOLE_MODEL), default="sasrec")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--out", type=Path, required=True, help="folder for both runs")
    parser.add_argument("--only", choices=("both", "mfmrec", "recbole"), default="both")
    parser.add_argument("overrides", nargs="*", help="dotted overrides for the mfmrec config")
    args = parser.parse_args(argv)
    cfg = run_config(args.model, args.epochs, args.overrides)
    dataset = load_dataset(args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    if args.only in ("both", "mfmrec"):
        rows["mfmrec"] = mfmrec_side(cfg, args.data, args.out)
    if args.only in ("both", "recbole"):
        rows["recbole"] = recbole_side(args.model, cfg, dataset, args.out)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    report = {"model": args.model, "dataset": dataset.name, "simulated": dataset.simulated,
              "epochs": args.epochs,
              "device": device, "command": " ".join(sys.argv), "results": rows}
    (args.out / "peer.json").write_text(json.dumps(report, indent=2, default=str))
    label = " (SIMULATED data)" if dataset.simulated else ""
    print(f"{args.model} on {dataset.name}{label}, {args.epochs} epochs, {device}")
    print(table(rows))


if __name__ == "__main__":
    main()
