"""The colour-histogram image descriptor: hand-computed bins, the encoder interface."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mfmrec.features.color import DIM, GREY_BINS, HUE_BINS, VALUE_BINS, color_histogram
from mfmrec.features.encoders import build_encoder, modality_of


def _image(rgb, size=32):
    return Image.new("RGB", (size, size), rgb)


def test_a_saturated_colour_lands_in_its_hue_bin_and_white_in_a_grey_bin():
    red = color_histogram(_image((230, 20, 20)))
    assert red.shape == (DIM,) and red.sum() == pytest.approx(1.0)
    assert red[0 * VALUE_BINS + 1] == pytest.approx(1.0)  # hue 0, bright
    blue = color_histogram(_image((20, 40, 220)))
    assert int(np.argmax(blue)) // VALUE_BINS == int(HUE_BINS * 229 / 360)  # hue 229 deg
    white = color_histogram(_image((255, 255, 255)))
    assert white[HUE_BINS * VALUE_BINS + GREY_BINS - 1] == pytest.approx(1.0)


def test_half_coloured_picture_splits_its_mass():
    im = np.full((32, 32, 3), 255, dtype=np.uint8)
    im[:, :16] = (20, 160, 40)  # green left half
    hist = color_histogram(Image.fromarray(im))
    assert hist[HUE_BINS * VALUE_BINS:].sum() == pytest.approx(0.5, abs=0.05)
    assert hist[:HUE_BINS * VALUE_BINS].max() == pytest.approx(0.5, abs=0.05)


def test_encoder_by_name_encodes_a_batch():
    assert modality_of("color-histogram") == "image"
    enc = build_encoder("color-histogram")
    out = enc.encode([_image((230, 20, 20)), _image((255, 255, 255))])
    assert out.shape == (2, DIM) == (2, enc.dim)
    assert enc.describe()["encoder"] == "color-histogram"
