"""Item encoders that run inside the training loop (every variant but cached IISAN).

:class:`TextLayers` and :class:`ImageLayers` wrap the feature pipeline's encoders
(:func:`mfmrec.features.encoders.build_encoder`: the same weights, tokenizer settings,
image preprocessing and pooling), so the states they compute for an item equal the
cached ones. Unlike the pipeline they are ``nn.Module`` s that can carry gradients:
titles are tokenized once at construction, photos are decoded per batch.

Adapters inside the encoders (the ``mm-encoder-adapters`` baseline) are injected, never
forked: BERT-like text models get a bottleneck adapter on the output of every attention
and feed-forward sublayer, before the residual (Houlsby placement, through the sublayer's
``dropout`` child as :mod:`mfmrec.peft.adapters` does for T5); EfficientNet gets one on
the output of every MBConv block through a forward hook.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from mfmrec.errors import ConfigError
from mfmrec.features.encoders import build_encoder, pad_stack, store_name
from mfmrec.features.images import load_image
from mfmrec.features.text import masked_mean
from mfmrec.models.iisan.cache import MissingFill
from mfmrec.peft import AdaptedDropout, AdapterSpec, BottleneckAdapter, inject_adapters


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
def _reduction(width: int, adapter_dim: int) -> int:
    return max(1, width // adapter_dim)


def inject_text_adapters(model: nn.Module, adapter_dim: int) -> int:
    """Adapters on every BERT-like attention/FFN output (or T5 sublayer); returns how many.

    A BERT-like output sublayer has ``dense``, ``dropout`` and ``LayerNorm`` children and
    computes ``LayerNorm(dropout(dense(h)) + residual)``, so wrapping its dropout puts
    the adapter exactly before the residual add.
    """
    count = 0
    for module in model.modules():
        dense, drop = getattr(module, "dense", None), getattr(module, "dropout", None)
        if (isinstance(dense, nn.Linear) and isinstance(drop, nn.Dropout)
                and isinstance(getattr(module, "LayerNorm", None), nn.LayerNorm)):
            d = dense.out_features
            module.dropout = AdaptedDropout(
                BottleneckAdapter(d, _reduction(d, adapter_dim)), drop)
            count += 1
    if count:
        return count
    d_model = getattr(model.config, "d_model", None)
    if d_model is None:
        raise ConfigError(f"model.text_encoder: cannot place adapters inside "
                          f"{type(model).__name__} (supported: BERT-like encoders and T5)")
    spec = AdapterSpec(reduction_factor=_reduction(d_model, adapter_dim),
                       kinds=frozenset({"self", "ffn"}))
    return len(inject_adapters(model, spec))


def _adapter_targets(model: nn.Module) -> list[tuple[nn.Module, int]]:
    """(module, width) whose outputs get an adapter: every EfficientNet MBConv block, or
    the attention and MLP sublayers of every ViT encoder layer (CLIP), before the residual."""
    blocks = getattr(model, "_blocks", None)
    if blocks is not None:
        return [(block, block._bn2.num_features) for block in blocks]
    targets = []
    for module in model.modules():
        attn, mlp = getattr(module, "self_attn", None), getattr(module, "mlp", None)
        if attn is not None and mlp is not None and hasattr(attn, "out_proj"):
            width = attn.out_proj.out_features
            targets += [(attn, width), (mlp, width)]
    if not targets:
        raise ConfigError(f"model.image_encoder: cannot place adapters inside "
                          f"{type(model).__name__} (supported: EfficientNet, CLIP ViT)")
    return targets


class HookedAdapters(nn.Module):
    """Bottleneck adapters on the outputs of an image encoder's blocks (forward hooks).

    The hooks rewrite each target's output, so the encoder's code stays untouched; the
    adapters live here, a submodule of the wrapper, so ``.to()`` and checkpoints see them.
    """

    def __init__(self, model: nn.Module, adapter_dim: int):
        super().__init__()
        # named like peft's adapters so mfmrec.peft.is_adapter_parameter recognises them
        self.adapter = nn.ModuleList()
        self.handles = []
        for module, width in _adapter_targets(model):
            adapter = BottleneckAdapter(width, _reduction(width, adapter_dim))
            self.adapter.append(adapter)
            self.handles.append(module.register_forward_hook(self._hook(adapter)))

    def __len__(self) -> int:
        return len(self.adapter)

    @staticmethod
    def _hook(adapter: BottleneckAdapter):
        def adapt(x: torch.Tensor) -> torch.Tensor:
            if x.dim() == 4:  # (B, C, H, W): adapt over channels
                return adapter(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
            return adapter(x)  # (B, T, d)

        def run(module, inputs, output):
            if isinstance(output, tuple):  # attention returns (states, weights)
                return (adapt(output[0]), *output[1:])
            return adapt(output)

        return run
