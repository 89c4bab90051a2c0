"""Generative recommenders with and without semantic item IDs, at one training budget.

One dataset, one wall-clock training budget per model (``--budget-min``, via
``train.max_minutes``; lr held constant so a cut run is not left mid-decay), one table of
full-ranking test HR@5/10 and NDCG@5/10 (all items, history excluded; generative models
scored by exact full-catalogue log-likelihoods), and paired bootstrap 95% intervals against
VIP5 with random numbers. Rows:

* ``popularity`` -- training counts (no training);
* ``sasrec`` -- our SASRec, cross-entropy over all items (configs/sasrec.yaml);
* ``vip5-number`` -- VIP5's model naming items by random numbers (the paper's indexing);
* ``vip5-text`` / ``vip5-image+text`` / ``vip5-collab`` -- the same with semantic IDs
  from title features (MiniLM), image + title features, or SASRec's item table;
* ``tiger`` -- the TIGER-style model (configs/tiger.yaml) on the text IDs.

VIP5 rows train every weight of a ``tiny`` T5 on text-only sequential prompts (no
pretrained T5 exists offline; on a CPU the budget is too small for the two-stage
pretrain-then-adapters recipe); semantic rows start their code tokens from the codes'
input-space vectors (``model.code_init: features``); ``--vip5-set KEY=VALUE`` changes the
recipe of every VIP5 row. The image+text row needs item photos: a dataset without
them (the P5 Beauty split here) gets no such row, and the output says so. The
collaborative IDs come from the SASRec run of this very benchmark, whose training time is
not charged to ``vip5-collab``.

    python benchmarks/generative_ids.py --data data/beauty --out runs/gen-ids \\
        --budget-min 20 --eval-users 2000 --parallel 2

Trainings run as ``mfmrec train`` subprocesses (``--parallel`` at a time, one thread
each); finished runs are reused, so an interrupted benchmark resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from mfmrec.config import ConfigError, parse_override

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
METRICS = ("HR@5", "HR@10", "NDCG@5", "NDCG@10")
REFERENCE = "vip5-number"
MODELS = ("sasrec", "vip5-number", "vip5-text", "vip5-image+text", "vip5-collab", "tiger")
# VIP5 rows: a tiny T5, every weight trained on the ranking templates A-1..A-6 (the yes/no
# ones teach nothing a ranking uses), any training position as target, the last 5
# items, no dropout (the budget is under one epoch) and lr 1e-2 (chosen on short runs:
# with lr 3e-3 and dropout the model still gave every user one list after 10 minutes)
VIP5 = ["model.name=vip5", "model.backbone=tiny", "model.tuning=full", "model.image_tokens=0",
        "model.tasks=[sequential]", "model.sampling=paper", "model.max_history=5",
        "model.templates=[A-1,A-2,A-3,A-4,A-5,A-6]", "model.sequential_target=any",
        "model.dropout=0.0", "model.attention_dropout=0.0", "model.max_input_length=256",
        "model.beams=20", "train.batch_size=32", "train.lr=1e-2", "train.schedule=constant",
        "train.warmup_ratio=0"]


def _python() -> str:
    return sys.executable


def _recorded_seconds(run_dir: Path) -> float | None:
    """A finished run's recorded training time (efficiency.json; None without one)."""
    path = run_dir / "efficiency.json"
    seconds = json.loads(path.read_text()).get("train_seconds") if path.is_file() else None
    return None if seconds is None else round(seconds, 1)


def _train(name: str, config: str, overrides: list[str], args) -> tuple[str, float | None]:
    """``mfmrec train`` in a subprocess (one thread); skipped when the run is finished."""
    run_dir = args.out / "runs" / name
    if (run_dir / "final").is_dir():  # finished earlier: its recorded training time
        return name, _recorded_seconds(run_dir)
    cmd = [_python(), "-m", "mfmrec.cli.main", "train", str(CONFIGS / config), *overrides,
           f"train.max_minutes={args.budget_min}", f"train.epochs={args.max_epochs}",
           "--data", str(args.data), "--out", str(run_dir), "--quiet"]
    if (run_dir / "checkpoints").is_dir():
        cmd.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.time()
    log = args.out / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        code = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise SystemExit(f"training {name} failed (exit {code}); see {log}")
    return name, round(time.time() - start, 1)


