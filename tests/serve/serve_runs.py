"""Tiny trained runs for the service tests (SIMULATED demo data with real photos)."""

from __future__ import annotations

from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
STEPS = ["train.epochs=1", "train.batch_size=8", "train.precision=no", "train.cpu=true",
         "train.checkpoint_every=0", "train.num_workers=0", "train.gradient_accumulation=1",
         "train.log_every=1"]
SASREC = ["model.hidden=16", "model.inner=32", "model.max_len=10", "train.max_steps=3"]
VIP5 = ["model.backbone=tiny", "model.image_features=color-histogram", "model.num_negatives=4",
        "model.beams=10", "model.max_input_length=128", "model.max_target_length=16",
        "model.explain_max_tokens=8", "train.max_steps=2"]


def build_runs(root: Path) -> tuple[Path, Path, Path]:
    """(data, sasrec run, vip5 run) under ``root``; the demo has 30 users, 110 items."""
    from mfmrec.data.demo import build_demo
    from mfmrec.features.extract import extract_features
    from mfmrec.training.config import load_run_config
    from mfmrec.training.runs import train

    data = build_demo(root / "demo", seed=0, num_users=30, num_items=110, min_len=5,
                      max_len=8, image_size=16)
    extract_features(data, "color-histogram", quiet=True)
    sasrec, vip5 = root / "sasrec", root / "vip5"
    train(load_run_config(CONFIGS / "sasrec.yaml", SASREC + STEPS), data, sasrec, quiet=True)
    train(load_run_config(CONFIGS / "vip5-demo.yaml", VIP5 + STEPS), data, vip5, quiet=True)
    return Path(data), sasrec, vip5
