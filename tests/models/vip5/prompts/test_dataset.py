"""PromptDataset: the training mixture, determinism, held-out prompts, random balance."""

from __future__ import annotations

import numpy as np
import pytest

from mfmrec.errors import ConfigError
from mfmrec.models.vip5.prompts import PromptDataset, templates_of

HELD_OUT = {"A-9", "B-8", "C-12"}


@pytest.fixture(scope="module")
def beauty_train(beauty, t5_tokenizer):
    return PromptDataset(beauty, t5_tokenizer, seed=11)


def test_per_template_mixture_sizes(beauty, beauty_train):
    seq_users = sum(len(s) >= 2 for s in beauty.train_sequences)
    dir_users = sum(len(s) >= 1 for s in beauty.train_sequences)
    assert beauty_train.composition() == {"A": 8 * seq_users, "B": 7 * dir_users, "C": 0}
    assert len(beauty_train) == 8 * seq_users + 7 * dir_users
    # per user, one sample per template, in table order
    ids = [beauty_train.context(i)[0].id for i in range(9)]
    assert ids == [f"A-{i}" for i in range(1, 9)] + ["A-1"]


def test_paper_mixture_sizes(beauty, t5_tokenizer):
    ds = PromptDataset(beauty, t5_tokenizer, sampling="paper", families=("A", "B"))
    users = sum(len(s) >= 2 for s in beauty.train_sequences)
    assert ds.composition()["A"] == 10 * users


def test_training_uses_the_last_training_item(beauty, beauty_train):
    template, ctx = beauty_train.context(8 * 5)  # sixth user, A-1
    user = int(beauty_train.seq_users[5])
    train = beauty.train_sequences[user]
    assert template.id == "A-1" and ctx.user == user
    assert ctx.target == train[-1] and ctx.history == list(train[:-1][-20:])
    # leave-one-out: the last two interactions are valid and test, never trained on
    assert ctx.target == beauty.sequences[user][-3]


def test_any_target_draws_every_training_position_and_keeps_the_prefix(beauty, t5_tokenizer):
    ds = PromptDataset(beauty, t5_tokenizer, sampling="paper", families=("A",), seed=3,
                       sequential_target="any", max_history=50)
    user = int(ds.seq_users[0])
    train = beauty.train_sequences[user].tolist()
    assert len(train) >= 3  # several positions to draw from
    cuts = set()
    for epoch in range(8):
        for index in range(10):  # the paper mix: the user's 10 samples of the epoch
            _, ctx = ds.context(index, epoch)
            cut = len(ctx.history)
            assert ctx.user == user and ctx.history == train[:cut] and ctx.target == train[cut]
            cuts.add(cut)
    assert cuts == set(range(1, len(train)))  # every prefix with >= 1 item serves
    assert ds.context(4, 2)[1] == ds.context(4, 2)[1]  # a pure function of (seed, epoch, i)


def test_same_seed_and_epoch_give_the_same_samples(beauty, t5_tokenizer, beauty_train):
    other = PromptDataset(beauty, t5_tokenizer, seed=11)
    b5 = beauty_train.composition()["A"] + 4  # a B-5 sample: 99 random negatives
    for ds in (beauty_train, other):
        ds.set_epoch(3)
    for i in (0, 6, b5):
        a, b = beauty_train[i], other[i]
        assert (a.input_ids, a.image_items, a.labels) == (b.input_ids, b.image_items, b.labels)
    first = beauty_train[b5].image_items
    beauty_train.set_epoch(4)
    assert beauty_train[b5].image_items != first  # new negatives in a new epoch
    beauty_train.set_epoch(3)
    assert beauty_train[b5].image_items == first  # and back, as a resumed run needs
    assert PromptDataset(beauty, t5_tokenizer, seed=12)[b5].image_items != first


