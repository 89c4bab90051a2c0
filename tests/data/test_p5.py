"""The P5/VIP5 importer, on a tiny directory and on the real Beauty and Sports splits."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from mfmrec.data import load_dataset, write_dataset
from mfmrec.data.importers.p5 import import_p5


def test_tiny_p5_directory(p5_dir):
    src = p5_dir({2: [3, 1], 1: [1, 2, 3, 4]}, n_items=5)
    raw = import_p5(src)
    assert raw.user_ids == ["U1", "U2"]  # P5's user id order, not line order
    assert raw.item_ids == ["A1", "A2", "A3", "A4", "A5"]
    assert raw.sequences == [[0, 1, 2, 3], [2, 0]]
    assert raw.item_titles[:2] == ["item 1", "item 2"]
    assert raw.provenance["importer"] == "p5"


class _Trap:
    """Unpickling this object creates a marker file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_pickles_in_a_p5_directory_are_never_unpickled(p5_dir, tmp_path):
    src = p5_dir({1: [1, 2, 3]})
    marker = tmp_path / "unpickled"
    for name in ("user_id_name.pkl", "item_id_name.pkl", "datamaps.pkl"):
        (src / name).write_bytes(pickle.dumps(_Trap(marker)))
    assert not marker.exists()
    import_p5(src)
    assert not marker.exists()
    pickle.loads((src / "datamaps.pkl").read_bytes())  # the trap is live
    assert marker.exists()


def test_sequential_indexing_is_first_appearance_order(p5_dir, tmp_path):
    src = p5_dir({1: [3, 1, 3], 2: [2, 1, 5]}, n_items=6)
    ds = load_dataset(write_dataset(import_p5(src), tmp_path / "o", indexing="sequential",
                                    num_negatives=2))
    # first appearance: A3, A1, A2, A5; never seen: A4, A6 (in index order)
    assert ds.numbers.tolist() == [2, 3, 1, 5, 4, 6]
    assert ds.item_of_number[1] == 2


# ---- real data ---------------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("beauty", {"users": 22363, "items": 12101, "interactions": 198502}),
    ("sports", {"users": 35598, "items": 18357, "interactions": 296337}),
])
@pytest.mark.slow
def test_real_p5_statistics_through_the_cli(name, expected, shared, run_cli, tmp_path):
    out = tmp_path / name
    code, _, err = run_cli("data", "import", "p5", shared / "data/amazon" / name, "--out", out)
    assert code == 0, err
    code, stdout, _ = run_cli("data", "stats", out, "--json")
    stats = json.loads(stdout)
    assert code == 0
    assert {k: stats[k] for k in expected} == expected
    assert stats["reviews"] == 0


def _mean_gap(ds) -> tuple[float, float]:
    """Mean |number difference| of consecutive items in histories, and the share of 1s."""
    gaps = np.concatenate([np.abs(np.diff(ds.numbers[s])) for s in ds.sequences])
    return float(gaps.mean()), float((gaps == 1).mean())


@pytest.fixture(scope="module")
def beauty_raw(shared):
    return import_p5(shared / "data/amazon/beauty")


@pytest.mark.slow
def test_random_indexing_hides_the_order_sequential_reproduces_the_leak(beauty_raw,
                                                                        tmp_path):
    rand = load_dataset(write_dataset(beauty_raw, tmp_path / "r", indexing="random"))
    seq = load_dataset(write_dataset(beauty_raw, tmp_path / "s", indexing="sequential"))
    n = rand.num_items
    rand_gap, rand_ones = _mean_gap(rand)
    seq_gap, seq_ones = _mean_gap(seq)
    # two independent uniform numbers in 1..N differ by about N/3 on average
    assert abs(rand_gap - n / 3) < 0.05 * n / 3
    # P5's numbering: far closer on average and 3.5% of neighbours exactly consecutive
    assert seq_gap < 0.85 * n / 3
    assert seq_ones > 0.02 and seq_ones > 50 * rand_ones
    # sequential indexing reproduces P5's own item ids exactly
    assert seq.numbers.tolist() == list(range(1, n + 1))
    assert rand.meta["indexing"] == "random" and seq.meta["indexing"] == "sequential"
