"""The feature store: layout, metadata, alignment checks, and the missing-aware lookup."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from mfmrec.data import load_dataset
from mfmrec.errors import DataError
from mfmrec.features.store import (
    MissingAwareFeatures,
    feature_path,
    list_features,
    load_features,
    load_item_features,
    save_features,
)


def test_round_trip_zeroes_missing_rows_and_names_missing_items(make_dataset):
    root = make_dataset(n=4)
    matrix = torch.arange(8, dtype=torch.float32).reshape(4, 2)
    missing = torch.tensor([False, True, False, True])
    path = save_features(root, "enc", matrix, missing, {"encoder": "enc", "preprocessing": "x"})
    assert path == root / "features" / "enc.safetensors"
    store = load_features(root, "enc")
    assert store.matrix.tolist() == [[0, 1], [0, 0], [4, 5], [0, 0]]
    assert store.missing.tolist() == [False, True, False, True]
    assert store.meta["missing_items"] == ["I1", "I3"]
    assert store.meta["num_missing"] == 2 and store.meta["dim"] == 2
    assert store.encoder == "enc" and store.num_items == 4
    sidecar = json.loads((root / "features" / "enc.json").read_text())
    assert sidecar == store.meta
    # the caller's tensor is not modified by the zeroing
    assert matrix[1].tolist() == [2, 3]


@pytest.mark.slow
def test_metadata_is_one_key_so_files_are_byte_stable_across_processes(tmp_path):
    code = ("import torch,sys; from mfmrec.features.store import save_features as s; "
            "s(sys.argv[1], 'e', torch.ones(3, 2), torch.tensor([0, 1, 0]).bool(), "
            "{'encoder': 'e', 'b': 1, 'a': [1, 2], 'z': {'y': 1, 'x': 2}}, ['a', 'b', 'c'])")
    for d in ("one", "two"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / d)], check=True)
    first = (tmp_path / "one/features/e.safetensors").read_bytes()
    assert first == (tmp_path / "two/features/e.safetensors").read_bytes()
    with safe_open(str(tmp_path / "one/features/e.safetensors"), "pt") as fh:
        assert list(fh.metadata()) == ["mfmrec"]


def test_layer_store_keeps_three_dimensions(make_dataset):
    root = make_dataset(n=3)
    save_features(root, "enc-layers", torch.ones(3, 4, 2), torch.zeros(3, dtype=torch.bool),
                  {"encoder": "enc"})
    store = load_features(load_dataset(root), "enc-layers")
    assert tuple(store.matrix.shape) == (3, 4, 2) and store.meta["shape"] == [3, 4, 2]
    assert list_features(root) == ["enc-layers"]


def test_load_refuses_wrong_row_count_and_other_item_order(make_dataset, tmp_path):
    root = make_dataset(n=4)
    save_features(tmp_path / "loose", "enc", torch.ones(3, 2), torch.zeros(3), {},
                  item_ids=["a", "b", "c"])
    feature_path(root, "enc").parent.mkdir()
    feature_path(root, "enc").write_bytes(feature_path(tmp_path / "loose", "enc").read_bytes())
    with pytest.raises(DataError, match="3 rows but the dataset has 4 items"):
        load_features(root, "enc")
    save_features(tmp_path / "loose", "enc", torch.ones(4, 2), torch.zeros(4), {},
                  item_ids=["I3", "I2", "I1", "I0"])
    feature_path(root, "enc").write_bytes(feature_path(tmp_path / "loose", "enc").read_bytes())
    with pytest.raises(DataError, match="another item order"):
        load_features(root, "enc")


def test_missing_store_and_bad_names_are_user_errors(make_dataset):
    root = make_dataset(n=3)
    with pytest.raises(DataError, match="mfmrec features extract"):
        load_features(root, "clip-vit-b32")
    with pytest.raises(DataError, match="file name"):
        save_features(root, "../evil", torch.ones(3, 1), torch.zeros(3), {})
    feature_path(root, "junk").parent.mkdir(exist_ok=True)
    feature_path(root, "junk").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable safetensors"):
        load_features(root, "junk")


def test_missing_aware_lookup_substitutes_a_learned_vector():
    table = torch.tensor([[1.0, 2.0], [9.0, 9.0], [3.0, 6.0]])
    feats = MissingAwareFeatures(table, torch.tensor([False, True, False]))
    # starts at the mean of the present rows (1+3)/2, (2+6)/2
    assert feats.missing_vector.tolist() == [2.0, 4.0]
    out = feats(torch.tensor([[0, 1], [2, 1]]))  # (2, 2, d)
    assert out.tolist() == [[[1, 2], [2, 4]], [[3, 6], [2, 4]]]
    out.sum().backward()
    assert feats.missing_vector.grad.tolist() == [2.0, 2.0]  # two missing lookups
    assert list(feats.state_dict()) == ["missing_vector"]  # the table is not checkpointed


def test_missing_aware_lookup_of_layer_tables():
    table = torch.arange(12, dtype=torch.float32).reshape(3, 2, 2)  # (N, L+1, d)
    feats = MissingAwareFeatures(table, torch.tensor([True, False, False]))
    assert feats.missing_vector.shape == (2, 2)
    out = feats(torch.tensor([0, 2]))  # (2, L+1, d)
    assert torch.equal(out[0], feats.missing_vector.detach())
    assert torch.equal(out[1], table[2])


def test_item_features_are_one_vector_per_item_or_a_one_line_error(make_dataset):
    ds = load_dataset(make_dataset(n=3))
    with pytest.raises(DataError) as err:
        load_item_features(ds, "enc", "VBPR")
    msg = str(err.value)
    assert "\n" not in msg and str(ds.features_path("enc")) in msg and "VBPR needs" in msg
    assert "(stores here: none;" in msg
    assert f"mfmrec features extract {ds.root} --encoder ENCODER" in msg
    missing = torch.tensor([False, True, False])
    save_features(ds, "enc", torch.ones(3, 2), missing, {"encoder": "enc"})
    with pytest.raises(DataError, match=r"'other' not found; VBPR needs them \(stores here: enc;"):
        load_item_features(ds, "other", "VBPR")
    store = load_item_features(ds, "enc", "VBPR")
    assert store.matrix.shape == (3, 2) and store.missing.tolist() == missing.tolist()
    save_features(ds, "enc-layers", torch.ones(3, 4, 2), missing, {"encoder": "enc"})
    with pytest.raises(DataError, match=r"VIP5 needs one \(N, d\) feature row per item"):
        load_item_features(ds, "enc-layers", "VIP5")
