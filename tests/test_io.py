"""Atomic writes: nothing half-written, no temporary files left behind."""

from __future__ import annotations

import json
import stat

import pytest

from mfmrec.io import atomic_dir, atomic_file, write_json


def test_atomic_dir_appears_only_on_success(tmp_path):
    target = tmp_path / "ds"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("x")
        assert not target.exists() and tmp.parent == tmp_path
    assert (target / "a.txt").read_text() == "x"
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_atomic_dir_is_cleaned_up_on_error(tmp_path):
    target = tmp_path / "ds"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_keeps_the_old_version_when_the_new_one_fails(tmp_path):
    target = tmp_path / "ds"
    with atomic_dir(target) as tmp:
        (tmp / "v").write_text("1")
    with pytest.raises(KeyboardInterrupt), atomic_dir(target) as tmp:
        (tmp / "v").write_text("2")
        raise KeyboardInterrupt
    assert (target / "v").read_text() == "1"
    with atomic_dir(target) as tmp:
        (tmp / "w").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["w"]  # replaced as a whole
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_atomic_dir_without_overwrite(tmp_path):
    target = tmp_path / "ds"
    target.mkdir()
    (target / "keep").write_text("k")
    with pytest.raises(FileExistsError), atomic_dir(target, overwrite=False) as tmp:
        (tmp / "new").write_text("n")
    assert [p.name for p in target.iterdir()] == ["keep"]
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_atomic_file(tmp_path):
    target = tmp_path / "sub" / "f.txt"
    with atomic_file(target) as fh:
        fh.write("hello")
        assert not target.exists()
    assert target.read_text() == "hello"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    with pytest.raises(ValueError), atomic_file(target) as fh:
        fh.write("half")
        raise ValueError
    assert target.read_text() == "hello"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_write_json_is_stable(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    write_json(tmp_path / "b.json", {"a": [1, 2], "b": 1})
    text = (tmp_path / "a.json").read_text()
    assert text == (tmp_path / "b.json").read_text()
    assert text.endswith("}\n") and text.index('"a"') < text.index('"b"')
    assert json.loads(text) == {"a": [1, 2], "b": 1}


def _full(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_in_atomic_file_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    from mfmrec.io import WriteError

    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(WriteError) as info, atomic_file(target) as fh:
        monkeypatch.setattr(fh, "write", _full)
        fh.write("new")
    assert str(info.value) == (f"{target}: cannot write (No space left on device); nothing "
                               f"was changed at {target}")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_full_disk_in_atomic_dir_names_the_final_path(tmp_path):
    from mfmrec.io import WriteError

    target = tmp_path / "ds"
    with (pytest.raises(WriteError) as info, atomic_dir(target) as tmp,
          atomic_file(tmp / "sub" / "a.bin", "wb")):
        _full()
    assert str(info.value).startswith(f"{target / 'sub' / 'a.bin'}: cannot write")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    import os

    from mfmrec.io import WriteError

    target = tmp_path / "ds"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real = os.replace

    def second_fails(src, dst):
        if ".tmp-" in str(src):
            _full()
        real(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(WriteError), atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]
    assert (target / "old.txt").read_text() == "old"


def test_feature_stores_and_reports_fail_in_one_line(tmp_path, monkeypatch):
    import torch

    from mfmrec.evaluation import report
    from mfmrec.features import store
    from mfmrec.io import WriteError

    monkeypatch.setattr(store, "save", lambda *a, **k: b"x")
    real = store.atomic_file

    class Full:
        write = staticmethod(_full)

    def full(path, mode="w"):
        import contextlib

        @contextlib.contextmanager
        def ctx():
            with real(path, mode):
                yield Full()
        return ctx()

    monkeypatch.setattr(store, "atomic_file", full)
    with pytest.raises(WriteError, match="features/f.safetensors: cannot write"):
        store.save_features(tmp_path, "f", torch.zeros(2, 3), torch.zeros(2), {})
    monkeypatch.setattr(report, "render_markdown", lambda results: _full())
    with pytest.raises(WriteError, match="eval/test.md: cannot write"):
        report.write_report(tmp_path / "run", "test", {})
    assert not list((tmp_path / "features").glob(".*"))
    assert [p.name for p in (tmp_path / "run" / "eval").iterdir()] == ["test.json"]
