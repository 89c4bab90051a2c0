"""BPR-MF and BPR-MLP: pairwise Bayesian personalised ranking (Rendle et al., UAI 2009).

Both learn from every distinct (user, item) pair of ``dataset.train_sequences``, each
paired with one negative item the user never interacted with in training; the negative
is drawn for the whole epoch at once from a generator seeded by (seed, epoch), so
``set_epoch`` re-draws them reproducibly (and a resumed run sees the same ones). The
loss is ``-log sigmoid(s(u, i) - s(u, j))``; the L2 prior of BPR is the trainer's weight
decay (``train.weight_decay``).

* ``bpr-mf``: ``s(u, i) = p_u . q_i (+ b_i)``;
* ``bpr-mlp``: an NCF-style tower over ``[p_u ; q_i]`` (He et al., WWW 2017, the MLP part)
  trained with the same pairwise loss.

Both ignore histories: scores depend on the user index only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mfmrec.config import check
from mfmrec.models.base import DIRECT, SEQUENTIAL, Recommender
from mfmrec.models.registry import register
from mfmrec.models.sampling import (
    EpochSamples,
    interacted_sets,
    model_device,
    sample_negatives,
    user_item_pairs,
)

# cap on (users x items x hidden) floats materialised at once when the MLP scores all items
_MLP_SCORE_BUDGET = 1 << 25


@dataclass
class BPRConfig:
    """BPR-MF: a user and an item vector per id, dot product score."""

    dim: int = 64  # latent factors
    item_bias: bool = True  # a learned popularity term b_i
    init_std: float = 0.01  # normal init of the factors

    def __post_init__(self) -> None:
        check(self.dim >= 1, "model.dim", f"must be >= 1, got {self.dim}")
        check(self.init_std > 0, "model.init_std", "must be > 0")


@dataclass
class BPRMLPConfig:
    """BPR-MLP: user and item vectors through an MLP tower that outputs the score."""

    dim: int = 64  # size of each of the user and item embeddings
    layers: list[int] = field(default_factory=lambda: [64, 32, 16])  # tower widths
    dropout: float = 0.0  # between tower layers
    init_std: float = 0.01  # normal init of the embeddings

    def __post_init__(self) -> None:
        check(self.dim >= 1, "model.dim", f"must be >= 1, got {self.dim}")
        check(len(self.layers) >= 1 and all(w >= 1 for w in self.layers), "model.layers",
              f"expected a non-empty list of positive widths, got {self.layers}")
        check(0.0 <= self.dropout < 1.0, "model.dropout", "must be in [0, 1)")
        check(self.init_std > 0, "model.init_std", "must be > 0")


class PairSamples(EpochSamples):
    """(user, positive, negative) triples over the distinct training pairs."""

    def __init__(self, sequences: list[np.ndarray], num_items: int, seed: int):
        super().__init__(seed)
        self.users, self.items = user_item_pairs(sequences)
        self.seen = interacted_sets(sequences)
        self.num_items = num_items

        self.negatives: np.ndarray | None = None  # (N,) this epoch's, drawn on first use

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.negatives = None

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, idx: int) -> tuple[int, int, int]:
        if self.negatives is None:  # one vectorised draw per epoch, seeded by (seed, epoch)
            rng = np.random.default_rng([self.seed, self.epoch])
            self.negatives = sample_negatives(rng, self.num_items, self.users, self.seen)
        return int(self.users[idx]), int(self.items[idx]), int(self.negatives[idx])


class PairwiseRecommender(Recommender):
    """Shared training side of the BPR family; subclasses define ``score_pairs``."""

    tasks = frozenset({SEQUENTIAL, DIRECT})

    def __init__(self, num_users: int, num_items: int):
        super().__init__()
        self.num_users, self.num_items = num_users, num_items

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(B,) users and (B, C) items -> (B, C) scores."""
        raise NotImplementedError

    def init_embeddings(self, dim: int, init_std: float) -> None:
        """``user_emb`` (U, dim) and ``item_emb`` (N, dim), normal(0, init_std)."""
        self.user_emb = nn.Embedding(self.num_users, dim)
        self.item_emb = nn.Embedding(self.num_items, dim)
        nn.init.normal_(self.user_emb.weight, std=init_std)
        nn.init.normal_(self.item_emb.weight, std=init_std)

    def train_data(self, dataset, split: str = "train", seed: int = 0) -> PairSamples:
        if split != "train":
            raise ValueError(f"{self.name} trains on the 'train' split only, got {split!r}")
        return PairSamples(dataset.train_sequences, self.num_items, seed)

    def collate(self, samples: list[tuple[int, int, int]]) -> dict:
        cols = zip(*samples, strict=True)
        users, pos, neg = (torch.tensor(col, dtype=torch.long) for col in cols)
        return {"user": users, "positive": pos, "negative": neg}  # (B,) each

    def training_loss(self, batch: dict) -> torch.Tensor:
        items = torch.stack([batch["positive"], batch["negative"]], dim=1)  # (B, 2)
        scores = self.score_pairs(batch["user"], items)  # (B, 2)
        return -F.logsigmoid(scores[:, 0] - scores[:, 1]).mean()

    def score_candidates(self, users, histories, candidates, prompt=None) -> torch.Tensor:
        device = model_device(self)
        return self.score_pairs(users.to(device), candidates.to(device))


