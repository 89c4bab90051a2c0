"""The models behind the API: loaded runs, their batched recommendation calls, explanations.

Recommendations come from :func:`~mfmrec.evaluation.evaluator.recommend_top_k`, the
function behind ``mfmrec recommend``, so the service returns exactly what the CLI prints.
For scoring models the scores of the returned items are read from that same call (a thin
proxy records the ``score_items`` output), so a request costs one model call.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mfmrec.errors import ConfigError
from mfmrec.evaluation.evaluator import recommend_top_k
from mfmrec.models.base import EXPLANATION, SEQUENTIAL
from mfmrec.serve.batcher import MicroBatcher
from mfmrec.serve.catalog import Catalog

Ranked = list[tuple[int, float | None]]  # (item index, score or None), best first


@dataclass
class ServedModel:
    """One loaded run under its key (the run directory's name, made unique)."""

    key: str
    run: Any  # mfmrec.training.runs.LoadedRun

    @property
    def model(self) -> Any:
        return self.run.model

    @property
    def recommends(self) -> bool:
        return SEQUENTIAL in self.model.tasks

    @property
    def explains(self) -> bool:
        return EXPLANATION in self.model.tasks

    @property
    def trained_on_explanations(self) -> bool:
        """Whether the run's config trained the explanation task (VIP5's ``model.tasks``);
        a model whose config names no tasks trained every task it declares."""
        trained = getattr(self.run.config.model, "tasks", None) if self.run.config else None
        return trained is None or EXPLANATION in trained

    def info(self) -> dict:
        return {"key": self.key, "name": self.model.name, "produces": self.model.produces,
                "tasks": sorted(self.model.tasks), "explains": self.explains,
                "run_dir": str(self.run.run_dir)}


class _ScoreTap:
    """Stands in for a model inside ``recommend_top_k`` and keeps the scores it computed."""

    def __init__(self, model: Any):
        self._model = model
        self.scores: torch.Tensor | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def score_items(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        self.scores = self._model.score_items(*args, **kwargs)
        return self.scores


def rank_batch(model: Any, users: Sequence[int], histories: Sequence[np.ndarray],
               k: int) -> list[Ranked]:
    """Top-k of every user in one ``recommend_top_k`` call (history excluded, the
    model's own list for list-generating models), with scores where the model has them."""
    tap = _ScoreTap(model)
    hist = [torch.as_tensor(np.asarray(h), dtype=torch.long) for h in histories]
    items = recommend_top_k(tap, torch.as_tensor(list(users), dtype=torch.long), hist, k)
    out: list[Ranked] = []
    for row, ranked in enumerate(np.asarray(items).tolist()):
        if tap.scores is None:
            out.append([(int(i), None) for i in ranked])
        else:
            values = tap.scores[row].float().cpu()
            out.append([(int(i), float(values[i])) for i in ranked])
    return out


class Service:
    """The served models, the dataset they share, and the batcher in front of them."""

    def __init__(self, runs: Sequence[Any], max_batch: int = 32, max_wait_ms: float = 5.0):
        if not runs:
            raise ConfigError("serve: give at least one run directory")
        check_same_dataset(runs)
        self.models = _keyed(runs)
        self.catalog = Catalog(runs[0].dataset)
        self.batcher = MicroBatcher(self._call, max_batch=max_batch, max_wait_ms=max_wait_ms)

    def _call(self, key: Hashable, payloads: Sequence[tuple[int, np.ndarray]]) -> list[Ranked]:
        name, k = key
        users = [u for u, _ in payloads]
        return rank_batch(self.models[name].model, users, [h for _, h in payloads], k)

    async def recommend(self, name: str, user: int, history: np.ndarray, k: int) -> Ranked:
        """One user's top-k from model ``name``, batched with concurrent requests."""
        return await self.batcher.submit((name, k), (user, history))

    async def explain(self, name: str, request: dict) -> str:
        model = self.models[name].model

        def run() -> str:
            model.eval()
            with torch.no_grad():
                (text,) = model.explain([request])
            return text

        return await self.batcher.run_single(run)

    def close(self) -> None:
        self.batcher.close()


def check_same_dataset(runs: Sequence[Any]) -> None:
    """Runs served side by side must share one dataset directory."""
    first = Path(runs[0].dataset.root).resolve()
    for run in runs[1:]:
        other = Path(run.dataset.root).resolve()
        if other != first:
            raise ConfigError(f"serve: runs use different datasets: {runs[0].run_dir} uses "
                              f"{first}, {run.run_dir} uses {other}")


def _keyed(runs: Sequence[Any]) -> dict[str, ServedModel]:
    """Key each run by its directory name; repeated names get -2, -3, ..."""
    out: dict[str, ServedModel] = {}
    for run in runs:
        base = Path(run.run_dir).name or run.model.name
        key, n = base, 2
        while key in out:
            key, n = f"{base}-{n}", n + 1
        out[key] = ServedModel(key, run)
    return out
