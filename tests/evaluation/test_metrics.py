"""Ranking metrics against hand-computed values."""

import math

import numpy as np
import pytest
import torch

from mfmrec.evaluation.metrics import (
    history_mask,
    hit_rate,
    hits_at,
    list_validity,
    metric_names,
    ndcg,
    ndcg_at,
    rank_from_list,
    rank_from_scores,
    ranking_metrics,
)

# ranks of five users; 0 and inf are "not found"
RANKS = [1, 3, 0, 11, math.inf]


def test_hit_rate_by_hand():
    # found within k: k=1 -> {1}; k=5 -> {1, 3}; k=10 -> {1, 3} (11 is outside)
    assert hit_rate(RANKS, 1) == pytest.approx(1 / 5)
    assert hit_rate(RANKS, 5) == pytest.approx(2 / 5)
    assert hit_rate(RANKS, 10) == pytest.approx(2 / 5)
    assert hit_rate(RANKS, 11) == pytest.approx(3 / 5)
    assert hits_at(RANKS, 5).tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]


def test_ndcg_by_hand():
    # rank 1 -> 1/log2(2) = 1; rank 3 -> 1/log2(4) = 0.5; others 0 at k=5
    assert ndcg(RANKS, 5) == pytest.approx((1 + 0.5) / 5)
    assert ndcg(RANKS, 1) == pytest.approx(1 / 5)
    # rank 11 counts at k=11: 1/log2(12)
    assert ndcg(RANKS, 11) == pytest.approx((1 + 0.5 + 1 / math.log2(12)) / 5)
    assert ndcg_at([10], 10)[0] == pytest.approx(1 / math.log2(11))  # 0.28906...
    assert ndcg_at([10], 9)[0] == 0.0


def test_ranking_metrics_default_columns_and_torch_input():
    assert metric_names() == ["HR@1", "HR@5", "NDCG@5", "HR@10", "NDCG@10"]
    out = ranking_metrics(torch.tensor([1, 2]))
    # rank 2 -> 1/log2(3) = 0.6309
    assert out == pytest.approx({"HR@1": 0.5, "HR@5": 1.0, "NDCG@5": (1 + 1 / math.log2(3)) / 2,
                                 "HR@10": 1.0, "NDCG@10": (1 + 1 / math.log2(3)) / 2})
    assert list(ranking_metrics([3], hr_ks=[20], ndcg_ks=[3])) == ["NDCG@3", "HR@20"]


def test_empty_and_bad_k():
    assert hit_rate([], 10) == 0.0 and ndcg([], 10) == 0.0
    with pytest.raises(ValueError):
        hits_at([1], 0)


def test_rank_from_scores_pessimistic_ties_and_exclusion():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.5]])
    # 0.9 beats the target (item 2); item 3 ties with it and goes ahead -> rank 3
    assert rank_from_scores(scores, [2]).tolist() == [3]
    # excluding item 1 removes the only better item -> rank 2
    excl = torch.tensor([[False, True, False, False]])
    assert rank_from_scores(scores, [2], excl).tolist() == [2]
    assert rank_from_scores(scores.numpy(), [2], excl.numpy()).tolist() == [2]
    # the target itself is never excluded (a repeat purchase can still be found)
    excl_target = torch.tensor([[False, False, True, False]])
    assert rank_from_scores(scores, [2], excl_target).tolist() == [3]
    # a constant scorer gets the worst rank, not a lucky first place
    assert rank_from_scores(np.zeros((2, 5)), [0, 4]).tolist() == [5, 5]


def test_rank_from_scores_nan_is_minus_inf_and_batches():
    # NaN of another item never beats the target; a NaN target loses to every number
    assert rank_from_scores(np.array([[np.nan, 0.2, 0.1]]), [2]).tolist() == [2]
    assert rank_from_scores(np.array([[0.3, np.nan]]), [1]).tolist() == [2]
    scores = np.array([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    assert rank_from_scores(scores, [0, 0]).tolist() == [1, 3]
    with pytest.raises(ValueError):
        rank_from_scores(scores, [0])
    with pytest.raises(ValueError):
        rank_from_scores(scores, [0, 3])


def test_rank_from_list_first_occurrence_and_miss():
    rec = [[5, 3, 7], [1, 2, 3], [4, 4, 9]]
    assert rank_from_list(rec, [7, 9, 4]).tolist() == [3, 0, 1]
    assert hit_rate(rank_from_list(rec, [7, 9, 4]), 3) == pytest.approx(2 / 3)


def test_list_validity_counts_invalid_and_duplicates():
    # row 0: 5 repeated once -> 1 duplicate; row 1: -1 and 12 outside 0..9 -> 2 invalid
    out = list_validity([[5, 3, 5], [1, -1, 12]], num_items=10)
    assert out == {"slots": 6, "invalid": 2, "duplicates": 1, "valid_share": 0.5}
    # with allowed candidates, a real item outside the user's candidates is invalid too
    out = list_validity([[1, 2], [3, 3]], 10, allowed=[[1, 9], [3, 4]])
    assert out == {"slots": 4, "invalid": 1, "duplicates": 1, "valid_share": 0.5}
    assert list_validity(np.zeros((0, 10), dtype=int), 10)["valid_share"] == 1.0


def test_history_mask():
    mask = history_mask([torch.tensor([0, 2]), np.array([], dtype=np.int64)], 3)
    assert mask.tolist() == [[True, False, True], [False, False, False]]


def test_paired_bootstrap_interval_brackets_the_mean_difference():
    from mfmrec.evaluation.metrics import paired_bootstrap

    a = np.array([1, 1, 2, 20, 1, 3] * 20)  # better ranks than b on most users
    b = np.array([5, 30, 2, 20, 12, 3] * 20)
    mean, low, high = paired_bootstrap(a, b, "HR@1", rounds=500)
    assert mean == pytest.approx(3 / 6) and low <= mean <= high and low > 0
    same = paired_bootstrap(a, a, "NDCG@10", rounds=200)
    assert same == (0.0, 0.0, 0.0)
    assert paired_bootstrap(a, b, "HR@10", seed=3) == paired_bootstrap(a, b, "HR@10", seed=3)
    with pytest.raises(ValueError, match="HR@k or NDCG@k"):
        paired_bootstrap(a, b, "MRR")
