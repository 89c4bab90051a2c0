"""The raw Amazon importer: k-core, ordering, reviews, meta (2014 and 2018 schemas)."""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict

import numpy as np
import pytest

from mfmrec.data import load_dataset, write_dataset
from mfmrec.data.importers.amazon import import_amazon, kcore_mask
from mfmrec.errors import DataError

MI = "data/amazon/musical_instruments/reviews_Musical_Instruments_5.json.gz"


def test_kcore_is_iterated_until_stable():
    # u4 (1 review) goes; then i3 has 1 review and goes; then u3 has 1 and goes
    users = np.array([1, 1, 2, 2, 3, 3, 4])
    items = np.array([1, 2, 1, 2, 3, 1, 3])
    assert kcore_mask(users, items, 2).tolist() == [1, 1, 1, 1, 0, 0, 0]
    assert kcore_mask(users, items, 0).all()
    assert not kcore_mask(users, items, 3).any()


def test_kcore_through_the_importer(amazon_file, review):
    rows = [review("u1", "i1", 1), review("u1", "i2", 2), review("u2", "i1", 3),
            review("u2", "i2", 4), review("u3", "i3", 5), review("u3", "i1", 6),
            review("u4", "i3", 7)]
    raw = import_amazon(amazon_file(rows), kcore=2)
    assert raw.user_ids == ["u1", "u2"]
    assert raw.item_ids == ["i1", "i2"]
    assert raw.sequences == [[0, 1], [0, 1]]
    assert raw.provenance["reviews_read"] == 7


def test_equal_times_keep_file_order_never_item_order(amazon_file, review):
    rows = [review("u1", "iB", 5, text="b"), review("u1", "iA", 5, text="a"),
            review("u1", "iC", 1, text="c"), review("u1", "iB", 5, text="repeat")]
    raw = import_amazon(amazon_file(rows), kcore=0)
    seq = [raw.item_ids[i] for i in raw.sequences[0]]
    assert seq == ["iC", "iB", "iA"]  # the exact repeat (u1, iB, 5) is dropped
    assert raw.timestamps == [[1, 5, 5]]
    assert raw.reviews["text"] == ["c", "b", "a"]  # reviews follow the sequence order


def test_review_columns_and_names(amazon_file, review):
    rows = [review("u1", "i1", 2, rating=4, text="The strap works. Nice strap for a bass.",
                   summary="Good strap"),
            review("u1", "i2", 1, rating=2.0, summary="Meh", name="Ann"),
            review("u2", "i1", 3, name="Bob")]
    raw = import_amazon(amazon_file(rows, gz=True), kcore=0)
    r = raw.reviews
    assert r["user"] == [0, 0, 1]
    assert [raw.item_ids[i] for i in r["item"]] == ["i2", "i1", "i1"]
    assert r["rating"] == [2.0, 4.0, 5.0]
    assert r["summary"] == ["Meh", "Good strap", "ok"]
    assert r["reviewer_name"] == ["Ann", None, "Bob"]
    assert r["time"] == [1, 2, 3]
    assert r["explanation"][1] == "Nice strap for a bass."
    assert r["feature"][1] == "strap"
    assert raw.user_names == ["Ann", "Bob"]  # the first non-empty name in the file
    assert raw.provenance["schema"] == "2014"
    assert "explanations" in raw.extra_meta


def test_gzip_and_plain_give_the_same_dataset(amazon_file, grid_reviews):
    plain = import_amazon(amazon_file(grid_reviews(), name="a.json"), kcore=0)
    packed = import_amazon(amazon_file(grid_reviews(), name="a.json", gz=True), kcore=0)
    assert plain.sequences == packed.sequences
    assert plain.reviews == packed.reviews


def test_meta_2014_python_literals_and_2018_json(amazon_file, review, tmp_path):
    rows = [review("u1", "iA", 1, vote="3"), review("u1", "iB", 2), review("u2", "iC", 3)]
    meta = tmp_path / "meta.json.gz"
    with gzip.open(meta, "wt") as fh:
        fh.write("{'asin': 'iA', 'title': 'Pop &amp; Filter', 'price': 12.5, "
                 "'imUrl': 'http://x/a.jpg', 'brand': 'Nady', "
                 "'categories': [['Music', 'Mics'], ['Music']]}\n")
        fh.write(json.dumps({"asin": "iB", "title": "Strap", "price": "$1,299.00",
                             "imageURLHighRes": ["http://hi/b.jpg"],
                             "imageURL": ["http://lo/b.jpg"], "category": ["Music"]}) + "\n")
        fh.write(json.dumps({"asin": "iZ", "title": "not reviewed"}) + "\n")
    raw = import_amazon(amazon_file(rows), meta, kcore=0)
    assert raw.item_titles == ["Pop & Filter", "Strap", None]
    assert raw.item_attributes[0] == {"brand": "Nady", "categories": ["Music", "Mics"],
                                      "price": 12.5, "image_url": "http://x/a.jpg"}
    assert raw.item_attributes[1] == {"categories": ["Music"], "price": 1299.0,
                                      "image_url": "http://hi/b.jpg"}
    assert raw.item_attributes[2] is None
    assert raw.provenance["schema"] == "2018"


