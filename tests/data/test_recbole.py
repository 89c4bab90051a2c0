"""The RecBole atomic-file importer."""

from __future__ import annotations

import pytest

from mfmrec.data import load_dataset, write_dataset
from mfmrec.data.importers.recbole import import_recbole, parse_header
from mfmrec.errors import DataError

HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"


def test_parse_header_checks_types(tmp_path):
    assert parse_header(HEADER + "\n", tmp_path / "x.inter") == [
        ("user_id", "token"), ("item_id", "token"), ("rating", "float"),
        ("timestamp", "float")]
    with pytest.raises(DataError, match=r"x.inter:1: header column 'item_id': type must be "
                                        r"token, got float"):
        parse_header("user_id:token\titem_id:float", tmp_path / "x.inter")
    with pytest.raises(DataError, match="unknown type 'date'"):
        parse_header("user_id:token\tday:date", tmp_path / "x.inter")


def test_order_by_timestamp_with_file_order_on_ties(recbole_dir):
    d = recbole_dir([HEADER, "u2\tb\t3\t20", "u1\tz\t5\t30", "u1\ty\t4\t10",
                     "u1\tx\t4\t30", "u2\ta\t1\t20.5"])
    raw = import_recbole(d)
    assert raw.user_ids == ["u2", "u1"]  # first appearance in the file
    assert raw.item_ids == ["b", "z", "y", "x", "a"]
    seqs = [[raw.item_ids[i] for i in s] for s in raw.sequences]
    assert seqs == [["b", "a"], ["y", "z", "x"]]  # z before x: same time, file order
    assert raw.timestamps == [[20, 20], [10, 30, 30]]
    assert raw.name == "tiny"
    assert raw.reviews is None


def test_file_order_without_timestamp(recbole_dir):
    d = recbole_dir(["user_id:token\titem_id:token", "u1\tc", "u1\ta", "u1\tb"])
    raw = import_recbole(d / "tiny.inter")  # the .inter file itself is accepted too
    assert [[raw.item_ids[i] for i in s] for s in raw.sequences] == [["c", "a", "b"]]
    assert raw.timestamps is None
    assert raw.provenance["order"].startswith("file order")


def test_item_file_gives_titles_and_attributes(recbole_dir):
    d = recbole_dir(
        ["user_id:token\titem_id:token", "u1\ti1", "u1\ti2", "u2\ti1"],
        ["item_id:token\ttitle:token_seq\tcategories:token_seq\tprice:float\tbrand:token",
         "i2\tred mug\thome kitchen\t9.5\tAcme", "i9\tunused\tx\t1\tB",
         "i1\tblue lamp\t\t2\t"])
    raw = import_recbole(d)
    assert raw.item_titles == ["blue lamp", "red mug"]
    assert raw.item_attributes == [
        {"price": 2.0},
        {"categories": ["home", "kitchen"], "price": 9.5, "brand": "Acme"}]
    assert raw.provenance["files"] == ["tiny.inter", "tiny.item"]


def test_recbole_round_trip_through_the_writer(recbole_dir, tmp_path):
    lines = [HEADER] + [f"u{u}\ti{(u + k) % 120}\t5\t{k}" for u in range(4) for k in range(4)]
    d = recbole_dir(lines + [f"x{i}\ti{i}\t1\t0" for i in range(120)])
    ds = load_dataset(write_dataset(import_recbole(d), tmp_path / "out", seed=1))
    assert (ds.num_users, ds.num_items) == (124, 120)
    assert ds.sequences[0].tolist() == [ds.item_index[f"i{k}"] for k in range(4)]
    assert ds.candidates("valid").items.shape == (4, 100)  # x* users have no targets
