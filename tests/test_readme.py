"""Every command in README.md runs as written on the demo data (issue 16, item 8).

The test reads the README's fenced ``bash`` blocks, joins backslash continuations, drops
comments, and runs each ``mfmrec ...`` command through the real CLI
(``python -m mfmrec.cli.main``) in a subprocess, in README order, inside one temporary
working folder. What differs from the README is listed in the tables below and nowhere
else:

- ``PATHS``: README datasets and runs mapped to folders prepared once per session
  (``mfmrec data demo`` plus its features); data under ``../shared`` resolves through
  ``mfmrec.paths`` and its commands skip when it is absent.
- Commands that create a dataset (``data import``, ``data demo``) write to a fresh folder
  instead of their ``--out`` (the README's names are taken by the mapped demo data).
- ``OVERRIDES``: arguments appended so that training and evaluation take seconds.
- ``EXCEPTIONS``: commands that cannot run here, each with its reason. A README ``mfmrec``
  command that is neither run nor listed fails ``test_every_command_is_run_or_excepted``.

``python benchmarks/...`` lines run only ``--help``. ``make`` lines are CI's own targets.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from mfmrec.paths import shared_dir

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TIMEOUT_S = 180
NO_SHARED = "<no-shared>"

# README path -> path in the working folder ("{shared}" is the real-data folder).
PATHS = {
    "data/beauty-2000-p5": "{shared}/data/amazon/beauty",  # the slice has the P5 format
    "data/beauty-2000": "data/demo",
    "data/beauty": "data/demo",
    "data/fashion": "data/demo",
    "data/mi": "data/demo",
    "runs/sasrec-beauty": "runs/sasrec-demo",
    "../shared": "{shared}",
}

# Command prefix -> arguments appended (only to make it take seconds on 2 cores).
OVERRIDES = {
    "mfmrec pretrain": "train.max_steps=2 train.epochs=1 model.backbone=tiny",
    "mfmrec train": "train.max_steps=2 train.epochs=1",
    "mfmrec evaluate": "--users 8",
    "mfmrec compare": "--set train.max_steps=2 --set train.epochs=1 --set eval.users=8",
    "mfmrec ids build data/beauty --name sem-vq": "--epochs 2",
    "mfmrec ids build": "--codebook 16",  # the demo has 200 items, not Beauty's 12,101
}

# Command prefix -> why it is not run here.
EXCEPTIONS = {
    "mfmrec data import amazon Musical_Instruments.jsonl.gz": (
        "needs the Amazon Reviews 2023 files (a network download)"),
    "mfmrec data import recbole path/to/ml-100k": (
        "needs the ML-100k atomic files (a network download); importer tested in tests/data"),
    "mfmrec data import microlens path/to/MicroLens-50k": (
        "needs the MicroLens files (a network download); importer tested in tests/data"),
    "mfmrec features extract data/x --encoder clip-vit-b32": (
        "needs real CLIP weights at a local path (none can be downloaded)"),
    "mfmrec features extract data/x --encoder hf:/path/to/any-hf-encoder": (
        "needs a local Hugging Face encoder folder (a placeholder path)"),
    "mfmrec data images": "downloads item photos (needs network and the Beauty meta file)",
    "mfmrec serve": "starts a web server that runs until stopped; tested in tests/serve",
    "mfmrec train configs/iisan.yaml": (
        "needs the --layers caches of a local Hugging Face encoder; tested in tests/models"),
}

# Files the session fixture prepares on the demo data, beyond `mfmrec data demo`.
PREPARE = [
    "features extract data/demo --encoder efficientnet-lite0",
    "features extract data/demo --encoder minilm",
    "ids build data/demo --name text --features minilm --levels 2 --codebook 8",
    "train configs/sasrec.yaml --data data/demo --out runs/sasrec-demo train.max_steps=2",
]


def readme_lines(text: str) -> list[str]:
    """The commands of the README's ```bash blocks: continuations joined, comments dropped."""
    commands: list[str] = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("#"):
                continue
            commands.extend(part.strip() for part in line.split(";") if part.strip())
    return commands


