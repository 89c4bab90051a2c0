"""The one recommender contract (RecBole-style).

Every model — SASRec, BPR-MF, VBPR, PETER, VIP5, IISAN — is a ``Recommender``. The
trainer (``mfmrec.training``) and the evaluator (``mfmrec.evaluation``) know only
this contract, so no ``if model_name == ...`` exists outside the registry.

Training side:
  * ``train_data(dataset, split, seed)`` -> a ``torch.utils.data.Dataset`` of samples;
  * ``collate(samples)`` -> a batch (dict of tensors / lists);
  * ``training_loss(batch)`` -> scalar tensor.

Scoring side (a model implements the tasks it supports, listed in ``tasks``):
  * ``score_items(users, histories)`` -> (B, N) scores over all items (full ranking);
  * ``score_candidates(users, histories, candidates)`` -> (B, C) scores;
  * ``recommend(users, histories, k)`` -> (B, k) item indices in rank order (generative
    models override it; the default takes the top-k of ``score_items``);
  * ``explain(requests)`` -> generated explanation strings.

``users`` are int64 tensors of internal user indices; ``histories`` are lists of int64
tensors of internal item indices (time order, without the target); candidates are
internal item indices. Prompt-based models (VIP5) take ``prompt="A-3"`` etc. to pick
the evaluation template; other models ignore it. An explanation request is a dict with
``user``, ``item`` (internal indices), ``rating``, ``summary``, ``feature`` and
``reviewer_name`` of one review.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

SEQUENTIAL, DIRECT, EXPLANATION = "sequential", "direct", "explanation"


class Recommender(nn.Module):
    """Base class of every model; see the module docstring for the contract."""

    name: ClassVar[str] = "recommender"
    tasks: ClassVar[frozenset[str]] = frozenset()

    # ---- training ----------------------------------------------------------------------
    def train_data(self, dataset: Any, split: str = "train", seed: int = 0):
        raise NotImplementedError(f"{self.name} does not define training data")

    def collate(self, samples: list) -> dict:
        raise NotImplementedError(f"{self.name} does not define a collate function")

    def training_loss(self, batch: dict) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} does not define a training loss")

    # ---- scoring -----------------------------------------------------------------------
    def score_items(self, users: torch.Tensor, histories: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} cannot score all items")

    def score_candidates(
        self, users: torch.Tensor, histories: list[torch.Tensor], candidates: torch.Tensor,
        prompt: str | None = None,
    ) -> torch.Tensor:
        """(B, C) scores; the default gathers from ``score_items``."""
        scores = self.score_items(users, histories)  # (B, N)
        return scores.gather(1, candidates)

    def recommend(
        self, users: torch.Tensor, histories: list[torch.Tensor], k: int,
        prompt: str | None = None,
    ) -> torch.Tensor:
        """(B, k) item indices, best first."""
        return self.score_items(users, histories).topk(k, dim=1).indices

    def explain(self, requests: list[dict], prompt: str | None = None) -> list[str]:
        raise NotImplementedError(f"{self.name} cannot generate explanations")

    # ---- persistence -------------------------------------------------------------------
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the tensors that train (what a checkpoint stores)."""
        return {n: p.detach() for n, p in self.named_parameters() if p.requires_grad}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        own = dict(self.named_parameters())
        missing = [n for n, p in own.items() if p.requires_grad and n not in state]
        unknown = [n for n in state if n not in own]
        if missing or unknown:
            raise KeyError(f"checkpoint mismatch: missing {missing[:3]}, unknown {unknown[:3]}")
        with torch.no_grad():
            for n, t in state.items():
                own[n].copy_(t)

    def parameter_groups(self) -> dict[str, int]:
        """Trainable parameter counts by part, for the efficiency report."""
        return {"all": sum(p.numel() for p in self.parameters() if p.requires_grad)}
