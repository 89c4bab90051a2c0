"""VIP5's batch_cost: real tokens of encoder and decoder, and FLOPs that agree with
torch's FlopCounterMode on a batch without padding and ignore padding."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode


def _samples(model, dataset):
    data = model.train_data(dataset, "train", seed=0)
    return [data[i] for i in (0, len(data) // 2, len(data) - 1, 1, 2, 3)]


def _items(sample) -> set[int]:
    return {int(i) for i in sample.image_items if i >= 0}


def _training_flops(model, batch) -> float:
    with FlopCounterMode(display=False) as counter:
        model.training_loss(batch).backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("tuning", ["adapters", "full"])
def test_count_agrees_with_the_flop_counter_on_one_unpadded_prompt(make_vip5, t5_tokenizer,
                                                                   dataset, tuning):
    model = make_vip5(t5_tokenizer, tuning=tuning).train()
    model.backbone.set_attn_implementation("eager")  # CPU flash attention is not counted
    for sample in _samples(model, dataset)[:3]:  # one per task family
        batch = model.collate([sample])  # B = 1: nothing padded
        cost = model.batch_cost(batch)
        assert cost.real_tokens == cost.padded_tokens == (
            batch["input_ids"].numel() + batch["labels"].numel())
        assert cost.flops == pytest.approx(_training_flops(model, batch), rel=0.15)
        model.zero_grad(set_to_none=True)


def test_padding_is_not_counted(make_vip5, t5_tokenizer, dataset):
    model = make_vip5(t5_tokenizer).train()
    samples = _samples(model, dataset)
    # two prompts of different lengths whose images differ (each item is mapped once)
    a, b = next((s, t) for s in samples for t in samples
                if len(s.input_ids) != len(t.input_ids) and not _items(s) & _items(t))
    one, two = model.batch_cost(model.collate([a])), model.batch_cost(model.collate([b]))
    batch = model.collate([a, b])
    both = model.batch_cost(batch)
    assert both.real_tokens == one.real_tokens + two.real_tokens
    assert both.padded_tokens == batch["input_ids"].numel() + batch["labels"].numel()
    assert both.padded_tokens > both.real_tokens
    assert both.flops == pytest.approx(one.flops + two.flops)


def test_cost_needs_no_labels_and_draws_nothing(make_vip5, t5_tokenizer, dataset):
    model = make_vip5(t5_tokenizer).train()
    batch = model.collate(_samples(model, dataset))
    state = torch.get_rng_state()
    cost = model.batch_cost(batch)
    assert torch.equal(state, torch.get_rng_state())
    del batch["labels"]
    encoder_only = model.batch_cost(batch)
    assert encoder_only.real_tokens == int(batch["attention_mask"].sum()) < cost.real_tokens
    assert 0 < encoder_only.flops < cost.flops
