"""Do image tokens help VIP5 when the text hides what the photo shows? (SIMULATED users)

The fashion-products catalogue (real photos) is imported with simulated users whose
tastes depend on colour and article type, and with ``baseColour`` removed from every
title (``--hide-in-text baseColour``): colour is then visible only in the photos. On it:

1. a tiny T5 is pretrained P5-style on text-only prompts (``mfmrec pretrain``; every
   weight trains, ``image_tokens: 0``);
2. VIP5 adapters are tuned twice on that same frozen backbone, with the same seed,
   epochs and data: once with 2 image tokens per item from ``efficientnet-lite0``
   features, once with text-only prompts (``image_tokens: 0``);
3. both are evaluated on direct recommendation of the test split (leave-one-out: each
   user's last item, never trained on), ranking the 100 stored candidates with the exact
   scorer, with a seen prompt (B-5) and the held-out prompt (B-8).

It prints HR@1/5/10 and NDCG@5/10 side by side, and a paired bootstrap interval of the
image-minus-text difference per user (the same users and candidates in both runs).
Results: docs/benchmarks.md ("VIP5: image tokens vs text-only on the photo catalogue").

Usage::

    OMP_NUM_THREADS=1 python benchmarks/vip5_images.py --work /tmp/vip5-images \
        --users 600 --epochs 3 --skip-existing

``--features-from DIR`` reuses ``DIR/efficientnet-lite0.safetensors`` (e.g. from another
import of the same catalogue) when its recorded item order equals this import's;
otherwise the features are extracted (about 10 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from bench_runs import finished

from mfmrec.config import build
from mfmrec.data import load_dataset, write_dataset
from mfmrec.evaluation import metrics as M
from mfmrec.evaluation.config import EvalConfig
from mfmrec.evaluation.evaluator import evaluate
from mfmrec.evaluation.report import write_report
from mfmrec.features.store import feature_path, items_digest, load_features, read_meta
from mfmrec.paths import shared_dir
from mfmrec.training.config import resolve
from mfmrec.training.runs import load_run

ENCODER = "efficientnet-lite0"
COMBINED = "efficientnet-lite0+rgb-hist"  # the optional second image feature
METRICS = ("HR@1", "HR@5", "HR@10", "NDCG@5", "NDCG@10")
IMAGE_TOKENS = 2
LABELS = {"images": f"image tokens ({ENCODER}, k=2)", "text": "text-only",
          "images+colour": f"image tokens ({COMBINED}, k=2)",
          "full-text": "text-only, full tuning (the pretrained backbone itself)",
          "full-images": f"image tokens ({ENCODER}, k=2), full tuning from scratch"}
BASE = {"images": "text", "images+colour": "text", "full-images": "full-text"}  # paired diffs


def variants(args) -> dict[str, str | None]:
    """Run name -> feature store of its image tokens (None: text-only prompts)."""
    out = {"images": ENCODER, "text": None}
    if args.colour_histogram:
        out["images+colour"] = COMBINED
    return out


# ---- data and features --------------------------------------------------------------------
def prepare_data(args) -> Path:
    """Import the catalogue with ``args.users`` simulated users, colour hidden in titles."""
    from mfmrec.data.importers.products import import_products

    out = args.work / f"data-u{args.users}-s{args.data_seed}"
    if (out / "dataset.json").is_file() and args.skip_existing:
        return out
    src = shared_dir() / "data" / "fashion-products"
    raw = import_products(src / "styles.csv", src / "images", users=args.users,
                          seed=args.data_seed, hide_in_text=("baseColour",))
    if out.exists():
        shutil.rmtree(out)
    write_dataset(raw, out, seed=args.data_seed, indexing="random", num_negatives=99)
    return out


def ensure_features(data_dir: Path, features_from: Path | None) -> str:
    """Copy a matching pre-extracted store, else extract; returns how it was obtained."""
    target = feature_path(data_dir, ENCODER)
    ds = load_dataset(data_dir)
    if target.is_file():
        load_features(ds, ENCODER)  # raises if made for another item order
        return "present"
    source = features_from / f"{ENCODER}.safetensors" if features_from else None
    if source is not None and source.is_file():
        if read_meta(source).get("items_sha256") == items_digest(ds.item_ids):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            shutil.copyfile(source.with_suffix(".json"), target.with_suffix(".json"))
            load_features(ds, ENCODER)
            return f"copied from {source} (same item order)"
        print(f"{source}: another item order; extracting instead")
    from mfmrec.features.extract import extract_features

    extract_features(data_dir, ENCODER)
    return "extracted"


def colour_histograms(ds) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 64) RGB histograms of each photo's foreground, and the (N,) missing mask.

    Each channel is cut into 4 levels; near-white pixels (all channels > 230, the
    catalogue's background) are left out; counts are normalised and square-rooted (so the
    L2 norm is 1 and a dominant colour does not drown the others).
    """
    from PIL import Image

    paths = ds.image_paths()
    out = torch.zeros(len(paths), 64)
    missing = torch.zeros(len(paths), dtype=torch.bool)
    for i, path in enumerate(paths):
        if path is None or not Path(path).is_file():
            missing[i] = True
            continue
        with Image.open(path) as img:
            x = np.asarray(img.convert("RGB").resize((112, 112)), dtype=np.int64)  # (H, W, 3)
        pixels = x[~(x > 230).all(-1)] // 64  # (P, 3) levels 0..3
        counts = np.bincount(pixels @ np.array([16, 4, 1]), minlength=64).astype(np.float64)
        out[i] = torch.from_numpy(np.sqrt(counts / max(1.0, counts.sum())))
    return out, missing


