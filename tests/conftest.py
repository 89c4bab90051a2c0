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


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory) -> Path:
    """Caches (the peak FLOP/s benchmark of MFU) go to a session folder, not the user's."""
    path = tmp_path_factory.mktemp("mfmrec-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MFMREC_CACHE", str(path))
        yield path
