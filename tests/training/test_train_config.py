"""TrainConfig / RunConfig: defaults, validation naming the field, resolution, overrides."""

from __future__ import annotations

import pytest
import yaml
from train_fixtures import NAME, run_config

from mfmrec.config import build
from mfmrec.errors import ConfigError
from mfmrec.training.config import TrainConfig, differences, load_run_config, resolve


def test_defaults_match_the_brief():
    cfg = TrainConfig()
    assert (cfg.lr, cfg.weight_decay, cfg.adam_eps) == (1e-3, 0.01, 1e-6)
    assert (cfg.warmup_ratio, cfg.grad_clip, cfg.precision) == (0.1, 5.0, "auto")
    assert cfg.distributed == "ddp" and cfg.gradient_accumulation == 1 and cfg.max_steps is None


@pytest.mark.parametrize("field,value", [
    ("precision", "fp8"), ("distributed", "zero3"), ("schedule", "cosine"),
    ("warmup_ratio", 1.0), ("lr", 0.0),
    ("batch_size", 0), ("grad_clip", -1.0), ("max_steps", 0), ("gradient_accumulation", 0),
    ("adam_betas", [0.9, 1.5]),
])
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=f"train.{field}"):
        build(TrainConfig, {field: value}, prefix="train.")


def test_yaml_no_means_no_precision():
    # YAML reads a bare `precision: no` as false
    assert build(TrainConfig, yaml.safe_load("precision: no")).precision == "no"
    assert "precision: 'no'" in yaml.safe_dump({"precision": "no"})


def test_unknown_train_key_is_refused():
    with pytest.raises(ConfigError, match="unknown config key train.learning_rate"):
        build(TrainConfig, {"learning_rate": 1e-3}, prefix="train.")


def test_load_resolves_model_defaults_and_applies_overrides(tmp_path):
    path = run_config(tmp_path, model={"dim": 4})
    cfg = load_run_config(path, ["train.lr=5e-4", "model.dropout=0.0",
                                 "train.adam_betas=[0.8,0.9]"])
    assert cfg.model_name == NAME and type(cfg.model).__name__ == "TinyMFConfig"
    assert cfg.to_dict()["model"] == {"name": NAME, "dim": 4, "dropout": 0.0, "frozen": False,
                                      "init_seed": 7}
    assert cfg.train.lr == 5e-4 and cfg.train.adam_betas == (0.8, 0.9)
    assert cfg.model.dim == 4


def test_unknown_model_key_and_section_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="model.width"):
        load_run_config(run_config(tmp_path), ["model.width=3"])
    with pytest.raises(ConfigError, match="unknown section 'trainer'"):
        load_run_config(run_config(tmp_path), ["trainer.lr=1"])
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        resolve({"model": {"name": "nope"}})
    with pytest.raises(ConfigError, match="model.name"):
        resolve({"train": {}})


def test_model_validation_errors_surface(tmp_path):
    with pytest.raises(ConfigError, match="model.dropout"):
        load_run_config(run_config(tmp_path), ["model.dropout=1.5"])


def test_yaml_round_trip_is_identical(tmp_path):
    cfg = load_run_config(run_config(tmp_path), ["train.max_steps=7"])
    again = resolve(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg and differences(cfg, again) == []


def test_differences_lists_dotted_keys(tmp_path):
    a = load_run_config(run_config(tmp_path))
    b = load_run_config(run_config(tmp_path), ["train.lr=0.5", "model.dim=3"])
    assert differences(a, b) == ["model.dim", "train.lr"]
