"""What a bottleneck adapter injection does: which sublayer kinds, how wide, which activation.

Kinds name the sublayer an adapter follows: ``self`` (self-attention output), ``cross``
(cross-attention output), ``ffn`` (feed-forward output) in transformers, ``block`` (a
whole block's output) in convolutional networks. The target table of each architecture
(:mod:`.targets`) says which kind each of its sublayers is.

The hidden width of an adapter on a sublayer of width ``d`` is ``d // r``. ``r`` is
``reduction_factor`` (VIP5: the same ``r`` everywhere) unless ``bottleneck`` is set;
then it is ``max(1, d // bottleneck)`` for each sublayer (IISAN's baselines: about
``bottleneck`` hidden units whatever the width, as in a CNN whose stages widen).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

SELF, CROSS, FFN, BLOCK = "self", "cross", "ffn", "block"
KINDS = (SELF, CROSS, FFN, BLOCK)
ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}


@dataclass(frozen=True)
class AdapterSpec:
    """Where adapters go and how wide they are (see the module docstring)."""

    reduction_factor: int = 8  # hidden width = sublayer width // reduction_factor
    kinds: frozenset[str] = frozenset(KINDS)  # sublayer kinds that get an adapter
    activation: str = "gelu"  # gelu | relu between the two projections
    bottleneck: int | None = None  # when set: about this many hidden units per adapter

    def __post_init__(self) -> None:
        if self.reduction_factor < 1:
            raise ValueError(f"reduction_factor must be >= 1, got {self.reduction_factor}")
        if self.bottleneck is not None and self.bottleneck < 1:
            raise ValueError(f"bottleneck must be >= 1 or None, got {self.bottleneck}")
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown adapter kinds {sorted(unknown)} (known: {list(KINDS)})")
        if not self.kinds:
            raise ValueError("kinds must name at least one sublayer kind")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}")

    def reduction_for(self, width: int) -> int:
        """The reduction factor of an adapter on a sublayer ``width`` wide."""
        if self.bottleneck is None:
            return self.reduction_factor
        return max(1, width // self.bottleneck)