class BPRMF(PairwiseRecommender):
    name = "bpr-mf"

    def __init__(self, cfg: BPRConfig, num_users: int, num_items: int):
        super().__init__(num_users, num_items)
        self.cfg = cfg
        self.init_embeddings(cfg.dim, cfg.init_std)
        self.item_bias = nn.Parameter(torch.zeros(num_items)) if cfg.item_bias else None

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        scores = (self.user_emb(users)[:, None, :] * self.item_emb(items)).sum(-1)  # (B, C)
        return scores + self.item_bias[items] if self.item_bias is not None else scores

    def score_items(self, users: torch.Tensor, histories=None, prompt=None) -> torch.Tensor:
        scores = self.user_emb(users.to(model_device(self))) @ self.item_emb.weight.T  # (B, N)
        return scores + self.item_bias if self.item_bias is not None else scores


class BPRMLP(PairwiseRecommender):
    name = "bpr-mlp"

    def __init__(self, cfg: BPRMLPConfig, num_users: int, num_items: int):
        super().__init__(num_users, num_items)
        self.cfg = cfg
        self.init_embeddings(cfg.dim, cfg.init_std)
        width = cfg.layers[0]
        # the first layer over [p_u ; q_i] is split in two so that scoring all items adds a
        # (B, 1, h) user part to a (1, N, h) item part instead of concatenating B x N pairs
        self.first_user = nn.Linear(cfg.dim, width)
        self.first_item = nn.Linear(cfg.dim, width, bias=False)
        tower: list[nn.Module] = []
        for w_in, w_out in zip(cfg.layers[:-1], cfg.layers[1:], strict=False):
            tower += [nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(w_in, w_out)]
        tower += [nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.layers[-1], 1)]
        self.tower = nn.Sequential(*tower)

    def _score(self, user_part: torch.Tensor, item_part: torch.Tensor) -> torch.Tensor:
        return self.tower(user_part + item_part).squeeze(-1)

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        user_part = self.first_user(self.user_emb(users))[:, None, :]  # (B, 1, h)
        return self._score(user_part, self.first_item(self.item_emb(items)))  # (B, C)

    @torch.no_grad()
    def score_items(self, users: torch.Tensor, histories=None, prompt=None) -> torch.Tensor:
        user_part = self.first_user(self.user_emb(users.to(model_device(self))))[:, None, :]
        item_part = self.first_item(self.item_emb.weight)[None]  # (1, N, h)
        chunk = max(1, _MLP_SCORE_BUDGET // max(1, len(users) * user_part.shape[-1]))
        return torch.cat([self._score(user_part, item_part[:, s: s + chunk])
                          for s in range(0, self.num_items, chunk)], dim=1)  # (B, N)


@register("bpr-mf", BPRConfig, "BPR matrix factorisation (pairwise ranking loss)")
def build_bpr_mf(config: BPRConfig, dataset) -> BPRMF:
    return BPRMF(config, dataset.num_users, dataset.num_items)


@register("bpr-mlp", BPRMLPConfig, "BPR with an NCF-style MLP tower as the scorer")
def build_bpr_mlp(config: BPRMLPConfig, dataset) -> BPRMLP:
    return BPRMLP(config, dataset.num_users, dataset.num_items)
