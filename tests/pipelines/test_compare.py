"""`mfmrec compare`: train configs alike, evaluate them alike, one table and two charts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from mfmrec.pipelines.compare import plan_overrides

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

TINY = ["--set", "train.epochs=1", "train.batch_size=16", "train.cpu=true",
        "train.checkpoint_every=0", "model.hidden=16", "model.inner=32", "model.max_len=8",
        "bpr-mf:model.dim=8"]


def test_model_overrides_go_where_the_model_has_the_field():
    configs = [CONFIGS / "sasrec.yaml", CONFIGS / "bpr-mf.yaml"]
    plan, notes = plan_overrides(configs, ["train.epochs=1", "model.hidden=16",
                                           "bpr-mf:model.dim=8", "eval.users=3"])
    assert plan == {"sasrec": ["train.epochs=1", "model.hidden=16", "eval.users=3"],
                    "bpr-mf": ["train.epochs=1", "model.dim=8", "eval.users=3"]}
    assert notes == ["`model.hidden=16` not applied to bpr-mf (its model has no field "
                     "`hidden`)"]


@pytest.mark.parametrize("args, word", [
    (["--set", "model.nonsense=1"], "model.nonsense"),
    (["--set", "gru:model.dim=8"], "'gru'"),
    (["--set", "train.lr=-1"], "train.lr"),
    (["--budget-min", "0"], "--budget-min"),
])
def test_bad_input_is_one_line_and_writes_nothing(run_cli, tiny_data, tmp_path, args, word):
    code, _, err = run_cli("compare", CONFIGS / "sasrec.yaml", CONFIGS / "bpr-mf.yaml",
                           "--data", tiny_data, "--out", tmp_path / "X", *args)
    assert code == 2 and word in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "X").exists()


def test_missing_config_and_data_are_named(run_cli, tiny_data, tmp_path):
    code, _, err = run_cli("compare", tmp_path / "nope.yaml", "--data", tiny_data,
                           "--out", tmp_path / "X")
    assert code == 2 and "nope.yaml" in err
    code, _, err = run_cli("compare", CONFIGS / "sasrec.yaml", "--data", tmp_path,
                           "--out", tmp_path / "X")
    assert code == 2 and "--data" in err


@pytest.mark.slow
def test_compare_writes_table_and_charts_and_reuses_runs(run_cli, tiny_data, tmp_path):
    out = tmp_path / "X"
    code, printed, err = run_cli("compare", CONFIGS / "sasrec.yaml", CONFIGS / "bpr-mf.yaml",
                                 "--data", tiny_data, "--out", out, "--quiet",
                                 "--budget-min", "5", *TINY)
    assert code == 0, err
    assert "Sequential recommendation" in printed and "bpr-mf" in printed
    doc = json.loads((out / "compare.json").read_text())
    assert set(doc["results"]) == {"sasrec", "bpr-mf"} and doc["simulated"] is True
    assert doc["results"]["sasrec"]["settings"] == doc["results"]["bpr-mf"]["settings"]
    md = (out / "compare.md").read_text()
    assert "| sasrec | - |" in md and "| bpr-mf | - |" in md and "SIMULATED" in md
    assert "train.schedule=constant" in md and "5 min" in md
    for name in ("sasrec", "bpr-mf"):
        cfg = yaml.safe_load((out / "runs" / name / "config.yaml").read_text())
        assert cfg["train"]["max_minutes"] == 5 and cfg["train"]["schedule"] == "constant"
        hr = doc["results"][name]["tasks"]["sequential"]["prompts"]["-"]["HR@10"]
        assert f"{hr:.4f}" in md
    assert yaml.safe_load((out / "runs/sasrec/config.yaml").read_text())["model"]["hidden"] == 16
    for chart in ("hr10.png", "ndcg10.png"):
        with Image.open(out / chart) as img:
            assert img.format == "PNG" and img.width >= 600 and img.height >= 400
    # a second call reuses the finished runs
    mtime = (out / "runs/sasrec/final/trainable.safetensors").stat().st_mtime_ns
    code, printed, err = run_cli("compare", CONFIGS / "sasrec.yaml", CONFIGS / "bpr-mf.yaml",
                                 "--data", tiny_data, "--out", out, "--quiet",
                                 "--budget-min", "5", *TINY)
    assert code == 0, err
    assert (out / "runs/sasrec/final/trainable.safetensors").stat().st_mtime_ns == mtime
    assert json.loads((out / "compare.json").read_text())["results"] == doc["results"]
    assert "reused" in (out / "compare.md").read_text()
    # ...but refuses one trained with another config
    code, _, err = run_cli("compare", CONFIGS / "sasrec.yaml", "--data", tiny_data,
                           "--out", out, "--quiet", *TINY[:-1])
    assert code == 2 and "another config" in err and "train.max_minutes" in err
