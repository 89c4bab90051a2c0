"""The interface every item encoder implements, and helpers the encoders share.

An encoder turns a batch of inputs (PIL images or strings) into one vector per input
(``encode``, ``(B, d)``) and, for IISAN, one pooled vector per layer (``encode_layers``,
``(B, L+1, d)``; entry 0 is the embedding/stem output). ``encode_batch`` computes both
in one forward pass; extraction calls only that. The names and the factory live in
:mod:`mfmrec.features.encoders`.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import torch

from mfmrec.errors import ConfigError


class Encoder(ABC):
    """Maps a batch of item inputs to features; frozen, inference only."""

    name: str
    modality: str  # "image" (inputs are RGB PIL images) or "text" (inputs are strings)

    def __init__(self, device: str = "cpu"):
        self.device = torch.device(device)

    @property
    @abstractmethod
    def dim(self) -> int:
        """Width of :meth:`encode`'s output."""

    @abstractmethod
    def encode_batch(self, inputs: list, layers: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(features (B, d), per-layer states (B, L+1, d_l) or None)`` on the CPU."""

    @abstractmethod
    def describe(self) -> dict:
        """What goes into the store's metadata: model, preprocessing, pooling, layers."""

    def encode(self, inputs: list) -> torch.Tensor:
        """(B, d) features of a batch."""
        return self.encode_batch(inputs, layers=False)[0]

    def encode_layers(self, inputs: list) -> torch.Tensor:
        """(B, L+1, d_l) pooled states: entry 0 is the embedding (stem) output."""
        states = self.encode_batch(inputs, layers=True)[1]
        if states is None:
            raise ConfigError(f"encoder {self.name} has no per-layer states")
        return states


def pad_stack(vectors: list[torch.Tensor]) -> torch.Tensor:
    """Stack per-layer vectors of different widths [(B, d_l)] into (B, L+1, max d_l).

    Zeros fill the tail of narrower layers; the true widths go into the store's metadata
    (``layer_dims``) so a reader can slice them back.
    """
    width = max(v.shape[-1] for v in vectors)
    out = vectors[0].new_zeros(vectors[0].shape[0], len(vectors), width)
    for j, v in enumerate(vectors):
        out[:, j, : v.shape[-1]] = v
    return out


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' loading bars and reports (we check loading results ourselves)."""
    from transformers.utils import logging as hf_logging  # lazy: transformers, ~0.6 s; CNNs skip it

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def check_loaded(path: Path, info: dict) -> None:
    """Refuse a model whose weights were partly missing (transformers would init them
    randomly and the features would be noise that looks like features)."""
    bad = list(info.get("missing_keys") or []) + [
        str(m[0]) if isinstance(m, tuple) else str(m) for m in info.get("mismatched_keys") or []]
    if bad:
        shown = ", ".join(sorted(bad)[:3]) + (" ..." if len(bad) > 3 else "")
        raise ConfigError(f"--model-path {path}: {len(bad)} weight tensors missing or of the "
                          f"wrong shape ({shown}); refusing randomly initialised weights")
