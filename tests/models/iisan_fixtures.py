"""Tiny SIMULATED multimodal datasets and tiny random encoders for the IISAN tests.

Users walk the catalogue in order (item i is followed by item i + 1); every item has a
title and a flat-colour photo drawn here. Encoders are random tiny Hugging Face models
saved to temporary folders (a 4-layer BERT of width 16 with a word-level vocabulary, a
3-layer CLIP vision tower of width 24 at 32x32): nothing is downloaded, and the real
``from_pretrained`` loading code runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mfmrec.data.raw import RawDataset
from mfmrec.features.store import save_features

COLOURS = {"red": (200, 30, 30), "blue": (30, 30, 200), "green": (30, 160, 30),
           "black": (10, 10, 10)}
KINDS = ["shirt", "shoe", "bag", "watch"]
NUM_ITEMS = 16
TEXT_STATES, TEXT_WIDTH = 5, 8  # synthetic caches: 4 text layers, width 8
IMAGE_STATES, IMAGE_WIDTH = 7, 12  # 6 image layers, width 12


def title_of(item: int) -> str:
    return f"{list(COLOURS)[item % 4]} {KINDS[item // 4 % 4]}"


def walk_raw(images: list[str] | None, num_users: int = 24, seed: int = 0) -> RawDataset:
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(num_users):
        start, length = int(rng.integers(NUM_ITEMS)), int(rng.integers(5, 9))
        sequences.append([(start + t) % NUM_ITEMS for t in range(length)])
    return RawDataset(
        name="mm-walk", user_ids=[f"u{u}" for u in range(num_users)],
        item_ids=[f"i{i}" for i in range(NUM_ITEMS)], sequences=sequences,
        item_titles=[title_of(i) for i in range(NUM_ITEMS)], item_images=images,
        provenance={"source": "simulated walk for IISAN tests"}, simulated=True)


def draw_images(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(NUM_ITEMS):
        colour = COLOURS[list(COLOURS)[i % 4]]
        im = Image.new("RGB", (40, 40), colour)
        im.paste((255, 255, 255), (4 * (i // 4), 0, 4 * (i // 4) + 8, 12))  # a kind mark
        paths.append(str(folder / f"i{i}.png"))
        im.save(paths[-1])
    return paths


def synthetic_states(num_items: int) -> dict[str, torch.Tensor]:
    """Random per-layer states: text (N, 5, 8) and image (N, 7, 12), always the same."""
    gen = torch.Generator().manual_seed(3)
    return {"text": torch.randn(num_items, TEXT_STATES, TEXT_WIDTH, generator=gen),
            "image": torch.randn(num_items, IMAGE_STATES, IMAGE_WIDTH, generator=gen)}


def write_synthetic_caches(dataset, image: bool = True, missing_image: tuple[int, ...] = ()):
    """Store :func:`synthetic_states` as ``syn-text-layers`` / ``syn-image-layers``."""
    states = synthetic_states(dataset.num_items)
    n = dataset.num_items
    save_features(dataset, "syn-text-layers", states["text"], torch.zeros(n, dtype=torch.bool),
                  {"encoder": "random (simulated) text states", "modality": "text"})
    if image:
        mask = torch.zeros(n, dtype=torch.bool)
        mask[list(missing_image)] = True
        save_features(dataset, "syn-image-layers", states["image"], mask,
                      {"encoder": "random (simulated) image states", "modality": "image"})


def tiny_model_config(**extra) -> dict:
    """User-encoder sizes small enough for a unit test."""
    return {"hidden": 8, "layers": 1, "heads": 2, "inner": 16, "max_len": 6,
            "adapter_dim": 4, "score_chunk": 5, **extra}


def synthetic_config(**extra) -> dict:
    return tiny_model_config(**{"text_encoder": "syn-text", "image_encoder": "syn-image",
                                **extra})


def encoded_config(paths: dict[str, Path], **extra) -> dict:
    return tiny_model_config(**{"text_encoder": "hf-bert", "image_encoder": "clip-vit-b32",
                                "text_model_path": str(paths["bert"]),
                                "image_model_path": str(paths["clip"]), **extra})
