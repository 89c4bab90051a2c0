"""Two CPU processes joined by gloo (as `accelerate launch --cpu --num_processes 2`)."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from train_fixtures import launch_cpu

from mfmrec.data import load_dataset
from mfmrec.training.runs import build_model
from mfmrec.training.trainer import Trainer, process_state


class Killed(RuntimeError):
    pass


def _stop_at(step):
    def callback(state):
        if state.step == step:
            raise Killed

    return callback


def _worker(config, data_dir, out):
    """Each process: an uninterrupted run, a run killed at step 5, then its resumption;
    every process saves its own copy of the weights after each."""
    rank = process_state().process_index
    dataset = load_dataset(data_dir)
    model = build_model(config, dataset)
    init = {k: v.clone() for k, v in model.trainable_state_dict().items()}
    Trainer(model, dataset, config, out / "whole", quiet=True).fit()
    save_file(model.trainable_state_dict(), str(out / f"whole-rank{rank}.safetensors"))
    if rank == 0:
        save_file(init, str(out / "init.safetensors"))
    with contextlib.suppress(Killed):
        Trainer(build_model(config, dataset), dataset, config, out / "cut", quiet=True,
                callbacks=[_stop_at(5)]).fit()
    model = build_model(config, dataset)
    Trainer(model, dataset, config, out / "cut", quiet=True).fit(resume=True)
    save_file(model.trainable_state_dict(), str(out / f"resumed-rank{rank}.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize("bucketing", [False, True])
def test_two_processes_end_with_identical_weights_and_resume_exactly(
        tiny_data, make_config, tmp_path, bucketing):
    # 48 pairs, 2 processes x batch 4: 6 steps per epoch, 12 in all; checkpoint at 4
    cfg = make_config(model={"dropout": 0.3}, train={
        "batch_size": 4, "checkpoint_every": 4, "length_bucketing": bucketing,
        "bucket_window": 2})
    launch_cpu(_worker, (cfg, tiny_data, tmp_path), processes=2)
    init = load_file(str(tmp_path / "init.safetensors"))
    whole = [load_file(str(tmp_path / f"whole-rank{r}.safetensors")) for r in (0, 1)]
    resumed = [load_file(str(tmp_path / f"resumed-rank{r}.safetensors")) for r in (0, 1)]
    for name in init:
        assert not torch.equal(whole[0][name], init[name]), name  # it trained
        assert torch.equal(whole[0][name], whole[1][name]), name  # ranks agree
        assert torch.equal(resumed[0][name], whole[0][name]), name  # resume is exact
        assert torch.equal(resumed[1][name], whole[1][name]), name
    state = json.loads((tmp_path / "cut/checkpoints/step-12/state.json").read_text())
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert state["samples"] == 96  # both processes' samples are counted
    steps = [json.loads(x)["step"] for x in (tmp_path / "whole/metrics.jsonl").open()]
    assert steps == list(range(1, 13))
