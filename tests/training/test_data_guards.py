"""A run refuses a changed dataset; a full disk while training is one line, no leftovers."""

from __future__ import annotations

import contextlib
import errno
import json
import shutil

import pytest
from train_fixtures import run_config

from mfmrec.errors import DataError
from mfmrec.training.provenance import FINGERPRINT, check_data


@pytest.fixture
def trained(run_cli, tiny_data, tmp_path):
    """A copy of the tiny dataset and a one-epoch run on it."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    out = tmp_path / "run"
    code, _, err = run_cli("train", run_config(tmp_path, train={"epochs": 1}), "--data", data,
                           "--out", out, "--quiet")
    assert code == 0, err
    return data, out


def test_run_json_records_the_dataset_fingerprint(trained):
    data, out = trained
    recorded = json.loads((out / "run.json").read_text())[FINGERPRINT]
    assert {"dataset.json", "items.parquet", "negatives/candidates.parquet",
            "splits/sequential.parquet"} <= set(recorded)
    entry = recorded["items.parquet"]
    assert entry["size"] == (data / "items.parquet").stat().st_size and len(entry["sha256"]) == 64


def test_a_changed_dataset_is_refused_naming_the_files(run_cli, trained):
    data, out = trained
    path = data / "negatives" / "candidates.parquet"
    path.write_bytes(path.read_bytes()[:-1] + b"\0")  # same size, other bytes
    (data / "splits" / "sequential.parquet").unlink()
    for command in (["evaluate", out, "--quiet"], ["recommend", out, "--user", "#0"],
                    ["explain", out, "--user", "#0", "--item", "#0"]):
        code, _, err = run_cli(*command)
        assert code == 2 and err.count("\n") == 1, (command, err)
        assert "changed: negatives/candidates.parquet" in err
        assert "missing: splits/sequential.parquet" in err and "--allow-changed-data" in err


def test_allow_changed_data_warns_in_one_line(trained, capsys):
    data, out = trained
    (data / "dataset.json").write_text((data / "dataset.json").read_text() + " ")
    info = json.loads((out / "run.json").read_text())
    warnings = []
    check_data(info, data, out, allow=True, warn=warnings.append)
    assert len(warnings) == 1 and "changed: dataset.json" in warnings[0]
    with pytest.raises(DataError, match="changed: dataset.json"):
        check_data(info, data, out)


def test_runs_without_a_fingerprint_load_unchecked(run_cli, trained):
    data, out = trained
    info = json.loads((out / "run.json").read_text())
    del info[FINGERPRINT]
    (out / "run.json").write_text(json.dumps(info))
    (data / "dataset.json").write_text((data / "dataset.json").read_text() + " ")
    code, _, err = run_cli("evaluate", out, "--quiet")
    assert code == 0, err


def _leftovers(root):
    return [p for p in root.rglob(".*") if p.name != ".lock"]


def test_a_full_disk_while_checkpointing_is_one_line(run_cli, tiny_data, tmp_path,
                                                     monkeypatch):
    import mfmrec.training.checkpoint as checkpoint

    real = checkpoint.atomic_file

    class Full:
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    @contextlib.contextmanager
    def full(path, mode="w"):
        with real(path, mode):  # the real temporary file, removed on the error
            yield Full() if str(path).endswith(".safetensors") else None

    monkeypatch.setattr(checkpoint, "atomic_file", full)
    out = tmp_path / "run"
    code, _, err = run_cli("train", run_config(tmp_path, train={"epochs": 1}), "--data",
                           tiny_data, "--out", out, "--quiet")
    assert code == 2 and err.count("\n") == 1, err
    assert "No space left on device" in err
    assert f"{out / 'checkpoints' / 'step-6' / 'trainable.safetensors'}: cannot write" in err
    assert not (out / "final").exists() and not list(out.glob("checkpoints/step-*"))
    assert _leftovers(out) == []
    assert json.loads((out / "run.json").read_text())["status"] == "failed"


def test_a_full_disk_while_logging_metrics_is_one_line(run_cli, tiny_data, tmp_path,
                                                       monkeypatch):
    import builtins

    real_open = builtins.open

    def full_open(path, mode="r", *args, **kwargs):
        if str(path).endswith("metrics.jsonl") and "a" in mode:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", full_open)
    out = tmp_path / "run"
    code, _, err = run_cli("train", run_config(tmp_path, train={"epochs": 1}), "--data",
                           tiny_data, "--out", out, "--quiet")
    assert code == 2 and err.count("\n") == 1, err
    assert f"{out / 'metrics.jsonl'}: cannot write (No space left on device)" in err
    assert _leftovers(out) == []


@pytest.mark.slow
def test_a_demo_reimported_with_another_seed_is_refused_by_evaluate(run_cli, tmp_path):
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / "configs" / "bpr-mf.yaml"
    data, out = tmp_path / "D", tmp_path / "R"
    assert run_cli("data", "demo", "--out", data)[0] == 0
    code, _, err = run_cli("train", config, "train.max_steps=1", "train.epochs=1",
                           "model.dim=4", "--data", data, "--out", out, "--quiet")
    assert code == 0, err
    assert run_cli("data", "demo", "--out", data, "--seed", 1)[0] == 2  # no --force
    assert run_cli("evaluate", out, "--quiet", "--users", "5")[0] == 0
    assert run_cli("data", "demo", "--out", data, "--seed", 1, "--force")[0] == 0
    code, _, err = run_cli("evaluate", out, "--quiet", "--users", "5")
    assert code == 2 and err.count("\n") == 1
    assert f"{data}: the dataset changed since {out} was trained" in err
    assert "changed: dataset.json, interactions.parquet, items.parquet" in err


def test_a_tokenizer_being_written_is_not_part_of_the_fingerprint(tmp_path):
    from mfmrec.training.provenance import data_fingerprint

    done = tmp_path / "tokenizers" / "sentencepiece-4000"
    done.mkdir(parents=True)
    (done / "spiece.model").write_bytes(b"model")
    before = data_fingerprint({}, tmp_path)
    temp = tmp_path / "tokenizers" / ".sentencepiece-4000.tmp-ab12"  # another run's, mid-write
    temp.mkdir()
    (temp / "spiece.model").write_bytes(b"half")
    assert data_fingerprint({}, tmp_path) == before
    assert list(before) == ["tokenizers/sentencepiece-4000/spiece.model"]
