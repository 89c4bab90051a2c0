"""Tiny SIMULATED demo data and tiny trained runs (SASRec, VIP5) for the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest

ONE_STEP = ["train.epochs=1", "train.max_steps=2", "train.batch_size=8", "train.precision=no",
            "train.checkpoint_every=0", "train.num_workers=0", "train.log_every=1",
            "train.cpu=true"]
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """12 simulated users, 110 items (the demo generator, shrunk)."""
    from mfmrec.data.demo import build_demo

    root = tmp_path_factory.mktemp("pipelines") / "data"
    return build_demo(root, seed=0, num_users=12, num_items=110, min_len=5, max_len=7,
                      image_size=16)


def train_tiny(config: str | dict, data: Path, out: Path, overrides: list[str]) -> Path:
    from mfmrec.training.config import load_run_config, resolve
    from mfmrec.training.runs import train

    if isinstance(config, dict):
        from mfmrec.config import apply_overrides

        cfg = resolve(apply_overrides(config, [*ONE_STEP, *overrides]), source="test")
    else:
        cfg = load_run_config(CONFIGS / config, [*ONE_STEP, *overrides])
    train(cfg, data, out, quiet=True)
    return out


@pytest.fixture(scope="session")
def sasrec_run(tiny_data, tmp_path_factory) -> Path:
    return train_tiny("sasrec.yaml", tiny_data, tmp_path_factory.mktemp("runs") / "sasrec",
                      ["model.hidden=16", "model.inner=32", "model.max_len=8"])


@pytest.fixture(scope="session")
def vip5_run(tiny_data, tmp_path_factory) -> Path:
    """VIP5 on a random tiny T5, text-only prompts, numbered items: a smoke-sized run."""
    model = {"name": "vip5", "backbone": "tiny", "tokenizer": None, "image_tokens": 0,
             "image_features": None, "tasks": ["sequential"], "beams": 4,
             "max_input_length": 128, "num_negatives": 4}
    return train_tiny({"model": model, "train": {}}, tiny_data,
                      tmp_path_factory.mktemp("runs") / "vip5", [])