def ensure_features(data: Path, quiet: bool) -> list[str]:
    """Extract MiniLM title features, and EfficientNet image features when items have
    photos; returns the image encoder names available."""
    from mfmrec.data import load_dataset
    from mfmrec.features.extract import extract_features

    extract_features(data, "minilm", batch_size=64, quiet=quiet)
    ds = load_dataset(data)
    if not any(p is not None and p.is_file() for p in ds.image_paths()):
        return []
    extract_features(data, "efficientnet-lite0", batch_size=32, quiet=quiet)
    return ["efficientnet-lite0"]


def content_ids(data: Path, images: list[str], args) -> None:
    """The ID sets built from item features: ``text`` and, with photos, ``image+text``."""
    from mfmrec.ids import IdBuildConfig, build_ids, ids_path

    sets = {"text": ["minilm"]}
    if images:
        sets["image+text"] = [images[0], "minilm"]
    for name, features in sets.items():
        if not ids_path(data, name).is_file():
            build_ids(data, name, IdBuildConfig(method=args.method, levels=args.levels,
                                                codebook=args.codebook, seed=args.seed,
                                                features=features))


def collab_ids(data: Path, sasrec_run: Path, args) -> None:
    """The ``collab`` ID set from the trained SASRec's item table (``--from-run``)."""
    from mfmrec.ids import ids_path

    if ids_path(data, "collab").is_file():
        return
    code = subprocess.run([_python(), "-m", "mfmrec.cli.main", "ids", "build", str(data),
                           "--name", "collab", "--from-run", str(sasrec_run), "--method",
                           args.method, "--levels", str(args.levels), "--codebook",
                           str(args.codebook), "--seed", str(args.seed)]).returncode
    if code != 0:
        raise SystemExit("building the collaborative IDs failed")


def train_models(args, images: list[str]) -> dict[str, float | None]:
    """Every training, ``--parallel`` at a time in ``--models`` order; vip5-collab once
    SASRec is done."""
    content_ids(args.data, images, args)

    def vip5(indexing: str) -> tuple[str, list[str]]:  # a VIP5 row: defaults, --vip5-set
        # semantic rows start their code rows from the codes' vectors (model.code_init)
        init = [] if indexing == "number" else ["model.code_init=features"]
        return "vip5-beauty.yaml", (VIP5 + [f"model.indexing={indexing}"] + init
                                    + args.vip5_set)

    jobs = {"vip5-number": vip5("number"), "vip5-text": vip5("semantic:text"),
            "tiger": ("tiger.yaml", ["model.indexing=semantic:text"]),
            "sasrec": ("sasrec.yaml", [])}
    if images:
        jobs["vip5-image+text"] = vip5("semantic:image+text")
    # started in --models order; vip5-collab waits for SASRec (its item table)
    order = [m for m in args.models if m in jobs]
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        futures = [pool.submit(_train, name, *jobs[name], args) for name in order]
        if "vip5-collab" in args.models:
            futures[order.index("sasrec")].result()
            collab_ids(args.data, args.out / "runs" / "sasrec", args)
            futures.append(pool.submit(_train, "vip5-collab", *vip5("semantic:collab"), args))
        return dict(f.result() for f in futures)


def id_health(data: Path) -> dict[str, str]:
    from mfmrec.ids import health_line, list_ids, load_ids, read_timing

    out = {}
    for name in list_ids(data):
        meta = load_ids(data, name).meta
        out[name] = health_line({**meta["health"], "build_seconds": read_timing(data, name)})
    return out


def eval_users(ds, args) -> np.ndarray | int:
    """The test users every row is scored on: a seeded random sample of ``--eval-users``
    (default; the P5 user order is not random: popularity's HR@10 is 0.002 on Beauty's first
    1,000 test users and 0.012 on all) or the first N (``--eval-pick first``)."""
    if args.eval_pick == "first":
        return args.eval_users
    users = ds.targets("test")[0]
    if args.eval_users >= len(users):
        return np.sort(users)
    rng = np.random.default_rng(args.seed)
    return np.sort(rng.choice(users, size=args.eval_users, replace=False))


