"""Image preprocessing with PIL + numpy, and finding images in folders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mfmrec.features.images import (
    ImagePreprocess,
    file_stem,
    images_from_folder,
    index_folder,
    load_image,
)


def test_center_crop_and_normalisation_golden():
    a = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)  # (H=2, W=4, RGB)
    prep = ImagePreprocess(size=2, crop=2, mean=(1, 2, 3), std=(2, 2, 2), rescale=1.0)
    out = prep([Image.fromarray(a)])  # shorter side already 2: no resize, crop columns 1..2
    assert out.shape == (1, 3, 2, 2)
    expected = (a[:, 1:3, :].astype(np.float32) - np.array([1, 2, 3])) / 2  # (2, 2, 3)
    assert np.array_equal(out[0].numpy(), expected.transpose(2, 0, 1))


def test_resize_keeps_aspect_and_crop_takes_the_middle():
    im = Image.new("RGB", (30, 10), (255, 0, 0))
    im.paste((0, 255, 0), (10, 0, 20, 10))
    im.paste((0, 0, 255), (20, 0, 30, 10))
    prep = ImagePreprocess(size=5, crop=5, mean=(0, 0, 0), std=(1, 1, 1))  # 30x10 -> 15x5
    out = prep([im])[0]  # (3, 5, 5)
    # only the middle (green) third survives; [1/255 scale] so green is 1.0
    assert np.allclose(out[1, :, 1:4].numpy(), 1.0, atol=0.02)
    assert np.allclose(out[0, :, 1:4].numpy(), 0.0, atol=0.02)


def test_solid_colour_survives_resizing_exactly():
    prep = ImagePreprocess(size=8, crop=6, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    out = prep([Image.new("RGB", (20, 13), (51, 102, 204))])[0]
    for c, v in enumerate((51, 102, 204)):
        assert np.allclose(out[c].numpy(), (v / 255 - 0.5) / (0.25, 0.5, 1.0)[c], atol=1e-6)


def test_invalid_preprocessing_is_refused():
    with pytest.raises(ValueError, match="crop"):
        ImagePreprocess(size=4, crop=8, mean=(0, 0, 0), std=(1, 1, 1))
    with pytest.raises(ValueError, match="std"):
        ImagePreprocess(size=4, crop=4, mean=(0, 0, 0), std=(1, 0, 1))


def test_transparent_pixels_become_white_and_bad_files_none(tmp_path):
    im = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    im.putpixel((1, 0), (10, 20, 30, 255))
    im.save(tmp_path / "a.png")
    rgb = load_image(tmp_path / "a.png")
    assert rgb.mode == "RGB" and np.asarray(rgb).tolist() == [[[255, 255, 255], [10, 20, 30]]]
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    assert load_image(tmp_path / "bad.jpg") is None
    assert load_image(tmp_path / "absent.jpg") is None


def test_folder_index_prefers_jpg_and_ignores_other_files(tmp_path):
    for name in ("A1.png", "A1.jpg", "B2.webp", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    index = index_folder(tmp_path)
    assert sorted(index) == ["A1", "B2"] and index["A1"].name == "A1.jpg"
    assert [p.name if p else None for p in images_from_folder(tmp_path, ["B2", "C3", "A1"])] \
        == ["B2.webp", None, "A1.jpg"]


def test_file_stem_is_safe_and_injective():
    assert file_stem("B00004TMFE") == "B00004TMFE"
    a, b = file_stem("a/b c"), file_stem("a_b c")
    assert "/" not in a and " " not in a and a != b
    assert not file_stem("../x").startswith(".")
