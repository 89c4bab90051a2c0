"""Typed dataclass configs: unknown keys refused, scalar coercion, YAML and overrides."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mfmrec.config import apply_overrides, build, check, load_yaml, parse_override, to_dict
from mfmrec.errors import ConfigError


@dataclass
class Optim:
    lr: float = 1e-3
    betas: tuple[float, ...] = (0.9, 0.999)

    def __post_init__(self) -> None:
        check(self.lr > 0, "lr", f"must be positive, got {self.lr}")


@dataclass
class Run:
    name: str = "run"
    epochs: int = 1
    amp: bool = False
    layers: list[int] = field(default_factory=lambda: [1])
    limit: int | None = None
    optim: Optim = field(default_factory=Optim)


def test_unknown_key_is_refused_with_its_dotted_name():
    with pytest.raises(ConfigError, match=r"unknown config key epoch \(known: amp, epochs"):
        build(Run, {"epoch": 3})
    with pytest.raises(ConfigError, match=r"unknown config key optim\.momentum"):
        build(Run, {"optim": {"momentum": 0.9}})


def test_scalar_coercion():
    cfg = build(Run, {"epochs": "3", "layers": 4, "limit": 2.0,
                      "optim": {"lr": "1e-4", "betas": [1, "0.5"]}})
    assert cfg.epochs == 3 and cfg.layers == [4] and cfg.limit == 2
    assert cfg.optim.lr == 1e-4 and cfg.optim.betas == (1.0, 0.5)
    assert build(Run, {"limit": None}).limit is None
    assert build(Run, {}) == Run()


@pytest.mark.parametrize("data, message", [
    ({"epochs": 2.5}, "config field epochs: expected int, got 2.5"),
    ({"epochs": "many"}, "config field epochs: expected int, got 'many'"),
    ({"amp": "yes"}, "config field amp: expected true/false, got 'yes'"),
    ({"name": 5}, "config field name: expected a string, got 5"),
    ({"optim": 0.1}, "config field optim: expected a section, got 0.1"),
    ({"optim": {"lr": -1}}, "config field lr: must be positive, got -1.0"),
    ({"optim": {"lr": "inf"}}, "config field optim.lr: must be a finite number, got inf"),
    ({"optim": {"lr": float("-inf")}},
     "config field optim.lr: must be a finite number, got -inf"),
    ({"optim": {"betas": [0.9, "nan"]}},
     "config field optim.betas: must be a finite number, got nan"),
])
def test_wrong_types_name_the_field(data, message):
    with pytest.raises(ConfigError) as info:
        build(Run, data)
    assert str(info.value) == message


def test_overrides_parse_yaml_scalars_and_nest():
    assert parse_override("optim.lr=0.5") == (["optim", "lr"], 0.5)
    assert parse_override("name=") == (["name"], "")
    data = apply_overrides({"epochs": 1}, ["epochs=4", "optim.lr=1e-3", "amp=true",
                                           "layers=[2, 3]"])
    assert data == {"epochs": 4, "optim": {"lr": "1e-3"}, "amp": True, "layers": [2, 3]}
    cfg = build(Run, data)  # YAML reads 1e-3 as a string; the float field coerces it
    assert cfg.optim.lr == 0.001 and cfg.layers == [2, 3] and cfg.amp is True


@pytest.mark.parametrize("override, message", [
    ("epochs", "expected key=value"),
    ("=3", "empty key"),
    ("epochs.x=3", "epochs is not a section"),
])
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides({"epochs": 1}, [override])


def test_load_yaml(tmp_path):
    good = tmp_path / "run.yaml"
    good.write_text("epochs: 2\noptim:\n  lr: 0.01\n")
    assert build(Run, load_yaml(good)).optim.lr == 0.01
    (tmp_path / "empty.yaml").write_text("")
    assert load_yaml(tmp_path / "empty.yaml") == {}
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("epochs: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml: invalid YAML"):
        load_yaml(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_yaml(tmp_path / "list.yaml")


def test_to_dict_round_trips():
    cfg = build(Run, {"epochs": 7, "optim": {"lr": 0.2}})
    assert build(Run, to_dict(cfg)) == cfg
