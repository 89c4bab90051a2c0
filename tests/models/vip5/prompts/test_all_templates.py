"""Every one of the 29 templates rendered and tokenized for a real Beauty user."""

from __future__ import annotations

import numpy as np
import pytest

from mfmrec.models.vip5.prompts import PLACEHOLDER, TEMPLATES, PromptBuilder, PromptOptions

K = 2


pytestmark = pytest.mark.slow  # a long end-to-end run; CI runs it


@pytest.fixture(scope="module")
def builder(beauty, t5_tokenizer):
    # long enough for 100 candidates with their image tokens: nothing is truncated here
    return PromptBuilder(beauty, t5_tokenizer, PromptOptions(image_tokens=K, max_length=1024))


@pytest.fixture(scope="module")
def user(beauty) -> int:
    return next(u for u, s in enumerate(beauty.train_sequences) if len(s) >= 5)


def entry(data, item: int) -> str:
    return " ".join([str(data.numbers[item])] + [PLACEHOLDER] * K)


def check_tokens(sample, tok, mentioned: list[int]) -> None:
    """Placeholders: k per mentioned item, in order; word and category ids coherent."""
    assert sample.image_items == [i for i in mentioned for _ in range(K)]
    assert sum(sample.category_ids) == K * len(mentioned)
    pid = tok.convert_tokens_to_ids(PLACEHOLDER)
    assert sample.category_ids == [int(i == pid) for i in sample.input_ids]
    words = sample.whole_word_ids
    assert sample.input_ids[-1] == tok.eos_token_id and words[-1] == 0
    assert max(words) == len(sample.text.split())  # one id per whitespace word
    assert all(b - a in (0, 1) for a, b in zip(words[:-2], words[1:-1], strict=True))
    ph_words = [w for w, c in zip(words, sample.category_ids, strict=True) if c]
    assert len(set(ph_words)) == len(ph_words)  # each placeholder its own word
    assert sample.labels == tok(sample.target).input_ids


@pytest.mark.parametrize("tid", [t.id for t in TEMPLATES if t.family == "A"])
def test_sequential_templates(beauty, t5_tokenizer, builder, user, tid):
    template = next(t for t in TEMPLATES if t.id == tid)
    train = beauty.train_sequences[user]
    rng = np.random.default_rng(7)
    ctx = builder.sequential_context(template, user, train[:-1], train[-1], rng,
                                     mix_separators=True)
    s = builder.encode(template, ctx)
    assert f"user_{user + 1}" in s.text  # the number, or the name fallback (no names here)
    history = ctx.separator.join(entry(beauty, i) for i in train[:-1])
    assert f"\n {history} \n" in s.text
    mentioned = list(train[:-1])
    if template.is_yes_no:
        assert s.target in ("yes", "no")
        assert (ctx.item == train[-1]) == (s.target == "yes")
        assert entry(beauty, ctx.item) + " next ?" in s.text
        mentioned.append(ctx.item)
    else:
        assert s.target == str(beauty.numbers[train[-1]])
    check_tokens(s, t5_tokenizer, mentioned)
    assert s.task == "sequential" and s.template_id == tid


@pytest.mark.parametrize("tid", [t.id for t in TEMPLATES if t.family == "B"])
def test_direct_templates(beauty, t5_tokenizer, builder, user, tid):
    template = next(t for t in TEMPLATES if t.id == tid)
    positive = int(beauty.train_sequences[user][1])
    ctx = builder.direct_context(template, user, positive, rng=np.random.default_rng(3))
    s = builder.encode(template, ctx, protect_target=True)
    assert f"user_{user + 1}" in s.text
    own = set(beauty.sequences[user].tolist())
    if template.lists_items:
        cands = ctx.candidates
        assert len(set(cands)) == 100 and cands.count(positive) == 1
        assert not (set(cands) - {positive}) & own
        assert s.text.endswith(" , ".join(entry(beauty, c) for c in cands))
        assert s.target == str(beauty.numbers[positive])
        check_tokens(s, t5_tokenizer, cands)
    else:
        assert (s.target == "yes") == (ctx.item == positive)
        assert s.target == "yes" or ctx.item not in own
        if "item_title" in template.input_slots:
            title = beauty.titles[ctx.item] or "unknown title"
            assert f"{title} {PLACEHOLDER}" in s.text
        else:
            assert f"item_{entry(beauty, ctx.item)}" in s.text
        check_tokens(s, t5_tokenizer, [ctx.item])


@pytest.mark.parametrize("tid", [t.id for t in TEMPLATES if t.family == "C"])
def test_explanation_templates(beauty, t5_tokenizer, builder, user, tid):
    template = next(t for t in TEMPLATES if t.id == tid)
    item = int(beauty.train_sequences[user][0])
    request = {"user": user, "item": item, "rating": 4.0, "summary": "Smells lovely",
               "feature": "scent", "reviewer_name": "Jane D.",
               "explanation": "the scent lasts all day"}
    s = builder.encode(template, builder.explanation_context(request))
    slots = template.input_slots
    assert (f"user_{user + 1}" in s.text) == ("user_id" in slots)
    assert ("Jane D." in s.text) == ("user_desc" in slots)
    assert ("4-star" in s.text) == ("star_rating" in slots)
    assert ("scent" in s.text) == ("feature" in slots)
    assert ("Smells lovely" in s.text) == ("review_headline" in slots)
    if "item_id" in slots:
        assert f"item_{entry(beauty, item)}" in s.text
    else:
        assert f"{beauty.titles[item]} {PLACEHOLDER}" in s.text
    expected = "the scent lasts all day"
    assert s.target == (f"4 , {expected}" if tid in ("C-7", "C-8") else expected)
    check_tokens(s, t5_tokenizer, [item])
