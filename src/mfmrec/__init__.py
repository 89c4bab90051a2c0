"""mfmrec: multimodal foundation-model recommendation (VIP5, IISAN) with honest baselines."""

__version__ = "0.1.0"
