"""The epoch batch sampler, the learning-rate schedule and the optimizer's groups."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mfmrec.errors import ConfigError
from mfmrec.training.data import EpochBatchSampler, Shard, begin_epoch, build_loader
from mfmrec.training.trainer import linear_schedule, optimizer_groups, resolve_precision


def test_order_is_the_seeded_permutation_golden():
    s = EpochBatchSampler(6, batch_size=4, seed=0)
    # numpy.random.default_rng([0, 0]).permutation(6) == [3, 2, 5, 4, 0, 1]
    assert list(s) == [[3, 2, 5, 4], [0, 1]]
    s.set_epoch(1)  # default_rng([0, 1]).permutation(6) == [1, 4, 3, 0, 2, 5]
    assert list(s) == [[1, 4, 3, 0], [2, 5]]
    assert len(s) == 2 and [s.batch_len(0), s.batch_len(1)] == [4, 2]


def test_order_depends_only_on_seed_and_epoch():
    a, b = EpochBatchSampler(50, 7, seed=3), EpochBatchSampler(50, 7, seed=3)
    list(a)  # iterating one epoch leaves no state behind
    a.set_epoch(2), b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)


def test_two_processes_split_each_global_batch_and_pad_by_wrapping():
    # default_rng([0, 0]).permutation(5) == [2, 4, 3, 0, 1]; padded to 6 with the first item
    r0 = list(EpochBatchSampler(5, 2, seed=0, shard=Shard(0, 2)))
    r1 = list(EpochBatchSampler(5, 2, seed=0, shard=Shard(1, 2)))
    assert r0 == [[2, 3], [1]] and r1 == [[4, 0], [2]]
    single = list(EpochBatchSampler(5, 4, seed=0))  # global batch 4 on one process
    assert sorted(r0[0] + r1[0]) == sorted(single[0])


def test_start_skips_consumed_batches():
    s = EpochBatchSampler(20, 3, seed=1)
    s.set_epoch(4)
    full = list(s)
    s.set_epoch(4, start=5)
    assert list(s) == full[5:]
    with pytest.raises(ValueError):
        s.set_epoch(4, start=len(s) + 1)


class _Samples(torch.utils.data.Dataset):
    def __init__(self):
        self.epochs = []

    def set_epoch(self, epoch):
        self.epochs.append(epoch)

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return i


def test_begin_epoch_sets_dataset_epoch_and_reseeds_the_loader():
    data = _Samples()
    loader = build_loader(data, EpochBatchSampler(10, 4, seed=5), torch.tensor, 0, seed=5)
    first = [b.tolist() for b in begin_epoch(loader, 2)]
    seed_a = loader.generator.initial_seed()
    begin_epoch(loader, 3)
    again = [b.tolist() for b in begin_epoch(loader, 2, start=1)]
    assert again == first[1:] and data.epochs == [2, 3, 2]
    assert loader.generator.initial_seed() == seed_a  # same epoch, same worker seeds


def test_linear_schedule_golden():
    f = linear_schedule(total_steps=10, warmup_steps=2)
    got = [f(s) for s in range(10)]
    want = [0.5, 1.0, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8]
    assert got == pytest.approx(want)
    assert [linear_schedule(4, 0)(s) for s in range(4)] == pytest.approx([1, 0.75, 0.5, 0.25])


def test_constant_schedule_warms_up_then_holds_the_peak():
    f = linear_schedule(total_steps=6, warmup_steps=2, decay=False)
    assert [f(s) for s in range(6)] == pytest.approx([0.5, 1, 1, 1, 1, 1])


def test_optimizer_groups_hold_only_trainable_and_skip_decay_on_vectors():
    net = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    net[2].requires_grad_(False)
    decay, no_decay = optimizer_groups(net, 0.01)
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 3])]
    assert sorted(p.numel() for p in no_decay["params"]) == [4, 4, 4]
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.01, 0.0)
    net.requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable parameters"):
        optimizer_groups(net, 0.01)


def test_precision_auto_is_none_on_cpu_and_fp16_needs_cuda():
    assert resolve_precision("auto", torch.device("cpu")) == "no"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(ConfigError, match="train.precision"):
        resolve_precision("fp16", torch.device("cpu"))
