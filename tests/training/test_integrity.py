"""Nothing lost, nothing misleading: the run-folder lock, weight checksums, damaged
files, which weights evaluation used, resuming a finished run, and numerical guards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_fixtures import run_config

from mfmrec.training.integrity import LOCK, RunLocked, acquire, locked, release

TRAIN = {"epochs": 1, "checkpoint_every": 2}


@pytest.fixture
def trained(run_cli, tiny_data, tmp_path) -> tuple[Path, Path]:
    """A finished test-mf run (6 steps, checkpoints at 2, 4, 6); (config, run folder)."""
    cfg, run = run_config(tmp_path, train=TRAIN), tmp_path / "run"
    code, _, err = run_cli("train", cfg, "--data", tiny_data, "--out", run, "--quiet")
    assert code == 0, err
    return cfg, run


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---- the lock --------------------------------------------------------------------------
def test_the_lock_holds_the_pid_refuses_a_second_writer_and_is_released(tmp_path):
    path = acquire(tmp_path / "run")
    assert path.read_text().strip() == str(os.getpid())
    with pytest.raises(RunLocked, match=rf"run: in use by another mfmrec process \(pid "
                                        rf"{os.getpid()}\)"):
        acquire(tmp_path / "run")
    release(path)
    assert not path.exists()


def test_a_dead_pids_lock_is_taken_over_with_a_note(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    pid = dead_pid()
    (run / LOCK).write_text(f"{pid}\n")
    notes: list[str] = []
    path = acquire(run, note=notes.append)
    assert path.read_text().strip() == str(os.getpid())
    assert notes == [f"note: {run / LOCK}: taking over a stale lock (pid {pid}, no longer "
                     "running)"]


def _contend(run: str, start, results) -> None:
    """One of several processes taking the same stale lock at once."""
    start.wait()
    try:
        # a slow note widens the window between seeing the stale lock and taking it
        path = acquire(Path(run), note=lambda _t: time.sleep(0.3))
    except RunLocked:
        results.put("refused")
        return
    results.put("got it")
    time.sleep(0.5)  # hold it while the others try
    release(path)


def test_processes_racing_for_a_stale_lock_get_it_one_at_a_time(tmp_path):
    import multiprocessing as mp

    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK).write_text(f"{dead_pid()}\n")
    ctx = mp.get_context("fork")
    start, results = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(str(run), start, results)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    outcomes = sorted(results.get(timeout=5) for _ in procs)
    assert outcomes == ["got it"] + ["refused"] * 5
    assert not (run / LOCK).exists()  # released by the winner


def test_a_killed_holders_flock_is_gone_at_once(tmp_path):
    run = tmp_path / "run"
    code = ("import sys, time; from pathlib import Path; "
            "from mfmrec.training.integrity import acquire; "
            f"acquire(Path({str(run)!r})); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(RunLocked, match=f"pid {proc.pid}"):
        acquire(run)
    proc.kill()
    proc.wait()
    notes: list[str] = []
    path = acquire(run, note=notes.append)  # the kernel dropped the dead process's flock
    assert notes == [f"note: {run / LOCK}: taking over a stale lock (pid {proc.pid}, no "
                     "longer running)"]
    release(path)


def test_train_into_a_folder_locked_by_a_live_process_is_one_line(run_cli, tiny_data,
                                                                   tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK).write_text(f"{os.getppid()}\n")  # the parent process: alive
    code, _, err = run_cli("train", run_config(tmp_path), "--data", tiny_data, "--out", run)
    assert code == 2 and f"pid {os.getppid()}" in one_line(err) and str(run) in err
    assert sorted(p.name for p in run.iterdir()) == [LOCK]  # nothing written


def test_a_refused_run_leaves_no_empty_folder(tmp_path):
    with pytest.raises(RuntimeError), locked(tmp_path / "new"):
        raise RuntimeError
    assert not (tmp_path / "new").exists()


# ---- checksums and damaged files -------------------------------------------------------
def test_every_weight_file_has_its_checksum(trained):
    _, run = trained
    for folder in (run / "final", *sorted((run / "checkpoints").glob("step-*"))):
        sums = json.loads((folder / "checksums.json").read_text())
        assert sums.keys() == {p.name for p in folder.glob("*.safetensors")}


@pytest.mark.parametrize("damage", ["truncated", "bit-flipped"])
def test_damaged_final_weights_are_one_line_exit_2(run_cli, trained, damage):
    _, run = trained
    path = run / "final" / "trainable.safetensors"
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[-5] ^= 0x10  # one bit of one weight
    path.write_bytes(bytes(data))
    code, _, err = run_cli("evaluate", run, "--quiet")
    assert code == 2 and f"{path}: damaged weights file" in one_line(err)


@pytest.mark.parametrize("name, content", [
    ("run.json", '{"dataset": "/x", "status": '),
    ("config.yaml", "model: {name: [test-mf\n"),
    ("config.yaml", b"\x00\xff\xfe garbage \x9c"),
    ("config.yaml", "- a list, not a run config\n"),
])
def test_a_corrupt_run_file_is_one_line_exit_2(run_cli, trained, name, content):
    _, run = trained
    path = run / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    code, _, err = run_cli("evaluate", run, "--quiet")
    assert code == 2 and str(path) in one_line(err)


# ---- which weights evaluation used -----------------------------------------------------
def test_evaluation_records_its_weights_and_notes_a_fallback(run_cli, trained):
    import shutil

    _, run = trained
    code, _, err = run_cli("evaluate", run, "--quiet")
    assert code == 0 and "note:" not in err
    assert json.loads((run / "eval" / "test.json").read_text())["weights"] == "final"
    shutil.rmtree(run / "final")
    code, _, err = run_cli("evaluate", run, "--quiet")
    assert code == 0
    assert one_line(err) == (f"note: {run / 'final'} missing (the run did not finish); "
                             "using the latest checkpoint, step 6\n")
    assert json.loads((run / "eval" / "test.json").read_text())["weights"] == "step 6"
    assert "weights: step 6" in (run / "eval" / "test.md").read_text()


# ---- resuming a finished run -----------------------------------------------------------
def test_resume_of_a_finished_run_changes_nothing(run_cli, trained):
    cfg, run = trained
    before = snapshot(run)
    code, out, err = run_cli("train", cfg, "--out", run, "--resume", "--quiet")
    assert code == 0, err
    assert out == f"{run}: already finished (6 steps); nothing to do\n"
    assert snapshot(run) == before


# ---- numerical guards ------------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", ".inf", "nan", "-.inf"])
def test_non_finite_config_floats_are_refused_naming_the_field(run_cli, tiny_data, tmp_path,
                                                                value):
    cfg = run_config(tmp_path)
    for field in ("train.lr", "model.dropout", "train.max_minutes"):
        code, _, err = run_cli("train", cfg, f"{field}={value}", "--data", tiny_data,
                               "--out", tmp_path / "r")
        assert code == 2 and f"config field {field}: must be a finite number" in one_line(err)
    assert not (tmp_path / "r").exists()


def test_a_diverging_run_stops_naming_the_step_and_is_not_finished(run_cli, tiny_data,
                                                                   tmp_path):
    from mfmrec.training.checkpoint import list_checkpoints, load_tensors
    from mfmrec.training.integrity import nonfinite

    cfg, run = run_config(tmp_path, train=TRAIN), tmp_path / "run"
    code, _, err = run_cli("train", cfg, "train.lr=1e30", "--data", tiny_data, "--out", run,
                           "--quiet")
    assert code == 2 and one_line(err).startswith("error: training diverged at step ")
    assert "non-finite" in err and "lower train.lr" in err
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert not (run / "final").exists() and not (run / LOCK).exists()
    for ckpt in list_checkpoints(run):  # whatever was kept is good
        assert not nonfinite(load_tensors(ckpt / "trainable.safetensors"))
    if list_checkpoints(run):
        assert f"kept {list_checkpoints(run)[-1].name}" in err
