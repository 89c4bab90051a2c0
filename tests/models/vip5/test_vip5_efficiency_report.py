"""A tiny VIP5 training run reports its padding share, real tokens/s and MFU."""

from __future__ import annotations

import json

import pytest

from mfmrec.training.config import RunConfig, TrainConfig
from mfmrec.training.efficiency import to_markdown
from mfmrec.training.trainer import Trainer


def test_a_vip5_run_reports_padding_tokens_per_second_and_mfu(make_vip5, t5_tokenizer,
                                                              dataset, tmp_path):
    model = make_vip5(t5_tokenizer)
    config = RunConfig("vip5", model.config, TrainConfig(
        epochs=1, max_steps=3, batch_size=4, lr=1e-3, precision="no", log_every=1))
    eff = Trainer(model, dataset, config, tmp_path / "run", quiet=True).fit().efficiency
    tokens = eff["tokens"]
    assert 0 < tokens["padding_share"] < 1  # prompts of several lengths
    assert 0 < tokens["real"] < tokens["padded"] <= 3 * 4 * (256 + 64)
    assert eff["real_tokens_per_s"] > 0 and eff["training_flops"] > 0
    assert eff["achieved_flops_per_s"] == pytest.approx(  # train_seconds is rounded
        eff["training_flops"] / eff["train_seconds"], rel=1e-3)
    assert 0 < eff["mfu"] <= 1 and eff["peak_flops_per_s"] > 0
    assert "mfu_note" not in eff and json.loads(json.dumps(eff)) == eff
    assert "| MFU |" in to_markdown(eff) and "% padding)" in to_markdown(eff)