def test_held_out_templates_never_train(tiny, tiny_tokenizer, beauty, beauty_train):
    for sampling in ("per_template", "paper"):
        ds = PromptDataset(tiny, tiny_tokenizer, sampling=sampling, num_negatives=4)
        used = {ds[i].template_id for i in range(len(ds))}
        assert not used & HELD_OUT
        if sampling == "per_template":
            assert used == {t.id for f in "ABC" for t in templates_of(f, training=True)}
    rng = np.random.default_rng(0)
    paper = PromptDataset(beauty, None, sampling="paper", families=("A", "B"))
    for i in rng.choice(len(paper), 2000, replace=False):
        assert paper.context(int(i))[0].id not in HELD_OUT
    assert PromptDataset(tiny, None, templates=["B-8"]).context(0)[0].id == "B-8"


def test_separators_mix_half_and_half(beauty_train):
    arrows = commas = 0
    n_seq = beauty_train.composition()["A"]
    for i in np.random.default_rng(1).choice(n_seq, 1500, replace=False):
        _, ctx = beauty_train.context(int(i))
        if len(ctx.history) < 2:
            continue
        arrows += ctx.separator == " -> "
        commas += ctx.separator == " , "
    assert 0.44 < arrows / (arrows + commas) < 0.56


def test_yes_no_balance_and_negatives(beauty, beauty_train):
    yes = no = 0
    for i in np.random.default_rng(2).choice(len(beauty_train), 6000, replace=False):
        template, ctx = beauty_train.context(int(i))
        if not template.is_yes_no:
            continue
        if ctx.label:
            yes += 1
            assert ctx.item == ctx.target
        else:
            no += 1
            assert ctx.item not in set(beauty.sequences[ctx.user].tolist())
    assert yes + no > 1500
    assert 0.45 < yes / (yes + no) < 0.55


def test_explanations_come_from_training_reviews(tiny, tiny_tokenizer):
    ds = PromptDataset(tiny, tiny_tokenizer, families=("C",))
    train = tiny.reviews_of("train")
    pairs = set(zip(train.column("user").to_pylist(), train.column("item").to_pylist(),
                    strict=True))
    has_feature = {(u, i) for u, i, f in zip(train.column("user").to_pylist(),
                                             train.column("item").to_pylist(),
                                             train.column("feature").to_pylist(), strict=True)
                   if f}
    for i in range(len(ds)):
        template, ctx = ds.context(i)
        assert (ctx.user, ctx.item) in pairs
        if "feature" in template.input_slots:
            assert (ctx.user, ctx.item) in has_feature
    c7 = next(i for i in range(len(ds)) if ds.context(i)[0].id == "C-7")
    sample, (_, ctx) = ds[c7], ds.context(c7)
    assert sample.target == f"{int(ctx.rating)} , {ctx.explanation}"
    assert sample.image_items == [ctx.item, ctx.item]


def test_bad_arguments_are_config_errors(tiny, tiny_tokenizer):
    with pytest.raises(ConfigError, match="split"):
        PromptDataset(tiny, tiny_tokenizer, split="dev")
    with pytest.raises(ConfigError, match="families"):
        PromptDataset(tiny, tiny_tokenizer, families=("D",))
    with pytest.raises(ConfigError, match="sampling"):
        PromptDataset(tiny, tiny_tokenizer, sampling="mixed")
    with pytest.raises(ConfigError, match="image_tokens"):
        PromptDataset(tiny, tiny_tokenizer, image_tokens=-1)


def test_validation_split_uses_stored_candidates(tiny, tiny_tokenizer):
    ds = PromptDataset(tiny, tiny_tokenizer, split="valid", templates=["A-3", "B-5"])
    cands = tiny.candidates("valid")
    users, hists, targets = tiny.targets("valid")
    for i in range(len(ds)):
        template, ctx = ds.context(i)
        if template.id == "B-5":
            row = list(cands.users).index(ctx.user)
            assert ctx.candidates == cands.items[row].tolist()
            assert ctx.target == cands.positives[row]
        else:
            row = list(users).index(ctx.user)
            assert ctx.target == targets[row] and ctx.separator == " , "
            assert ctx.history == hists[row].tolist()
