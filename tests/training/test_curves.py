"""Training curves: every finished run writes RUN/curves.png; `mfmrec report` names it."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from train_fixtures import run_config

from mfmrec.training.curves import CURVES, plot_curves, write_curves


@pytest.mark.slow
def test_a_finished_run_has_curves_and_report_names_them(run_cli, tiny_data, tmp_path):
    cfg = run_config(tmp_path, train={"epochs": 2})
    out = tmp_path / "run"
    code, _, err = run_cli("train", cfg, "train.batch_size=16", "model.dim=4",
                           "--data", tiny_data, "--out", out, "--quiet")
    assert code == 0, err
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").open()]
    assert len(steps) >= 2
    with Image.open(out / CURVES) as img:
        assert img.format == "PNG" and img.width >= 600 and img.height >= 600
    assert f"training curves: `{out / CURVES}`" in (out / "report.md").read_text()
    code, printed, err = run_cli("report", out)
    assert code == 0, err
    assert str(out / CURVES) in printed.replace("\n", "")


def test_curves_skip_unlogged_values_and_runs_without_metrics(tmp_path):
    rows = [{"step": 1, "loss": 2.0, "lr": 1e-3, "samples_per_s": None},
            {"step": 2, "loss": 1.5, "lr": 5e-4, "samples_per_s": 80.0}]
    path = plot_curves(rows, tmp_path / "c.png", "test-mf on tiny (SIMULATED data)")
    with Image.open(path) as img:
        assert img.format == "PNG"
    assert write_curves(tmp_path / "empty", "nothing") is None
    assert not (tmp_path / "empty" / CURVES).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["c.png"]  # no temporary left behind
