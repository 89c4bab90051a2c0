"""Bottleneck adapters (Houlsby / VL-Adapter style), one injector for every architecture.

* :mod:`.config`: :class:`AdapterSpec` (kinds, width, activation);
* :mod:`.targets`: the explicit target table per architecture (T5, BERT-like, ViT/CLIP,
  EfficientNet);
* :mod:`.layers`: the adapter, and how it enters a sublayer (its dropout, or a hook);
* :mod:`.inject`: inject, remove, list and count adapters; freeze everything else.
"""

from mfmrec.peft.bottleneck.config import BLOCK, CROSS, FFN, KINDS, SELF, AdapterSpec
from mfmrec.peft.bottleneck.inject import (
    adapters_of,
    count_adapters,
    freeze_except,
    inject_adapters,
    is_adapter_parameter,
    is_layer_norm_parameter,
    remove_adapters,
)
from mfmrec.peft.bottleneck.layers import AdaptedDropout, BottleneckAdapter
from mfmrec.peft.bottleneck.targets import TARGETS, Target, architecture_of

__all__ = [
    "BLOCK", "CROSS", "FFN", "KINDS", "SELF", "TARGETS", "AdaptedDropout", "AdapterSpec",
    "BottleneckAdapter", "Target", "adapters_of", "architecture_of", "count_adapters",
    "freeze_except", "inject_adapters", "is_adapter_parameter", "is_layer_norm_parameter",
    "remove_adapters",
]
