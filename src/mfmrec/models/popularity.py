"""Popularity: every user gets the items bought most often in training.

The floor any learned recommender must clear, scored through the same contract and the
same evaluator as every model: ``score_items`` returns each item's training interaction
count (ties broken pessimistically by the evaluator), so full ranking, the 100 stored
candidates and ``recommend`` all work. Nothing trains: build it with
``registry.get("popularity").builder(PopularityConfig(), dataset)`` and evaluate it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mfmrec.models.base import DIRECT, SEQUENTIAL, Recommender
from mfmrec.models.registry import register


@dataclass
class PopularityConfig:
    """Popularity has no settings: counts come from the training split."""


class Popularity(Recommender):
    """Training interaction counts as scores (the same for every user)."""

    name = "popularity"
    tasks = frozenset({SEQUENTIAL, DIRECT})

    def __init__(self, counts: np.ndarray):
        super().__init__()
        self.register_buffer("counts", torch.as_tensor(counts, dtype=torch.float32))  # (N,)

    @classmethod
    def from_dataset(cls, dataset) -> Popularity:
        counts = np.zeros(dataset.num_items, dtype=np.float64)
        for seq in dataset.train_sequences:
            np.add.at(counts, np.asarray(seq, dtype=np.int64), 1.0)
        return cls(counts)

    def score_items(self, users: torch.Tensor, histories: list[torch.Tensor],
                    prompt: str | None = None) -> torch.Tensor:
        return self.counts.expand(len(users), -1)  # (B, N)


@register("popularity", PopularityConfig, "Most-bought items in training (no learning)")
def _build(config: PopularityConfig, dataset) -> Popularity:
    return Popularity.from_dataset(dataset)
