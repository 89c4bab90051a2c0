"""Fixtures of the service tests: a small SIMULATED demo dataset with real photos, a tiny
SASRec and a tiny VIP5 trained on it (a few steps: the weights are meaningless, the
plumbing is real), and apps over them."""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_runs import build_runs


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> tuple[Path, Path, Path]:
    return build_runs(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="session")
def runs(trained):
    """The two runs, loaded once: [SASRec, VIP5]."""
    from mfmrec.training.runs import load_run

    _, sasrec, vip5 = trained
    return [load_run(sasrec), load_run(vip5)]


@pytest.fixture(scope="session")
def app(runs):
    from mfmrec.serve import create_app

    return create_app(runs, max_batch=16, max_wait_ms=5)


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def dataset(runs):
    return runs[0].dataset
