"""benchmarks/iisan_quality.py on the tiny walk dataset: training in pieces (stop, resume),
the per-epoch validation curve, test at the best and last checkpoints, and the table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import iisan_quality  # noqa: E402

TINY = ["--set", "model.hidden=8", "--set", "model.inner=16", "--set", "model.layers=1",
        "--set", "model.heads=1"]


pytestmark = pytest.mark.slow  # a long end-to-end run; CI runs it


def _train(data: Path, run: Path, *extra: str) -> None:
    iisan_quality.main(["train", "sasrec", "--data", str(data), "--run-dir", str(run),
                        "--epochs", "3", "--batch-size", "16", *TINY, *extra])


@pytest.fixture(scope="module")
def runs(walk_dir, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("quality")
    pieces, whole = root / "pieces", root / "whole"
    _train(walk_dir, pieces, "--stop-step", "3")  # 40 users / 16 = 3 steps per epoch
    _train(walk_dir, pieces, "--resume")
    _train(walk_dir, whole)
    for run in (pieces, whole):
        iisan_quality.main(["eval", str(run), "--data", str(walk_dir)])
    return pieces, whole


def test_stop_keeps_the_checkpoint_and_resume_finishes(runs):
    pieces, _ = runs
    names = sorted(p.name for p in (pieces / "checkpoints").glob("step-*"))
    assert names == ["step-3", "step-6", "step-9"]  # one per epoch, all kept
    log = [json.loads(x) for x in (pieces / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 10))


def test_validation_curve_and_test_at_best_and_last(runs):
    pieces, _ = runs
    q = json.loads((pieces / "quality.json").read_text())
    assert sorted(q["valid"]) == ["step-3", "step-6", "step-9"]
    best_hr = max(v["HR@10"] for v in q["valid"].values())
    assert q["valid"][q["best"]]["HR@10"] == best_hr and q["last"] == "step-9"
    assert set(q["test"]) == {q["best"], q["last"]}
    assert all(0.0 <= m["HR@10"] <= 1.0 for m in q["test"].values())


def test_pieces_match_an_uninterrupted_run(runs):
    pieces, whole = runs
    a = json.loads((pieces / "quality.json").read_text())
    b = json.loads((whole / "quality.json").read_text())
    assert a["valid"] == b["valid"] and a["test"] == b["test"]


def test_table_prints_rows_and_ratio(runs, capsys):
    pieces, whole = runs
    iisan_quality.main(["table", str(whole), str(pieces), "--baseline", str(whole)])
    out = capsys.readouterr().out
    assert "| whole | sasrec |" in out and "| pieces | sasrec |" in out
    assert "HR@10 ratio pieces / whole: 1.000" in out
    row = iisan_quality.summarise(pieces)
    assert row["steps"] == 9 and row["epochs"] == 3.0 and len(row["valid_curve"]) == 3
