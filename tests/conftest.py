"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfmrec.paths import shared_dir


@pytest.fixture(scope="session")
def shared() -> Path:
    """The real-data folder beside the repository; skips the test when it is absent."""
    root = shared_dir()
    if root is None:
        pytest.skip("../shared not found: set MFMREC_SHARED")
    return root


@pytest.fixture
def run_cli(capsys):
    """Run ``mfmrec ARGS...`` in-process; returns (exit code, stdout, stderr)."""
    from mfmrec.cli.main import main

    def run(*args: object) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
