"""Where adapters go, per architecture: an explicit table, never a guess.

An architecture is a Hugging Face model's ``config.model_type`` (``"t5"``, ``"bert"``,
...) or, for a network that is not a Hugging Face model, its class name
(``"EfficientNetLite0"``, :mod:`mfmrec.features.efficientnet`). Its entry lists the
sublayer classes that get an adapter, the kind of each (:mod:`.config`), how the adapter
enters (``dropout``: replace the sublayer's ``dropout`` child; ``hook``: a forward hook
on the sublayer's output) and the child whose size is the sublayer's output width.

Every placement is Houlsby's: on a sublayer's output, before its residual add.

* T5: ``h + dropout(out)`` ends each sublayer, and ``dropout`` is used nowhere else.
* BERT-like: ``LayerNorm(dropout(dense(h)) + residual)`` in ``*SelfOutput`` (attention;
  a decoder's cross-attention shares the class, so it counts as ``self``) and ``*Output``.
* ViT, DeiT, CLIP's vision tower: the layer adds the attention's and the MLP's outputs to
  the residual (ViT through one dropout shared by both), so their outputs are hooked.
* EfficientNet-Lite0: every MBConv block's output (after its own skip connection).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from torch import nn
from transformers import PretrainedConfig

from mfmrec.errors import ConfigError
from mfmrec.peft.bottleneck.config import BLOCK, CROSS, FFN, KINDS, SELF

DROPOUT, HOOK = "dropout", "hook"


@dataclass(frozen=True)
class Target:
    """One sublayer class of an architecture that gets an adapter."""

    kind: str  # self | cross | ffn | block
    via: str  # dropout (replace the ``dropout`` child) | hook (forward hook on the output)
    width_of: str  # dotted child whose size is the output width (Linear, BatchNorm, norm)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown adapter kind {self.kind!r}")
        if self.via not in (DROPOUT, HOOK):
            raise ValueError(f"via must be {DROPOUT!r} or {HOOK!r}, got {self.via!r}")


def _t5(prefix: str) -> dict[str, Target]:
    return {f"{prefix}LayerSelfAttention": Target(SELF, DROPOUT, "layer_norm"),
            f"{prefix}LayerCrossAttention": Target(CROSS, DROPOUT, "layer_norm"),
            f"{prefix}LayerFF": Target(FFN, DROPOUT, "layer_norm")}


def _bert_like(prefix: str) -> dict[str, Target]:
    return {f"{prefix}SelfOutput": Target(SELF, DROPOUT, "dense"),
            f"{prefix}Output": Target(FFN, DROPOUT, "dense")}


def _vit_like(prefix: str, out_proj: str) -> dict[str, Target]:
    return {f"{prefix}Attention": Target(SELF, HOOK, out_proj),
            f"{prefix}MLP": Target(FFN, HOOK, "fc2")}


# architecture -> {sublayer class name -> target}
TARGETS: dict[str, dict[str, Target]] = {
    "t5": _t5("T5"),
    "mt5": _t5("MT5"),
    "bert": _bert_like("Bert"),
    "roberta": _bert_like("Roberta"),
    "xlm-roberta": _bert_like("XLMRoberta"),
    "camembert": _bert_like("Camembert"),
    "electra": _bert_like("Electra"),
    "vit": _vit_like("ViT", "o_proj"),
    "deit": _vit_like("DeiT", "o_proj"),
    "clip_vision_model": _vit_like("CLIP", "out_proj"),
    "EfficientNetLite0": {"MBConv": Target(BLOCK, HOOK, "_bn2")},
}


def architecture_of(model: nn.Module) -> str:
    """``config.model_type`` of a Hugging Face model, else the class name."""
    config = getattr(model, "config", None)
    if isinstance(config, PretrainedConfig):
        return config.model_type
    return type(model).__name__


def table_of(model: nn.Module) -> dict[str, Target]:
    """The target table of ``model``'s architecture; one clear line if there is none."""
    arch = architecture_of(model)
    if arch not in TARGETS:
        raise ConfigError(f"cannot place adapters inside {type(model).__name__}: architecture "
                          f"{arch!r} has no target table (supported: {', '.join(TARGETS)})")
    return TARGETS[arch]


def targets_of(model: nn.Module) -> Iterator[tuple[str, Target, nn.Module]]:
    """(qualified name, target, sublayer) of every target sublayer, in module order."""
    table = table_of(model)
    for name, module in model.named_modules():
        target = table.get(type(module).__name__)
        if target is not None:
            yield name, target, module


def kinds_of(model: nn.Module) -> list[str]:
    """The sublayer kinds ``model``'s architecture has, in :data:`KINDS` order."""
    present = {t.kind for t in table_of(model).values()}
    return [k for k in KINDS if k in present]


def output_width(sublayer: nn.Module, target: Target) -> int:
    """The width of ``sublayer``'s output, read off the child the table names."""
    child = sublayer.get_submodule(target.width_of)
    if isinstance(child, nn.Linear):
        return child.out_features
    if isinstance(child, nn.modules.batchnorm._BatchNorm):
        return child.num_features
    weight = getattr(child, "weight", None)  # a layer norm (T5LayerNorm, nn.LayerNorm)
    if weight is None or weight.dim() != 1:
        raise TypeError(f"cannot read a width off {type(child).__name__} "
                        f"({target.width_of} of {type(sublayer).__name__})")
    return weight.numel()
