"""The product-photo importer: real items, SIMULATED users whose taste follows the photos."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mfmrec.data import load_dataset, write_dataset
from mfmrec.data.importers.products import hide_words, import_products
from mfmrec.errors import DataError

HEADER = "id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage," \
         "productDisplayName,image\n"
COLOURS = ["Black", "Navy Blue", "Blue", "White", "Red"]
TYPES = [("Tshirts", "T-shirt"), ("Casual Shoes", "Casual Shoes"), ("Watches", "Watch")]


@pytest.fixture
def catalogue(tmp_path: Path) -> tuple[Path, Path]:
    """30 products (5 colours x 3 types x 2), each with a drawn photo; one photo absent."""
    images = tmp_path / "images"
    images.mkdir()
    lines = [HEADER]
    for k in range(30):
        colour, (atype, word) = COLOURS[k % 5], TYPES[(k // 5) % 3]
        pid = 100 + k
        lines.append(f"{pid},Men,Apparel,Topwear,{atype},{colour},Fall,2011,Casual,"
                     f"Brand{k % 4} Men {colour} {word},{pid}.jpg\n")
        if k != 29:
            Image.new("RGB", (4, 4), (k * 8, 0, 0)).save(images / f"{pid}.jpg")
    styles = tmp_path / "styles.csv"
    styles.write_text("".join(lines))
    return styles, images


def test_items_titles_and_simulation_are_recorded(catalogue, tmp_path):
    styles, images = catalogue
    raw = import_products(styles, images, users=40, seed=1, hide_in_text=["baseColour"])
    assert len(raw.item_ids) == 29 and raw.provenance["skipped_without_photo"] == 1
    assert raw.item_titles[:3] == ["Brand0 Men T-shirt", "Brand1 Men T-shirt",
                                   "Brand2 Men T-shirt"]
    assert raw.item_attributes[1]["baseColour"] == "Navy Blue"  # kept for analysis only
    assert all(Path(p).is_absolute() for p in raw.item_images)
    assert raw.simulated and raw.extra_meta["hidden_in_text"] == ["baseColour"]
    assert raw.extra_meta["hidden_values_left_in_titles"] == {"baseColour": 0}
    assert all(5 <= len(s) <= 20 and len(set(s)) == len(s) for s in raw.sequences)
    out = write_dataset(raw, tmp_path / "out", num_negatives=5)
    ds = load_dataset(out)
    meta = json.loads((out / "dataset.json").read_text())
    assert ds.simulated and meta["simulation"]["interactions"] == "SIMULATED"
    assert "Dirichlet" in meta["simulation"]["model"]
    reviews = ds.reviews.to_pylist()
    assert len(reviews) == sum(len(s) for s in raw.sequences)
    for r in reviews[:50]:
        assert 1 <= r["rating"] <= 5 and r["feature"] in r["explanation"]
        assert r["reviewer_name"] == ds.user_names[r["user"]]


def test_same_seed_same_users_other_seed_other_users(catalogue):
    styles, images = catalogue
    a = import_products(styles, images, users=10, seed=3)
    b = import_products(styles, images, users=10, seed=3)
    c = import_products(styles, images, users=10, seed=4)
    assert a.sequences == b.sequences and a.reviews == b.reviews
    assert a.sequences != c.sequences


def test_hide_words_handles_plurals_hyphens_and_longest_first():
    vocab = ["Tshirts", "Blue", "Navy Blue", "Shirts"]
    titles = ["Nike Men Navy Blue T-Shirt", "Puma Blue Tshirts", "Lee Men Shirt", "Bluebird Cap"]
    assert hide_words(titles, vocab) == ["Nike Men", "Puma", "Lee Men", "Bluebird Cap"]


def test_simulated_users_prefer_colours_the_photos_show(shared):
    root = shared / "data" / "fashion-products"
    raw = import_products(root / "styles.csv", root / "images", users=150, seed=0)
    colour = np.asarray([a.get("baseColour", "") for a in raw.item_attributes])
    # share of a user's items in its most frequent colour, vs the same for random sequences
    rng = np.random.default_rng(0)

    def top_share(seqs):
        return np.mean([Counter(colour[s]).most_common(1)[0][1] / len(s) for s in seqs])

    random_seqs = [rng.choice(len(colour), len(s), replace=False) for s in raw.sequences]
    assert len(raw.item_ids) == 3221
    assert top_share(raw.sequences) > top_share(random_seqs) + 0.2


def test_bad_inputs_are_user_errors(catalogue, tmp_path):
    styles, images = catalogue
    with pytest.raises(DataError, match="--hide-in-text"):
        import_products(styles, images, hide_in_text=["colour"])
    with pytest.raises(DataError, match="--min-len"):
        import_products(styles, images, min_len=2)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,name\n1,x\n")
    with pytest.raises(DataError, match="missing columns"):
        import_products(bad, images)
    broken = tmp_path / "broken.csv"
    broken.write_text(styles.read_text() + "999,Men,Apparel\n")
    with pytest.raises(DataError, match=r"broken.csv:32: wrong number of fields"):
        import_products(broken, images)
