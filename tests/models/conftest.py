"""Tiny SIMULATED datasets for the model tests (IISAN's multimodal ones: iisan_fixtures).

Users walk the item catalogue in order (item i is always followed by item i + 1, modulo
the catalogue size); every interaction has a review whose explanation and feature word
are fixed per item, so a model that learns the pattern can be checked exactly.
"""

from __future__ import annotations

from pathlib import Path

import iisan_fixtures as mm
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


# ---- multimodal walks for IISAN (photos, layer caches, tiny random encoders) ------------
@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> list[str]:
    return mm.draw_images(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory, photos):
    """A walk dataset with photos and random layer caches (no encoder anywhere)."""
    out = tmp_path_factory.mktemp("syn") / "data"
    write_dataset(mm.walk_raw(photos), out, seed=1, num_negatives=5)
    ds = load_dataset(out)
    mm.write_synthetic_caches(ds, missing_image=(5,))
    return load_dataset(out)


@pytest.fixture(scope="session")
def titles_only(tmp_path_factory):
    """The walk without photos (like Beauty): only a text cache."""
    out = tmp_path_factory.mktemp("titles") / "data"
    write_dataset(mm.walk_raw(None), out, seed=1, num_negatives=5)
    mm.write_synthetic_caches(load_dataset(out), image=False)
    return load_dataset(out)


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory) -> dict[str, Path]:
    """Random tiny BERT (+ tokenizer) and CLIP vision folders, loadable offline."""
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizer,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    root = tmp_path_factory.mktemp("encoders")
    words = sorted({w for i in range(mm.NUM_ITEMS) for w in mm.title_of(i).split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=4,
                                num_attention_heads=2, intermediate_size=32,
                                max_position_embeddings=32))
    bert.save_pretrained(root / "bert")
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(root / "bert")
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=24, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2,
        image_size=32, patch_size=8, projection_dim=8))
    clip.save_pretrained(root / "clip")
    return {"bert": root / "bert", "clip": root / "clip"}


@pytest.fixture(scope="session")
def encoded(tmp_path_factory, photos, tiny_encoders):
    """The walk with layer caches extracted by the tiny encoders through the feature
    pipeline (store names ``hf-bert`` and ``clip-vit-b32``)."""
    from mfmrec.features.clip import ClipImageEncoder
    from mfmrec.features.extract import extract_features
    from mfmrec.features.text import HFTextEncoder

    out = tmp_path_factory.mktemp("encoded") / "data"
    write_dataset(mm.walk_raw(photos), out, seed=1, num_negatives=5)
    ds = load_dataset(out)
    extract_features(ds, HFTextEncoder("hf-bert", tiny_encoders["bert"]), layers=True,
                     quiet=True)
    extract_features(ds, ClipImageEncoder("clip-vit-b32", tiny_encoders["clip"]), layers=True,
                     quiet=True)
    return load_dataset(out)
