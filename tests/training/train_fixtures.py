"""A tiny matrix-factorisation Recommender and a tiny dataset for the trainer's tests.

``test-mf`` scores ``<dropout(u) [@ frozen projection], v_i> + b_i`` and trains with
binary cross-entropy against one negative item drawn from (seed, epoch, index), so it
exercises every source of randomness the trainer must reproduce: data order, per-sample
draws (``set_epoch``) and dropout (global torch RNG). With ``frozen: true`` it carries a
frozen random projection built from ``init_seed`` (never from the global RNG), like a
frozen backbone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset as TorchDataset

from mfmrec.config import check
from mfmrec.data import RawDataset, write_dataset
from mfmrec.models.base import DIRECT, Recommender
from mfmrec.models.registry import register

NAME = "test-mf"


@dataclass
class TinyMFConfig:
    dim: int = 8  # embedding size
    dropout: float = 0.2  # on the user vector
    frozen: bool = False  # add a frozen random projection of the user vector
    init_seed: int = 7  # seed of the frozen projection

    def __post_init__(self) -> None:
        check(self.dim >= 1, "model.dim", "must be >= 1")
        check(0 <= self.dropout < 1, "model.dropout", "must be in [0, 1)")


class PairSamples(TorchDataset):
    """(user, positive, negative) per training interaction; negatives from (seed, epoch, i)."""

    def __init__(self, sequences, num_items: int, seed: int):
        self.pairs = [(u, int(i)) for u, seq in enumerate(sequences) for i in seq]
        self.num_items, self.seed, self.epoch = num_items, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pairs)

    def lengths(self, epoch: int) -> np.ndarray:
        """(N,) made-up sample lengths for length bucketing; they change with the epoch."""
        return np.asarray([(u * 7 + i + epoch) % 11 + 1 for u, i in self.pairs])

    def __getitem__(self, idx: int) -> tuple[int, int, int]:
        user, item = self.pairs[idx]
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        return user, item, int(rng.integers(self.num_items))


class TinyMF(Recommender):
    name = NAME
    tasks = frozenset({DIRECT})

    def __init__(self, cfg: TinyMFConfig, num_users: int, num_items: int):
        super().__init__()
        self.user = nn.Embedding(num_users, cfg.dim)
        self.item = nn.Embedding(num_items, cfg.dim)
        self.bias = nn.Parameter(torch.zeros(num_items))
        self.drop = nn.Dropout(cfg.dropout)
        self.proj = None
        if cfg.frozen:
            gen = torch.Generator().manual_seed(cfg.init_seed)
            self.proj = nn.Linear(cfg.dim, cfg.dim)
            with torch.no_grad():
                self.proj.weight.copy_(torch.randn(cfg.dim, cfg.dim, generator=gen) / cfg.dim**0.5)
                self.proj.bias.copy_(torch.randn(cfg.dim, generator=gen))
            self.proj.requires_grad_(False)

    def _users(self, users: torch.Tensor) -> torch.Tensor:
        u = self.drop(self.user(users))  # (B, d)
        return self.proj(u) if self.proj is not None else u

    def train_data(self, dataset, split: str = "train", seed: int = 0) -> PairSamples:
        return PairSamples(dataset.train_sequences, dataset.num_items, seed)

    def collate(self, samples: list) -> dict:
        users, pos, neg = (torch.tensor(col) for col in zip(*samples, strict=True))
        return {"user": users, "pos": pos, "neg": neg}  # (B,) each

    def training_loss(self, batch: dict) -> torch.Tensor:
        u = self._users(batch["user"])  # (B, d)
        pos = (u * self.item(batch["pos"])).sum(-1) + self.bias[batch["pos"]]
        neg = (u * self.item(batch["neg"])).sum(-1) + self.bias[batch["neg"]]
        return (F.softplus(-pos) + F.softplus(neg)).mean()

    def score_items(self, users: torch.Tensor, histories, prompt=None) -> torch.Tensor:
        return self._users(users) @ self.item.weight.T + self.bias  # (B, N)

    def parameter_groups(self) -> dict[str, int]:
        return {"embeddings": self.user.weight.numel() + self.item.weight.numel(),
                "bias": self.bias.numel()}


@register(NAME, TinyMFConfig, "test-only matrix factorisation")
def build_tiny_mf(config: TinyMFConfig, dataset) -> TinyMF:
    return TinyMF(config, dataset.num_users, dataset.num_items)


def tiny_raw(num_users: int = 12, num_items: int = 15, seed: int = 0) -> RawDataset:
    """SIMULATED: random sequences of 4-7 distinct items per user."""
    rng = np.random.default_rng(seed)
    seqs = [rng.choice(num_items, size=int(rng.integers(4, 8)), replace=False).tolist()
            for _ in range(num_users)]
    return RawDataset(name="tiny", user_ids=[f"u{i}" for i in range(num_users)],
                      item_ids=[f"i{i}" for i in range(num_items)], sequences=seqs,
                      item_titles=[f"item {i}" for i in range(num_items)], simulated=True)


def write_tiny(out: Path) -> Path:
    return write_dataset(tiny_raw(), out, seed=0, num_negatives=5)


def run_config(tmp: Path, model: dict | None = None, train: dict | None = None) -> Path:
    """Write a run YAML for the tiny model and return its path."""
    import yaml

    data = {"model": {"name": NAME, **(model or {})},
            "train": {"epochs": 2, "batch_size": 8, "lr": 0.05, "log_every": 1,
                      "precision": "no", **(train or {})}}
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _launched(index: int, world: int, port: int, fn, args) -> None:
    import os

    from accelerate.state import AcceleratorState

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(index), LOCAL_RANK=str(index), LOCAL_WORLD_SIZE=str(world),
                      ACCELERATE_USE_CPU="yes", GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    AcceleratorState._reset_state(True)  # a forked child inherits the parent's state
    fn(*args)


def launch_cpu(fn, args: tuple, processes: int = 2) -> None:
    """Run ``fn(*args)`` in ``processes`` forked CPU processes joined by gloo, as
    ``accelerate launch --cpu --num_processes N`` would (a free port, not a fixed one)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.start_processes(_launched, args=(processes, port, fn, args), nprocs=processes,
                       start_method="fork")
