"""Kill-and-resume: a run stopped after a checkpoint and resumed ends bit-identical."""

from __future__ import annotations

import json
import threading

import pytest
import torch
from safetensors.torch import load_file

from mfmrec.errors import ConfigError
from mfmrec.training.runs import train


class Killed(RuntimeError):
    """Stands for SIGKILL: raised from a callback, after the step's checkpoint (if any)."""


def kill_at(step: int):
    def callback(state):
        if state.step == step:
            raise Killed(f"killed at step {step}")

    return callback


def _final(run):
    return load_file(str(run / "final" / "trainable.safetensors"))


def _losses(run):
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [(x["step"], x["loss"], x["lr"]) for x in lines]


# 48 pairs / (batch 5 x accumulation 2) = 5 steps per epoch (the last one short)
TRAIN = {"epochs": 3, "batch_size": 5, "gradient_accumulation": 2, "checkpoint_every": 3,
         "keep_checkpoints": 0}


# (kill after step, last checkpoint): mid-epoch after step-6; right after the epoch-end step-10
@pytest.mark.parametrize("kill,saved,bucketing", [(7, 6, False), (10, 10, False),
                                                  (7, 6, True)])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tiny_data, make_config, tmp_path,
                                                         kill, saved, bucketing):
    cfg = make_config(model={"frozen": True, "dropout": 0.3},
                      train={**TRAIN, "length_bucketing": bucketing, "bucket_window": 2})
    whole = train(cfg, tiny_data, tmp_path / "whole", quiet=True)
    assert whole.total_steps == 15
    run = tmp_path / "killed"
    with pytest.raises(Killed):
        train(cfg, tiny_data, run, quiet=True, callbacks=[kill_at(kill)])
    assert not (run / "final").exists()
    assert not [t for t in threading.enumerate() if t.name == "mfmrec-rss-sampler"]
    resumed = train(cfg, None, run, resume=True, quiet=True)  # dataset from run.json
    assert resumed.state.step == 15 and resumed.efficiency["steps"] == 15 - saved
    expected, got = _final(tmp_path / "whole"), _final(run)
    assert set(got) == set(expected)
    for name in expected:
        assert torch.equal(got[name], expected[name]), name
    assert _losses(run) == _losses(tmp_path / "whole")  # each step logged once, same values


def test_resume_without_checkpoint_starts_over(tiny_data, make_config, tmp_path):
    cfg = make_config(train={"max_steps": 4})
    train(cfg, tiny_data, tmp_path / "a", quiet=True)
    with pytest.raises(Killed):  # killed before the first checkpoint
        train(cfg, tiny_data, tmp_path / "b", quiet=True, callbacks=[kill_at(2)])
    train(cfg, tiny_data, tmp_path / "b", resume=True, quiet=True)
    a, b = _final(tmp_path / "a"), _final(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_changed_config_but_allows_io_settings(tiny_data, make_config,
                                                                tmp_path):
    cfg = make_config(train={"epochs": 1, "checkpoint_every": 2})
    with pytest.raises(Killed):
        train(cfg, tiny_data, tmp_path / "run", quiet=True, callbacks=[kill_at(3)])
    changed = make_config(train={"epochs": 1, "checkpoint_every": 2}, overrides=["train.lr=0.1"])
    with pytest.raises(ConfigError, match="changed: train.lr"):
        train(changed, tiny_data, tmp_path / "run", resume=True, quiet=True)
    io_only = make_config(train={"epochs": 1, "checkpoint_every": 4, "log_every": 2})
    result = train(io_only, tiny_data, tmp_path / "run", resume=True, quiet=True)
    assert result.state.step == result.total_steps


def test_time_budget_stops_at_the_first_step_past_it_and_saves(tiny_data, make_config,
                                                               tmp_path):
    cfg = make_config(train={"epochs": 3, "max_minutes": 1e-9})  # spent after one step
    result = train(cfg, tiny_data, tmp_path / "run", quiet=True)
    assert result.state.step == 1 < result.total_steps
    assert (tmp_path / "run" / "final").is_dir()
    with pytest.raises(ConfigError, match="train.max_minutes"):
        make_config(train={"max_minutes": 0})
