"""The main job end to end at toy size: every step runs, the summary has every number."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from mfmrec.errors import ConfigError
from mfmrec.pipelines import demo as D

MODELS = {"multimodal", "text-only", "popularity", "sasrec"}
METRICS = {"HR@5", "NDCG@5", "HR@10", "NDCG@10"}


pytestmark = pytest.mark.slow  # a long end-to-end run; CI runs it


@pytest.mark.slow
def test_demo_writes_one_table_with_intervals_and_resumes(tmp_path, monkeypatch, capsys):
    from mfmrec.data.demo import build_demo

    def small_data(out, seed):
        data = out / "data"
        if not (data / "dataset.json").is_file():
            build_demo(data, seed=seed, num_users=24, num_items=110, min_len=5, max_len=8,
                       image_size=16)
        return data

    monkeypatch.setattr(D, "build_data", small_data)
    monkeypatch.setattr(D, "_TRAIN", {**D._TRAIN, "max_steps": 2, "batch_size": 8})
    monkeypatch.setattr(D, "SASREC", {**D.SASREC, "train": {**D.SASREC["train"], "epochs": 1}})
    summary = D.run_demo(tmp_path / "out", quiet=True)
    on_disk = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert on_disk["results"] == summary["results"] and on_disk["simulated"] is True
    results = on_disk["results"]
    assert set(results) == MODELS
    for model in MODELS:
        assert set(results[model]) == {"A-3", "B-5"}, model
        for prompt in ("A-3", "B-5"):
            assert set(results[model][prompt]) == METRICS
            assert all(0.0 <= v <= 1.0 for v in results[model][prompt].values())
    spans = on_disk["intervals"]["multimodal - text-only"]
    for prompt in ("A-3", "B-5"):
        for metric in METRICS:
            low, high = spans[prompt][metric]
            assert low <= high
    out = capsys.readouterr().out
    assert "popularity" in out and "sasrec" in out and "paired bootstrap 95%" in out
    assert "Recommended next" in out and "Warning" not in out
    # the last line is the command that opens the runs in the browser, with real run dirs
    serve = [line for line in out.splitlines() if line.startswith("mfmrec serve ")]
    assert len(serve) == 1 and out.rstrip().endswith(serve[0])
    dirs = [Path(p) for p in shlex.split(serve[0])[2:]]
    assert [d.name for d in dirs] == ["multimodal", "sasrec", "text-only"]
    assert all((d / "final").is_dir() and d.parent == tmp_path / "out" / "runs" for d in dirs)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| multimodal |" in report and "SIMULATED" in report
    # a second run reuses every finished step and prints the same table
    again = D.run_demo(tmp_path / "out", quiet=True)
    assert again["results"] == summary["results"]
    # a finished run of another config is refused, not reported as current
    monkeypatch.setattr(D, "SASREC", {**D.SASREC, "train": {**D.SASREC["train"], "epochs": 2}})
    with pytest.raises(ConfigError, match=r"sasrec: trained by a demo with another config "
                                          r"\(changed: train.epochs\)"):
        D.run_demo(tmp_path / "out", quiet=True)
