"""PETER / PETER+: vocabulary, mask, loss parts, and learning a per-item explanation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mfmrec.config import build
from mfmrec.errors import DataError
from mfmrec.models.peter.model import PETER, PETERConfig, build_peter, build_peter_plus
from mfmrec.models.peter.vocab import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    Vocabulary,
    detokenize,
    tokenize,
)


def tiny(**kw) -> PETERConfig:
    base = {"hidden": 32, "heads": 2, "ffn": 64, "layers": 2, "dropout": 0.0, "max_words": 8}
    return build(PETERConfig, {**base, **kw})


def test_tokenize_keeps_words_apostrophes_and_punctuation():
    assert tokenize("It's GREAT, really!") == ["It's", "GREAT", ",", "really", "!"]
    assert tokenize("It's GREAT!", lowercase=True) == ["it's", "great", "!"]
    assert tokenize(None) == [] and tokenize("") == []


def test_detokenize_attaches_closing_punctuation_and_round_trips_plain_text():
    assert detokenize(["Nice", "(", "cheap", ")", ",", "works", "!"]) == "Nice ( cheap), works!"
    text = "Great sound, and it's sturdy; buy it."
    assert detokenize(tokenize(text)) == text


def test_vocabulary_orders_by_count_then_word_and_caps_its_size():
    texts = [["b", "a", "c"], ["a", "c"], ["a", "d"]]
    vocab = Vocabulary.build(texts, extra=["zz", "zz"], max_size=7)
    assert vocab.words == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "c", "zz"]
    assert vocab.encode(["c", "b", "a"]) == [5, UNK_ID, 4]
    assert vocab.decode([4, 5, EOS_ID, 4]) == "a c"
    assert Vocabulary([*vocab.words[:4], "ok", "."]).decode([4, 5]) == "ok."
    assert vocab.decode([BOS_ID, 4, PAD_ID, 6]) == "a zz"
    rare = Vocabulary.build(texts, min_count=2)
    assert rare.words[4:] == ["a", "c"]


def test_peter_mask_lets_the_user_see_the_item_only():
    blocked = PETER._mask(4, peter=True)
    assert blocked.tolist() == [[False, False, True, True],
                                [False, False, True, True],
                                [False, False, False, True],
                                [False, False, False, False]]
    assert PETER._mask(4, peter=False)[0, 1]


def test_vocabulary_is_rebuilt_identically_and_peter_plus_adds_features(walk):
    a, b = build_peter(tiny(), walk), build_peter(tiny(), walk)
    assert a.vocab.words == b.vocab.words
    plus = build_peter_plus(tiny(), walk)
    assert set(plus.vocab.words) >= set(a.vocab.words)
    assert plus.src_len == 3 and a.src_len == 2


def test_the_rating_does_not_depend_on_the_text_or_the_feature(walk):
    torch.manual_seed(0)
    model = build_peter_plus(tiny(), walk).eval()
    users, items = torch.tensor([1, 2]), torch.tensor([3, 4])
    with torch.no_grad():
        h1 = model.encode(users, items, torch.tensor([5, 6]), torch.tensor([[1, 7], [1, 8]]))
        h2 = model.encode(users, items, torch.tensor([9, 9]), torch.tensor([[1, 9], [1, 4]]))
    torch.testing.assert_close(h1[:, :2], h2[:, :2])  # user and item positions
    assert not torch.allclose(h1[:, 2:], h2[:, 2:])


def test_loss_is_the_weighted_sum_of_text_context_and_rating(walk):
    torch.manual_seed(0)
    model = build_peter(tiny(), walk).eval()
    data = model.train_data(walk)
    batch = model.collate([data[i] for i in range(6)])
    only = {}
    for part in ("text", "context", "rating"):
        model.cfg = tiny(**{f"{p}_weight": float(p == part)
                            for p in ("text", "context", "rating")})
        with torch.no_grad():
            only[part] = model.training_loss(batch).item()
    model.cfg = tiny()
    with torch.no_grad():
        total = model.training_loss(batch).item()
    assert total == pytest.approx(only["text"] + only["context"] + 0.1 * only["rating"],
                                  rel=1e-5)
    # an untrained model is near uniform over the vocabulary
    assert only["text"] == pytest.approx(math.log(len(model.vocab)), rel=0.25)


def test_collate_frames_each_explanation_with_bos_eos_and_padding(walk):
    model = build_peter(tiny(), walk)
    batch = model.collate([{"user": 0, "item": 1, "rating": 4.0, "words": [7, 8], "feature": 3},
                           {"user": 2, "item": 3, "rating": 2.0, "words": [9], "feature": 3}])
    assert batch["seq"].tolist() == [[BOS_ID, 7, 8, EOS_ID], [BOS_ID, 9, EOS_ID, PAD_ID]]
    assert batch["rating"].tolist() == [4.0, 2.0]


def test_without_reviews_peter_refuses_with_one_line(tmp_path):
    from mfmrec.data import load_dataset
    from mfmrec.data.raw import RawDataset
    from mfmrec.data.writer import write_dataset

    raw = RawDataset(name="noreviews", user_ids=["a", "b"], item_ids=["x", "y", "z"],
                     sequences=[[0, 1], [1, 2]])
    ds = load_dataset(write_dataset(raw, tmp_path / "d", num_negatives=1))
    with pytest.raises(DataError, match="no reviews.parquet"):
        build_peter(tiny(), ds)


@pytest.mark.slow
@pytest.mark.parametrize("builder", [build_peter, build_peter_plus])
def test_learns_to_reproduce_each_items_explanation(builder, walk, walk_text):
    explanation_of, nouns = walk_text
    torch.manual_seed(0)
    model = builder(tiny(), walk)
    data = model.train_data(walk)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    for _ in range(150):
        idx = rng.choice(len(data), size=32, replace=False)
        loss = model.training_loss(model.collate([data[int(i)] for i in idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    test = walk.reviews_of("test").to_pylist()
    assert test, "the walk dataset has test reviews"
    texts = model.explain(test)
    exact = np.mean([t == explanation_of(r["item"]) for t, r in zip(texts, test, strict=True)])
    assert exact >= 0.9
    assert {t.split()[2] for t in texts} <= set(nouns)
    ratings = model.predict_rating(torch.tensor([r["user"] for r in test]),
                                   torch.tensor([r["item"] for r in test]))
    truth = torch.tensor([r["rating"] for r in test])
    assert float((ratings - truth).abs().mean()) < float((truth - truth.mean()).abs().mean())
