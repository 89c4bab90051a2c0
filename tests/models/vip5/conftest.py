"""Fixtures of the VIP5 tests: a small SIMULATED demo dataset with random image features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mfmrec.config import build
from mfmrec.data import load_dataset
from mfmrec.features.store import save_features
from mfmrec.models.vip5 import VIP5Config, build_vip5

FEATURE_DIM = 12
MISSING = (0, 5)  # items whose image is missing in the random feature store


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """30 simulated users, 110 items, reviews, and a random 12-d and 512-d feature store."""
    from mfmrec.data.demo import build_demo

    root = tmp_path_factory.mktemp("vip5") / "demo"
    build_demo(root, seed=0, num_users=30, num_items=110, min_len=5, max_len=8, image_size=16)
    ds = load_dataset(root)
    gen = torch.Generator().manual_seed(0)
    missing = torch.zeros(ds.num_items, dtype=torch.bool)
    missing[list(MISSING)] = True
    for name, dim in (("rand12", FEATURE_DIM), ("rand512", 512)):
        save_features(ds, name, torch.randn(ds.num_items, dim, generator=gen), missing,
                      {"encoder": "random (test)"})
    return root


@pytest.fixture(scope="session")
def dataset(demo_data):
    return load_dataset(demo_data)


@pytest.fixture(scope="session")
def t5_tokenizer(shared):
    path = shared / "models" / "t5-small-tokenizer"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    from mfmrec.models.vip5.prompts.tokenization import load_tokenizer

    return load_tokenizer(path)


@pytest.fixture(scope="session")
def make_vip5(dataset):
    """Build a VIP5 on the demo data: ``make_vip5(tokenizer, **config fields)``."""

    def make(tokenizer=None, **fields):
        defaults = {"backbone": "tiny", "image_features": "rand12", "beams": 5,
                    "max_input_length": 256, "dropout": 0.0}
        cfg = build(VIP5Config, {**defaults, **fields})
        return build_vip5(cfg, dataset, tokenizer=tokenizer).eval()

    return make
