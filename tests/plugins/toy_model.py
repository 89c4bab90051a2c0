"""A toy model added to mfmrec from outside the package: this one file and toy.yaml.

A first-order Markov chain over items: each item has a learned embedding, and a user's
next item is scored by the dot product with the embedding of the last item of their
history. It registers itself with the one decorator; ``plugins: [toy_model.py]`` in the
run config makes ``mfmrec train`` and ``mfmrec evaluate`` import it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset as TorchDataset

from mfmrec.config import check
from mfmrec.models.base import DIRECT, SEQUENTIAL, Recommender
from mfmrec.models.registry import register


@dataclass
class ToyConfig:
    dim: int = 8  # embedding width

    def __post_init__(self) -> None:
        check(self.dim >= 1, "model.dim", "must be >= 1")


class Pairs(TorchDataset):
    """(previous item, next item) pairs of the training sequences."""

    def __init__(self, sequences):
        self.pairs = [(int(s[t - 1]), int(s[t])) for s in sequences for t in range(1, len(s))]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[int, int]:
        return self.pairs[i]

    def set_epoch(self, epoch: int) -> None:  # nothing random per sample
        pass


class ToyMarkov(Recommender):
    name = "toy-markov"
    tasks = frozenset({SEQUENTIAL, DIRECT})

    def __init__(self, config: ToyConfig, num_items: int):
        super().__init__()
        self.prev = nn.Embedding(num_items, config.dim)  # (N, d)
        self.next = nn.Embedding(num_items, config.dim)  # (N, d)

    def train_data(self, dataset, split: str = "train", seed: int = 0):
        return Pairs(dataset.train_sequences)

    def collate(self, samples: list) -> dict:
        prev, nxt = zip(*samples, strict=True)
        return {"prev": torch.tensor(prev), "next": torch.tensor(nxt)}  # (B,), (B,)

    def training_loss(self, batch: dict) -> torch.Tensor:
        logits = self.prev(batch["prev"]) @ self.next.weight.T  # (B, N)
        return F.cross_entropy(logits, batch["next"])

    def score_items(self, users, histories, prompt=None) -> torch.Tensor:
        last = torch.stack([h[-1] if len(h) else h.new_zeros(()) for h in histories])  # (B,)
        return self.prev(last) @ self.next.weight.T  # (B, N)


@register("toy-markov", ToyConfig, "A toy first-order Markov chain (a plugin from tests/)")
def build_toy(config: ToyConfig, dataset) -> ToyMarkov:
    return ToyMarkov(config, dataset.num_items)
