"""Parameter-efficient tuning: modules injected into Hugging Face models, never forks.

:mod:`mfmrec.peft.bottleneck` holds bottleneck adapters with one injector for every
architecture (T5 for VIP5; BERT-like, ViT/CLIP and EfficientNet encoders for IISAN's
baselines).
"""

from mfmrec.peft import bottleneck
from mfmrec.peft.bottleneck import *  # noqa: F403  (the public names, listed once there)

__all__ = list(bottleneck.__all__)
