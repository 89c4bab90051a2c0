"""The real ``mfmrec`` in a subprocess: signals, usage errors and a contended run folder.

SIGINT and SIGTERM are sent to a training run once its folder shows that training has
started (a checkpoint exists); the toy plugin model (``tests/plugins/toy.yaml``) trains
under a wall-clock budget (``train.max_minutes``), so every run here is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mfmrec.data.raw import RawDataset
from mfmrec.data.writer import write_dataset

TOY = Path(__file__).parents[1] / "plugins" / "toy.yaml"
MFMREC = [sys.executable, "-m", "mfmrec.cli.main"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# about 4 s of training in all; checkpoints every 50 steps, epochs of ~250 steps
BUDGET = ["train.epochs=1000", "train.batch_size=16", "train.max_minutes=0.07",
          "train.checkpoint_every=50"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Path:
    """1000 SIMULATED users who walk 10 items in order."""
    seqs = [[(u + t) % 10 for t in range(6)] for u in range(1000)]
    raw = RawDataset(name="chain", user_ids=[f"u{u}" for u in range(1000)],
                     item_ids=[f"i{i}" for i in range(10)], sequences=seqs,
                     provenance={"source": "simulated chain"}, simulated=True)
    return write_dataset(raw, tmp_path_factory.mktemp("chain") / "data", seed=0,
                         num_negatives=3)


def mfmrec(*args: object, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*MFMREC, *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def start(*args: object) -> subprocess.Popen:
    return subprocess.Popen([*MFMREC, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def interrupt_training(run: Path, data: Path, sig: int) -> tuple[int, str]:
    """Start a training run, send ``sig`` once it has a checkpoint; (exit code, stderr)."""
    proc = start("train", TOY, *BUDGET, "--data", data, "--out", run, "--quiet")
    try:
        wait_for(run / "checkpoints" / "latest", proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, err


@pytest.mark.slow
def test_sigint_exits_130_with_one_line_and_resume_finishes(chain, tmp_path):
    run = tmp_path / "run"
    code, err = interrupt_training(run, chain, signal.SIGINT)
    assert code == 130
    assert err.strip().splitlines() == [
        f"interrupted; resume with mfmrec train {TOY} {' '.join(BUDGET)} --data {chain} "
        f"--out {run} --quiet --resume"]
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert not (run / "final").exists() and not (run / ".lock").exists()
    assert not list((run / "checkpoints").glob(".*"))  # no half-written checkpoint
    resumed = mfmrec("train", TOY, *BUDGET, "--out", run, "--quiet", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert (run / "final" / "trainable.safetensors").is_file()


@pytest.mark.slow
def test_sigterm_takes_the_same_clean_path_and_exits_143(chain, tmp_path):
    run = tmp_path / "run"
    code, err = interrupt_training(run, chain, signal.SIGTERM)
    assert code == 143
    assert err.strip().startswith("interrupted; resume with mfmrec train ")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert not (run / ".lock").exists()


USAGE_ERRORS = {
    "k zero": (["recommend", "RUN", "--user", "u1", "--k", "0"], "--k"),
    "k negative": (["recommend", "RUN", "--user", "u1", "--k", "-3"], "--k"),
    "unknown command": (["bogus"], "No such command"),
    "missing required option": (["explain", "RUN", "--item", "i1"], "Missing option '--user'"),
    "unknown option": (["train", "cfg.yaml", "--bogus"], "No such option: --bogus"),
}


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
def test_usage_errors_print_usage_and_exit_2(case):
    args, message = USAGE_ERRORS[case]
    result = mfmrec(*args, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Usage: mfmrec" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.slow
def test_two_trains_into_one_folder_exactly_one_fails_with_one_line(chain, tmp_path):
    run = tmp_path / "run"
    procs = [start("train", TOY, *BUDGET, "--data", chain, "--out", run, "--quiet")
             for _ in range(2)]
    outcomes = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
        outcomes.append((proc.returncode, err))
    assert sorted(code for code, _ in outcomes) == [0, 2]
    (code, err), = [o for o in outcomes if o[0] == 2]
    winner = next(p for p in procs if p.returncode == 0)
    assert err.strip().splitlines() == [
        f"error: {run}: in use by another mfmrec process (pid {winner.pid}); wait for it to "
        f"end or choose another --out (lock: {run / '.lock'})"]
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == sorted({x["step"] for x in lines})  # one writer
    assert json.loads((run / "run.json").read_text())["status"] == "finished"


def test_the_interrupted_line_names_the_resume_command_only_for_training():
    from mfmrec.cli.main import interrupted_message

    assert interrupted_message(["evaluate", "runs/a"]) == "interrupted"
    assert interrupted_message(["train", "c.yaml", "--out", "runs/a b"]) == (
        "interrupted; resume with mfmrec train c.yaml --out 'runs/a b' --resume")
    assert interrupted_message(["pretrain", "c.yaml", "--out", "o", "--resume"]) == (
        "interrupted; resume with mfmrec pretrain c.yaml --out o --resume")
