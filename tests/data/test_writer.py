"""The on-disk format written by write_dataset and read back by the one loader."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from mfmrec.data import RawDataset, load_dataset, write_dataset
from mfmrec.errors import DataError

N_ITEMS = 12


def tiny_raw(**kw) -> RawDataset:
    seqs = [[0, 1, 2, 3], [4, 5], [6, 7, 8]]
    n_rev = sum(map(len, seqs))
    users = [u for u, s in enumerate(seqs) for _ in s]
    items = [i for s in seqs for i in s]
    return RawDataset(
        name="tiny", user_ids=["ua", "ub", "uc"], item_ids=[f"B{i:02d}" for i in range(N_ITEMS)],
        sequences=seqs, user_names=["Ann", None, "Cy"],
        item_titles=[f"title {i}" for i in range(N_ITEMS)],
        item_images=["images/0.jpg"] + [None] * (N_ITEMS - 1),
        item_attributes=[{"brand": "X", "image_url": "http://a"}] + [None] * (N_ITEMS - 1),
        timestamps=[[10 * k for k in range(len(s))] for s in seqs],
        reviews={"user": users, "item": items, "rating": [4.0] * n_rev,
                 "summary": ["ok"] * n_rev, "text": ["text"] * n_rev,
                 "explanation": ["expl"] * n_rev, "feature": ["f"] * n_rev,
                 "reviewer_name": ["n"] * n_rev, "time": list(range(n_rev))},
        provenance={"source": "hand-made", "importer": "test"}, **kw)


@pytest.fixture
def ds(tmp_path):
    return load_dataset(write_dataset(tiny_raw(), tmp_path / "tiny", seed=3, num_negatives=5))


def test_files_and_columns(ds):
    names = {p.relative_to(ds.root).as_posix() for p in ds.root.rglob("*") if p.is_file()}
    assert names == {"dataset.json", "users.parquet", "items.parquet", "interactions.parquet",
                     "reviews.parquet", "splits/sequential.parquet", "splits/reviews.parquet",
                     "negatives/candidates.parquet"}
    items = pq.read_table(ds.root / "items.parquet")
    assert items.column_names == ["item", "item_id", "number", "title", "image", "attributes"]
    assert pq.read_table(ds.root / "interactions.parquet").column_names == [
        "user", "item", "position", "timestamp"]
    assert ds.reviews.column_names == ["user", "item", "rating", "summary", "text",
                                       "explanation", "feature", "reviewer_name", "time"]


def test_dataset_json(ds):
    meta = json.loads((ds.root / "dataset.json").read_text())
    assert meta["statistics"] == {"users": 3, "items": 12, "interactions": 9, "reviews": 9,
                                  "avg_seq_len": 3.0, "sparsity": 0.75}
    assert (meta["seed"], meta["indexing"], meta["num_negatives"]) == (3, "random", 5)
    assert meta["provenance"] == {"source": "hand-made", "importer": "test"}
    assert meta["simulated"] is False


def test_loader_reads_everything_back(ds):
    assert (ds.num_users, ds.num_items) == (3, 12)
    assert [s.tolist() for s in ds.sequences] == [[0, 1, 2, 3], [4, 5], [6, 7, 8]]
    assert [s.tolist() for s in ds.train_sequences] == [[0, 1], [4, 5], [6]]
    assert ds.user_names == ["Ann", None, "Cy"]
    assert ds.item_ids[3] == "B03" and ds.titles[3] == "title 3"
    assert ds.attributes[0] == {"brand": "X", "image_url": "http://a"} and ds.attributes[1] == {}
    assert ds.image_paths()[0] == ds.root / "images/0.jpg" and ds.image_paths()[1] is None
    assert sorted(ds.numbers.tolist()) == list(range(1, 13))
    assert all(ds.item_of_number[int(n)] == i for i, n in enumerate(ds.numbers))
    assert ds.interactions.column("timestamp").to_pylist()[:4] == [0, 10, 20, 30]


def test_targets_follow_leave_one_out(ds):
    users, hists, targets = ds.targets("valid")
    assert users.tolist() == [0, 2] and targets.tolist() == [2, 7]
    assert [h.tolist() for h in hists] == [[0, 1], [6]]
    users, hists, targets = ds.targets("test")
    assert targets.tolist() == [3, 8]
    assert [h.tolist() for h in hists] == [[0, 1, 2], [6, 7]]
    cand = ds.candidates("test")
    assert cand.items.shape == (2, 6)
    assert cand.positives.tolist() == [3, 8]


def test_review_splits_partition_the_reviews(ds):
    sizes = [ds.reviews_of(s).num_rows for s in ("train", "valid", "test")]
    assert sum(sizes) == 9 and sizes[0] >= 3


def test_rewriting_a_dataset_needs_force_and_replaces_it(tmp_path):
    out = write_dataset(tiny_raw(), tmp_path / "d", num_negatives=3)
    with pytest.raises(DataError, match="already holds a dataset; pass --force"):
        write_dataset(tiny_raw(), out, num_negatives=4)
    write_dataset(tiny_raw(), out, num_negatives=4, force=True)
    assert load_dataset(out).candidates("test").items.shape == (2, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_refuses_to_replace_a_folder_that_is_not_a_dataset(tmp_path):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(DataError, match="not an mfmrec dataset; refusing"):
        write_dataset(tiny_raw(), precious)
    assert (precious / "thesis.tex").read_text() == "years of work"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_dataset(write_dataset(tiny_raw(), empty, num_negatives=2)).num_users == 3


def test_too_many_negatives_leaves_nothing_behind(tmp_path):
    with pytest.raises(DataError, match="need 9 negatives"):
        write_dataset(tiny_raw(), tmp_path / "x", num_negatives=9)
    assert list(tmp_path.iterdir()) == []


def test_empty_dataset_is_refused(tmp_path):
    raw = RawDataset(name="e", user_ids=["u"], item_ids=["i"], sequences=[[]])
    with pytest.raises(DataError, match="empty dataset"):
        write_dataset(raw, tmp_path / "e")


def test_simulated_flag_round_trips(tmp_path):
    ds = load_dataset(write_dataset(tiny_raw(simulated=True), tmp_path / "s", num_negatives=2))
    assert ds.simulated is True
    assert np.asarray(ds.candidates("valid").items).shape == (2, 3)


def test_dataset_without_targets_has_empty_candidates(tmp_path):
    raw = RawDataset(name="short", user_ids=["u", "v"], item_ids=["a", "b", "c"],
                     sequences=[[0, 1], [2]])
    ds = load_dataset(write_dataset(raw, tmp_path / "s", num_negatives=1))
    assert ds.candidates("test").items.shape == (0, 2)
    assert ds.targets("valid")[0].tolist() == []
    assert [s.tolist() for s in ds.train_sequences] == [[0, 1], [2]]
