"""Training data order: a batch sampler that depends only on (seed, epoch) and can start
mid-epoch, and the DataLoader built around a model's training samples.

The order of an epoch is one permutation drawn from ``numpy.random.default_rng([seed,
epoch])``; process ``r`` of ``W`` takes every ``W``-th index starting at ``r`` (the
permutation is padded by wrapping around so every process gets the same count, as
torch's ``DistributedSampler`` does). Because of that striding, micro-batch ``k`` of all
processes together is exactly the contiguous slice ``perm[k*B*W:(k+1)*B*W]``: the global
batches do not depend on how many processes share them.

Resuming mid-epoch never replays data: :meth:`EpochBatchSampler.set_epoch` takes the
number of micro-batches already consumed, and the sampler starts after them.

Length bucketing (``train.length_bucketing``): given each sample's length in the epoch,
the permutation is cut into windows of ``window`` global batches; each window is sorted
by length (stable) and cut into global batches, and the full global batches of the epoch
are then shuffled (a second generator seeded ``[seed, epoch, 1]``; a short last batch
stays last). Batches then hold prompts of similar length, so little compute goes to
padding; the order is still a pure function of (seed, epoch, lengths), the same for
any number of processes, and resumable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from mfmrec.errors import DataError


@dataclass(frozen=True)
class Shard:
    """Which slice of the data this process reads."""

    rank: int = 0
    world_size: int = 1


class EpochBatchSampler(Sampler[list[int]]):
    """Yields lists of sample indices for one process; see the module docstring."""

    def __init__(self, num_samples: int, batch_size: int, seed: int, shard: Shard = Shard(),
                 lengths: Callable[[int], np.ndarray] | None = None, window: int = 50):
        if num_samples < 1:
            raise DataError("the model produced no training samples from this dataset "
                            "(too few interactions or reviews for its training split?)")
        if not 0 <= shard.rank < shard.world_size:
            raise ValueError(f"rank {shard.rank} outside world of {shard.world_size}")
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.shard = shard
        self.lengths, self.window = lengths, int(window)  # lengths(epoch) -> (N,) tokens
        self.epoch, self.start = 0, 0
        self._order: tuple[int, np.ndarray] | None = None  # (epoch, its global order)

    @property
    def per_process(self) -> int:
        """Samples each process reads per epoch (after padding)."""
        return math.ceil(self.num_samples / self.shard.world_size)

    def __len__(self) -> int:
        """Micro-batches per epoch (the same on every process)."""
        return math.ceil(self.per_process / self.batch_size)

    def batch_len(self, index: int) -> int:
        """Samples in micro-batch ``index`` of an epoch (only the last one is short)."""
        return min(self.batch_size, self.per_process - index * self.batch_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch's permutation and skip its first ``start`` micro-batches."""
        if not 0 <= start <= len(self):
            raise ValueError(f"start batch {start} outside 0..{len(self)}")
        self.epoch, self.start = int(epoch), int(start)

    def global_order(self, epoch: int) -> np.ndarray:
        """(per_process * world_size,) the sample indices of ``epoch`` for all processes:
        global batch ``k`` is the slice ``[k*B*W, (k+1)*B*W)``."""
        if self._order is not None and self._order[0] == epoch:
            return self._order[1]
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
        total = self.per_process * self.shard.world_size
        if total > len(perm):
            perm = np.concatenate([perm, perm[: total - len(perm)]])
        if self.lengths is not None:
            perm = self._bucketed(perm, epoch)
        self._order = (epoch, perm)
        return perm

    def _bucketed(self, perm: np.ndarray, epoch: int) -> np.ndarray:
        """``perm`` regrouped into global batches of similar length (module docstring)."""
        lengths = np.asarray(self.lengths(epoch))
        if lengths.shape != (self.num_samples,):
            raise DataError(f"length bucketing: {lengths.shape[0] if lengths.ndim else 0} "
                            f"lengths for {self.num_samples} training samples")
        size = self.batch_size * self.shard.world_size  # one global batch
        span = size * self.window
        windows = [perm[i:i + span] for i in range(0, len(perm), span)]
        order = np.concatenate([w[np.argsort(lengths[w], kind="stable")] for w in windows])
        full = len(order) // size
        batches = order[: full * size].reshape(full, size)  # (G, B*W)
        shuffle = np.random.default_rng([self.seed, epoch, 1]).permutation(full)
        return np.concatenate([batches[shuffle].reshape(-1), order[full * size:]])

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """(per_process,) this process's sample indices of ``epoch``, in order."""
        return self.global_order(epoch)[self.shard.rank :: self.shard.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        indices = self.epoch_indices(self.epoch)
        for b in range(self.start, len(self)):
            yield indices[b * self.batch_size : (b + 1) * self.batch_size].tolist()


def build_loader(samples: torch.utils.data.Dataset, sampler: EpochBatchSampler, collate,
                 num_workers: int, seed: int, pin_memory: bool = False) -> DataLoader:
    """A DataLoader over ``samples`` in the sampler's order.

    The explicit generator keeps DataLoader from drawing its worker base seed from the
    global torch RNG, which would shift dropout masks after a mid-epoch resume.
    """
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(samples, batch_sampler=sampler, collate_fn=collate,
                      num_workers=num_workers, generator=generator,
                      persistent_workers=False, pin_memory=pin_memory)


def set_epoch(samples: torch.utils.data.Dataset, epoch: int) -> None:
    """Tell a sample set with per-sample randomness which epoch it serves."""
    hook = getattr(samples, "set_epoch", None)
    if callable(hook):
        hook(epoch)


def begin_epoch(loader: DataLoader, epoch: int, start: int = 0) -> Iterator:
    """An iterator over ``epoch``'s micro-batches from number ``start`` on.

    The loader's generator (worker base seeds) is re-seeded from (seed, epoch), so a run
    resumed in epoch ``e`` gives its workers the seeds an uninterrupted run gave them.
    """
    sampler: EpochBatchSampler = loader.batch_sampler
    sampler.set_epoch(epoch, start)
    set_epoch(loader.dataset, epoch)
    state = np.random.SeedSequence([sampler.seed, epoch]).generate_state(2, np.uint32)
    loader.generator.manual_seed(int(state[0]) << 32 | int(state[1]))
    return iter(loader)
