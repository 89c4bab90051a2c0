"""Item encoders that run inside the training loop (every variant but cached IISAN).

:class:`TextLayers` and :class:`ImageLayers` wrap the feature pipeline's encoders
(:func:`mfmrec.features.encoders.build_encoder`: the same weights, tokenizer settings,
image preprocessing and pooling), so the states they compute for an item equal the
cached ones. Unlike the pipeline they are ``nn.Module`` s that can carry gradients:
titles are tokenized once at construction, photos are decoded per batch.

Adapters inside the encoders (the ``mm-encoder-adapters`` baseline) are injected, never
forked, by :mod:`mfmrec.peft`'s one injector: a bottleneck adapter on the output of every
attention and feed-forward sublayer of a BERT-like, T5 or ViT/CLIP encoder, before the
residual (Houlsby placement), and on the output of every EfficientNet MBConv block.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from mfmrec.errors import ConfigError
from mfmrec.features.base import pad_stack
from mfmrec.features.encoders import build_encoder, store_name
from mfmrec.features.images import load_image
from mfmrec.features.text import masked_mean
from mfmrec.models.base import enable_hf_checkpointing
from mfmrec.models.iisan.cache import MissingFill
from mfmrec.peft import BLOCK, FFN, SELF, AdapterSpec, adapters_of, inject_adapters


def cache_name(encoder: str, model_path: str | None = None) -> str:
    """The feature-store name of an encoder given as ``minilm``, ``hf:PATH`` or a store name."""
    return store_name(encoder, model_path) if encoder.startswith("hf:") else encoder


def load_encoder(encoder: str, model_path: str | None, field: str):
    """The feature pipeline's encoder object for a config's encoder name and path."""
    if encoder.startswith("hf-"):  # a store name: the folder must be given
        if not model_path:
            raise ConfigError(f"config field {field}: encoder {encoder!r} runs in this "
                              "variant, so give the folder of its weights")
        encoder = f"hf:{model_path}"
    return build_encoder(encoder, model_path)


class TextLayers(nn.Module):
    """Masked-mean pooled states of a local Hugging Face text model, titles tokenized once."""

    def __init__(self, encoder: str, model_path: str | None, titles: list[str | None],
                 max_tokens: int | None = None):
        super().__init__()
        enc = load_encoder(encoder, model_path, "model.text_model_path")
        if enc.modality != "text":
            raise ConfigError(f"model.text_encoder: {encoder!r} is not a text encoder")
        self.model, self.width = enc.model, enc.dim
        self.num_states = enc.model.config.num_hidden_layers + 1
        _freeze_unused(self.model, "pooler")  # states are mean-pooled; BERT's pooler unused
        limit = min(max_tokens or enc.max_length, enc.max_length)
        tok = enc.tokenizer([t.strip() if t and t.strip() else "" for t in titles],
                            padding=True, truncation=True, max_length=limit, return_tensors="pt")
        accepted = inspect.signature(self.model.forward).parameters
        self.keys = [k for k in ("input_ids", "attention_mask", "token_type_ids")
                     if k in tok and k in accepted]
        for k in self.keys:
            self.register_buffer(k, tok[k], persistent=False)  # (N, T)
        missing = torch.tensor([not (t and t.strip()) for t in titles], dtype=torch.bool)
        self.register_buffer("missing", missing, persistent=False)  # (N,)

    def enable_activation_checkpointing(self) -> None:
        enable_hf_checkpointing(self.model)

    def forward(self, items: torch.Tensor, states: list[int]) -> tuple[torch.Tensor,
                                                                        torch.Tensor]:
        """(U,) items -> ((U, len(states), d) pooled states, (U,) missing)."""
        mask = self.attention_mask[items]  # (U, T)
        width = max(int(mask.sum(1).max()), 1)  # drop columns that are padding everywhere
        feed = {k: getattr(self, k)[items][:, :width] for k in self.keys}
        out = self.model(**feed, output_hidden_states=True)
        pooled = [masked_mean(out.hidden_states[s], feed["attention_mask"]) for s in states]
        return torch.stack(pooled, dim=1), self.missing[items]


def _freeze_unused(model: nn.Module, *heads: str) -> None:
    """Freeze heads (dotted names) that no tapped state passes through: they never get a
    gradient, so full fine-tuning would count them as trainable while its optimizer holds
    no state for them (which breaks resuming from a checkpoint)."""
    for head in heads:
        try:
            model.get_submodule(head).requires_grad_(False)
        except AttributeError:  # this architecture has no such head
            continue


def _freeze_batchnorm(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


class ImageLayers(nn.Module):
    """Pooled per-layer states of an image encoder over photos decoded per batch."""

    def __init__(self, encoder: str, model_path: str | None, paths: list):
        super().__init__()
        enc = load_encoder(encoder, model_path, "model.image_model_path")
        if enc.modality != "image":
            raise ConfigError(f"model.image_encoder: {encoder!r} is not an image encoder")
        self.kind = "cnn" if encoder == "efficientnet-lite0" else "vit"
        self.model, self.preprocess, self.paths = enc.model, enc.preprocess, list(paths)
        dims = enc.describe()["layers"]["dims"]
        self.num_states, self.width = len(dims), max(dims)
        # the CNN's ImageNet classifier and the ViT's final norm and projection never run:
        # the states are the CNN's stage outputs and the ViT's per-layer [CLS] tokens
        _freeze_unused(self.model, "_fc", "visual_projection", "vision_model.post_layernorm")

    def train(self, mode: bool = True):
        # batch-norm statistics stay the pretrained ones: a few dozen photos per batch would
        # wreck them, and checkpoints store parameters only, never running statistics
        super().train(mode)
        _freeze_batchnorm(self)
        return self

    def enable_activation_checkpointing(self) -> None:
        """Per MBConv block for the CNN, per transformer layer for a ViT."""
        if self.kind == "cnn":
            self.model.checkpoint_blocks = True
        else:
            enable_hf_checkpointing(self.model)

    def pixels(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(U,) items -> ((U, 3, S, S) preprocessed photos, (U,) missing or unreadable)."""
        images = [load_image(self.paths[i]) if self.paths[i] else None for i in items.tolist()]
        missing = torch.tensor([im is None for im in images], dtype=torch.bool)
        ok = [im for im in images if im is not None]
        crop = self.preprocess.crop
        x = torch.zeros(len(images), 3, crop, crop)
        if ok:
            x[~missing] = self.preprocess(ok)
        return x, missing

    def forward(self, items: torch.Tensor, states: list[int]) -> tuple[torch.Tensor,
                                                                        torch.Tensor]:
        """(U,) items -> ((U, len(states), d) pooled states, (U,) missing)."""
        device = next(self.model.parameters()).device
        x, missing = self.pixels(items.cpu())
        x = x.to(device)
        if self.kind == "cnn":
            all_states = pad_stack(self.model.forward_layers(x))  # (U, L+1, d)
        else:
            out = self.model(pixel_values=x, output_hidden_states=True)
            all_states = torch.stack([h[:, 0] for h in out.hidden_states], dim=1)
        return all_states[:, states], missing.to(device)


