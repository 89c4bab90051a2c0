"""benchmarks/generative_ids.py end to end at toy size: every row trains, scores, compares."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


@pytest.mark.slow
def test_benchmark_table_has_every_model_interval_and_id_health(tmp_path, capsys):
    import generative_ids as bench

    from mfmrec.data.demo import build_demo

    data = build_demo(tmp_path / "data", seed=0, num_users=12, num_items=110, min_len=5,
                      max_len=7, image_size=16)
    bench.main(["--data", str(data), "--out", str(tmp_path / "bench"), "--budget-min",
                "0.001", "--max-epochs", "1", "--eval-users", "4", "--levels", "2",
                "--codebook", "4", "--parallel", "2", "--vip5-set", "model.max_history=3",
                "--quiet"])
    table = (tmp_path / "bench" / "table.md").read_text()
    for row in ("popularity", "sasrec", "vip5-number", "vip5-text", "vip5-image+text",
                "vip5-collab", "tiger"):
        assert f"| {row} |" in table, row
    assert "ids `collab`" in table and "ids `image+text`" in table
    assert table.count("[") >= 6  # a bootstrap interval on every row but the reference
    assert "| vip5-number |" in capsys.readouterr().out
    for run in ("vip5-number", "vip5-text", "vip5-collab"):  # --vip5-set reached each
        config = yaml.safe_load((tmp_path / "bench" / "runs" / run / "config.yaml").read_text())
        assert config["model"]["max_history"] == 3, run
        expect = "random" if run == "vip5-number" else "features"
        assert config["model"]["code_init"] == expect, run  # semantic rows: code vectors
    # a second call reuses every run and evaluation, and still reports training seconds
    bench.main(["--data", str(data), "--out", str(tmp_path / "bench"), "--levels", "2",
                "--codebook", "4", "--eval-users", "4", "--quiet"])
    rerun = (tmp_path / "bench" / "table.md").read_text().splitlines()
    vip5_row = next(line for line in rerun if line.startswith("| vip5-text |"))
    assert float(vip5_row.rstrip(" |").rsplit("|", 1)[1]) >= 0.0
    tiger = yaml.safe_load((tmp_path / "bench" / "runs" / "tiger" / "config.yaml").read_text())
    assert tiger["model"]["max_history"] != 3  # and only the VIP5 rows


def test_a_malformed_vip5_override_is_refused(tmp_path, capsys):
    import generative_ids as bench

    with pytest.raises(SystemExit) as exc:
        bench.main(["--data", str(tmp_path), "--out", str(tmp_path / "b"),
                    "--vip5-set", "train.lr"])
    assert exc.value.code == 2
    assert "--vip5-set: override 'train.lr': expected key=value" in capsys.readouterr().err


def test_eval_users_are_a_seeded_random_sample_or_the_first_n():
    import argparse

    import generative_ids as bench
    import numpy as np

    class Data:
        def targets(self, split):
            return np.arange(100, 200), None, None

    args = argparse.Namespace(eval_pick="random", eval_users=10, seed=0)
    picked = bench.eval_users(Data(), args)
    assert len(picked) == 10 and len(set(picked.tolist())) == 10
    assert set(picked.tolist()) <= set(range(100, 200)) and list(picked) == sorted(picked)
    assert np.array_equal(picked, bench.eval_users(Data(), args))  # the same every call
    assert not np.array_equal(picked, np.arange(100, 110))
    args.seed = 1
    assert not np.array_equal(picked, bench.eval_users(Data(), args))
    args.eval_users = 500
    assert np.array_equal(bench.eval_users(Data(), args), np.arange(100, 200))
    args.eval_pick, args.eval_users = "first", 7
    assert bench.eval_users(Data(), args) == 7
