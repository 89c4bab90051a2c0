"""CLIP's image tower, loaded from a local folder through transformers.

VIP5 feeds CLIP image features to its mapping network. ``CLIPVisionModelWithProjection``
reads either a full CLIP checkpoint (``openai/clip-vit-base-patch32``: the text tower is
ignored) or a saved vision-only model. Nothing is downloaded: ``--model-path`` must point
at a folder that already holds the weights (see docs/benchmarks.md, "Getting real CLIP
weights").

``clip-rn50`` and ``clip-rn101`` (the ResNet towers VIP5's released features use) are not
here: transformers implements CLIP's image tower only as a ViT, so they are our own
module, :mod:`mfmrec.features.clip_resnet`, loading OpenAI's ``RN50.pt``/``RN101.pt``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from mfmrec.errors import ConfigError
from mfmrec.features.base import Encoder, check_loaded, quiet_transformers
from mfmrec.features.images import ImagePreprocess

HUB_IDS = {
    "clip-vit-b32": "openai/clip-vit-base-patch32",
    "clip-vit-b16": "openai/clip-vit-base-patch16",
    "clip-vit-l14": "openai/clip-vit-large-patch14",
}
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _crop_of(value) -> int | None:
    if isinstance(value, dict):
        return value.get("height") or value.get("shortest_edge")
    return value


def clip_preprocess(folder: Path, image_size: int) -> ImagePreprocess:
    """The folder's ``preprocessor_config.json`` when present, else CLIP's published values."""
    size, crop, mean, std = image_size, image_size, CLIP_MEAN, CLIP_STD
    cfg_path = folder / "preprocessor_config.json"
    if cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text())
        size = _crop_of(cfg.get("size")) or size
        crop = _crop_of(cfg.get("crop_size")) or crop
        mean = tuple(cfg.get("image_mean", mean))
        std = tuple(cfg.get("image_std", std))
    if crop != image_size:
        raise ConfigError(f"{cfg_path}: crop size {crop} differs from the model's image size "
                          f"{image_size}")
    return ImagePreprocess(size=max(size, crop), crop=crop, mean=mean, std=std)


def _load_vision(path: Path):
    """The vision tower and projection of a full CLIP folder or of a vision-only one."""
    from transformers import AutoConfig, CLIPVisionModelWithProjection  # lazy: ~4 s (after torch)

    try:
        with quiet_transformers():
            cfg = AutoConfig.from_pretrained(str(path), local_files_only=True)
            if cfg.model_type == "clip":
                # projection_dim lives on the full config; the vision part alone lacks it
                vision = cfg.vision_config
                vision.projection_dim = cfg.projection_dim
            elif cfg.model_type == "clip_vision_model":
                vision = cfg
            else:
                raise ConfigError(f"--model-path {path}: model_type {cfg.model_type!r} is not "
                                  "CLIP ('clip' or 'clip_vision_model')")
            model, info = CLIPVisionModelWithProjection.from_pretrained(
                str(path), config=vision, local_files_only=True, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"--model-path {path}: not a CLIP checkpoint ({exc})") from None
    check_loaded(path, info)
    return model


class ClipImageEncoder(Encoder):
    """``image_embeds`` (the projected, unnormalised CLIP image vector) per image.

    Layers: the class token of the embedding output and of every transformer layer,
    ``(B, L+1, hidden)``, the token CLIP itself pools from.
    """

    modality = "image"

    def __init__(self, name: str, model_path: str | Path | None, device: str = "cpu"):
        super().__init__(device)
        if name not in HUB_IDS:
            raise ConfigError(f"--encoder {name}: expected one of {', '.join(HUB_IDS)}")
        if not model_path:
            raise ConfigError(f"--encoder {name} needs --model-path: a local folder with the "
                              f"weights of {HUB_IDS[name]} (nothing is downloaded)")
        self.name = name
        self.path = Path(model_path)
        if not (self.path / "config.json").is_file():
            raise ConfigError(f"--model-path: {self.path} has no config.json; expected a "
                              f"Hugging Face folder such as a download of {HUB_IDS[name]}")
        model = _load_vision(self.path)
        self.model = model.eval().to(self.device)
        self.config = model.config
        self.preprocess = clip_preprocess(self.path, self.config.image_size)

    @property
    def dim(self) -> int:
        return self.config.projection_dim

    @torch.no_grad()
    def encode_batch(self, inputs: list, layers: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.preprocess(inputs).to(self.device)  # (B, 3, S, S)
        out = self.model(pixel_values=x, output_hidden_states=layers)
        states = None
        if layers:  # each hidden state is (B, 1 + patches, hidden); keep the class token
            states = torch.stack([h[:, 0] for h in out.hidden_states], dim=1).float().cpu()
        return out.image_embeds.float().cpu(), states  # (B, proj), (B, L+1, hidden)

    def describe(self) -> dict:
        c = self.config
        return {
            "encoder": self.name, "modality": self.modality, "dim": self.dim,
            "model": {"architecture": "CLIPVisionModelWithProjection", "path": str(self.path),
                      "expected": HUB_IDS[self.name], "hidden_size": c.hidden_size,
                      "layers": c.num_hidden_layers, "patch_size": c.patch_size,
                      "image_size": c.image_size},
            "preprocessing": self.preprocess.describe(),
            "pooling": "image_embeds: projection of the post-layernorm class token "
                       "(not L2-normalised)",
            "layers": {"count": c.num_hidden_layers + 1, "dims": [c.hidden_size] * (
                c.num_hidden_layers + 1), "pooling": "class token of embeddings + each layer"},
        }
