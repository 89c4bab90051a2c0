"""The embedded demo dataset: determinism, labelling, images that carry the colour, and
preferences that depend on what only the images show."""

from __future__ import annotations

import colorsys
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mfmrec.data import load_dataset
from mfmrec.data.demo import build_demo, read_truth
from mfmrec.data.demo_images import PALETTE, PATTERNS, dominant_colour
from mfmrec.errors import ConfigError

HIDDEN_WORDS = re.compile(
    r"\b(" + "|".join([*PALETTE, "colou?red", "stripes?", "striped", "dots?", "dotted",
                       "solid"]) + r")\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return build_demo(tmp_path_factory.mktemp("demo") / "data", seed=0)


@pytest.fixture(scope="module")
def ds(demo):
    return load_dataset(demo)


@pytest.fixture(scope="module")
def truth(demo):
    return read_truth(demo)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.slow
def test_same_seed_gives_identical_bytes(demo, tmp_path):
    again = _files(build_demo(tmp_path / "again", seed=0))
    first = _files(demo)
    assert sorted(again) == sorted(first)
    assert any(k.endswith(".png") for k in first) and "reviews.parquet" in first
    for name, data in first.items():
        assert again[name] == data, name


@pytest.mark.slow
def test_other_seed_differs(demo, tmp_path):
    other = _files(build_demo(tmp_path / "other", seed=1))
    first = _files(demo)
    assert other["interactions.parquet"] != first["interactions.parquet"]
    assert other["reviews.parquet"] != first["reviews.parquet"]
    assert other["images/item0000.png"] != first["images/item0000.png"]


def test_labelled_as_simulated(ds):
    assert ds.simulated is True
    sim = ds.meta["simulation"]
    assert "simulated" in sim["simulated"] and sim["weights"]["colour"] > 0
    assert ds.meta["statistics"]["users"] == 500


def test_shape_and_size(ds):
    assert (ds.num_users, ds.num_items) == (500, 200)
    lengths = [len(s) for s in ds.sequences]
    assert min(lengths) >= 5 and max(lengths) <= 15
    assert ds.num_items > max(lengths) + 100
    assert all(len(set(s.tolist())) == len(s) for s in ds.sequences)  # no repeat purchases
    assert ds.reviews.num_rows == sum(lengths)
    cands = ds.candidates("test")
    assert cands.items.shape == (500, 100)
    assert len(set(ds.titles)) == ds.num_items  # titles name items unambiguously


def test_images_exist_open_as_rgb_and_are_all_different(ds):
    assert ds.items.column("image").to_pylist()[:2] == ["images/item0000.png",
                                                         "images/item0001.png"]
    digests = set()
    for path in ds.image_paths():
        with Image.open(path) as im:
            assert im.format == "PNG" and im.mode == "RGB" and im.size == (64, 64)
        digests.add(path.read_bytes())
    assert len(digests) == ds.num_items


def _object_colour(path: Path) -> str:
    """Independent of the package: mean hue of pixels far from the pale background."""
    px = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0  # (H, W, 3)
    sat = px.max(axis=2) - px.min(axis=2)
    fg = px[sat > 0.3]
    hues = np.array([colorsys.rgb_to_hsv(*p)[0] for p in fg]) * 2 * np.pi
    mean = np.angle(np.exp(1j * hues).mean()) % (2 * np.pi) * 180 / np.pi  # circular mean
    ref = {n: colorsys.rgb_to_hsv(*(c / 255 for c in rgb))[0] * 360 for n, rgb in PALETTE.items()}
    return min(ref, key=lambda n: min(abs(ref[n] - mean), 360 - abs(ref[n] - mean)))


def test_colour_is_in_the_pixels(ds, truth):
    colours = truth[0].column("colour").to_pylist()
    found = [_object_colour(p) for p in ds.image_paths()]
    assert np.mean([a == b for a, b in zip(found, colours, strict=True)]) >= 0.95
    by_package = [dominant_colour(Image.open(p)) for p in ds.image_paths()]
    assert np.mean([a == b for a, b in zip(by_package, colours, strict=True)]) >= 0.95


def test_dominant_colour_on_flat_images():
    assert dominant_colour(Image.new("RGB", (8, 8), (0, 0, 255))) == "blue"
    assert dominant_colour(Image.new("RGB", (8, 8), (250, 0, 10))) == "red"
    assert dominant_colour(Image.new("RGB", (8, 8), (128, 128, 128))) is None


def test_no_text_names_an_image_only_attribute(ds, truth):
    for title in ds.titles:
        assert not HIDDEN_WORDS.search(title), title
    for col in ("summary", "text", "explanation", "feature"):
        for value in set(ds.reviews.column(col).to_pylist()):
            assert not HIDDEN_WORDS.search(value), (col, value)
    assert all(set(a) == {"category", "brand"} for a in ds.attributes)
    assert set(truth[0].column("pattern").to_pylist()) == set(PATTERNS)


def _mode_match(ds, attr: np.ndarray) -> tuple[float, float]:
    """How often the test item shares the user's most frequent training value, and the
    rate expected if test items followed the global training distribution instead."""
    train = ds.train_sequences
    overall = Counter(attr[np.concatenate(train)].tolist())
    total = sum(overall.values())
    users, _, targets = ds.targets("test")
    hit = base = 0.0
    for u, t in zip(users, targets, strict=True):
        mode = Counter(attr[train[u]].tolist()).most_common(1)[0][0]
        hit += attr[t] == mode
        base += overall[mode] / total
    return hit / len(users), base / len(users)


def test_image_only_colour_drives_choices(ds, truth):
    colour = np.array(truth[0].column("colour").to_pylist())
    rate, base = _mode_match(ds, colour)
    assert rate > 2 * base, (rate, base)
    category = np.array(truth[0].column("category").to_pylist())
    rate, base = _mode_match(ds, category)
    assert rate > 1.3 * base, (rate, base)  # the title-visible part carries signal too


def test_matching_sets_make_order_learnable(ds, truth):
    partners = [set(p) for p in truth[0].column("complements").to_pylist()]
    pairs = [(a, b) for s in ds.sequences for a, b in zip(s[:-1], s[1:], strict=True)]
    follow = np.mean([b in partners[a] for a, b in pairs])
    assert follow > 5 * 3 / ds.num_items, follow  # 3 partners among 200 items by chance


def test_reviews_are_complete_and_track_taste(ds, truth):
    r = ds.reviews.to_pydict()
    assert set(r["rating"]) <= {1.0, 2.0, 3.0, 4.0, 5.0} and len(set(r["rating"])) == 5
    for col in ("summary", "explanation", "feature", "reviewer_name"):
        assert all(isinstance(v, str) and v.strip() for v in r[col]), col
    assert all(e[1:] in t and f in e for e, t, f in
               zip(r["explanation"], r["text"], r["feature"], strict=True))
    times = np.asarray(ds.interactions.column("timestamp").to_pylist())
    assert r["time"] == times.tolist()
    assert all(np.all(np.diff(np.asarray(r["time"])[np.asarray(r["user"]) == u]) > 0)
               for u in range(0, ds.num_users, 50))
    liked = [set(c) for c in truth[1].column("colours").to_pylist()]
    colour = truth[0].column("colour").to_pylist()
    match = np.array([colour[i] in liked[u] for u, i in zip(r["user"], r["item"], strict=True)])
    rating = np.asarray(r["rating"])
    assert rating[match].mean() > rating[~match].mean() + 0.8


@pytest.mark.parametrize(("options", "field"), [
    ({"num_items": 110}, "num_items"),
    ({"min_len": 2}, "min_len"),
    ({"min_len": 8, "max_len": 6}, "max_len"),
    ({"num_users": 0}, "num_users"),
    ({"image_size": 4}, "image_size"),
])
def test_bad_options_name_the_field(tmp_path, options, field):
    with pytest.raises(ConfigError, match=field):
        build_demo(tmp_path / "bad", **options)
    assert not (tmp_path / "bad").exists()