def _matches(command: str, prefix: str) -> bool:
    return command == prefix or command.startswith(prefix + " ")


def mfmrec_commands() -> list[str]:
    return [c for c in readme_lines(README.read_text()) if c.startswith("mfmrec ")]


def benchmark_scripts() -> list[str]:
    lines = readme_lines(README.read_text())
    return sorted({c.split()[1] for c in lines if c.startswith("python benchmarks/")})


def _map_word(word: str, shared: str) -> str:
    key, eq, value = word.rpartition("=") if "=" in word else ("", "", word)
    for readme_path, here in PATHS.items():
        if value == readme_path or value.startswith(readme_path + "/"):
            value = here.format(shared=shared) + value[len(readme_path):]
            break
    return key + eq + value


def translate(command: str, shared: str, fresh: str) -> list[str]:
    """The CLI arguments (without ``mfmrec``) that the test runs for a README command."""
    words = shlex.split(command)[1:]
    creates = words[:2] in (["data", "import"], ["data", "demo"])
    out: list[str] = []
    for i, word in enumerate(words):
        if creates and i > 0 and words[i - 1] == "--out":
            out.append(fresh)
        else:
            out.append(_map_word(word, shared))
    for prefix, extra in OVERRIDES.items():
        if _matches(command, prefix):
            out.extend(shlex.split(extra))
    return out


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "mfmrec.cli.main", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def check(result: subprocess.CompletedProcess, what: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{what} exited {result.returncode}:\n{output[-3000:]}"
    assert "Traceback" not in output, f"{what} printed a traceback:\n{output[-3000:]}"


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    """A working folder with the demo dataset (features, text IDs) and a SASRec run."""
    root = tmp_path_factory.mktemp("readme")
    (root / "configs").symlink_to(ROOT / "configs")
    check(run_cli(["data", "demo", "--out", "data/demo"], root), "data demo")
    for step in PREPARE:
        check(run_cli(shlex.split(step), root), step)
    return root


def test_every_command_is_run_or_excepted():
    commands = mfmrec_commands()
    assert len(commands) > 30, "README parsing found too few commands"
    for prefix in [*EXCEPTIONS, *OVERRIDES]:
        assert any(_matches(c, prefix) for c in commands), f"stale table entry: {prefix}"
    for command in commands:
        assert command.split()[1] in {"data", "features", "ids", "pretrain", "train",
                                      "evaluate", "recommend", "explain", "report",
                                      "serve", "compare"}, f"unknown command: {command}"


def _runnable() -> list[str]:
    return [c for c in mfmrec_commands()
            if not any(_matches(c, prefix) for prefix in EXCEPTIONS)]


def test_readme_commands_run(workdir):
    """One test, in README order: later commands use the runs of earlier ones."""
    shared_root = shared_dir()
    failures, ran, skipped = [], 0, []
    for n, command in enumerate(_runnable()):
        args = translate(command, str(shared_root or NO_SHARED), f"fresh/{n}")
        if shared_root is None and any(NO_SHARED in a for a in args):
            skipped.append(command)
            continue
        result = run_cli(args, workdir)
        output = result.stdout + result.stderr
        if result.returncode != 0 or "Traceback" in output:
            failures.append(f"$ {command}\n  ran: {shlex.join(args)}\n  exit "
                            f"{result.returncode}\n{output[-1500:]}")
        ran += 1
    assert not failures, f"{len(failures)} README command(s) failed:\n\n" + "\n\n".join(failures)
    if skipped:
        pytest.skip(f"ran {ran}; ../shared not found (set MFMREC_SHARED) for: {skipped}")


@pytest.mark.parametrize("script", benchmark_scripts())
def test_benchmark_help(script):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
    result = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    check(result, f"{script} --help")