def ensure_combined(data_dir: Path) -> None:
    """``features/efficientnet-lite0+rgb-hist``: both rows L2-normalised, concatenated."""
    from mfmrec.features.store import save_features

    ds = load_dataset(data_dir)
    if feature_path(data_dir, COMBINED).is_file():
        load_features(ds, COMBINED)
        return
    eff = load_features(ds, ENCODER)
    hist, no_photo = colour_histograms(ds)
    matrix = torch.cat([torch.nn.functional.normalize(eff.matrix, dim=-1),
                        torch.nn.functional.normalize(hist, dim=-1)], dim=-1)  # (N, 1344)
    save_features(ds, COMBINED, matrix, eff.missing | no_photo, {
        "encoder": COMBINED, "modality": "image",
        "description": f"[{ENCODER} row / its L2 norm, 64-bin RGB histogram of the "
                       "non-white pixels (4 levels per channel, sqrt of shares) / its L2 "
                       "norm]; made by benchmarks/vip5_images.py",
        "preprocessing": {"histogram": "resize 112x112, drop pixels with R,G,B > 230"}})


# ---- runs ---------------------------------------------------------------------------------
def model_section(args, **extra) -> dict:
    """What the pretraining and both tuning runs share."""
    return {"name": "vip5", "backbone": "tiny", "tokenizer": None, "init_seed": 0,
            "tasks": args.tasks, "templates": args.templates, "sampling": "paper",
            "num_negatives": args.train_negatives, "max_history": 20,
            "max_input_length": 1024, **extra}


def train_section(args, epochs: int, lr: float) -> dict:
    return {"epochs": epochs, "batch_size": args.batch_size, "lr": lr, "warmup_ratio": 0.05,
            "grad_clip": 5.0, "seed": args.seed, "keep_checkpoints": 1, "log_every": 50}


