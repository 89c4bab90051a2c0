"""A colour descriptor of item photos: a hue/value histogram, no learned weights.

ImageNet features (EfficientNet-Lite0) are trained to name objects whatever their colour,
so item colour is a faint direction in them; recommenders (and semantic IDs built from
features) then see shape far more than colour. A colour histogram, the classic
content-based image retrieval descriptor, states it directly. ``color-histogram``:

* each RGB pixel is converted to HSV;
* a pixel with saturation >= 0.25 and value >= 0.2 counts in one of 12 hue bins x 2 value
  bins (dark/bright): 24 "colour" bins;
* any other pixel (white, grey, black: backgrounds, highlights) counts in one of 4 value
  bins: the grey bins;
* the 28 counts are divided by the pixel count (the vector sums to 1).

The image is first resized to 64 x 64 (bilinear) so the descriptor costs nothing.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from mfmrec.features.base import Encoder

HUE_BINS, VALUE_BINS, GREY_BINS = 12, 2, 4
DIM = HUE_BINS * VALUE_BINS + GREY_BINS
SIZE = 64
MIN_SATURATION, MIN_VALUE = 0.25, 0.2


def color_histogram(image: Image.Image) -> np.ndarray:
    """(DIM,) float32 histogram of one RGB image; sums to 1."""
    small = image.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
    hsv = np.asarray(small.convert("HSV"), dtype=np.float32) / 255.0  # (S, S, 3) in [0, 1]
    h, s, v = (hsv[..., i].reshape(-1) for i in range(3))
    coloured = (s >= MIN_SATURATION) & (v >= MIN_VALUE)
    hue = np.minimum((h * HUE_BINS).astype(np.int64), HUE_BINS - 1)
    bright = (v >= 0.6).astype(np.int64)
    grey = np.minimum((v * GREY_BINS).astype(np.int64), GREY_BINS - 1)
    bins = np.where(coloured, hue * VALUE_BINS + bright, HUE_BINS * VALUE_BINS + grey)
    counts = np.bincount(bins, minlength=DIM).astype(np.float32)
    return counts / counts.sum()


class ColorHistogramEncoder(Encoder):
    """28-d hue/value histograms (see the module docstring); no per-layer states."""

    name = "color-histogram"
    modality = "image"

    @property
    def dim(self) -> int:
        return DIM

    def encode_batch(self, inputs: list, layers: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        feats = torch.from_numpy(np.stack([color_histogram(im) for im in inputs]))  # (B, DIM)
        return feats, None

    def describe(self) -> dict:
        return {
            "encoder": self.name, "modality": self.modality, "dim": DIM,
            "model": {"architecture": "hand-crafted HSV histogram (no learned weights)"},
            "preprocessing": {"resize": [SIZE, SIZE], "resample": "bilinear"},
            "pooling": f"{HUE_BINS} hue x {VALUE_BINS} value bins for pixels with saturation"
                       f" >= {MIN_SATURATION} and value >= {MIN_VALUE}, {GREY_BINS} value "
                       "bins for the others; counts / pixels",
        }
