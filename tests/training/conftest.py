"""Fixtures of the trainer's tests: the tiny dataset and the test-only ``test-mf`` model."""

from __future__ import annotations

from pathlib import Path

import pytest
import train_fixtures


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A SIMULATED 12-user, 15-item dataset in the mfmrec format."""
    return train_fixtures.write_tiny(tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture
def make_config(tmp_path):
    """``make_config(model={...}, train={...})`` -> a resolved RunConfig of ``test-mf``."""
    from mfmrec.training.config import load_run_config

    def make(model: dict | None = None, train: dict | None = None, overrides=()):
        return load_run_config(train_fixtures.run_config(tmp_path, model, train), overrides)

    return make
