"""Parameter-efficient tuning: modules injected into Hugging Face models, never forks.

:mod:`mfmrec.peft.adapters` holds bottleneck adapters for T5 (VIP5's setting).
"""

from mfmrec.peft.adapters import (
    CROSS,
    FFN,
    SELF,
    AdaptedDropout,
    AdapterSpec,
    BottleneckAdapter,
    adapters_of,
    count_adapters,
    freeze_except,
    inject_adapters,
    is_adapter_parameter,
    is_layer_norm_parameter,
    remove_adapters,
)

__all__ = [
    "CROSS", "FFN", "SELF", "AdaptedDropout", "AdapterSpec", "BottleneckAdapter",
    "adapters_of", "count_adapters", "freeze_except", "inject_adapters",
    "is_adapter_parameter", "is_layer_norm_parameter", "remove_adapters",
]
