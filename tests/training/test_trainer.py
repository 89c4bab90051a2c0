"""The trainer on one CPU process: learning, frozen parts, run directory, accumulation."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from mfmrec.data import load_dataset
from mfmrec.training.checkpoint import latest_checkpoint
from mfmrec.training.runs import build_model, load_run, train
from mfmrec.training.trainer import Trainer, linear_schedule


def _fit(config, data_dir, run_dir, **kw):
    dataset = load_dataset(data_dir)
    model = build_model(config, dataset)
    trainer = Trainer(model, dataset, config, run_dir, quiet=True, **kw)
    return trainer, trainer.fit()


def test_training_lowers_the_loss(tiny_data, make_config, tmp_path):
    cfg = make_config(model={"dropout": 0.0}, train={"epochs": 30, "log_every": 6})
    result = train(cfg, tiny_data, tmp_path / "run", quiet=True)
    losses = [h["loss"] for h in result.history]
    assert len(losses) == 30  # 180 steps / 6
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:2]) / 2


def test_frozen_parameters_untouched_and_never_given_to_the_optimizer(
        tiny_data, make_config, tmp_path):
    cfg = make_config(model={"frozen": True}, train={"epochs": 2})
    dataset = load_dataset(tiny_data)
    model = build_model(cfg, dataset)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    before = {n: t.clone() for n, t in model.trainable_state_dict().items()}
    trainer = Trainer(model, dataset, cfg, tmp_path / "run", quiet=True)
    trainer.fit()
    assert set(frozen) == {"proj.weight", "proj.bias"}
    for name, value in frozen.items():
        assert torch.equal(dict(model.named_parameters())[name], value), name
    after = model.trainable_state_dict()
    assert all(not torch.equal(before[n], after[n]) for n in before)
    in_optimizer = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert in_optimizer == {id(p) for p in model.parameters() if p.requires_grad}
    stored = load_file(latest_checkpoint(tmp_path / "run") / "trainable.safetensors")
    assert set(stored) == {"user.weight", "item.weight", "bias"}


def test_constant_schedule_holds_the_learning_rate_after_warm_up(tiny_data, make_config,
                                                                 tmp_path):
    cfg = make_config(train={"batch_size": 4, "schedule": "constant", "warmup_ratio": 0.25,
                             "epochs": 1})  # 12 steps, 3 of warm-up
    train(cfg, tiny_data, tmp_path / "run", quiet=True)
    lines = [json.loads(x) for x in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    lrs = [x["lr"] for x in lines]
    assert len(lrs) == 12 and lrs[:3] == pytest.approx([lrs[3] / 3, lrs[3] * 2 / 3, lrs[3]])
    assert lrs[3:] == pytest.approx([lrs[3]] * 9)


def test_run_directory_layout_and_logs(tiny_data, make_config, tmp_path):
    # 48 training pairs / batch 4 = 12 steps per epoch, 24 in all; warm-up int(0.1*24) = 2
    cfg = make_config(train={"batch_size": 4, "checkpoint_every": 5, "keep_checkpoints": 2})
    run = tmp_path / "run"
    result = train(cfg, tiny_data, run, quiet=True)
    assert result.state.step == result.total_steps == 24
    for rel in ("config.yaml", "run.json", "metrics.jsonl", "efficiency.json", "report.md",
                "final/trainable.safetensors", "final/config.yaml", "checkpoints/latest"):
        assert (run / rel).is_file(), rel
    # checkpoints at 5, 10, 12 (epoch end), 15, 20, 24; the last two kept
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == ["step-20", "step-24"]
    assert (run / "checkpoints/latest").read_text().strip() == "step-24"
    files = {p.name for p in (run / "checkpoints/step-24").iterdir()}
    assert files == {"trainable.safetensors", "optimizer.safetensors", "rng.safetensors",
                     "state.json", "config.yaml", "checksums.json"}
    assert not (run / ".lock").exists()  # released when training ends
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, 25))
    assert set(lines[0]) == {"step", "epoch", "loss", "lr", "samples_per_s", "elapsed"}
    factor = linear_schedule(24, 2)
    assert [x["lr"] for x in lines] == pytest.approx([0.05 * factor(s) for s in range(24)])
    assert lines[11]["epoch"] == 1.0 and lines[-1]["epoch"] == 2.0
    info = json.loads((run / "run.json").read_text())
    assert info["dataset"] == str(tiny_data.resolve()) and info["status"] == "finished"
    eff = json.loads((run / "efficiency.json").read_text())
    assert eff["parameters"]["trainable"] == 12 * 8 + 15 * 8 + 15
    assert eff["samples"] == 96 and eff["epochs"] == 2.0 and eff["steps"] == 24
    assert "SIMULATED" in (run / "report.md").read_text()


def test_a_second_fresh_run_into_the_same_directory_is_refused(tiny_data, make_config,
                                                               tmp_path):
    from mfmrec.errors import ConfigError

    cfg = make_config(train={"max_steps": 2})
    train(cfg, tiny_data, tmp_path / "run", quiet=True)
    with pytest.raises(ConfigError, match="--resume"):
        train(cfg, tiny_data, tmp_path / "run", quiet=True)


def test_gradient_accumulation_equals_the_larger_batch(tiny_data, make_config, tmp_path):
    # 48 pairs: 12 micro-batches of 4 accumulated in pairs == 6 batches of 8, per epoch
    base = {"model": {"dropout": 0.0}}
    acc = make_config(**base, train={"batch_size": 4, "gradient_accumulation": 2})
    big = make_config(**base, train={"batch_size": 8})
    _, res_acc = _fit(acc, tiny_data, tmp_path / "a")
    _, res_big = _fit(big, tiny_data, tmp_path / "b")
    assert res_acc.state.step == res_big.state.step == 12
    for name, value in res_big.trainable.items():
        torch.testing.assert_close(res_acc.trainable[name], value, rtol=1e-5, atol=1e-6)


def test_load_run_rebuilds_the_trained_model(tiny_data, make_config, tmp_path):
    cfg = make_config(model={"frozen": True}, train={"max_steps": 5})
    trainer, result = _fit(cfg, tiny_data, tmp_path / "run")
    train(cfg, tiny_data, tmp_path / "run2", quiet=True)
    loaded = load_run(tmp_path / "run2")
    assert loaded.config == cfg and loaded.dataset.num_items == 15
    trained = {n: t for n, t in trainer.model.trainable_state_dict().items()}
    for name, value in loaded.model.trainable_state_dict().items():
        assert torch.equal(value, trained[name]), name
    users = torch.arange(4)
    trainer.model.eval()
    assert torch.equal(loaded.model.score_items(users, None),
                       trainer.model.score_items(users, None))


def test_bf16_autocast_trains_on_cpu(tiny_data, make_config, tmp_path):
    cfg = make_config(train={"precision": "bf16", "max_steps": 3})
    trainer, result = _fit(cfg, tiny_data, tmp_path / "run")
    assert trainer.precision == "bf16" and result.state.step == 3
    assert all(t.dtype == torch.float32 for t in result.trainable.values())
    assert result.efficiency["precision"] == "bf16"


def test_data_loader_workers_do_not_change_the_result(tiny_data, make_config, tmp_path):
    # per-sample negatives come from (seed, epoch, index), not from a worker's RNG
    cfg0 = make_config(train={"num_workers": 0})
    cfg2 = make_config(train={"num_workers": 2})
    _, r0 = _fit(cfg0, tiny_data, tmp_path / "a")
    _, r2 = _fit(cfg2, tiny_data, tmp_path / "b")
    assert all(torch.equal(r0.trainable[k], r2.trainable[k]) for k in r0.trainable)


def test_load_run_on_a_dataset_that_does_not_fit_is_a_one_line_error(
        tiny_data, make_config, tmp_path):
    from train_fixtures import tiny_raw

    from mfmrec.data import write_dataset
    from mfmrec.errors import ConfigError

    train(make_config(train={"max_steps": 1}), tiny_data, tmp_path / "run", quiet=True)
    other = write_dataset(tiny_raw(num_items=20), tmp_path / "other", num_negatives=5)
    with pytest.raises(ConfigError, match="does not fit model 'test-mf'"):
        load_run(tmp_path / "run", other)
