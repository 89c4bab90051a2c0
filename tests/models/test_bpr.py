"""BPR-MF, BPR-MLP and VBPR: pairwise samples, golden scores and losses, feature refusal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mfmrec.errors import MfmrecError
from mfmrec.models import bpr as bpr_module
from mfmrec.models.bpr import BPRMF, BPRMLP, BPRConfig, BPRMLPConfig, PairSamples
from mfmrec.models.registry import get
from mfmrec.models.sampling import sample_negative, sample_negatives, user_item_pairs
from mfmrec.models.vbpr import VBPR, VBPRConfig, build_vbpr


def test_pairs_are_distinct_and_keep_first_seen_order():
    users, items = user_item_pairs([np.array([3, 1, 3, 2]), np.array([], np.int64),
                                    np.array([0])])
    assert users.tolist() == [0, 0, 0, 2]
    assert items.tolist() == [3, 1, 2, 0]


def test_negatives_are_unseen_reproducible_and_change_with_the_epoch():
    data = PairSamples([np.array([0, 1, 2]), np.array([4, 5])], num_items=9, seed=5)
    assert len(data) == 5
    draws = {}
    for epoch in (0, 1, 2, 3):
        data.set_epoch(epoch)
        draws[epoch] = [data[i] for i in range(len(data))]
    data.set_epoch(1)
    assert [data[i] for i in range(len(data))] == draws[1]
    assert len({tuple(d) for d in draws.values()}) > 1
    for triples in draws.values():
        for user, pos, neg in triples:
            assert pos in ([0, 1, 2], [4, 5])[user] and neg not in ([0, 1, 2], [4, 5])[user]


def test_a_dense_user_falls_back_to_the_complement():
    rng = np.random.default_rng(0)
    seen = np.array([0, 1, 2, 3, 5, 6])
    assert {sample_negative(rng, 7, seen) for _ in range(20)} == {4}
    with pytest.raises(MfmrecError, match="all 3 items"):
        sample_negative(rng, 3, np.array([0, 1, 2]))


def test_vectorised_negatives_are_uniform_over_unseen_items():
    seen = [np.array([0, 1, 2]), np.array([4, 5]), np.array([0, 1, 2, 3, 5, 6, 7, 8])]
    users = np.repeat(np.arange(3), 3000)
    neg = sample_negatives(np.random.default_rng(1), 9, users, seen)
    for u in range(3):
        drawn = neg[users == u]
        unseen = np.setdiff1d(np.arange(9), seen[u])
        assert set(drawn.tolist()) == set(unseen.tolist())  # never a seen item, all reachable
        counts = np.bincount(drawn, minlength=9)[unseen]
        assert counts.min() > 0.8 * counts.mean()  # about uniform (expected >= 428 each)
    again = sample_negatives(np.random.default_rng(1), 9, users, seen)
    assert np.array_equal(neg, again)
    with pytest.raises(MfmrecError, match="all 3 items"):
        sample_negatives(np.random.default_rng(0), 3, np.array([0]), [np.array([0, 1, 2])])


def test_bpr_mf_golden_scores_and_loss():
    model = BPRMF(BPRConfig(dim=2), num_users=1, num_items=3)
    with torch.no_grad():
        model.user_emb.weight[:] = torch.tensor([[1.0, 0.0]])
        model.item_emb.weight[:] = torch.tensor([[2.0, 1.0], [0.5, 3.0], [-1.0, 1.0]])
        model.item_bias[:] = torch.tensor([0.0, 0.25, 0.5])
    scores = model.score_items(torch.tensor([0]))
    torch.testing.assert_close(scores, torch.tensor([[2.0, 0.75, -0.5]]))
    batch = model.collate([(0, 0, 1)])
    # -log sigmoid(2.0 - 0.75)
    assert model.training_loss(batch).item() == pytest.approx(math.log1p(math.exp(-1.25)))


def test_bpr_mlp_scores_all_items_in_chunks_like_pairs(monkeypatch):
    torch.manual_seed(0)
    model = BPRMLP(BPRMLPConfig(dim=4, layers=[8, 4]), num_users=3, num_items=7).eval()
    monkeypatch.setattr(bpr_module, "_MLP_SCORE_BUDGET", 2 * 8 * 3)  # 3 items per chunk
    users = torch.tensor([0, 2])
    full = model.score_items(users)
    pairs = model.score_pairs(users, torch.arange(7).expand(2, 7))
    assert full.shape == (2, 7)
    torch.testing.assert_close(full, pairs)
    # the split first layer equals one linear layer over [p_u ; q_i]
    joint = torch.cat([model.first_user.weight, model.first_item.weight], dim=1)
    x = torch.cat([model.user_emb.weight[0], model.item_emb.weight[5]])
    h = joint @ x + model.first_user.bias
    with torch.no_grad():
        assert model.tower(h).item() == pytest.approx(full[0, 5].item(), abs=1e-5)


def test_vbpr_refuses_a_dataset_without_image_features(bare_walk):
    with pytest.raises(MfmrecError) as err:
        build_vbpr(VBPRConfig(), bare_walk)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(bare_walk.features_path("efficientnet-lite0")) in msg
    assert f"mfmrec features extract {bare_walk.root} --encoder efficientnet-lite0" in msg


def test_vbpr_score_is_the_paper_formula(walk):
    torch.manual_seed(0)
    model = build_vbpr(VBPRConfig(dim=3, visual_dim=2), walk)
    assert model.name == "vbpr" and get("vbpr").config_cls is VBPRConfig
    with torch.no_grad():
        model.item_bias.uniform_(-1, 1)
        model.visual_bias.weight.uniform_(-1, 1)
    from mfmrec.features.store import load_features

    store = load_features(walk, "efficientnet-lite0")
    feats = store.matrix / store.matrix[~store.missing].abs().max()  # normalize_features
    feats[store.missing] = model.features.missing_vector.detach()  # item 11 has no image
    u = 4
    gamma_u, theta_u = model.user_emb.weight[u], model.user_visual.weight[u]
    expected = torch.stack([
        model.item_bias[i] + gamma_u @ model.item_emb.weight[i]
        + theta_u @ (model.projection.weight @ feats[i]) + model.visual_bias.weight[0] @ feats[i]
        for i in range(walk.num_items)])
    with torch.no_grad():
        got = model.score_items(torch.tensor([u]))[0]
    torch.testing.assert_close(got, expected.detach(), rtol=1e-5, atol=1e-6)
    assert "features.missing_vector" in model.trainable_state_dict()
    assert not any(k.endswith("table") for k in model.state_dict())


def test_vbpr_visual_term_lets_features_move_scores(walk):
    torch.manual_seed(0)
    model = build_vbpr(VBPRConfig(dim=2, visual_dim=2), walk)
    with torch.no_grad():
        model.item_emb.weight.zero_()
        model.item_bias.zero_()
        before = model.score_items(torch.tensor([0]))
        model.features.table[3] *= 2.0
        after = model.score_items(torch.tensor([0]))
    changed = (before != after)[0].nonzero().flatten().tolist()
    assert changed == [3]
    assert isinstance(model, VBPR)
