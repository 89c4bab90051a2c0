"""The analytic FLOP count (models/flops.py) against torch's FlopCounterMode, and the
default ``batch_cost`` of the contract."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mfmrec.models.base import BatchCost, Recommender
from mfmrec.models.bpr import BPRMF, BPRConfig
from mfmrec.models.flops import T5Plan, dense, t5_flops
from mfmrec.models.sasrec import SASRec, SASRecConfig
from mfmrec.models.vip5.backbone import PRESETS, build_t5
from mfmrec.peft import AdapterSpec, freeze_except, inject_adapters, is_adapter_parameter


def _measured(run) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs that FlopCounterMode sees for ``run()``."""
    with FlopCounterMode(display=False) as forward:
        loss = run()
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    return forward.get_total_flops(), forward.get_total_flops() + backward.get_total_flops()


def _tiny_t5(ff: str, tuning: str):
    t5 = build_t5(replace(PRESETS["tiny"], feed_forward_proj=ff), 300, pad_token_id=0,
                  eos_token_id=1, seed=0, dropout=0.0).train()
    t5.set_attn_implementation("eager")  # CPU flash attention escapes FlopCounterMode
    if tuning == "adapters":
        inject_adapters(t5, AdapterSpec(reduction_factor=4))
        freeze_except(t5, is_adapter_parameter)
    return t5


@pytest.mark.parametrize("ff", ["relu", "gated-gelu"])
@pytest.mark.parametrize("tuning", ["full", "adapters"])
def test_t5_count_agrees_with_the_flop_counter_without_padding(ff, tuning):
    t5 = _tiny_t5(ff, tuning)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(2, 300, (3, 17), generator=gen)  # (B, L), no padding
    labels = torch.randint(2, 300, (3, 5), generator=gen)  # (B, T)
    forward, training = _measured(lambda: t5(input_ids=ids, labels=labels).loss)
    count = t5_flops(t5, torch.full((3,), 17), torch.full((3,), 5))
    assert count.forward == pytest.approx(forward, rel=0.10)
    # frozen bottom layers need no input gradients: the count errs high, by little
    assert count.training == pytest.approx(training, rel=0.15)
    if tuning == "full":
        assert count.training == pytest.approx(3 * count.forward)
    else:
        assert 2 * count.forward < count.training < 2.2 * count.forward


def test_t5_plan_reads_what_trains_at_each_call():
    t5 = _tiny_t5("relu", "full")
    plan = T5Plan.of(t5)
    enc, dec = torch.tensor([9, 4]), torch.tensor([3, 1])
    full = plan.flops(enc, dec)
    t5.requires_grad_(False)
    frozen = plan.flops(enc, dec)
    assert frozen.forward == full.forward and frozen.training < full.training
    assert T5Plan.of(torch.nn.Linear(2, 2)) is None


def test_padding_and_lengths_add_up():
    """Two examples counted together = each counted alone (nothing shared but weights)."""
    t5 = _tiny_t5("relu", "adapters")
    both = t5_flops(t5, torch.tensor([11, 4]), torch.tensor([3, 6]))
    one = t5_flops(t5, torch.tensor([11]), torch.tensor([3]))
    two = t5_flops(t5, torch.tensor([4]), torch.tensor([6]))
    assert both.training == pytest.approx(one.training + two.training)


@pytest.mark.parametrize("samples,loss", [("prefix", "ce"), ("sequence", "ce"),
                                          ("sequence", "bce")])
def test_sasrec_count_and_tokens(samples, loss):
    model = SASRec(SASRecConfig(hidden=32, inner=64, heads=2, max_len=8, samples=samples,
                                loss=loss), 200).train()
    gen = torch.Generator().manual_seed(0)
    items = torch.randint(1, 201, (4, 8), generator=gen)  # (B, L) no padding
    target = torch.randint(0, 200, (4, 8), generator=gen)
    if samples == "prefix":
        target[:, :-1] = -1
    batch = {"input": items, "target": target, "negative": torch.randint(0, 200, (4, 8))}
    _, training = _measured(lambda: model.training_loss(batch))
    cost = model.batch_cost(batch)
    assert cost.flops == pytest.approx(training, rel=0.05)
    padded = {k: torch.cat([torch.full((4, 3), 0 if k == "input" else -1), v], 1)
              for k, v in batch.items()}  # three left-padding positions more
    assert model.batch_cost(padded) == BatchCost(32, 44, cost.flops)


def test_default_batch_cost_reads_the_attention_mask():
    model = Recommender()
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert model.batch_cost({"attention_mask": mask}) == BatchCost(5, 8, None)
    assert model.batch_cost({"user": torch.zeros(3)}) is None
    assert model.batch_cost([torch.zeros(3)]) is None
    with pytest.raises(ValueError, match="real_tokens"):
        BatchCost(5, 4)


def test_bpr_has_no_tokens():
    model = BPRMF(BPRConfig(), num_users=5, num_items=7)
    assert model.batch_cost(model.collate([(0, 1, 2), (3, 4, 5)])) is None


def test_dense_counts_every_linear_once():
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    net[2].requires_grad_(False)
    flops = dense([net])
    assert flops.forward == 2 * (4 * 8 + 8 * 2)
    assert flops.training == 3 * 2 * 4 * 8 + 2 * 2 * 8 * 2
