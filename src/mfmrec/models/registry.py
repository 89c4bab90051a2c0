"""The model registry: the only place that maps a model name to its class and config.

A model registers itself with one decorator next to its builder::

    @register("sasrec", SASRecConfig, "SASRec: causal self-attention over item sequences")
    def build_sasrec(config: SASRecConfig, dataset) -> SASRec: ...

There is no second list: :func:`get` imports the modules of ``mfmrec.models`` in name
order until one has registered the name (importing T5 is slow, so a SASRec run never
imports VIP5). Models defined outside the package — a user's own file, a test's toy
model — are imported with :func:`load_plugin` (a run config's ``plugins:`` list).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfmrec.errors import ConfigError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config_cls: type  # the typed dataclass of the run config's model: section
    builder: Callable[[Any, Any], Any]  # (config, dataset) -> Recommender
    description: str = ""


_REGISTRY: dict[str, ModelEntry] = {}
_PACKAGE = "mfmrec.models"
_NOT_MODELS = frozenset({"base", "registry"})


def register(name: str, config_cls: type, description: str = ""):
    """Class/function decorator: ``@register("sasrec", SASRecConfig)``."""

    def deco(builder):
        _REGISTRY[name] = ModelEntry(name, config_cls, builder, description)
        return builder

    return deco


def _model_modules() -> list[str]:
    package = importlib.import_module(_PACKAGE)
    return sorted(f"{_PACKAGE}.{m.name}" for m in pkgutil.iter_modules(package.__path__)
                  if m.name not in _NOT_MODELS and not m.name.startswith("_"))


def _import_until(name: str | None) -> None:
    """Import model modules in name order until ``name`` is registered (None: all)."""
    for module in _model_modules():
        if name is not None and name in _REGISTRY:
            return
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # an optional dependency of that model
            if exc.name and exc.name.startswith("mfmrec"):
                raise
            continue


def get(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        _import_until(name)
    if name not in _REGISTRY:
        raise ConfigError(f"config field model.name: unknown model {name!r} "
                          f"(known: {', '.join(names())})")
    return _REGISTRY[name]


def names() -> list[str]:
    """Every registered model name (imports every model module)."""
    _import_until(None)
    return sorted(_REGISTRY)


def load_plugin(spec: str, base: str | Path | None = None) -> str:
    """Import a model defined outside mfmrec: a ``.py`` file (relative to ``base``) or a
    module name. Its ``@register`` runs on import. Returns the resolved spec."""
    if not spec.endswith(".py"):
        try:
            importlib.import_module(spec)
        except ImportError as exc:
            raise ConfigError(f"config field plugins: cannot import {spec!r} ({exc})") from None
        return spec
    path = Path(spec).expanduser()
    path = (Path(base) / path if base is not None and not path.is_absolute() else path).resolve()
    if not path.is_file():
        raise ConfigError(f"config field plugins: {path} not found")
    module = f"mfmrec_plugin_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
    if module not in sys.modules:
        loader = importlib.util.spec_from_file_location(module, path)
        mod = importlib.util.module_from_spec(loader)
        sys.modules[module] = mod
        try:
            loader.loader.exec_module(mod)
        except Exception as exc:
            del sys.modules[module]
            raise ConfigError(f"config field plugins: {path} failed to import "
                              f"({type(exc).__name__}: {exc})") from None
    return str(path)
