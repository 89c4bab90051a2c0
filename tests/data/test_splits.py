"""Splits, frozen negatives and item indexing: unit golden values and reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from mfmrec.data import load_dataset, write_dataset
from mfmrec.data import splits as S
from mfmrec.data.importers.amazon import import_amazon

MI = "data/amazon/musical_instruments/reviews_Musical_Instruments_5.json.gz"


def test_leave_one_out_labels():
    assert S.leave_one_out([1, 2, 3, 5]) == [
        ["train"], ["train", "train"], ["train", "valid", "test"],
        ["train", "train", "train", "valid", "test"]]


def test_leave_one_out_position_is_where_the_labels_put_each_target():
    for n in range(7):
        labels = S.leave_one_out([n])[0]
        for split in ("valid", "test"):
            at = S.leave_one_out_position(n, split)
            assert at == (labels.index(split) if split in labels else None)
    assert (S.leave_one_out_position(2, "test"), S.leave_one_out_position(3, "valid")) == (None, 1)
    with pytest.raises(ValueError, match="split must be"):
        S.leave_one_out_position(5, "train")


def test_item_numbers_sequential_and_random():
    rng = np.random.default_rng(0)
    # first appearance: 2, 0, 1; item 3 never appears and comes last
    assert S.item_numbers([[2, 0], [1, 2]], 4, "sequential", rng).tolist() == [2, 3, 1, 4]
    a = S.item_numbers([[0]], 50, "random", np.random.default_rng(5))
    b = S.item_numbers([[0]], 50, "random", np.random.default_rng(5))
    assert sorted(a.tolist()) == list(range(1, 51))
    assert a.tolist() == b.tolist()
    with pytest.raises(ValueError, match="indexing"):
        S.item_numbers([[0]], 1, "alphabetical", rng)


def test_split_reviews_keeps_a_training_review_per_user_and_item():
    rng = np.random.default_rng(3)
    users = rng.integers(0, 40, size=2000)
    items = rng.integers(0, 60, size=2000)
    labels = S.split_reviews(users, items, np.random.default_rng(1))
    assert (labels == "valid").sum() == 200 and (labels == "test").sum() == 200
    train = labels == "train"
    assert set(users[train]) == set(users) and set(items[train]) == set(items)


def test_split_reviews_with_only_anchors_keeps_everything_in_training():
    # every review is the only one of its item, so none may leave training
    labels = S.split_reviews(np.zeros(5, int), np.arange(5), np.random.default_rng(0))
    assert labels.tolist() == ["train"] * 5


def test_sample_candidates_properties():
    rng = np.random.default_rng(0)
    history = {1, 5, 7}
    cands = S.sample_candidates(history, 7, 200, 99, rng)
    assert len(cands) == 100 and len(set(cands.tolist())) == 100
    assert cands.tolist().count(7) == 1
    assert not (set(cands.tolist()) - {7}) & history
    with pytest.raises(ValueError, match="only 2 items outside the history"):
        S.sample_candidates({0, 1, 2}, 2, 5, 3, rng)


# ---- reproducibility of whole imports ----------------------------------------------------
FROZEN = ("splits/sequential.parquet", "splits/reviews.parquet", "negatives/candidates.parquet")


@pytest.fixture(scope="module")
def mi_imports(shared, tmp_path_factory):
    root = tmp_path_factory.mktemp("mi")
    return [load_dataset(write_dataset(import_amazon(shared / MI), root / name, seed=seed))
            for name, seed in (("a", 2022), ("b", 2022), ("c", 7))]


@pytest.mark.slow
def test_same_seed_gives_byte_identical_splits_and_negatives(mi_imports):
    a, b, c = mi_imports
    for rel in FROZEN:
        assert (a.root / rel).read_bytes() == (b.root / rel).read_bytes(), rel
    assert (a.root / "items.parquet").read_bytes() == (b.root / "items.parquet").read_bytes()
    assert not np.array_equal(a.candidates("test").items, c.candidates("test").items)
    assert not np.array_equal(a.numbers, c.numbers)


@pytest.mark.slow
def test_candidate_lists_on_real_data(mi_imports):
    ds = mi_imports[0]
    for split in ("valid", "test"):
        cand = ds.candidates(split)
        users, _, targets = ds.targets(split)
        assert cand.users.tolist() == users.tolist()
        assert cand.positives.tolist() == targets.tolist()
        assert cand.items.shape == (ds.num_users, 100)
        for u, pos, items in zip(cand.users, cand.positives, cand.items, strict=True):
            assert len(set(items.tolist())) == 100
            assert (items == pos).sum() == 1
            negatives = set(items.tolist()) - {int(pos)}
            assert not negatives & set(ds.sequences[u].tolist())


@pytest.mark.slow
def test_review_split_on_real_data(mi_imports):
    ds = mi_imports[0]
    sizes = {s: ds.reviews_of(s).num_rows for s in ("train", "valid", "test")}
    assert sizes == {"train": 8209, "valid": 1026, "test": 1026}
    train = ds.reviews_of("train")
    assert set(train.column("user").to_pylist()) == set(range(ds.num_users))
    assert set(train.column("item").to_pylist()) == set(range(ds.num_items))
