"""Shared pieces of the classic baselines: reproducible per-sample randomness, negative
sampling from non-interacted items, and left padding of item sequences.

Every random choice a training sample makes (a negative item) comes from a generator
seeded by ``(seed, epoch, index)``, never from global state, so an interrupted run that
resumes at epoch ``e`` sees exactly the samples it would have seen (see ``set_epoch``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from mfmrec.errors import DataError


class EpochSamples(TorchDataset):
    """A torch dataset whose per-sample randomness depends only on (seed, epoch, index)."""

    def __init__(self, seed: int):
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer before each epoch; changes every sample's random draw."""
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])


def interacted_sets(sequences: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per user, the sorted unique items of ``sequences`` (fast membership via searchsorted)."""
    return [np.unique(np.asarray(s, dtype=np.int64)) for s in sequences]


def contains(sorted_items: np.ndarray, item: int) -> bool:
    pos = np.searchsorted(sorted_items, item)
    return bool(pos < len(sorted_items) and sorted_items[pos] == item)


def sample_negative(rng: np.random.Generator, num_items: int, seen: np.ndarray) -> int:
    """One item in ``[0, num_items)`` that is not in ``seen`` (sorted), uniformly.

    Rejection sampling is cheap because real users see a tiny share of the catalogue; a
    dense user falls back to drawing from the explicit complement.
    """
    if len(seen) >= num_items:
        raise DataError(f"a user interacted with all {num_items} items: no negative to sample")
    if len(seen) < num_items // 2:
        for _ in range(64):
            item = int(rng.integers(num_items))
            if not contains(seen, item):
                return item
    complement = np.setdiff1d(np.arange(num_items, dtype=np.int64), seen, assume_unique=True)
    return int(complement[rng.integers(len(complement))])


def sample_negatives(rng: np.random.Generator, num_items: int, users: np.ndarray,
                     seen: Sequence[np.ndarray]) -> np.ndarray:
    """(N,) one negative per entry of ``users``: uniform over the items that user has not
    seen (``seen[u]`` sorted), all drawn at once from ``rng``.

    Vectorised rejection sampling over the sorted keys ``user * num_items + item`` of
    every seen pair; entries still rejected after 64 rounds (dense users) fall back to
    :func:`sample_negative`, which also raises for a user who has seen every item.
    """
    users = np.asarray(users, dtype=np.int64)
    keys = np.concatenate([u * num_items + np.asarray(s, dtype=np.int64)
                           for u, s in enumerate(seen)] or [np.zeros(0, np.int64)])  # sorted
    out = rng.integers(num_items, size=len(users))  # (N,)
    todo = np.arange(len(users))
    for _ in range(64):
        key = users[todo] * num_items + out[todo]
        pos = np.minimum(np.searchsorted(keys, key), max(len(keys) - 1, 0))
        todo = todo[keys[pos] == key] if len(keys) else todo[:0]
        if not len(todo):
            return out
        out[todo] = rng.integers(num_items, size=len(todo))
    for i in todo:
        out[i] = sample_negative(rng, num_items, seen[users[i]])
    return out


def pad_left(seqs: Sequence[Sequence[int] | np.ndarray | torch.Tensor], max_len: int,
             pad: int = 0, shift: int = 0) -> torch.Tensor:
    """(B, max_len) int64: the last ``max_len`` items of each sequence, left-padded.

    Left padding keeps every sequence's most recent item in the last column, which is
    where a causal encoder reads the user state. ``shift`` is added to real items (SASRec
    reserves index 0 for padding and stores item ``i`` at row ``i + 1``).
    """
    out = torch.full((len(seqs), max_len), pad, dtype=torch.long)
    for row, seq in enumerate(seqs):
        if isinstance(seq, torch.Tensor):
            seq = seq.detach().cpu().numpy()
        tail = torch.from_numpy(np.asarray(seq, dtype=np.int64).reshape(-1)[-max_len:].copy())
        if len(tail):
            out[row, max_len - len(tail):] = tail + shift
    return out


def user_item_pairs(sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All distinct (user, item) training pairs, users ascending, items in first-seen order."""
    users, items = [], []
    for u, seq in enumerate(sequences):
        _, first = np.unique(np.asarray(seq, dtype=np.int64), return_index=True)
        uniq = np.asarray(seq, dtype=np.int64)[np.sort(first)]
        users.append(np.full(len(uniq), u, dtype=np.int64))
        items.append(uniq)
    if not users:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(users), np.concatenate(items)


def model_device(module: torch.nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
