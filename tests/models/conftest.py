"""Tiny SIMULATED datasets for the baseline model tests.

Users walk the item catalogue in order (item i is always followed by item i + 1, modulo
the catalogue size); every interaction has a review whose explanation and feature word
are fixed per item, so a model that learns the pattern can be checked exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mfmrec.data import load_dataset
from mfmrec.data.raw import RawDataset
from mfmrec.data.writer import write_dataset
from mfmrec.features.store import save_features

NOUNS = ["strings", "tuner", "cable", "pedal", "capo", "strap", "pick", "stand", "mic",
         "amp", "drum", "bow", "reed", "valve", "case", "knob"]
ADJECTIVES = ["bright", "sturdy", "quiet", "cheap"]
VERBS = ["works", "sounds", "holds"]
FEATURE_DIM = 6


def explanation_of(item: int) -> str:
    return f"The {ADJECTIVES[item % 4]} {NOUNS[item]} {VERBS[item % 3]} well."


def walk_raw(num_users: int = 40, num_items: int = 12, seed: int = 0) -> RawDataset:
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(num_users):
        start, length = int(rng.integers(num_items)), int(rng.integers(5, 9))
        sequences.append([(start + t) % num_items for t in range(length)])
    reviews: dict[str, list] = {c: [] for c in ("user", "item", "rating", "summary", "text",
                                                "explanation", "feature", "reviewer_name",
                                                "time")}
    for u, seq in enumerate(sequences):
        for t, i in enumerate(seq):
            for col, value in (("user", u), ("item", i), ("rating", float(i % 5 + 1)),
                               ("summary", NOUNS[i]), ("text", explanation_of(i)),
                               ("explanation", explanation_of(i)), ("feature", NOUNS[i]),
                               ("reviewer_name", f"user {u}"), ("time", 1000 * u + t)):
                reviews[col].append(value)
    return RawDataset(
        name="walk", user_ids=[f"u{u}" for u in range(num_users)],
        item_ids=[f"i{i}" for i in range(num_items)], sequences=sequences,
        item_titles=[NOUNS[i] for i in range(num_items)], reviews=reviews,
        provenance={"source": "simulated walk for tests"}, simulated=True)


def write_features(dataset, missing: tuple[int, ...] = ()) -> torch.Tensor:
    """A tiny image-feature store; ``missing`` items have no image."""
    gen = torch.Generator().manual_seed(7)
    feats = torch.rand(dataset.num_items, FEATURE_DIM, generator=gen)
    mask = torch.zeros(dataset.num_items, dtype=torch.bool)
    mask[list(missing)] = True
    save_features(dataset, "efficientnet-lite0", feats, mask,
                  {"encoder": "random test features (simulated)"})
    return feats


@pytest.fixture(scope="session")
def walk_dir(tmp_path_factory) -> Path:
    """The walk dataset with image features (VBPR) and reviews (PETER)."""
    out = tmp_path_factory.mktemp("walk") / "data"
    write_dataset(walk_raw(), out, seed=1, num_negatives=3)
    write_features(load_dataset(out), missing=(11,))
    return out


@pytest.fixture(scope="session")
def walk(walk_dir):
    return load_dataset(walk_dir)


@pytest.fixture(scope="session")
def bare_walk(tmp_path_factory):
    """The same walk without any feature file."""
    out = tmp_path_factory.mktemp("bare") / "data"
    write_dataset(walk_raw(), out, seed=1, num_negatives=3)
    return load_dataset(out)


@pytest.fixture(scope="session")
def walk_text():
    """(explanation_of(item) -> str, the feature nouns) of the walk dataset."""
    return explanation_of, NOUNS
