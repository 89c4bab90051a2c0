"""The Amazon Reviews 2023 release: reviews and metadata in its published schema.

The sample is SIMULATED (written here) but follows the published field names of the
McAuley Lab release: reviews ``rating, title, text, images, asin, parent_asin, user_id,
timestamp (ms), helpful_vote, verified_purchase``; metadata ``main_category, title,
average_rating, rating_number, features, description, price, images (thumb, large,
hi_res, variant), videos, store, categories, details, parent_asin, bought_together``.
"""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter

import pytest

from mfmrec.data import load_dataset
from mfmrec.data.importers.amazon import import_amazon
from mfmrec.features.ingest import image_urls_from_meta, url_of


def write_lines(path, rows, gz=False):
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    path.write_bytes(gzip.compress(text.encode(), mtime=0) if gz else text.encode())
    return path

T0 = 1_600_000_000_000  # ms


def _review(user: str, parent: str, ms: int, rating: float = 5.0, variant: str = "a") -> dict:
    return {"rating": rating, "title": f"Title of {user} on {parent}",
            "text": f"The {parent} strap is solid. Great sound for the price.",
            "images": [], "asin": f"{parent}{variant}", "parent_asin": parent,
            "user_id": user, "timestamp": ms, "helpful_vote": 0,
            "verified_purchase": True}


def _sample(seed: int = 0) -> list[dict]:
    """~300 reviews: 40 users x 6-8 items of 30 products, plus 20 one-off users."""
    rng = random.Random(seed)
    rows = []
    for u in range(40):
        for k, p in enumerate(rng.sample(range(30), rng.randint(6, 8))):
            rows.append(_review(f"AE{u:026d}", f"B0{p:08d}", T0 + 1000 * rng.randint(0, 10**6)
                                + k, variant=rng.choice("abc")))
    rows += [_review(f"AG{u:026d}", f"B0{u % 30:08d}", T0 + u) for u in range(20)]
    rng.shuffle(rows)
    return rows


def _meta(parent: str) -> dict:
    return {"main_category": "Musical Instruments", "title": f"Strap {parent}",
            "average_rating": 4.5, "rating_number": 12, "features": ["leather"],
            "description": ["A strap."], "price": 12.99,
            "images": [{"thumb": f"http://t/{parent}.jpg", "large": f"http://l/{parent}-v.jpg",
                        "hi_res": None, "variant": "PT01"},
                       {"thumb": f"http://t/{parent}m.jpg", "large": f"http://l/{parent}.jpg",
                        "hi_res": f"http://h/{parent}.jpg", "variant": "MAIN"}],
            "videos": [], "store": "Fender", "categories": ["Musical Instruments", "Straps"],
            "details": {"Brand": "Fender", "Color": "Black"}, "parent_asin": parent,
            "bought_together": None}


def _kcore_counts(rows: list[dict], k: int) -> tuple[int, int, int]:
    pairs = [(r["user_id"], r["parent_asin"]) for r in rows]
    while True:
        users = Counter(u for u, _ in pairs)
        items = Counter(i for _, i in pairs)
        kept = [(u, i) for u, i in pairs if users[u] >= k and items[i] >= k]
        if len(kept) == len(pairs):
            return len(users), len(items), len(pairs)
        pairs = kept


@pytest.fixture
def sample_2023(tmp_path):
    rows = _sample()
    reviews = write_lines(tmp_path / "Musical_Instruments.jsonl.gz", rows, gz=True)
    meta = write_lines(tmp_path / "meta_Musical_Instruments.jsonl",
                       [_meta(f"B0{p:08d}") for p in range(30)])
    return rows, reviews, meta


def test_2023_reviews_map_parent_asin_and_milliseconds(sample_2023):
    rows, reviews, meta = sample_2023
    raw = import_amazon(reviews, meta, kcore=5)
    n_users, n_items, n_reviews = _kcore_counts(rows, 5)
    assert (len(raw.user_ids), len(raw.item_ids)) == (n_users, n_items)
    assert len(raw.reviews["user"]) == sum(map(len, raw.sequences)) == n_reviews
    assert set(raw.item_ids) <= {r["parent_asin"] for r in rows}
    assert raw.provenance["schema"] == "2023"
    assert raw.provenance["reviews_read"] == len(rows)
    by_user = {}
    for r in rows:
        by_user.setdefault(r["user_id"], []).append(r)
    for u, uid in enumerate(raw.user_ids):
        own = sorted((r for r in by_user[uid] if r["parent_asin"] in raw.item_ids),
                     key=lambda r: r["timestamp"])
        assert raw.timestamps[u] == [r["timestamp"] // 1000 for r in own]
        assert [raw.item_ids[i] for i in raw.sequences[u]] == [r["parent_asin"] for r in own]
    assert raw.reviews["summary"][0].startswith("Title of ")
    assert raw.reviews["reviewer_name"] == [None] * n_reviews
    assert raw.user_names == [None] * n_users


def test_2023_meta_titles_attributes_and_main_image(sample_2023):
    _, reviews, meta = sample_2023
    raw = import_amazon(reviews, meta, kcore=0)
    i = raw.item_ids.index("B000000003")
    assert raw.item_titles[i] == "Strap B000000003"
    assert raw.item_attributes[i] == {
        "brand": "Fender", "categories": ["Musical Instruments", "Straps"],
        "main_category": "Musical Instruments", "price": 12.99,
        "image_url": "http://l/B000000003.jpg"}  # the MAIN variant's large image


def test_2023_through_the_cli_and_images_from_meta(sample_2023, tmp_path, run_cli):
    rows, reviews, meta = sample_2023
    code, out, err = run_cli("data", "import", "amazon", reviews, "--meta", meta,
                             "--negatives", 5, "--out", tmp_path / "ds")
    assert code == 0, err
    ds = load_dataset(tmp_path / "ds")
    n_users, n_items, n_reviews = _kcore_counts(rows, 5)
    assert ds.stats()["interactions"] == n_reviews
    assert (ds.num_items, ds.reviews.num_rows) == (n_items, n_reviews)
    urls = image_urls_from_meta(meta, set(ds.item_ids))
    assert len(urls) == n_items
    assert urls["B000000007"] == "http://l/B000000007.jpg"


def test_2023_image_choice_falls_back():
    only_thumb = {"parent_asin": "P", "images": [{"thumb": "t.jpg", "variant": "PT01"}]}
    assert url_of(only_thumb) == "t.jpg"
    assert url_of({"parent_asin": "P", "images": []}) is None
    hi_res = {"parent_asin": "P", "images": [{"large": None, "hi_res": "h.jpg",
                                              "variant": "MAIN"}]}
    assert url_of(hi_res) == "h.jpg"


def test_2023_bad_timestamp_names_the_line(tmp_path):
    from mfmrec.errors import DataError

    rows = [json.dumps(_review("u", "p", T0)), json.dumps({**_review("u", "p", T0),
                                                           "timestamp": "yesterday"})]
    path = write_lines(tmp_path / "r.jsonl", rows)
    with pytest.raises(DataError, match=r"r.jsonl:2: field 'timestamp'"):
        import_amazon(path, kcore=0)
