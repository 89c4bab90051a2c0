"""Inject bottleneck adapters into a network by its target table, list them, remove them.

The network's code is never copied or patched: an adapter replaces a sublayer's
``dropout`` child or hooks a sublayer's output (:mod:`.layers`), as the architecture's
entry in :data:`~mfmrec.peft.bottleneck.targets.TARGETS` says. Adapters are created in
module order, so a seeded injection draws the same weights every time; the
up-projections start at zero, so an adapted network computes exactly the backbone's
function until it trains. Removing the adapters restores the original modules.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from mfmrec.peft.bottleneck.config import AdapterSpec
from mfmrec.peft.bottleneck.layers import (
    AdaptedDropout,
    BottleneckAdapter,
    attach_hooked,
    detach_hooked,
    has_hooked,
)
from mfmrec.peft.bottleneck.targets import (
    DROPOUT,
    Target,
    architecture_of,
    kinds_of,
    output_width,
    targets_of,
)


def _device_of(module: nn.Module):
    for tensor in module.parameters():
        return tensor.device
    return None


def _adapter_of(sublayer: nn.Module, target: Target) -> BottleneckAdapter | None:
    """The adapter injected into ``sublayer``, if any."""
    if target.via == DROPOUT:
        child = sublayer.dropout
        return child.adapter if isinstance(child, AdaptedDropout) else None
    return sublayer.adapter if has_hooked(sublayer) else None


def _insert(name: str, sublayer: nn.Module, target: Target, adapter: BottleneckAdapter):
    if target.via == DROPOUT:
        current = sublayer.dropout
        if not isinstance(current, nn.Dropout):
            raise TypeError(f"{name}.dropout is {type(current).__name__}, not nn.Dropout: "
                            "this transformers version needs a new injection point")
        sublayer.dropout = AdaptedDropout(adapter, current)
    else:
        attach_hooked(sublayer, adapter)


def inject_adapters(model: nn.Module, spec: AdapterSpec) -> dict[str, BottleneckAdapter]:
    """One adapter on every target sublayer of ``model`` of a kind in ``spec``.

    Returns the new adapters by sublayer name. Injecting twice is an error (it would
    stack adapters silently); so is an architecture without a target table, or one whose
    table has none of ``spec.kinds``.
    """
    injected: dict[str, BottleneckAdapter] = {}
    for name, target, sublayer in targets_of(model):
        if target.kind not in spec.kinds:
            continue
        if _adapter_of(sublayer, target) is not None:
            raise ValueError(f"{name} already has an adapter")
        width = output_width(sublayer, target)
        adapter = BottleneckAdapter(width, spec.reduction_for(width), spec.activation)
        adapter.to(device=_device_of(sublayer))
        _insert(name, sublayer, target, adapter)
        injected[name] = adapter
    if not injected:
        raise ValueError(f"no sublayers of kinds {sorted(spec.kinds)} found in "
                         f"{type(model).__name__} (architecture {architecture_of(model)!r})")
    return injected


def remove_adapters(model: nn.Module) -> int:
    """Restore every adapted sublayer's original module; returns how many."""
    removed = 0
    for _, target, sublayer in targets_of(model):
        if _adapter_of(sublayer, target) is None:
            continue
        if target.via == DROPOUT:
            sublayer.dropout = sublayer.dropout.dropout
        else:
            detach_hooked(sublayer)
        removed += 1
    return removed


def adapters_of(model: nn.Module) -> dict[str, BottleneckAdapter]:
    """Every injected adapter, by the name of its sublayer."""
    found = {name: _adapter_of(sub, target) for name, target, sub in targets_of(model)}
    return {name: adapter for name, adapter in found.items() if adapter is not None}


def count_adapters(model: nn.Module) -> dict[str, int]:
    """How many adapters sit in each kind of sublayer the architecture has."""
    counts = dict.fromkeys(kinds_of(model), 0)
    for _, target, sub in targets_of(model):
        if _adapter_of(sub, target) is not None:
            counts[target.kind] += 1
    return counts


def is_adapter_parameter(name: str) -> bool:
    """Whether a parameter name (from ``named_parameters``) belongs to an adapter."""
    return ".adapter." in f".{name}"


def is_layer_norm_parameter(model: nn.Module, name: str) -> bool:
    """Whether ``name`` is a parameter of a layer norm (T5LayerNorm or nn.LayerNorm)."""
    module_name = name.rsplit(".", 1)[0]
    module = model.get_submodule(module_name) if module_name != name else model
    return isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("LayerNorm")


def freeze_except(model: nn.Module, keep: Callable[[str], bool]) -> int:
    """Set ``requires_grad`` to ``keep(name)`` for every parameter; returns the trainable count.

    Tied parameters (T5's shared embedding / LM head) appear once in ``named_parameters``,
    so freezing by name freezes them everywhere.
    """
    trainable = 0
    for name, param in model.named_parameters():
        param.requires_grad_(bool(keep(name)))
        trainable += param.numel() if param.requires_grad else 0
    return trainable
