"""Bottleneck adapters injected into Hugging Face T5 models (Houlsby/VL-Adapter style).

An adapter is ``x + up(act(down(x)))`` with a hidden width of ``d_model // reduction``.
VIP5 places one on the output of every sublayer -- encoder self-attention and FFN,
decoder self-attention, cross-attention and FFN -- *before* the residual add:

    h = h + dropout(adapter(sublayer(layer_norm(h))))

transformers' T5 sublayers (``T5LayerSelfAttention``, ``T5LayerCrossAttention``,
``T5LayerFF``) all end in ``h + self.dropout(out)`` and use ``self.dropout`` nowhere
else, so the injection point is that ``dropout`` child: it is replaced by
:class:`AdaptedDropout`, which runs the adapter and then the original dropout. The T5
code is never copied or patched; removing the adapters restores the original module.
The up-projection starts at zero, so an adapted model computes exactly the backbone's
function until it trains.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

SELF, CROSS, FFN = "self", "cross", "ffn"
# transformers' sublayer class names -> the kind of sublayer they are
_SUBLAYER_KINDS = {
    "T5LayerSelfAttention": SELF,
    "T5LayerCrossAttention": CROSS,
    "T5LayerFF": FFN,
}
_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


@dataclass(frozen=True)
class AdapterSpec:
    """Where adapters go and how wide they are."""

    reduction_factor: int = 8
    kinds: frozenset[str] = frozenset({SELF, CROSS, FFN})
    activation: str = "gelu"

    def __post_init__(self) -> None:
        if self.reduction_factor < 1:
            raise ValueError(f"reduction_factor must be >= 1, got {self.reduction_factor}")
        unknown = set(self.kinds) - {SELF, CROSS, FFN}
        if unknown:
            raise ValueError(f"unknown adapter kinds {sorted(unknown)}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}")


class BottleneckAdapter(nn.Module):
    """``x + up(act(down(x)))``; ``up`` is zero-initialised so it starts as the identity."""

    def __init__(self, d_model: int, reduction_factor: int = 8, activation: str = "gelu"):
        super().__init__()
        hidden = max(1, d_model // reduction_factor)
        self.down = nn.Linear(d_model, hidden)
        self.act = _ACTIVATIONS[activation]()
        self.up = nn.Linear(hidden, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's default init for the down-projection (as LoRA does for A) and zeros
        # for the up-projection: identity at start, yet ``up`` gets gradients at once
        self.down.reset_parameters()
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, d) -> (B, L, d)
        return x + self.up(self.act(self.down(x)))


class AdaptedDropout(nn.Module):
    """Stands in for a sublayer's ``dropout``: adapter first, then the original dropout."""

    def __init__(self, adapter: BottleneckAdapter, dropout: nn.Module):
        super().__init__()
        self.adapter = adapter
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.adapter(x))


def _sublayers(model: nn.Module) -> Iterator[tuple[str, str, nn.Module]]:
    """(qualified name, kind, module) of every T5 sublayer in ``model``."""
    for name, module in model.named_modules():
        kind = _SUBLAYER_KINDS.get(type(module).__name__)
        if kind is not None:
            yield name, kind, module


def inject_adapters(model: nn.Module, spec: AdapterSpec) -> dict[str, BottleneckAdapter]:
    """Insert one adapter into every T5 sublayer of the kinds in ``spec``; returns them.

    Injecting twice is an error (it would stack adapters silently).
    """
    d_model = model.config.d_model
    injected: dict[str, BottleneckAdapter] = {}
    for name, kind, sublayer in _sublayers(model):
        if kind not in spec.kinds:
            continue
        current = sublayer.dropout
        if isinstance(current, AdaptedDropout):
            raise ValueError(f"{name} already has an adapter")
        if not isinstance(current, nn.Dropout):
            raise TypeError(f"{name}.dropout is {type(current).__name__}, not nn.Dropout: "
                            "this transformers version needs a new injection point")
        adapter = BottleneckAdapter(d_model, spec.reduction_factor, spec.activation)
        adapter.to(device=sublayer.layer_norm.weight.device)
        sublayer.dropout = AdaptedDropout(adapter, current)
        injected[name] = adapter
    if not injected:
        raise ValueError(f"no T5 sublayers of kinds {sorted(spec.kinds)} found in "
                         f"{type(model).__name__}")
    return injected


def remove_adapters(model: nn.Module) -> int:
    """Restore the original dropout of every adapted sublayer; returns how many."""
    removed = 0
    for _, _, sublayer in _sublayers(model):
        if isinstance(sublayer.dropout, AdaptedDropout):
            sublayer.dropout = sublayer.dropout.dropout
            removed += 1
    return removed


def adapters_of(model: nn.Module) -> dict[str, BottleneckAdapter]:
    """Every injected adapter, by the name of its sublayer."""
    return {name: sub.dropout.adapter for name, _, sub in _sublayers(model)
            if isinstance(sub.dropout, AdaptedDropout)}


def count_adapters(model: nn.Module) -> dict[str, int]:
    """How many adapters sit in each kind of sublayer (``self``/``cross``/``ffn``)."""
    counts = {SELF: 0, CROSS: 0, FFN: 0}
    for _, kind, sub in _sublayers(model):
        if isinstance(sub.dropout, AdaptedDropout):
            counts[kind] += 1
    return counts


def is_adapter_parameter(name: str) -> bool:
    """Whether a parameter name (from ``named_parameters``) belongs to an adapter."""
    return ".adapter." in f".{name}"


def is_layer_norm_parameter(model: nn.Module, name: str) -> bool:
    """Whether ``name`` is a parameter of a layer norm (T5LayerNorm or nn.LayerNorm)."""
    module_name = name.rsplit(".", 1)[0]
    module = model.get_submodule(module_name) if module_name != name else model
    return isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("LayerNorm")


def freeze_except(model: nn.Module, keep) -> int:
    """Set ``requires_grad`` to ``keep(name)`` for every parameter; returns the trainable count.

    Tied parameters (T5's shared embedding / LM head) appear once in ``named_parameters``,
    so freezing by name freezes them everywhere.
    """
    trainable = 0
    for name, param in model.named_parameters():
        param.requires_grad_(bool(keep(name)))
        trainable += param.numel() if param.requires_grad else 0
    return trainable
