"""The one recommender contract (RecBole-style).

Every model — popularity, SASRec, BPR-MF, VBPR, PETER, VIP5, TIGER, IISAN — is a
``Recommender``. The trainer (``mfmrec.training``) and the evaluator
(``mfmrec.evaluation``) know only this contract: what a model *declares* decides how it
is trained and scored, never probing of its methods.

Declarations (class attributes):
  * ``tasks`` — the tasks it serves, a subset of :data:`TASKS`;
  * ``produces`` — :data:`SCORES` (ranking comes from ``score_items`` /
    ``score_candidates``) or :data:`GENERATED_LIST` (it also generates its own ranked
    list with ``recommend`` / ``recommend_candidates``, e.g. by beam search; the evaluator
    then reads that list unless told to use exact scores);
  * ``default_prompts`` — ``{task: prompt id}`` for prompt-based models (VIP5's A/B/C
    families, see :data:`PROMPT_FAMILIES`); empty for models without prompts, which accept
    and ignore a ``prompt`` argument.

Training side:
  * ``train_data(dataset, split, seed)`` -> a ``torch.utils.data.Dataset`` of samples;
  * ``collate(samples)`` -> a batch (dict of tensors / lists);
  * ``training_loss(batch)`` -> scalar tensor;
  * ``batch_cost(batch)`` -> :class:`BatchCost` or None: the real and padded tokens of a
    (CPU) batch and the training FLOPs (forward + backward) of its real tokens, for the
    efficiency report (padding share, real tokens/s, MFU). The default counts the
    ``attention_mask`` of a dict batch (no FLOPs); transformer models add an analytic
    count (:mod:`mfmrec.models.flops`). Pure counting: it never draws random numbers.

Scoring side (a model implements the methods of the tasks it declares):
  * ``score_items(users, histories, prompt)`` -> (B, N) scores over all items;
  * ``score_candidates(users, histories, candidates, prompt)`` -> (B, C) scores;
  * ``recommend(users, histories, k, prompt)`` -> (B, k) items, best first (default: the
    top-k of ``score_items``);
  * ``recommend_candidates(users, histories, candidates, k, prompt)`` -> (B, k) items
    drawn from each row's candidates (default: the top-k of ``score_candidates``);
  * ``explain(requests, prompt)`` -> generated explanation strings;
  * ``predict_rating(users, items)`` -> (B,) predicted star ratings.

``users`` are int64 tensors of internal user indices; ``histories`` are lists of int64
tensors of internal item indices (time order, without the target); candidates are
internal item indices. An explanation request is a dict with ``user``, ``item``
(internal indices), ``rating``, ``summary``, ``feature`` and ``reviewer_name`` of one
review.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from mfmrec.errors import ConfigError

SEQUENTIAL, DIRECT, EXPLANATION, RATING = "sequential", "direct", "explanation", "rating"
TASKS = (SEQUENTIAL, DIRECT, EXPLANATION, RATING)
SCORES, GENERATED_LIST = "scores", "list"
# the VIP5 paper's prompt families: the letter of a prompt id names its task (the one map)
PROMPT_FAMILIES = {"A": SEQUENTIAL, "B": DIRECT, "C": EXPLANATION}
FAMILY_OF_TASK = {task: letter for letter, task in PROMPT_FAMILIES.items()}


def task_of_prompt(prompt_id: str) -> str:
    """``"A-3"`` -> ``"sequential"``; a one-line error for an unknown family."""
    task = PROMPT_FAMILIES.get(str(prompt_id).split("-")[0].upper())
    if task is None:
        raise ConfigError(f"prompt {prompt_id!r}: unknown family (expected A-* sequential, "
                          "B-* direct or C-* explanation)")
    return task


@dataclass(frozen=True)
class BatchCost:
    """What one micro-batch costs: tokens with and without padding, training FLOPs."""

    real_tokens: int  # tokens that carry data (padding excluded)
    padded_tokens: int  # token slots the batch tensors hold (padding included)
    flops: float | None = None  # forward + backward FLOPs of the real tokens; None: unknown

    def __post_init__(self) -> None:
        if not 0 <= self.real_tokens <= self.padded_tokens:
            raise ValueError(f"BatchCost: need 0 <= real_tokens ({self.real_tokens}) <= "
                             f"padded_tokens ({self.padded_tokens})")
        if self.flops is not None and self.flops < 0:
            raise ValueError(f"BatchCost: flops must be >= 0, got {self.flops}")


def enable_hf_checkpointing(model: nn.Module) -> None:
    """Non-reentrant activation checkpointing of a transformers model's layers (inputs
    without grad, frozen weights and injected adapters all work with it)."""
    kwargs = {"use_reentrant": False}
    enable = getattr(model, "activation_checkpointing_enable", None)  # the name since 5.x
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


class Recommender(nn.Module):
    """Base class of every model; see the module docstring for the contract."""

    name: ClassVar[str] = "recommender"
    tasks: ClassVar[frozenset[str]] = frozenset()
    produces: ClassVar[str] = SCORES
    default_prompts: ClassVar[dict[str, str]] = {}

    # ---- training ----------------------------------------------------------------------
    def train_data(self, dataset: Any, split: str = "train", seed: int = 0):
        raise NotImplementedError(f"{self.name} does not define training data")

    def collate(self, samples: list) -> dict:
        raise NotImplementedError(f"{self.name} does not define a collate function")

    def training_loss(self, batch: dict) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} does not define a training loss")

    def batch_cost(self, batch: Any) -> BatchCost | None:
        """Tokens (and, where a model counts them, FLOPs) of one CPU batch; the default
        reads a dict batch's (B, L) ``attention_mask``, and has no FLOPs. None: no tokens."""
        mask = batch.get("attention_mask") if isinstance(batch, dict) else None
        if not isinstance(mask, torch.Tensor) or mask.ndim != 2:
            return None
        return BatchCost(int(mask.sum()), mask.numel())

    # ---- scoring -----------------------------------------------------------------------
    def score_items(self, users: torch.Tensor, histories: list[torch.Tensor],
                    prompt: str | None = None) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} cannot score all items")

    def score_candidates(
        self, users: torch.Tensor, histories: list[torch.Tensor], candidates: torch.Tensor,
        prompt: str | None = None,
    ) -> torch.Tensor:
        """(B, C) scores; the default gathers from ``score_items``."""
        scores = self.score_items(users, histories, prompt=prompt)  # (B, N)
        return scores.gather(1, candidates)

    def recommend(
        self, users: torch.Tensor, histories: list[torch.Tensor], k: int,
        prompt: str | None = None,
    ) -> torch.Tensor:
        """(B, k) item indices, best first."""
        return self.score_items(users, histories, prompt=prompt).topk(k, dim=1).indices

    def recommend_candidates(
        self, users: torch.Tensor, histories: list[torch.Tensor], candidates: torch.Tensor,
        k: int, prompt: str | None = None,
    ) -> torch.Tensor:
        """(B, k) items from each row of ``candidates`` (B, C), best first."""
        scores = self.score_candidates(users, histories, candidates, prompt=prompt)  # (B, C)
        return candidates.gather(1, scores.topk(min(k, scores.shape[1]), dim=1).indices)

    def explain(self, requests: list[dict], prompt: str | None = None) -> list[str]:
        raise NotImplementedError(f"{self.name} cannot generate explanations")

    def predict_rating(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} cannot predict ratings")

    def enable_activation_checkpointing(self) -> None:
        """Recompute the activations of large blocks in backward instead of storing them
        (``train.activation_checkpointing``); the gradients stay the same. Models without
        large activations keep this default, a one-line error."""
        raise ConfigError(f"config field train.activation_checkpointing: {self.name} does "
                          "not support it (no large activations to recompute); set it false")

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