def pretrain_backbone(args, data_dir: Path) -> Path:
    from mfmrec.pipelines.pretrain import BACKBONE_DIR, pretrain

    run_dir = args.work / "runs" / "pretrain"
    backbone = run_dir / BACKBONE_DIR
    if args.skip_existing and (backbone / "config.json").is_file():
        return backbone
    _fresh(run_dir)
    model = model_section(args, tuning="full", image_tokens=0, dropout=args.dropout)
    config = resolve({"model": model,
                      "train": train_section(args, args.pretrain_epochs, args.pretrain_lr)})
    pretrain(config, data_dir, run_dir, quiet=args.quiet)
    return backbone


def full_images(args, data_dir: Path) -> Path:
    """The pretraining recipe (every weight trains, from scratch) WITH image tokens."""
    from mfmrec.training.runs import train

    run_dir = args.work / "runs" / "full-images"
    if args.skip_existing and finished(run_dir):
        return run_dir
    _fresh(run_dir)
    model = model_section(args, tuning="full", image_tokens=IMAGE_TOKENS,
                          image_features=ENCODER, dropout=args.dropout)
    config = resolve({"model": model,
                      "train": train_section(args, args.full_epochs, args.pretrain_lr)})
    train(config, data_dir, run_dir, quiet=args.quiet)
    return run_dir


def tune(args, data_dir: Path, backbone: Path, variant: str, store: str | None) -> Path:
    """Adapter tuning of one variant on the frozen pretrained backbone."""
    from mfmrec.training.runs import train

    k = IMAGE_TOKENS if store else 0
    run_dir = args.work / "runs" / variant
    if args.skip_existing and finished(run_dir):
        return run_dir
    _fresh(run_dir)
    model = model_section(args, backbone=str(backbone), tuning="adapters",
                          reduction_factor=args.reduction_factor,
                          image_tokens=k, image_features=store)
    config = resolve({"model": model, "train": train_section(args, args.epochs, args.lr)})
    train(config, data_dir, run_dir, quiet=args.quiet)
    return run_dir


def _fresh(run_dir: Path) -> None:
    if run_dir.exists():
        shutil.rmtree(run_dir)


# ---- evaluation ---------------------------------------------------------------------------
class ScoreRecorder:
    """Wraps a model's ``score_candidates`` to keep what the evaluator asked and got, so
    per-user ranks come from the very same scores as the evaluator's means."""

    def __init__(self, model):
        self.score = model.score_candidates
        self.calls: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []

    def __call__(self, users, histories, candidates, prompt=None):
        scores = self.score(users, histories, candidates, prompt=prompt)  # (B, C)
        self.calls.append((prompt, users.cpu().numpy(), candidates.cpu().numpy(),
                           scores.float().cpu().numpy()))
        return scores

    def ranks(self, dataset, prompt: str) -> np.ndarray:
        """(U,) 1-based rank of each user's test item among its candidates."""
        cands = dataset.candidates("test")
        positive = dict(zip(cands.users.tolist(), cands.positives.tolist(), strict=True))
        out = []
        for p, users, items, scores in self.calls:
            if p != prompt:
                continue
            target = np.asarray([positive[int(u)] for u in users])
            out.append(M.rank_from_scores(scores, (items == target[:, None]).argmax(1)))
        return np.concatenate(out)


def evaluate_run(args, run_dir: Path, data_dir: Path) -> dict:
    """Direct recommendation on the test split: the evaluator's report plus per-user ranks."""
    report_path = run_dir / "eval" / "test.json"
    ranks_path = run_dir / "eval" / "direct-ranks.json"
    if args.skip_existing and report_path.is_file() and ranks_path.is_file():
        return {"report": json.loads(report_path.read_text()),
                "ranks": json.loads(ranks_path.read_text())}
    run = load_run(run_dir, data_dir)
    run.model.eval()
    recorder = ScoreRecorder(run.model)
    run.model.score_candidates = recorder  # an instance attribute: the class is untouched
    cfg = build(EvalConfig, {"tasks": ["direct"], "prompts": args.prompts, "split": "test",
                             "direct_scorer": "exact", "users": args.eval_users,
                             "batch_size": 16}, prefix="eval.")
    report = evaluate(run.model, run.dataset, cfg, progress=not args.quiet)
    write_report(run_dir, "test", report)
    ranks = {}
    for prompt in args.prompts:
        ranks[prompt] = recorder.ranks(run.dataset, prompt)
        ours = M.ranking_metrics(ranks[prompt])
        theirs = report["tasks"]["direct"]["prompts"][prompt]
        if any(abs(ours[m] - theirs[m]) > 1e-9 for m in METRICS):
            raise RuntimeError(f"{prompt}: recorded ranks give {ours}, evaluator {theirs}")
        ranks[prompt] = ranks[prompt].tolist()
    ranks_path.write_text(json.dumps(ranks))
    return {"report": report, "ranks": ranks}


