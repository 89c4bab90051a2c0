"""Fixtures of the IISAN tests (helpers and the dataset recipes live in iisan_fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from iisan_fixtures import NUM_ITEMS, draw_images, title_of, walk_raw, write_synthetic_caches

from mfmrec.data import load_dataset
from mfmrec.data.writer import write_dataset


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> list[str]:
    return draw_images(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory, photos):
    """A walk dataset with photos and random layer caches (no encoder anywhere)."""
    out = tmp_path_factory.mktemp("syn") / "data"
    write_dataset(walk_raw(photos), out, seed=1, num_negatives=5)
    ds = load_dataset(out)
    write_synthetic_caches(ds, missing_image=(5,))
    return load_dataset(out)


@pytest.fixture(scope="session")
def titles_only(tmp_path_factory):
    """The walk without photos (like Beauty): only a text cache."""
    out = tmp_path_factory.mktemp("titles") / "data"
    write_dataset(walk_raw(None), out, seed=1, num_negatives=5)
    write_synthetic_caches(load_dataset(out), image=False)
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
    words = sorted({w for i in range(NUM_ITEMS) for w in title_of(i).split()})
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
    write_dataset(walk_raw(photos), out, seed=1, num_negatives=5)
    ds = load_dataset(out)
    extract_features(ds, HFTextEncoder("hf-bert", tiny_encoders["bert"]), layers=True,
                     quiet=True)
    extract_features(ds, ClipImageEncoder("clip-vit-b32", tiny_encoders["clip"]), layers=True,
                     quiet=True)
    return load_dataset(out)