def test_meta_literal_is_never_evaluated(amazon_file, review, tmp_path):
    marker = tmp_path / "pwned"
    meta = tmp_path / "meta.json"
    meta.write_text(f"{{'asin': 'iA', 'title': __import__('pathlib').Path('{marker}')"
                    ".touch()}\n")
    with pytest.raises(DataError, match=r"meta.json:1: invalid JSON"):
        import_amazon(amazon_file([review("u1", "iA", 1)]), meta, kcore=0)
    assert not marker.exists()


def test_written_items_carry_image_url(amazon_file, grid_reviews, tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"asin": "i000", "imageURL": ["http://img/0.jpg"]}) + "\n")
    out = write_dataset(import_amazon(amazon_file(grid_reviews()), meta), tmp_path / "ds")
    ds = load_dataset(out)
    assert ds.attributes[ds.item_index["i000"]] == {"image_url": "http://img/0.jpg"}
    assert ds.reviews.num_rows == 600
    assert ds.candidates("test").items.shape == (120, 100)


# ---- the real Musical Instruments 5-core file ------------------------------------------
@pytest.fixture(scope="module")
def mi_raw(shared):
    return import_amazon(shared / MI)


def test_musical_instruments_official_statistics(mi_raw):
    assert (len(mi_raw.user_ids), len(mi_raw.item_ids)) == (1429, 900)
    assert sum(map(len, mi_raw.sequences)) == 10261
    assert len(mi_raw.reviews["user"]) == 10261
    users = Counter(mi_raw.reviews["user"])
    items = Counter(mi_raw.reviews["item"])
    assert min(users.values()) >= 5 and min(items.values()) >= 5


def test_musical_instruments_order_follows_time_then_file(mi_raw, shared):
    by_user = defaultdict(list)
    with gzip.open(shared / MI, "rt") as fh:
        for line_no, line in enumerate(fh):
            r = json.loads(line)
            by_user[r["reviewerID"]].append((r["unixReviewTime"], line_no, r["asin"]))
    for u, uid in enumerate(mi_raw.user_ids):
        expected = [asin for _, _, asin in sorted(by_user[uid])]
        assert [mi_raw.item_ids[i] for i in mi_raw.sequences[u]] == expected


def test_musical_instruments_explanations(mi_raw):
    r = mi_raw.reviews
    assert all(r["explanation"])
    assert all(len(s.split()) <= 40 for s in r["explanation"])
    found = mi_raw.extra_meta["explanations"]["with_aspect_sentence"]
    assert found > 0.95 * 10261
    for sentence, feature in zip(r["explanation"][:200], r["feature"][:200], strict=True):
        if feature is not None and feature in sentence.lower():
            assert 4 <= len(sentence.split()) <= 40


# ---- the streaming importer reproduces the previous (in-memory) one exactly ------------
def digest(raw) -> str:
    """sha256 of everything an import produces except the absolute source path."""
    import hashlib

    fields = {k: v for k, v in raw.__dict__.items() if k != "provenance"}
    fields["provenance"] = {k: v for k, v in raw.provenance.items() if k != "source"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def messy_reviews() -> list[dict]:
    """Repeats, equal times, names, users and items that the 3-core removes."""
    rows = []
    for n in range(400):
        u, i = f"u{(n * 7) % 53}", f"i{(n * 13) % 41 if n % 5 else n}"
        row = {"reviewerID": u, "asin": i, "overall": 1 + n % 5, "unixReviewTime": 1000 + n // 3,
               "summary": f"s{n}", "reviewText": f"The strap {n} is solid. Great tone {n}."}
        if n % 4:
            row["reviewerName"] = f"name {u}"
        rows.append(row)
        if n % 17 == 0:
            rows.append(dict(rows[-1]))  # an exact repeat
    return rows


# digests of the importer before streaming (commit 91d1b25), same inputs
MESSY_DIGEST = "e4b1ac218773574cd427d23a6abef58821b22807396038181b9fd56800a8e492"
MI_DIGEST = "a9ce5f793c5940595f8e5c40d789793ad7683c6e61c6d72589d2d771b47e11ba"


def test_streaming_output_equals_the_previous_importer(amazon_file):
    raw = import_amazon(amazon_file(messy_reviews(), name="messy.json", gz=True), kcore=3)
    assert raw.provenance["reviews_read"] == 400  # 424 lines, 24 exact repeats
    assert len(raw.reviews["user"]) == 329  # 71 reviews of 1-review items removed
    assert digest(raw) == MESSY_DIGEST


def test_streaming_output_equals_the_previous_importer_on_the_real_file(mi_raw):
    assert digest(mi_raw) == MI_DIGEST