# ---- references (no model) ---------------------------------------------------------------
def reference_ranks(dataset) -> dict[str, np.ndarray]:
    """Test ranks of model-free scorers over the same 100 candidates, for scale.

    ``popularity``: training interaction counts; ``taste oracle``: a heuristic that READS
    the hidden attributes (share of the user's history with the candidate's baseColour,
    plus half the share with its articleType, ties broken by popularity). It shows how
    much signal the simulation puts within reach; no model is given those attributes.
    """
    cands = dataset.candidates("test")
    users, hists, _ = dataset.targets("test")
    hist_of = dict(zip(users.tolist(), hists, strict=True))
    pop = np.zeros(dataset.num_items)
    for seq in dataset.train_sequences:
        np.add.at(pop, seq, 1.0)
    colour = np.asarray([a.get("baseColour", "") for a in dataset.attributes])
    kind = np.asarray([a.get("articleType", "") for a in dataset.attributes])
    target = (cands.items == cands.positives[:, None]).argmax(1)  # (U,)
    jitter = np.random.default_rng(0).random(cands.items.shape) * 1e-6  # random tie-break
    taste = np.stack([
        (colour[hist_of[int(u)]][:, None] == colour[row][None]).mean(0)
        + 0.5 * (kind[hist_of[int(u)]][:, None] == kind[row][None]).mean(0)
        for u, row in zip(cands.users, cands.items, strict=True)])  # (U, C)
    pop_c = pop[cands.items] / (pop.max() + 1.0)  # (U, C) in [0, 1)
    return {"popularity": M.rank_from_scores(pop_c + jitter, target),
            "taste oracle (reads hidden colour/type)":
                M.rank_from_scores(taste + 0.01 * pop_c + jitter, target)}


