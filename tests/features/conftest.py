"""Tiny datasets with drawn images, and small encoders, for the feature tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mfmrec.data import RawDataset, write_dataset
from mfmrec.features.base import Encoder

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255),
           (255, 0, 255), (128, 128, 128), (10, 20, 30), (200, 100, 50), (50, 100, 200)]


def draw(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (12, 8)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture
def make_dataset(tmp_path: Path):
    """Factory: a prepared dataset of ``n`` items, item ``i`` a solid ``COLOURS[i]`` image.

    ``no_image`` items get no image, ``corrupt`` items a file that is not an image,
    ``no_title`` items no title.
    """

    def make(n: int = 10, no_image=(), corrupt=(), no_title=(), name="tiny") -> Path:
        img_dir = tmp_path / f"{name}-src"
        img_dir.mkdir(exist_ok=True)
        images: list[str | None] = []
        for i in range(n):
            if i in no_image:
                images.append(None)
            elif i in corrupt:
                bad = img_dir / f"I{i}.jpg"
                bad.write_bytes(b"not a jpeg at all")
                images.append(str(bad))
            else:
                images.append(str(draw(img_dir / f"I{i}.png", COLOURS[i % len(COLOURS)])))
        titles = [None if i in no_title else f"red shoe number {i}" for i in range(n)]
        seqs = [[(u + k) % n for k in range(min(3, n - 1))] for u in range(6)]
        raw = RawDataset(name=name, user_ids=[f"U{u}" for u in range(6)],
                         item_ids=[f"I{i}" for i in range(n)], sequences=seqs,
                         item_titles=titles, item_images=images)
        return write_dataset(raw, tmp_path / name, num_negatives=1)

    return make


class MeanColour(Encoder):
    """A real, deterministic 3-d image encoder (mean RGB), counting its calls.

    ``fail_after`` makes the call after that many raise, to simulate an interruption.
    """

    name = "mean-colour"
    modality = "image"

    def __init__(self, fail_after: int | None = None):
        super().__init__("cpu")
        self.calls = 0
        self.fail_after = fail_after

    @property
    def dim(self) -> int:
        return 3

    def encode_batch(self, inputs, layers=False):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        x = torch.stack([torch.from_numpy(np.asarray(im, dtype=np.float32)).mean((0, 1))
                         for im in inputs])  # (B, 3)
        states = torch.stack([x, x / 255.0], dim=1) if layers else None  # (B, 2, 3)
        return x, states

    def describe(self) -> dict:
        return {"encoder": self.name, "modality": "image", "dim": 3,
                "preprocessing": "none", "pooling": "mean over pixels"}


@pytest.fixture
def mean_colour():
    return MeanColour


@pytest.fixture
def palette():
    """The colour of item ``i`` is ``palette[i]`` in ``make_dataset`` datasets."""
    return COLOURS


@pytest.fixture
def draw_image():
    return draw
