"""Batches, evaluation inputs and truncation that never splits an item's image tokens."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from mfmrec.errors import ConfigError
from mfmrec.models.vip5.prompts import (
    PLACEHOLDER,
    PromptBuilder,
    PromptOptions,
    collate,
    direct_prompts,
    explanation_prompts,
    get_template,
    placeholder_positions,
    sequential_prompts,
)


@pytest.fixture(scope="module")
def tiny_builder(tiny, tiny_tokenizer):
    return PromptBuilder(tiny, tiny_tokenizer, PromptOptions(image_tokens=2, num_negatives=4))


def test_collate_pads_and_aligns(tiny, tiny_tokenizer, tiny_builder):
    users, hists, targets = tiny.targets("test")
    samples = sequential_prompts(tiny_builder, users[:3], hists[:3], "A-3", targets=targets[:3])
    batch = collate(samples, tiny_tokenizer)
    lengths = [len(s.input_ids) for s in samples]
    assert batch["input_ids"].shape == (3, max(lengths))
    for b, s in enumerate(samples):
        n, m = len(s.input_ids), len(s.image_items)
        assert batch["input_ids"][b, :n].tolist() == s.input_ids
        assert batch["input_ids"][b, n:].eq(tiny_tokenizer.pad_token_id).all()
        assert batch["attention_mask"][b].tolist() == [1] * n + [0] * (max(lengths) - n)
        assert batch["whole_word_ids"][b, n:].eq(0).all()
        assert batch["image_items"][b, :m].tolist() == s.image_items
        assert batch["image_items"][b, m:].eq(-1).all()
        assert batch["labels"][b, : len(s.labels)].tolist() == s.labels
        assert batch["labels"][b, len(s.labels):].eq(-100).all()
        assert s.image_items == [i for i in hists[b].tolist() for _ in range(2)]
    assert batch["task"] == ["sequential"] * 3 and batch["template_id"] == ["A-3"] * 3
    assert all(v.dtype == torch.long for v in batch.values() if isinstance(v, torch.Tensor))
    rows, cols, items = placeholder_positions(batch)
    pid = tiny_tokenizer.convert_tokens_to_ids(PLACEHOLDER)
    assert batch["input_ids"][rows, cols].eq(pid).all()
    assert items.tolist() == [i for s in samples for i in s.image_items]
    assert rows.tolist() == [b for b, s in enumerate(samples) for _ in s.image_items]


def test_inference_prompts_have_no_labels_without_targets(tiny, tiny_tokenizer, tiny_builder):
    users, hists, _ = tiny.targets("test")
    batch = collate(sequential_prompts(tiny_builder, users, hists, "A-9"), tiny_tokenizer)
    assert "labels" not in batch and batch["template_id"] == ["A-9"] * len(users)
    with pytest.raises(ConfigError, match="items="):
        sequential_prompts(tiny_builder, users, hists, "A-7")
    yes_no = sequential_prompts(tiny_builder, users[:1], hists[:1], "A-7", items=[3])
    assert yes_no[0].image_items[-2:] == [3, 3] and yes_no[0].labels is None
    with pytest.raises(ConfigError, match="family"):
        sequential_prompts(tiny_builder, users, hists, "B-5")


def test_direct_prompts_keep_stored_candidate_order(tiny, tiny_builder):
    cands = tiny.candidates("test")
    listed = direct_prompts(tiny_builder, cands.users, cands.items, "B-8",
                            targets=cands.positives)
    assert len(listed) == len(cands.users)
    for s, row, pos in zip(listed, cands.items, cands.positives, strict=True):
        assert s.image_items[::2] == row.tolist()
        assert s.target == str(tiny.numbers[pos])
    per_item = direct_prompts(tiny_builder, cands.users[:2], cands.items[:2], "B-1")
    assert len(per_item) == 2 * cands.items.shape[1]
    assert [s.image_items[0] for s in per_item] == cands.items[:2].reshape(-1).tolist()


def test_explanation_requests(tiny, tiny_builder):
    requests = [{"user": 0, "item": 2, "rating": 5.0, "summary": "ok", "feature": "colour",
                 "reviewer_name": "Ann Lee", "explanation": "bright colour"},
                {"user": 1, "item": 6, "rating": 2.0, "summary": None, "feature": "oil",
                 "reviewer_name": None}]
    out = explanation_prompts(tiny_builder, requests, "C-12")
    assert out[0].text.startswith("According to the feature word colour , generate a "
                                  "5-star explanation for Ann Lee about item_")
    assert out[1].text.startswith("According to the feature word oil , generate a 2-star "
                                  "explanation for user_2 about item_")
    assert out[0].labels is not None and out[1].labels is None


def test_long_candidate_lists_drop_negatives_not_the_positive(beauty, t5_tokenizer):
    builder = PromptBuilder(beauty, t5_tokenizer, PromptOptions(image_tokens=2, max_length=128))
    template = get_template("B-5")
    rng = np.random.default_rng(5)
    for user in range(20):
        positive = int(beauty.train_sequences[user][0])
        ctx = builder.direct_context(template, user, positive, rng=rng)
        s = builder.encode(template, ctx, protect_target=True)
        assert len(s.input_ids) <= 128
        assert positive in s.image_items
        numbers = [w for w in s.text.split("\n")[-1].split() if w.isdigit()]
        assert numbers == [str(beauty.numbers[i]) for i in s.image_items[::2]]
        assert len(s.image_items) == sum(s.category_ids) == 2 * len(numbers)


def test_inference_warns_once_when_candidates_do_not_fit(beauty, t5_tokenizer):
    template = get_template("B-5")
    candidates = list(range(1, 101))
    roomy = PromptBuilder(beauty, t5_tokenizer, PromptOptions(image_tokens=2, max_length=1024))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 100 candidates fit 1024 tokens: no warning
        roomy.encode(template, roomy.direct_context(template, 0, None, candidates=candidates),
                     with_target=False)
    tight = PromptBuilder(beauty, t5_tokenizer, PromptOptions(image_tokens=2, max_length=128))
    with pytest.warns(UserWarning, match=r"B-5: only \d+ of 100 candidates fit "
                                         r"model.max_input_length=128") as caught:
        for user in range(3):
            ctx = tight.direct_context(template, user, None, candidates=candidates)
            tight.encode(template, ctx, with_target=False)
    assert len(caught) == 1


def test_long_histories_drop_the_oldest_items(beauty, t5_tokenizer):
    builder = PromptBuilder(beauty, t5_tokenizer,
                            PromptOptions(image_tokens=3, max_length=48, max_history=50))
    template = get_template("A-1")
    user = max(range(500), key=lambda u: len(beauty.sequences[u]))
    history = beauty.sequences[user][:-1]
    s = builder.encode(template, builder.sequential_context(template, user, history, None),
                       with_target=False)
    kept = s.image_items[::3]
    assert len(s.input_ids) <= 48 and 0 < len(kept) < len(history)
    assert kept == history[-len(kept):].tolist()  # the most recent ones survive


def test_token_cut_never_splits_a_placeholder_group(tiny, tiny_tokenizer):
    template = get_template("C-5")  # headline ... title <photo>: the photo comes last
    request = {"user": 0, "item": 1, "rating": 4.0, "feature": None, "reviewer_name": "Bo",
               "summary": " ".join(["very nice"] * 30), "explanation": "fine"}
    full = PromptBuilder(tiny, tiny_tokenizer, PromptOptions(image_tokens=3, max_length=512))
    n = len(full.encode(template, full.explanation_context(request)).input_ids)
    cut = PromptBuilder(tiny, tiny_tokenizer, PromptOptions(image_tokens=3, max_length=n - 2))
    s = cut.encode(template, cut.explanation_context(request))
    # n - 3 tokens would keep 1 of the 3 placeholders: the whole group goes instead
    assert len(s.input_ids) == n - 3 and s.input_ids[-1] == tiny_tokenizer.eos_token_id
    assert sum(s.category_ids) == 0 and s.image_items == []
    keep = PromptBuilder(tiny, tiny_tokenizer, PromptOptions(image_tokens=3, max_length=n))
    assert keep.encode(template, keep.explanation_context(request)).image_items == [1, 1, 1]
