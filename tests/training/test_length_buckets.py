"""Length bucketing in the epoch batch sampler (train.length_bucketing)."""

from __future__ import annotations

import numpy as np
import pytest

from mfmrec.errors import DataError
from mfmrec.training.data import EpochBatchSampler, Shard


def lengths_of(n: int):
    """Made-up per-epoch lengths: heavy-tailed like VIP5's mix, different each epoch."""
    def lengths(epoch: int) -> np.ndarray:
        rng = np.random.default_rng([99, epoch])
        return np.where(rng.random(n) < 0.2, 500, rng.integers(16, 150, n))
    return lengths


def padded_share(batches: list[list[int]], lengths: np.ndarray) -> float:
    real = sum(lengths[b].sum() for b in batches)
    padded = sum(lengths[b].max() * len(b) for b in batches)
    return 1 - real / padded


def test_bucketed_epoch_is_a_permutation_with_little_padding():
    n, lengths = 1003, lengths_of(1003)
    plain = EpochBatchSampler(n, 16, seed=5)
    bucketed = EpochBatchSampler(n, 16, seed=5, lengths=lengths, window=20)
    for epoch in (0, 3):
        plain.set_epoch(epoch), bucketed.set_epoch(epoch)
        got = list(bucketed)
        assert sorted(i for b in got for i in b) == list(range(n))  # each sample once
        assert [len(b) for b in got] == [len(b) for b in plain]  # same batch sizes
        ls = lengths(epoch)
        assert padded_share(got, ls) < 0.15 < 0.5 < padded_share(list(plain), ls)


def test_order_is_a_function_of_seed_epoch_and_lengths():
    make = lambda seed: EpochBatchSampler(500, 8, seed=seed, lengths=lengths_of(500))  # noqa: E731
    a, b, c = make(1), make(1), make(2)
    for s in (a, b, c):
        s.set_epoch(2)
    assert list(a) == list(b) != list(c)
    b.set_epoch(3)
    assert list(a) != list(b)
    # long and short batches are interleaved, not sorted over the epoch
    firsts = [lengths_of(500)(2)[batch].max() for batch in list(a)]
    assert firsts != sorted(firsts)


def test_global_batches_do_not_depend_on_the_number_of_processes():
    n, lengths = 301, lengths_of(301)
    one = EpochBatchSampler(n, 8, seed=4, lengths=lengths, window=5)
    ranks = [EpochBatchSampler(n, 4, seed=4, shard=Shard(r, 2), lengths=lengths, window=5)
             for r in (0, 1)]
    per_rank = [list(s) for s in ranks]
    for k, batch in enumerate(list(one)[:-1]):  # the short last batch pads differently
        assert sorted(per_rank[0][k] + per_rank[1][k]) == sorted(batch)


def test_resume_skips_the_consumed_batches():
    s = EpochBatchSampler(400, 8, seed=1, lengths=lengths_of(400))
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start=7)
    assert list(s) == full[7:]


def test_wrong_number_of_lengths_is_one_line():
    s = EpochBatchSampler(10, 4, seed=0, lengths=lambda e: np.ones(9))
    with pytest.raises(DataError, match="length bucketing: 9 lengths for 10 training samples"):
        list(s)


def test_training_data_without_lengths_is_refused_in_one_line(tiny_data, make_config,
                                                               tmp_path, monkeypatch):
    import train_fixtures

    from mfmrec.errors import ConfigError
    from mfmrec.training.runs import train

    monkeypatch.delattr(train_fixtures.PairSamples, "lengths")
    cfg = make_config(train={"length_bucketing": True})
    with pytest.raises(ConfigError, match="train.length_bucketing: the training samples of "
                                          "test-mf report no lengths; set it false"):
        train(cfg, tiny_data, tmp_path / "run", quiet=True)
