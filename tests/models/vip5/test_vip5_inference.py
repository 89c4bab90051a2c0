"""VIP5 at inference: constrained beam search, exact candidate scores, explanations."""

from __future__ import annotations

import pytest
import torch

from mfmrec.errors import ConfigError


@pytest.fixture(scope="module")
def model(make_vip5, t5_tokenizer):
    torch.manual_seed(0)
    m = make_vip5(t5_tokenizer, init_seed=11)
    with torch.no_grad():  # a random-but-not-identity model: adapters and mapping active
        for p in m.parameters():
            if p.requires_grad and p.dim() > 1:
                p.normal_(std=0.2)
    return m


@pytest.fixture(scope="module")
def test_users(dataset):
    users, hists, _ = dataset.targets("test")
    cands = dataset.candidates("test")
    assert (cands.users == users).all()
    return (torch.as_tensor(users), [torch.as_tensor(h) for h in hists],
            torch.as_tensor(cands.items))


def _reference_scores(model, users, hists, cands, prompt):
    """One full forward pass per (user, candidate) with the candidate as label."""
    from mfmrec.models.vip5.prompts.inference import direct_prompts

    out = torch.zeros(cands.shape)
    for b in range(len(users)):
        sample = direct_prompts(model.prompts, users[b:b + 1], cands[b:b + 1], prompt)[0]
        for c, item in enumerate(cands[b].tolist()):
            sample.labels = model.item_targets[item]
            batch = model.collate([sample])
            with torch.no_grad():
                loss = model(batch).loss
            out[b, c] = -loss * len(sample.labels)
    return out


def test_constrained_beam_returns_valid_distinct_items_for_every_user(model, test_users,
                                                                       dataset):
    users, hists, _ = test_users
    top = model.recommend(users, hists, k=5)
    assert top.shape == (len(users), 5)
    assert ((top >= 0) & (top < dataset.num_items)).all()
    assert all(len(set(row)) == 5 for row in top.tolist())
    model.config.beams = 20  # paper setting; k=20 from 20 beams
    try:
        wide = model.recommend(users[:4], hists[:4], k=20)
    finally:
        model.config.beams = 5
    assert all(len(set(row)) == 20 for row in wide.tolist())


def test_exact_scores_equal_sequential_scoring(model, test_users):
    users, hists, cands = test_users
    users, hists, cands = users[:2], hists[:2], cands[:2, :12]
    batched = model.score_candidates(users, hists, cands, prompt="B-5")
    assert batched.shape == (2, 12)
    ref = _reference_scores(model, users, hists, cands, "B-5")
    assert torch.allclose(batched, ref, atol=1e-5)
    model.config.score_chunk_rows = 5
    try:
        assert torch.allclose(model.score_candidates(users, hists, cands), batched, atol=1e-5)
    finally:
        model.config.score_chunk_rows = 0


def test_exact_top1_matches_beam_top1_when_well_separated(model, test_users):
    users, hists, cands = test_users
    users, hists, cands = users[:12], hists[:12], cands[:12]
    exact = model.score_candidates(users, hists, cands)  # (U, 100)
    model.config.beams = 20  # the paper's beam width
    try:
        beam = model.recommend_candidates(users, hists, cands, k=5)
    finally:
        model.config.beams = 5
    assert all(set(row) <= set(c) for row, c in zip(beam.tolist(), cands.tolist(),
                                                    strict=True))
    top2 = exact.topk(2, dim=1)
    separated = (top2.values[:, 0] - top2.values[:, 1]) > 0.5
    assert separated.sum() >= 3, "the fixture model should separate some users' scores"
    best = cands.gather(1, top2.indices[:, :1])[:, 0]
    assert torch.equal(beam[separated, 0], best[separated])


def test_yes_no_scores_and_prompt_checks(model, test_users):
    users, hists, cands = test_users
    scores = model.score_candidates(users[:2], hists[:2], cands[:2, :4], prompt="B-1")
    assert scores.shape == (2, 4) and (scores < 0).all()
    seq = model.score_candidates(users[:2], hists[:2], cands[:2, :4], prompt="A-7")
    assert seq.shape == (2, 4) and not torch.allclose(seq, scores)
    with pytest.raises(ConfigError, match="yes/no"):
        model.recommend(users[:2], hists[:2], k=3, prompt="A-7")
    with pytest.raises(ConfigError, match="explanation prompt"):
        model.recommend(users[:2], hists[:2], k=3, prompt="C-3")


def test_explain_generates_one_string_per_request(model, dataset):
    reviews = dataset.reviews_of("test").slice(0, 3).to_pylist()
    texts = model.explain(reviews, prompt="C-3")
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)


def test_paper_decoding_marks_what_it_drops(model, test_users, dataset):
    users, hists, _ = test_users
    model.config.decoding = "paper"
    try:
        top = model.recommend(users[:6], hists[:6], k=5)
    finally:
        model.config.decoding = "constrained"
    assert top.shape == (6, 5)
    for row in top.tolist():
        valid = [i for i in row if i >= 0]
        assert all(i < dataset.num_items for i in valid) and len(set(valid)) == len(valid)
        assert row == valid + [-1] * (5 - len(valid))  # empty slots only at the end
    dropped = model.last_decoding
    assert set(dropped) == {"invalid", "duplicates"}
    # 5 beams per user (beams = k): each one is a new item, unparseable, or a repeat
    assert int((top >= 0).sum()) + dropped["invalid"] + dropped["duplicates"] == 6 * 5
