"""``mfmrec train``: the run directory, one-line errors, --resume."""

from __future__ import annotations

import json

from train_fixtures import run_config


def test_train_writes_the_run_and_prints_the_efficiency(run_cli, tiny_data, tmp_path):
    cfg = run_config(tmp_path, train={"epochs": 1})
    out = tmp_path / "run"
    code, stdout, stderr = run_cli("train", cfg, "train.batch_size=16", "model.dim=4",
                                   "--data", tiny_data, "--out", out, "--quiet")
    assert code == 0, stderr
    assert "trainable parameters" in stdout and f"wrote {out}" in stdout
    assert "batch_size: 16" in (out / "config.yaml").read_text()
    assert (out / "final/trainable.safetensors").is_file()
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").open()] == [1, 2, 3]


def test_bad_input_is_one_line_exit_2(run_cli, tiny_data, tmp_path):
    cfg = run_config(tmp_path)
    code, _, err = run_cli("train", cfg, "train.precision=fp8", "--data", tiny_data,
                           "--out", tmp_path / "r")
    assert code == 2 and err.count("\n") == 1 and "train.precision" in err
    code, _, err = run_cli("train", cfg, "--out", tmp_path / "r")
    assert code == 2 and "--data" in err
    code, _, err = run_cli("train", tmp_path / "missing.yaml", "--data", tiny_data,
                           "--out", tmp_path / "r")
    assert code == 2 and "missing.yaml" in err


def test_resume_continues_from_the_latest_checkpoint(run_cli, tiny_data, tmp_path):
    cfg = run_config(tmp_path, train={"epochs": 2})
    out = tmp_path / "run"
    code, _, err = run_cli("train", cfg, "train.max_steps=3", "--data", tiny_data, "--out", out,
                           "--quiet")
    assert code == 0, err
    code, _, err = run_cli("train", cfg, "--data", tiny_data, "--out", out, "--quiet")
    assert code == 2 and "--resume" in err  # a finished run is not overwritten
    code, _, err = run_cli("train", cfg, "train.max_steps=3", "--out", out, "--resume",
                           "--quiet")
    assert code == 0, err
    assert json.loads((out / "run.json").read_text())["steps"] == 3


def test_help_reads_like_documentation(run_cli):
    code, out, _ = run_cli("train", "--help")
    assert code == 0
    for word in ("--data", "--out", "--resume", "--quiet", "accelerate launch", "train.lr"):
        assert word in out


def test_progress_bar_shows_loss_rate_and_eta_unless_quiet(run_cli, tiny_data, tmp_path):
    cfg = run_config(tmp_path, train={"max_steps": 2})
    code, out, err = run_cli("train", cfg, "--data", tiny_data, "--out", tmp_path / "a")
    assert code == 0, err
    assert "2/2" in out and "samples/s" in out and "ETA" in out and "loss" in out
    code, out, _ = run_cli("train", cfg, "--data", tiny_data, "--out", tmp_path / "b",
                           "--quiet")
    assert code == 0 and "samples/s" not in out
