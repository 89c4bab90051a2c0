"""IISAN and IISAN-Versa (decoupled side networks over cached encoder states), and the
end-to-end baselines the IISAN paper compares them with. Registered models:

* ``iisan``: side network over the memory-mapped layer caches (no encoder runs);
* ``iisan-uncached``: the same side network over frozen encoders run every step;
* ``mm-full-ft``: full fine-tuning of the text and image encoders;
* ``mm-encoder-adapters``: bottleneck adapters inside the frozen encoders.

ID-only SASRec, the fifth method of the comparison, is ``sasrec``. Parts: :mod:`.towers`
(side network), :mod:`.cache` (memory-mapped layer states), :mod:`.encoders` (encoders
that run in the loop), :mod:`.sequential` (user encoder, in-batch loss, scoring),
:mod:`.model` (configs, models, builders).
"""

from __future__ import annotations

from mfmrec.models.iisan.model import (
    IISAN,
    EncoderTuneConfig,
    IISANConfig,
    build_cached,
    build_encoder_adapters,
    build_full_ft,
    build_uncached,
)
from mfmrec.models.registry import register

__all__ = ["IISAN", "IISANConfig", "EncoderTuneConfig"]

register("iisan", IISANConfig,
         "IISAN/IISAN-Versa: side network over cached per-layer text and image states"
         )(build_cached)
register("iisan-uncached", IISANConfig,
         "IISAN without the cache: frozen encoders run every step, side network trains"
         )(build_uncached)
register("mm-full-ft", EncoderTuneConfig,
         "full fine-tuning of the text and image encoders end to end")(build_full_ft)
register("mm-encoder-adapters", EncoderTuneConfig,
         "bottleneck adapters inside frozen text and image encoders")(build_encoder_adapters)
