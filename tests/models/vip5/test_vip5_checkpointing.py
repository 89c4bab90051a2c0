"""Activation checkpointing of VIP5's T5 blocks: the same gradients, fewer saved tensors."""

from __future__ import annotations

import pytest
import torch
from checkpointing_fixtures import grads_and_saved

from mfmrec.errors import ConfigError


@pytest.mark.parametrize("tuning", ["adapters", "full"])
def test_checkpointed_t5_gives_the_same_gradients(make_vip5, dataset, t5_tokenizer, tuning):
    model = make_vip5(t5_tokenizer, tuning=tuning)  # dropout 0
    data = model.train_data(dataset, "train", seed=0)
    batch = model.collate([data[i] for i in (0, len(data) // 2, len(data) - 1, 1)])
    model.train()
    plain, saved_plain = grads_and_saved(model, lambda: model.training_loss(batch))
    model.enable_activation_checkpointing()
    ckpt, saved_ckpt = grads_and_saved(model, lambda: model.training_loss(batch))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert plain.keys() == ckpt.keys() and len(plain) > 0.9 * len(trainable)
    for name, grad in plain.items():
        torch.testing.assert_close(ckpt[name], grad, rtol=1e-6, atol=1e-7, msg=name)
    assert saved_ckpt < saved_plain


def test_models_without_large_activations_refuse_in_one_line():
    from mfmrec.models.base import Recommender

    with pytest.raises(ConfigError, match="train.activation_checkpointing: recommender"):
        Recommender().enable_activation_checkpointing()
