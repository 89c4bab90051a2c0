"""A new model is one file plus one YAML: it trains and evaluates through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mfmrec.data import load_dataset
from mfmrec.data.raw import RawDataset
from mfmrec.data.writer import write_dataset

HERE = Path(__file__).parent
MFMREC = [sys.executable, "-m", "mfmrec.cli.main"]


def chain_data(root: Path) -> Path:
    """40 SIMULATED users who walk 10 items in order: item i is followed by item i + 1."""
    seqs = [[(u + t) % 10 for t in range(6)] for u in range(40)]
    raw = RawDataset(name="chain", user_ids=[f"u{u}" for u in range(40)],
                     item_ids=[f"i{i}" for i in range(10)], sequences=seqs,
                     item_titles=[f"item {i}" for i in range(10)],
                     provenance={"source": "simulated chain for the plugin test"},
                     simulated=True)
    write_dataset(raw, root, seed=0, num_negatives=3)
    return root


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*MFMREC, *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow
def test_a_model_defined_in_the_test_folder_trains_and_evaluates_through_the_cli(tmp_path):
    data = chain_data(tmp_path / "data")
    out = tmp_path / "run"
    trained = run("train", str(HERE / "toy.yaml"), "--data", str(data), "--out", str(out),
                  "--quiet")
    assert trained.returncode == 0, trained.stderr
    stored = (out / "config.yaml").read_text()
    assert "toy-markov" in stored and str((HERE / "toy_model.py").resolve()) in stored
    evaluated = run("evaluate", str(out), "--quiet")  # a fresh process imports the plugin
    assert evaluated.returncode == 0, evaluated.stderr
    results = json.loads((out / "eval" / "test.json").read_text())
    assert results["model"] == "toy-markov" and set(results["tasks"]) == {"sequential",
                                                                          "direct"}
    # the chain is learnable: the next item is ranked first for almost every user
    assert results["tasks"]["sequential"]["prompts"]["-"]["HR@1"] > 0.9
    assert load_dataset(data).simulated


@pytest.mark.slow
def test_a_missing_plugin_file_is_one_line_and_exit_2(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("plugins: [nowhere.py]\nmodel: {name: toy-markov}\n")
    data = chain_data(tmp_path / "data")
    done = run("train", str(config), "--data", str(data), "--out", str(tmp_path / "r"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "plugins" in done.stderr and "nowhere.py" in done.stderr
    assert not (tmp_path / "r").exists()
