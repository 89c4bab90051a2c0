"""``mfmrec ids build | show``: reproducible files, --from-run, one-line errors."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from mfmrec.data import load_dataset
from mfmrec.ids import load_ids
from mfmrec.models.base import DIRECT, Recommender
from mfmrec.models.registry import register


def test_build_twice_gives_byte_identical_files(run_cli, tiny_ids_data):
    paths = [tiny_ids_data / "ids" / f"sem.{ext}"
             for ext in ("parquet", "json", "vectors.safetensors")]
    blobs = []
    for _ in range(2):
        code, out, err = run_cli("ids", "build", tiny_ids_data, "--name", "sem", "--features",
                                 "img,txt:0.5", "--levels", 2, "--codebook", 4, "--quiet")
        assert code == 0, err
        assert "usage" in out and "collisions" in out and "built in" in out
        assert all(str(p) in out for p in paths)
        blobs.append([p.read_bytes() for p in paths])
    assert blobs[0] == blobs[1]

    table = pq.read_table(paths[0])
    assert str(table.schema.field("item").type) == "int32"
    assert str(table.schema.field("codes").type) == "list<element: int32>"
    assert table.schema.metadata is None or b"pandas" not in table.schema.metadata
    meta = json.loads(paths[1].read_text())
    assert "build_seconds" not in paths[1].read_text()
    assert json.loads((tiny_ids_data / "ids" / "sem.timing.json").read_text())["build_seconds"] >= 0
    assert [(b["name"], b["weight"]) for b in meta["features"]] == [("img", 1.0), ("txt", 0.5)]
    assert meta["features"][0]["num_missing"] == 2 and meta["method"] == "rkmeans"

    ids = load_ids(tiny_ids_data, "sem", load_dataset(tiny_ids_data).item_ids)
    assert ids.levels == 2 and ids.codebook == 4 and len(ids.codes) == 40
    assert all(len(c) == 3 for c in ids.codes) and len(set(ids.codes)) == 40
    assert ids.dedup_size == max(c[-1] for c in ids.codes) + 1
    code, out, _ = run_cli("ids", "show", tiny_ids_data, "sem")
    assert code == 0 and "rkmeans on img:1, txt:0.5" in out and "2 x 4 codes" in out


def test_rqvae_build_is_reproducible_too(run_cli, tiny_ids_data):
    blobs = []
    for _ in range(2):
        code, out, err = run_cli("ids", "build", tiny_ids_data, "--name", "vq", "--features",
                                 "img,txt", "--method", "rqvae", "--epochs", 3, "--levels", 2,
                                 "--codebook", 4, "--quiet")
        assert code == 0, err
        blobs.append([(tiny_ids_data / "ids" / f"vq.{e}").read_bytes() for e in ("parquet",
                                                                               "json")])
    assert blobs[0] == blobs[1]
    meta = json.loads(blobs[0][1])
    assert meta["method"] == "rqvae" and meta["rqvae"]["epochs"] == 3
    assert meta["rqvae"]["beta"] == 0.25


def test_load_ids_refuses_another_item_order(tiny_ids_data, run_cli):
    from mfmrec.errors import DataError

    assert run_cli("ids", "build", tiny_ids_data, "--name", "s", "--features", "txt",
                   "--levels", 1, "--codebook", 4)[0] == 0
    ids = load_dataset(tiny_ids_data).item_ids
    with pytest.raises(DataError, match="another item order"):
        load_ids(tiny_ids_data, "s", ids[::-1])
    with pytest.raises(DataError, match="no such semantic IDs"):
        load_ids(tiny_ids_data, "nope")
    path = tiny_ids_data / "ids" / "s.parquet"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match=f"{path}: not a readable parquet file"):
        load_ids(tiny_ids_data, "s")
    with pytest.raises(DataError, match="ids name"):
        load_ids(tiny_ids_data, "../escape")


@pytest.mark.parametrize("model", [{"name": "bpr-mf", "dim": 6},
                                   {"name": "sasrec", "hidden": 8, "heads": 1, "layers": 1}])
def test_from_run_quantises_the_item_table(run_cli, tiny_ids_data, make_run, model):
    from mfmrec.cli.ids import item_table_from_run

    run = make_run(tiny_ids_data, model)
    table = item_table_from_run(run, tiny_ids_data)
    assert table.shape == (40, model.get("dim", model.get("hidden")))  # padding row dropped
    code, out, err = run_cli("ids", "build", tiny_ids_data, "--name", "cf", "--from-run", run,
                             "--levels", 2, "--codebook", 4, "--quiet")
    assert code == 0, err
    meta = json.loads((tiny_ids_data / "ids" / "cf.json").read_text())
    assert meta["source"] == str(run) and meta["features"][0]["name"] == "item-embeddings"


@dataclass
class NoItemsConfig:
    """No fields: a model without an item table."""


class NoItems(Recommender):
    name = "test-no-item-table"
    tasks = frozenset({DIRECT})

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(2, 2)


@register("test-no-item-table", NoItemsConfig, "test-only model without an item table")
def _no_items(config: NoItemsConfig, dataset) -> NoItems:
    return NoItems()


def _one_line_error(run_cli, *args) -> str:
    code, out, err = run_cli(*args)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_bad_input_is_one_line_exit_2_and_writes_nothing(run_cli, tiny_ids_data, make_run):
    build = ("ids", "build", tiny_ids_data, "--name", "bad", "--levels", 2)
    err = _one_line_error(run_cli, *build, "--features", "img,clip", "--codebook", 4)
    assert "'clip'" in err and "available: img, txt" in err
    err = _one_line_error(run_cli, *build, "--features", "img", "--codebook", 64)
    assert "codebook 64 is larger than the 40 items" in err
    err = _one_line_error(run_cli, *build, "--features", "img", "--method", "pq")
    assert "method" in err

    from mfmrec.features.store import save_features

    bad = torch.randn(40, 5)
    bad[11, 2] = float("nan")
    save_features(tiny_ids_data, "nan", bad, torch.zeros(40, dtype=torch.bool), {})
    err = _one_line_error(run_cli, *build, "--features", "nan", "--codebook", 4)
    assert "item 11 (I11)" in err and "NaN" in err

    run = make_run(tiny_ids_data, {"name": "test-no-item-table"})
    err = _one_line_error(run_cli, *build, "--from-run", run, "--codebook", 4)
    assert f"{run}: model test-no-item-table has no item embedding table" in err
    err = _one_line_error(run_cli, *build, "--from-run", run, "--features", "img")
    assert "exactly one" in err
    assert not (tiny_ids_data / "ids").exists()


def test_config_names_the_field():
    from mfmrec.errors import ConfigError
    from mfmrec.ids import IdBuildConfig, parse_features

    assert parse_features("a, b:0.5") == (["a", "b"], {"b": 0.5})
    with pytest.raises(ConfigError, match="features"):
        parse_features("a:heavy")
    with pytest.raises(ConfigError, match="weights"):
        IdBuildConfig(features=["a"], weights={"a": -1.0})
    with pytest.raises(ConfigError, match="codebook"):
        IdBuildConfig(codebook=1)


def test_inputs_are_normalised_weighted_and_zero_where_missing(tiny_ids_data):
    from mfmrec.ids import feature_inputs

    inputs = feature_inputs(tiny_ids_data, ["img", "txt"], {"txt": 0.5})
    x = inputs.matrix  # (40, 16 + 8)
    assert x.shape == (40, 24)
    assert torch.allclose(x[:, 16:].norm(dim=1), torch.full((40,), 0.5))
    norms = x[:, :16].norm(dim=1)
    assert norms[[3, 7]].tolist() == [0.0, 0.0]  # missing images keep a zero block
    assert torch.allclose(norms[[0, 1, 2, 4]], torch.ones(4))
