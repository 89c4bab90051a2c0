"""IISAN's batch_cost: history tokens, and FLOPs over cached states that agree with
torch's FlopCounterMode on a batch without padding."""

from __future__ import annotations

import pytest
import torch
from iisan_fixtures import synthetic_config
from torch.utils.flop_counter import FlopCounterMode

from mfmrec.config import build
from mfmrec.models import registry
from mfmrec.models.iisan.sequential import PAD


def test_cached_iisan_counts_tokens_and_flops(synthetic):
    entry = registry.get("iisan")
    torch.manual_seed(0)
    model = entry.builder(build(entry.config_cls, synthetic_config()), synthetic).train()
    data = model.train_data(synthetic, "train", seed=0)
    longest = max(len(data[i]["input"]) for i in range(len(data)))
    same = [data[i] for i in range(len(data)) if len(data[i]["input"]) == longest][:6]
    batch = model.collate(same)  # (B, L) with no padding
    with FlopCounterMode(display=False) as counter:
        model.training_loss(batch).backward()
    cost = model.batch_cost(batch)
    assert cost.real_tokens == cost.padded_tokens == len(same) * longest
    # the side network's first layers need no input gradients: the count errs high
    assert cost.flops == pytest.approx(counter.get_total_flops(), rel=0.15)
    mixed = model.collate([data[i] for i in range(6)])
    real = int((mixed["input_pos"] != PAD).sum())
    assert model.batch_cost(mixed).real_tokens == real < mixed["input_pos"].numel()
