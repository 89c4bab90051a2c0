"""`mfmrec data import|demo` never overwrite silently, and a full disk is one line."""

from __future__ import annotations

import errno
import json

import pytest

from mfmrec.data import RawDataset, write_dataset
from mfmrec.data.writer import check_out
from mfmrec.errors import DataError, MfmrecError


@pytest.fixture
def tiny_p5(tmp_path):
    src = tmp_path / "p5"
    src.mkdir()
    (src / "sequential_data.txt").write_text("1 1 2 3\n2 2 3\n")
    (src / "datamaps.json").write_text(json.dumps({
        "id2user": {"1": "UA", "2": "UB"}, "id2item": {str(i): f"A{i}" for i in range(1, 9)}}))
    return src


def _import(run_cli, src, out, *extra):
    return run_cli("data", "import", "p5", src, "--out", out, "--negatives", 3, *extra)


def test_import_into_an_existing_dataset_needs_force(run_cli, tiny_p5, tmp_path):
    out = tmp_path / "data"
    assert _import(run_cli, tiny_p5, out)[0] == 0
    before = (out / "negatives" / "candidates.parquet").read_bytes()
    code, _, err = _import(run_cli, tiny_p5, out, "--seed", 1)
    assert code == 2 and err.count("\n") == 1
    assert str(out) in err and "--force" in err
    assert (out / "negatives" / "candidates.parquet").read_bytes() == before
    code, _, err = _import(run_cli, tiny_p5, out, "--seed", 1, "--force")
    assert code == 0, err
    assert (out / "negatives" / "candidates.parquet").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "p5"]  # no temp left


def test_force_says_which_derived_folders_it_drops(run_cli, tiny_p5, tmp_path):
    out = tmp_path / "data"
    _import(run_cli, tiny_p5, out)
    for folder in ("features", "ids"):
        (out / folder).mkdir()
        (out / folder / "x.json").write_text("{}")
    code, _, err = _import(run_cli, tiny_p5, out, "--force")
    assert code == 0
    (line,) = [x for x in err.splitlines() if "dropped" in x]
    assert "features/" in line and "ids/" in line and str(out) in line
    assert not (out / "features").exists() and not (out / "ids").exists()


def test_force_never_replaces_a_folder_that_is_not_a_dataset(tmp_path):
    (tmp_path / "home" / "notes.txt").parent.mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not an mfmrec dataset"):
        check_out(tmp_path / "home", force=True)
    check_out(tmp_path / "empty", force=False)  # missing: fine
    (tmp_path / "empty").mkdir()
    check_out(tmp_path / "empty", force=False)  # empty: fine


def test_demo_into_an_existing_dataset_needs_force(run_cli, tmp_path, monkeypatch):
    from mfmrec.data import demo

    real = demo.build_demo
    monkeypatch.setattr(demo, "build_demo", lambda out, seed=0, force=False: real(
        out, seed, num_users=12, num_items=105, min_len=3, max_len=5, image_size=16, force=force))
    out = tmp_path / "demo"
    assert run_cli("data", "demo", "--out", out)[0] == 0
    code, _, err = run_cli("data", "demo", "--out", out, "--seed", 1)
    assert code == 2 and "--force" in err and err.count("\n") == 1
    assert run_cli("data", "demo", "--out", out, "--seed", 1, "--force")[0] == 0
    assert json.loads((out / "dataset.json").read_text())["seed"] == 1


def test_a_failed_replacement_keeps_the_old_dataset(tmp_path, monkeypatch):
    raw = RawDataset(name="t", user_ids=["a", "b"], item_ids=[f"i{k}" for k in range(6)],
                     sequences=[[0, 1, 2], [3, 4, 5]])
    out = write_dataset(raw, tmp_path / "d", num_negatives=2)
    before = (out / "dataset.json").read_bytes()
    import mfmrec.data.writer as writer

    def full(table, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(writer, "_write", full)
    with pytest.raises(MfmrecError) as info:
        write_dataset(raw, out, seed=5, num_negatives=2, force=True)
    message = str(info.value)
    assert "No space left on device" in message and str(out / "users.parquet") in message
    assert (out / "dataset.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d"]


def test_import_on_a_full_disk_is_one_line_and_leaves_nothing(run_cli, tiny_p5, tmp_path,
                                                              monkeypatch):
    import mfmrec.data.writer as writer

    def full(table, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(writer, "_write", full)
    out = tmp_path / "data"
    code, _, err = _import(run_cli, tiny_p5, out)
    assert code == 2 and err.count("\n") == 1
    assert "No space left on device" in err and str(out / "users.parquet") in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p5"]


def test_import_into_a_read_only_folder_is_one_line(run_cli, tiny_p5, tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root can write into a read-only folder")
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        code, _, err = _import(run_cli, tiny_p5, parent / "data")
    finally:
        parent.chmod(0o755)
    assert code == 2 and err.count("\n") == 1 and str(parent / "data") in err
    assert list(parent.iterdir()) == []
