"""The model registry: the only place that maps a model name to its class and config."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mfmrec.errors import ConfigError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config_cls: type
    builder: Callable[[Any, Any], Any]  # (config, dataset) -> Recommender
    description: str = ""


_REGISTRY: dict[str, ModelEntry] = {}
# modules that register models when imported (kept lazy: importing T5 is slow)
_MODULES = {
    "sasrec": "mfmrec.models.sasrec",
    "popularity": "mfmrec.models.popularity",
    "most-frequent-explanation": "mfmrec.models.most_frequent",
    "bpr-mf": "mfmrec.models.bpr",
    "bpr-mlp": "mfmrec.models.bpr",
    "vbpr": "mfmrec.models.vbpr",
    "peter": "mfmrec.models.peter",
    "peter+": "mfmrec.models.peter",
    "vip5": "mfmrec.models.vip5",
    "tiger": "mfmrec.models.tiger",
    "iisan": "mfmrec.models.iisan",
    "iisan-uncached": "mfmrec.models.iisan",
    "mm-full-ft": "mfmrec.models.iisan",
    "mm-encoder-adapters": "mfmrec.models.iisan",
}


def register(name: str, config_cls: type, description: str = ""):
    """Class/function decorator: ``@register("sasrec", SASRecConfig)``."""

    def deco(builder):
        _REGISTRY[name] = ModelEntry(name, config_cls, builder, description)
        return builder

    return deco


def get(name: str) -> ModelEntry:
    if name not in _REGISTRY and name in _MODULES:
        try:
            importlib.import_module(_MODULES[name])
        except ModuleNotFoundError as exc:
            raise ConfigError(f"model {name!r} is not available ({exc})") from None
    if name not in _REGISTRY:
        known = sorted(set(_REGISTRY) | set(_MODULES))
        raise ConfigError(f"config field model.name: unknown model {name!r} "
                          f"(known: {', '.join(known)})")
    return _REGISTRY[name]


def names() -> list[str]:
    return sorted(set(_REGISTRY) | set(_MODULES))
