"""SASRec: sample construction, causality, padding and a learning sanity check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mfmrec.config import build
from mfmrec.errors import ConfigError
from mfmrec.models.sampling import pad_left
from mfmrec.models.sasrec import IGNORE, SASRec, SASRecConfig, SequenceSamples


def tiny(**kw) -> SASRecConfig:
    base = {"hidden": 16, "layers": 2, "heads": 2, "inner": 32, "max_len": 4,
            "hidden_dropout": 0.0, "attn_dropout": 0.0}
    return build(SASRecConfig, {**base, **kw})


def test_prefix_samples_train_only_the_last_position():
    data = SequenceSamples([np.array([5, 6, 7, 8, 9, 10])], 12, tiny(), seed=0)
    assert len(data) == 5  # every prefix of length 1..5
    first, last = data[0], data[4]
    assert first["input"].tolist() == [5] and first["target"].tolist() == [6]
    # max_len 4: the oldest items fall off, only the final target trains
    assert last["input"].tolist() == [6, 7, 8, 9]
    assert last["target"].tolist() == [IGNORE, IGNORE, IGNORE, 10]


def test_sequence_samples_shift_the_whole_tail_and_skip_short_users():
    seqs = [np.array([1, 2, 3, 4, 5, 6]), np.array([7])]
    data = SequenceSamples(seqs, 12, tiny(samples="sequence"), seed=0)
    assert len(data) == 1
    assert data[0]["input"].tolist() == [2, 3, 4, 5]
    assert data[0]["target"].tolist() == [3, 4, 5, 6]


def test_bce_negatives_avoid_the_history_and_follow_the_epoch():
    seqs = [np.array([0, 1, 2, 3, 4])]
    data = SequenceSamples(seqs, 8, tiny(loss="bce", samples="sequence"), seed=3)
    negs = {e: (data.set_epoch(e), data[0]["negative"].tolist())[1] for e in (0, 1, 0)}
    assert all(n in (5, 6, 7) for n in negs[0] + negs[1])
    data.set_epoch(0)
    assert data[0]["negative"].tolist() == negs[0]  # same (seed, epoch, index): same draw
    many = []
    for epoch in range(6):
        data.set_epoch(epoch)
        many.append(tuple(data[0]["negative"].tolist()))
    assert len(set(many)) > 1


def test_collate_pads_left_and_shifts_items_past_the_padding_row():
    model = SASRec(tiny(), num_items=12)
    batch = model.collate([{"input": np.array([3]), "target": np.array([4])},
                           {"input": np.array([0, 1]), "target": np.array([IGNORE, 2])}])
    assert batch["input"].tolist() == [[0, 4], [1, 2]]
    assert batch["target"].tolist() == [[IGNORE, 4], [IGNORE, 2]]
    assert pad_left([[1, 2, 3]], 2).tolist() == [[2, 3]]


@pytest.mark.parametrize("norm_first", [False, True])
def test_hidden_states_are_causal_and_ignore_padding(norm_first):
    torch.manual_seed(0)
    model = SASRec(tiny(norm_first=norm_first), num_items=12).eval()
    with torch.no_grad():
        a = model.encode(torch.tensor([[0, 3, 4, 5]]))
        b = model.encode(torch.tensor([[0, 3, 4, 9]]))  # only the last item differs
        c = model.encode(torch.tensor([[7, 3, 4, 5]]))[:, 1:]  # an extra older item
        short = model.encode(torch.tensor([[3, 4, 5]]))  # same items, less padding
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert not torch.allclose(a[:, 3], b[:, 3])
    assert not torch.allclose(a[:, 1:], c)
    torch.testing.assert_close(a[:, 1:], short, rtol=1e-5, atol=1e-5)


def test_empty_history_scores_are_finite():
    model = SASRec(tiny(), num_items=12).eval()
    with torch.no_grad():
        scores = model.score_items(torch.tensor([0]), [torch.zeros(0, dtype=torch.long)])
    assert scores.shape == (1, 12) and torch.isfinite(scores).all()


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="model.heads"):
        tiny(hidden=10, heads=3)
    with pytest.raises(ConfigError, match="model.loss"):
        tiny(loss="mse")


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_learns_that_item_i_is_followed_by_item_i_plus_one(loss, walk):
    torch.manual_seed(0)
    model = SASRec(tiny(loss=loss, max_len=5), walk.num_items)
    data = model.train_data(walk, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    for step in range(150):
        data.set_epoch(step)
        idx = rng.choice(len(data), size=32, replace=False)
        loss_value = model.training_loss(model.collate([data[int(i)] for i in idx]))
        opt.zero_grad()
        loss_value.backward()
        opt.step()
    users, hists, targets = walk.targets("test")
    model.eval()
    with torch.no_grad():
        scores = model.score_items(torch.as_tensor(users), [torch.as_tensor(h) for h in hists])
    if loss == "bce":
        # BCE only ever contrasts a target with unseen items, so it is judged, as in the
        # paper's protocol, among items outside the history
        for row, hist in enumerate(hists):
            scores[row, [i for i in hist if i != targets[row]]] = -torch.inf
    hit_at_1 = (scores.argmax(1).numpy() == targets).mean()
    assert np.all(targets == (np.array([h[-1] for h in hists]) + 1) % walk.num_items)
    assert hit_at_1 >= 0.95


def test_scores_read_only_the_last_max_len_items_of_any_history_type():
    torch.manual_seed(0)
    model = SASRec(tiny(), num_items=12).eval()  # max_len 4
    with torch.no_grad():
        long = model.score_items(torch.tensor([0]), [torch.tensor([9, 8, 1, 2, 3, 4])])
        tail = model.score_items(torch.tensor([0]), [np.array([1, 2, 3, 4])])
        other = model.score_items(torch.tensor([0]), [[1, 2, 3, 5]])
    torch.testing.assert_close(long, tail)
    assert not torch.allclose(tail, other)
