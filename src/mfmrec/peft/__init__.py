"""Parameter-efficient tuning: modules injected into Hugging Face models, never forks.

:mod:`mfmrec.peft.bottleneck` holds bottleneck adapters with one injector for every
architecture (T5 for VIP5; BERT-like, ViT/CLIP and EfficientNet encoders for IISAN's
baselines).
"""

from mfmrec.peft.bottleneck import (
    BLOCK,
    CROSS,
    FFN,
    KINDS,
    SELF,
    TARGETS,
    AdaptedDropout,
    AdapterSpec,
    BottleneckAdapter,
    Target,
    adapters_of,
    architecture_of,
    count_adapters,
    freeze_except,
    inject_adapters,
    is_adapter_parameter,
    is_layer_norm_parameter,
    remove_adapters,
)

__all__ = [
    "BLOCK", "CROSS", "FFN", "KINDS", "SELF", "TARGETS", "AdaptedDropout", "AdapterSpec",
    "BottleneckAdapter", "Target", "adapters_of", "architecture_of", "count_adapters",
    "freeze_except", "inject_adapters", "is_adapter_parameter", "is_layer_norm_parameter",
    "remove_adapters",
]
