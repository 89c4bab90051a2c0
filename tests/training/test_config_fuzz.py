"""Property-based: any dotted override either loads or fails with one ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfmrec.errors import MfmrecError
from mfmrec.training.config import load_run_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SECTIONS = ["model", "train", "eval", "plugins", "nosuch", ""]
KEYS = ["lr", "epochs", "batch_size", "hidden", "heads", "dropout", "tasks", "split",
        "users", "hr_ks", "precision", "seed", "max_minutes", "schedule", "name", "x"]
VALUES = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.floats(allow_nan=True).map(repr),
    st.sampled_from(["inf", "-inf", "nan", ".inf", "null", "true", "no", "[]", "[1, 0]",
                     "{a: 1}", "'", "[", "sequential", "test", "fsdp", "A-3"]),
    st.text(max_size=12))
OVERRIDE = st.one_of(
    st.builds(lambda s, k, v: f"{s}.{k}={v}" if s else f"{k}={v}",
              st.sampled_from(SECTIONS), st.sampled_from(KEYS), VALUES),
    st.builds(lambda s, v: f"{s}={v}", st.sampled_from(SECTIONS[:4]), VALUES),  # a section
    st.builds(lambda n: f"model.name={n}", st.sampled_from(["vip5", "tiger", "iisan",
                                                             "popularity", "nosuch", ""])),
    st.text(max_size=10))  # not even key=value


@pytest.mark.parametrize("config", ["sasrec.yaml", "bpr-mf.yaml"])
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=st.lists(OVERRIDE, max_size=3))
def test_overrides_load_or_fail_with_one_config_error(config, overrides):
    try:
        run = load_run_config(CONFIGS / config, overrides)
    except MfmrecError as exc:
        message = str(exc)
        assert message and "\n" not in message  # one line
        return
    assert run.train.lr > 0 and run.train.epochs >= 1  # what loads is valid
    assert run.to_dict()["model"]["name"] == run.model_name
