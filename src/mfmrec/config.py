"""Typed dataclass configs loaded from YAML with dotted ``key=value`` overrides.

Configs are plain dataclasses that validate themselves in ``__post_init__`` and raise
:class:`~mfmrec.errors.ConfigError` naming the field. :func:`build` turns a nested dict
into a (nested) dataclass, refusing unknown keys and coercing scalar types.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mfmrec.errors import ConfigError

T = TypeVar("T")


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; a missing file or a non-mapping is a one-line ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (invalid UTF-8)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"model.lr=1e-3"`` -> (["model", "lr"], 0.001) with YAML scalar parsing."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    if not key:
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply dotted overrides to a nested dict (in place) and return it."""
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {key} is not a section")
        node[keys[-1]] = value
    return data


def _coerce(field: str, tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(field, args[0], value) if len(args) == 1 else value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config field {field}: expected a section, got {value!r}")
        return build(tp, value, prefix=field + ".")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            value = [value]
        (inner, *_) = typing.get_args(tp) or (Any,)
        return origin(_coerce(field, inner, v) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config field {field}: expected true/false, got {value!r}")
    if tp in (int, float, str):
        if tp is str and not isinstance(value, str):
            raise ConfigError(f"config field {field}: expected a string, got {value!r}")
        try:
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            result = tp(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"config field {field}: expected {tp.__name__}, got {value!r}"
            ) from None
        if tp is float:
            finite(result, field)
        return result
    return value


def build(cls: type[T], data: dict | None, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a dict, refusing unknown keys."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]} (known: {', '.join(sorted(names))})"
        )
    kwargs = {k: _coerce(prefix + k, hints[k], v) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict:
    """A dataclass config as a plain nested dict (for YAML/JSON dumps)."""
    return dataclasses.asdict(cfg)


def finite(value: float | None, field: str) -> None:
    """Refuse ``inf`` and ``nan`` (a float config value is always a finite number; use
    null where a field means "no limit")."""
    if value is not None and not math.isfinite(value):
        raise ConfigError(f"config field {field}: must be a finite number, got {value!r}")


def check(condition: bool, field: str, message: str) -> None:
    """Raise a ConfigError naming ``field`` unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"config field {field}: {message}")
