"""Activation checkpointing of VIP5's T5 blocks: the same gradients, fewer saved tensors."""

from __future__ import annotations

import pytest
import torch

from mfmrec.errors import ConfigError


def grads_and_saved(model, batch) -> tuple[dict[str, torch.Tensor], int]:
    """Every trainable parameter's gradient after one backward, and how many tensors the
    forward saved for backward."""
    model.train()
    model.zero_grad(set_to_none=True)
    saved = [0]

    def pack(t):
        saved[0] += 1
        return t

    torch.manual_seed(0)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model.training_loss(batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()
             if p.requires_grad and p.grad is not None}
    return grads, saved[0]


@pytest.mark.parametrize("tuning", ["adapters", "full"])
def test_checkpointed_t5_gives_the_same_gradients(make_vip5, dataset, t5_tokenizer, tuning):
    model = make_vip5(t5_tokenizer, tuning=tuning)  # dropout 0
    data = model.train_data(dataset, "train", seed=0)
    batch = model.collate([data[i] for i in (0, len(data) // 2, len(data) - 1, 1)])
    plain, saved_plain = grads_and_saved(model, batch)
    model.enable_activation_checkpointing()
    ckpt, saved_ckpt = grads_and_saved(model, batch)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert plain.keys() == ckpt.keys() and len(plain) > 0.9 * len(trainable)
    for name, grad in plain.items():
        torch.testing.assert_close(ckpt[name], grad, rtol=1e-6, atol=1e-7, msg=name)
    assert saved_ckpt < saved_plain


def test_models_without_large_activations_refuse_in_one_line():
    from mfmrec.models.base import Recommender

    with pytest.raises(ConfigError, match="train.activation_checkpointing: recommender"):
        Recommender().enable_activation_checkpointing()