def evaluate_all(args) -> dict[str, dict]:
    """Test results (with per-user ranks) of every run and of popularity, cached;
    ``--parallel`` models at a time (threads: the scoring runs in torch, one thread each)."""
    import torch

    from mfmrec.data import load_dataset
    from mfmrec.evaluation.config import EvalConfig
    from mfmrec.evaluation.evaluator import evaluate
    from mfmrec.io import write_json
    from mfmrec.models.popularity import Popularity
    from mfmrec.training.runs import load_run

    torch.set_num_threads(1)
    ds = load_dataset(args.data)
    users = eval_users(ds, args)
    names = ["popularity"] + sorted(p.name for p in (args.out / "runs").iterdir()
                                    if (p / "final").is_dir())

    def one(name: str) -> dict:
        saved = args.out / "eval" / f"{name}.json"
        if saved.is_file():
            return json.loads(saved.read_text())
        model = Popularity.from_dataset(ds) if name == "popularity" else \
            load_run(args.out / "runs" / name, args.data).model
        cfg = EvalConfig(tasks=["sequential"], split="test", batch_size=16,
                         exclude_history=True, sequential_scorer=args.scorer, keep_ranks=True)
        result = evaluate(model, ds, cfg, users=users,
                          progress=not args.quiet and args.parallel == 1)
        write_json(saved, result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))


def table(results: dict, seconds: dict, health: dict) -> str:
    from mfmrec.evaluation.metrics import paired_bootstrap

    def row(name):
        return next(iter(results[name]["tasks"]["sequential"]["prompts"].values()))

    lines = ["| model | " + " | ".join(METRICS) + f" | HR@10 - {REFERENCE} (95% CI) "
             "| top-10 = beam | train s |", "|---|" + "---:|" * (len(METRICS) + 3)]
    ref = np.asarray(row(REFERENCE)["ranks"]) if REFERENCE in results else None
    for name in results:
        r = row(name)
        ci = "-"
        if ref is not None and name != REFERENCE:
            d, lo, hi = paired_bootstrap(np.asarray(r["ranks"]), ref, "HR@10")
            ci = f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        agree = r.get("top10_agreement_with_beam")
        lines.append(f"| {name} | " + " | ".join(f"{r[m]:.4f}" for m in METRICS)
                     + f" | {ci} | {'-' if agree is None else f'{agree:.3f}'} | "
                     f"{seconds.get(name) or '-'} |")
    lines.append("")
    lines += [f"- ids `{k}`: {v}" for k, v in health.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="prepared dataset directory")
    p.add_argument("--out", type=Path, required=True, help="benchmark folder (runs, eval)")
    p.add_argument("--budget-min", type=float, default=20.0, help="training minutes per model")
    p.add_argument("--max-epochs", type=int, default=1000, help="epoch cap under the budget")
    p.add_argument("--eval-users", type=int, default=500, help="test users scored")
    p.add_argument("--eval-pick", default="random", choices=("random", "first"),
                   help="which test users: a random sample seeded by --seed (default) or "
                   "the first N in the dataset's order")
    p.add_argument("--scorer", default="exact", choices=("exact", "beam"),
                   help="generative models: exact full-catalogue scores (default) or their "
                   "beam-search top-k (then history items may take list slots)")
    p.add_argument("--parallel", type=int, default=1,
                   help="trainings (then evaluations) at a time")
    p.add_argument("--models", default=",".join(MODELS),
                   help=f"comma-separated subset of {','.join(MODELS)} (popularity always)")
    p.add_argument("--vip5-set", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra training override for every VIP5 row, after the "
                   "defaults (repeatable), e.g. --vip5-set train.lr=3e-3")
    p.add_argument("--method", default="rkmeans", choices=("rkmeans", "rqvae"))
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--codebook", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        p.error(f"--models: unknown {unknown} (known: {', '.join(MODELS)})")
    for override in args.vip5_set:  # the trainer's own override syntax
        try:
            parse_override(override)
        except ConfigError as exc:
            p.error(f"--vip5-set: {exc}")
    if "vip5-collab" in args.models and "sasrec" not in args.models:
        p.error("--models: vip5-collab needs sasrec (its item table)")
    args.out.mkdir(parents=True, exist_ok=True)
    images = ensure_features(args.data, args.quiet)
    if not images:
        print("no item photos in this dataset: the vip5-image+text row is not run")
    seconds = train_models(args, images)
    results = evaluate_all(args)
    text = table(results, seconds, id_health(args.data))
    (args.out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