# ---- output -------------------------------------------------------------------------------
def table(args, results: dict, references: dict[str, np.ndarray]) -> str:
    """Markdown: one row per (prompt, run), then each image run minus text-only per user,
    then the model-free references (prompt-independent)."""
    head = "| prompt | prompts | " + " | ".join(METRICS) + " |"
    lines = [head, "|---|---|" + "---:|" * len(METRICS)]
    for prompt in args.prompts:
        for variant, result in results.items():
            row = result["report"]["tasks"]["direct"]["prompts"][prompt]
            lines.append(f"| {prompt} | {LABELS[variant]} | "
                         + " | ".join(f"{row[m]:.4f}" for m in METRICS) + " |")
        for variant in (v for v in results if v in BASE):
            base = np.asarray(results[BASE[variant]]["ranks"][prompt])
            cells = []
            for m in METRICS:
                d, lo, hi = M.paired_bootstrap(np.asarray(results[variant]["ranks"][prompt]),
                                             base, m)
                cells.append(f"{d:+.4f} [{lo:+.3f}, {hi:+.3f}]")
            lines.append(f"| {prompt} | {variant} - {BASE[variant]} (95% CI) | "
                         + " | ".join(cells) + " |")
    for name, ranks in references.items():
        row = M.ranking_metrics(ranks)
        lines.append(f"| (none) | {name} | " + " | ".join(f"{row[m]:.4f}" for m in METRICS)
                     + " |")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/mfmrec-vip5-images"),
                   help="Folder for the dataset, runs and results.")
    p.add_argument("--users", type=int, default=600, help="Simulated users to import.")
    p.add_argument("--data-seed", type=int, default=2022, help="Seed of the simulation.")
    p.add_argument("--epochs", type=int, default=20, help="Adapter-tuning epochs (each run).")
    p.add_argument("--pretrain-epochs", type=int, default=20,
                   help="Backbone pretraining epochs.")
    p.add_argument("--lr", type=float, default=3e-3, help="Adapter-tuning learning rate.")
    p.add_argument("--pretrain-lr", type=float, default=3e-3, help="Pretraining learning rate.")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=2022, help="Training seed (both runs).")
    p.add_argument("--tasks", default="direct", help="Families trained on (comma-separated).")
    p.add_argument("--templates", default="",
                   help="Template ids trained on (comma-separated); empty: every seen one.")
    p.add_argument("--train-negatives", type=int, default=4,
                   help="Negatives listed with the positive in training candidate lists "
                        "(evaluation always ranks the 100 stored candidates).")
    p.add_argument("--reduction-factor", type=int, default=2,
                   help="Adapter reduction factor (width = d_model / factor).")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="Backbone dropout in pretraining (kept by the tuning runs).")
    p.add_argument("--prompts", default="B-1,B-5,B-8", help="Direct prompts to evaluate.")
    p.add_argument("--eval-users", type=int, default=None, help="Evaluate the first N users.")
    p.add_argument("--features-from", type=Path, default=None,
                   help="Folder holding a pre-extracted efficientnet-lite0 store to reuse.")
    p.add_argument("--colour-histogram", action="store_true",
                   help=f"Also tune a third run on {COMBINED} (EfficientNet + a 64-bin RGB "
                        "histogram of each photo, computed here).")
    p.add_argument("--full-epochs", type=int, default=0,
                   help="Also train the pretraining recipe WITH image tokens for N epochs "
                        "(every weight, from scratch) and compare it with the text-only "
                        "pretrained backbone evaluated as it is (set N = --pretrain-epochs).")
    p.add_argument("--skip-existing", action="store_true",
                   help="Reuse the dataset, runs and evaluations already in --work.")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 is fastest for a tiny T5 on a shared CPU).")
    p.add_argument("--quiet", action="store_true", help="No progress bars.")
    args = p.parse_args(argv)
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    args.templates = [t.strip() for t in args.templates.split(",") if t.strip()] or None
    args.prompts = [t.strip() for t in args.prompts.split(",") if t.strip()]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quiet:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.time()
    data_dir = prepare_data(args)
    how = ensure_features(data_dir, args.features_from)
    ds = load_dataset(data_dir)
    print(f"dataset {data_dir} (SIMULATED users): {ds.num_users} users, {ds.num_items} items; "
          f"{ENCODER} features {how}")
    if args.colour_histogram:
        ensure_combined(data_dir)
    backbone = pretrain_backbone(args, data_dir)
    results = {}
    for variant, store in variants(args).items():
        run_dir = tune(args, data_dir, backbone, variant, store)
        results[variant] = evaluate_run(args, run_dir, data_dir)
    if args.full_epochs:
        results["full-text"] = evaluate_run(args, backbone.parent, data_dir)
        results["full-images"] = evaluate_run(args, full_images(args, data_dir), data_dir)
    text = table(args, results, reference_ranks(ds))
    summary = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "table": text, "seconds": round(time.time() - start, 1)}
    (args.work / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nDirect recommendation, test split, 100 candidates, exact scorer "
          f"({len(results['text']['ranks'][args.prompts[0]])} users; SIMULATED users, real "
          f"photos; colour hidden in titles):\n")
    print(text)
    print(f"\n{time.time() - start:.0f} s; results in {args.work}")


if __name__ == "__main__":
    main()