class LiveStates(nn.Module):
    """The same states from frozen encoders run at every call (IISAN uncached)."""

    def __init__(self, encoders: dict[str, nn.Module], states: dict[str, list[int]]):
        super().__init__()
        self.encoders = nn.ModuleDict(encoders)
        self.encoders.requires_grad_(False)
        self.encoders.eval()
        self.states = states
        self.fill = nn.ModuleDict({m: MissingFill(len(states[m]), e.width)
                                   for m, e in encoders.items()})

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoders.eval()  # frozen: no dropout, no batch-norm updates
        return self

    def forward(self, items: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for m, encoder in self.encoders.items():
            with torch.no_grad():
                rows, missing = encoder(items, self.states[m])  # (U, k, d), (U,)
            out[m] = self.fill[m](rows, missing)
        return out


# ---- adapters inside the encoders ------------------------------------------------------
def inject_encoder_adapters(model: nn.Module, adapter_dim: int, field: str) -> int:
    """Bottleneck adapters of about ``adapter_dim`` hidden units on every self-attention,
    feed-forward and CNN block output of an encoder (the injector's target table); returns
    how many. ``field`` names the config field of the encoder in an error."""
    spec = AdapterSpec(bottleneck=adapter_dim, kinds=frozenset({SELF, FFN, BLOCK}))
    try:
        return len(inject_adapters(model, spec))
    except ConfigError as exc:
        raise ConfigError(f"{field}: {exc}") from None


# checkpoints written before the one injector kept the image adapters in a list beside
# the encoder: ``<prefix>adapters.adapter.<i>.*`` is the i-th adapter in module order
LEGACY_IMAGE_ADAPTERS = "adapters.adapter."


def renamed_legacy_adapters(state: dict, prefix: str, model: nn.Module) -> dict:
    """``state`` with legacy image adapter names (under ``prefix``) renamed to the
    injector's ``<prefix>model.<sublayer>.adapter.*``."""
    legacy, names = prefix + LEGACY_IMAGE_ADAPTERS, list(adapters_of(model))
    out = {}
    for key, value in state.items():
        if key.startswith(legacy):
            index, rest = key[len(legacy):].split(".", 1)
            key = f"{prefix}model.{names[int(index)]}.adapter.{rest}"
        out[key] = value
    return out
