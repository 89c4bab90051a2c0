"""Run configs: the ``train:`` section (:class:`TrainConfig`) and the run (:class:`RunConfig`).

A run YAML has these sections::

    model:   {name: sasrec, hidden: 64, ...}   # the config class registered with the model
    train:   {epochs: 10, batch_size: 256, ...} # TrainConfig
    eval:    {...}                               # optional; EvalConfig
    plugins: [my_model.py]                       # optional; models defined outside mfmrec

:func:`load_run_config` reads the YAML, applies dotted ``key=value`` overrides and
builds every section as a typed dataclass (unknown keys are refused everywhere), so a
typo in any section fails at load, not at ``mfmrec evaluate``. ``RunConfig.to_dict``
is the *resolved* form, every field with its value, defaults included: what a run
directory stores in ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mfmrec.config import apply_overrides, build, check, finite, load_yaml, to_dict
from mfmrec.errors import ConfigError
from mfmrec.evaluation.config import EvalConfig
from mfmrec.models import registry

PRECISIONS = ("auto", "no", "bf16", "fp16")
STRATEGIES = ("ddp", "fsdp")
SECTIONS = ("model", "train", "eval", "plugins")
SCHEDULES = ("linear", "constant")  # learning-rate shape after warm-up


@dataclass
class TrainConfig:
    """How to train; the same fields for every model."""

    epochs: int = 10  # passes over the training samples
    batch_size: int = 32  # samples per process per micro-batch (global = x processes x accum)
    lr: float = 1e-3  # peak learning rate of AdamW
    weight_decay: float = 0.01  # AdamW decoupled decay on matrices (biases/norms get none)
    adam_eps: float = 1e-6  # AdamW epsilon
    adam_betas: tuple[float, float] = (0.9, 0.999)  # AdamW (beta1, beta2)
    warmup_ratio: float = 0.1  # share of the optimizer steps with linear warm-up
    schedule: str = "linear"  # after warm-up: linear decay to ~0 | constant (RecBole's)
    grad_clip: float = 5.0  # max global gradient norm; 0 disables clipping
    # auto (bf16 autocast where supported, fp16 on older CUDA, none on CPU) | no | bf16 | fp16;
    # typed str | bool because YAML reads a bare `no` as false, which means "no" here too
    precision: str | bool = "auto"
    seed: int = 2022  # model init, data order, per-sample randomness, dropout
    max_steps: int | None = None  # optional cap on optimizer steps (the schedule ends there)
    # optional wall-clock budget of training (minutes, summed over resumes): the run stops
    # at the first optimizer step past it, checkpointed; the schedule still follows the
    # epochs / max_steps (use schedule: constant for budgeted comparisons)
    max_minutes: float | None = None
    checkpoint_every: int = 0  # optimizer steps between checkpoints; 0: only at epoch ends
    keep_checkpoints: int = 2  # most recent checkpoints kept on disk; 0 keeps all
    log_every: int = 10  # optimizer steps between metrics.jsonl lines
    num_workers: int = 0  # DataLoader worker processes
    distributed: str = "ddp"  # ddp | fsdp (used when launched on several processes)
    gradient_accumulation: int = 1  # micro-batches per optimizer step
    find_unused_parameters: bool = False  # DDP: set when some parameters skip some batches
    cpu: bool = False  # train on the CPU even when an accelerator is present
    deterministic: bool = False  # deterministic GPU kernels: bit-exact resume on CUDA too
    # recompute the activations of the model's large blocks (T5 layers, live encoders) in
    # backward instead of storing them: less memory, more time, the same gradients
    activation_checkpointing: bool = False
    # torch.compile the training loss; where compilation fails, one warning and eager
    compile: bool = False
    # batches of samples of similar length (little compute on padding): windows of
    # bucket_window global batches are sorted by length, then the batches are shuffled
    length_bucketing: bool = False
    bucket_window: int = 50

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "log_every", "gradient_accumulation",
                     "bucket_window"):
            check(getattr(self, name) >= 1, f"train.{name}", "must be >= 1")
        for name in ("checkpoint_every", "keep_checkpoints", "num_workers", "seed"):
            check(getattr(self, name) >= 0, f"train.{name}", "must be >= 0")
        for name in ("lr", "weight_decay", "adam_eps", "warmup_ratio", "grad_clip",
                     "max_minutes"):
            finite(getattr(self, name), f"train.{name}")
        check(self.lr > 0, "train.lr", f"must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, "train.weight_decay", "must be >= 0")
        check(self.adam_eps > 0, "train.adam_eps", "must be > 0")
        check(len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas),
              "train.adam_betas", f"expected two numbers in [0, 1), got {self.adam_betas}")
        self.adam_betas = tuple(float(b) for b in self.adam_betas)
        check(0 <= self.warmup_ratio < 1, "train.warmup_ratio",
              f"must be in [0, 1), got {self.warmup_ratio}")
        check(self.schedule in SCHEDULES, "train.schedule",
              f"expected one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        check(self.grad_clip >= 0, "train.grad_clip", "must be >= 0 (0 disables clipping)")
        if self.precision is False:
            self.precision = "no"
        check(self.precision in PRECISIONS, "train.precision",
              f"expected one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        check(self.distributed in STRATEGIES, "train.distributed",
              f"expected one of {', '.join(STRATEGIES)}, got {self.distributed!r}")
        check(self.max_steps is None or self.max_steps >= 1, "train.max_steps",
              f"must be >= 1 or null, got {self.max_steps}")
        check(self.max_minutes is None or self.max_minutes > 0, "train.max_minutes",
              f"must be > 0 or null, got {self.max_minutes}")


# fields that may change between a run and its resumption without changing the result
RESUMABLE_CHANGES = frozenset({
    "train.num_workers", "train.log_every", "train.checkpoint_every", "train.keep_checkpoints",
    "train.activation_checkpointing",
})


@dataclass
class RunConfig:
    """A whole run: the model's typed config, the trainer config, the eval config."""

    model_name: str  # the registry name (model.name in YAML)
    model: Any  # the registered model's config dataclass (typed, validated)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    plugins: list[str] = field(default_factory=list)  # resolved files / modules to import

    def __post_init__(self) -> None:
        check(dataclasses.is_dataclass(self.model) and not isinstance(self.model, type),
              "model", f"expected the model's config dataclass, got {type(self.model).__name__}")

    def to_dict(self) -> dict:
        train = to_dict(self.train)
        train["adam_betas"] = list(train["adam_betas"])
        # only constructor fields: the dict must build the same config again
        init = {f.name for f in dataclasses.fields(self.model) if f.init}
        model = {k: v for k, v in to_dict(self.model).items() if k in init}
        out = {"model": {"name": self.model_name, **_plain(model)}, "train": train,
               "eval": _plain(to_dict(self.eval))}
        if self.plugins:
            out["plugins"] = list(self.plugins)
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def resolve(data: dict, source: str = "config", base: str | Path | None = None) -> RunConfig:
    """Validate a run-config mapping into a :class:`RunConfig`, every default filled.

    ``plugins`` (files relative to ``base``, or module names) are imported first, so a
    model defined outside mfmrec can be named in ``model.name``.
    """
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown section {unknown[0]!r} "
                          f"(known: {', '.join(SECTIONS)})")
    model = data.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise ConfigError(f"{source}: config field model.name: a run config needs a "
                          "model section with a name")
    plugins = data.get("plugins") or []
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise ConfigError(f"{source}: config field plugins: expected a list of files or "
                          "module names")
    plugins = [registry.load_plugin(p, base) for p in plugins]
    entry = registry.get(model["name"])
    fields = {k: v for k, v in model.items() if k != "name"}
    return RunConfig(model_name=model["name"],
                     model=build(entry.config_cls, fields, prefix="model."),
                     train=build(TrainConfig, _section(data, "train", source), prefix="train."),
                     eval=build(EvalConfig, _section(data, "eval", source), prefix="eval."),
                     plugins=plugins)


def _section(data: dict, name: str, source: str) -> dict:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: config field {name}: expected a section")
    return value


def _plain(value: Any) -> Any:
    """Tuples and frozensets as lists, so the resolved config dumps as plain YAML."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    return value


def load_run_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a run YAML, apply dotted overrides, validate every section."""
    data = apply_overrides(load_yaml(path), list(overrides))
    return resolve(data, source=str(path), base=Path(path).parent)


def differences(old: RunConfig, new: RunConfig) -> list[str]:
    """Dotted keys whose values differ between two resolved run configs."""
    out: list[str] = []

    def walk(a: Any, b: Any, prefix: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{prefix}{key}.")
        elif a != b:
            out.append(prefix.rstrip("."))

    walk(old.to_dict(), new.to_dict(), "")
    return out
