"""Activation checkpointing of the live encoders (full fine-tuning, adapters inside the
encoders, the EfficientNet blocks): the same gradients, fewer saved tensors."""

from __future__ import annotations

import pytest
import torch
from checkpointing_fixtures import grads_and_saved
from iisan_fixtures import encoded_config

from mfmrec.config import build
from mfmrec.errors import ConfigError
from mfmrec.models import registry
from mfmrec.models.iisan.encoders import inject_encoder_adapters


def make(name: str, dataset, paths):
    entry = registry.get(name)
    torch.manual_seed(0)
    return entry.builder(build(entry.config_cls, encoded_config(paths, dropout=0.0)), dataset)


def no_dropout(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
        if hasattr(m, "dropout_prob"):
            m.dropout_prob = 0.0


def assert_same_gradients(model, loss_of, enable) -> None:
    plain, saved_plain = grads_and_saved(model, loss_of)
    enable()
    ckpt, saved_ckpt = grads_and_saved(model, loss_of)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert plain.keys() == ckpt.keys() and len(plain) > 0.9 * len(trainable)
    for name, grad in plain.items():
        torch.testing.assert_close(ckpt[name], grad, rtol=1e-5, atol=1e-7, msg=name)
    assert saved_ckpt < saved_plain


@pytest.mark.parametrize("name", ["mm-full-ft", "mm-encoder-adapters"])
def test_checkpointed_live_encoders_give_the_same_gradients(name, encoded, tiny_encoders):
    model = make(name, encoded, tiny_encoders)
    no_dropout(model)
    model.train()
    data = model.train_data(encoded, "train", seed=0)
    data.set_epoch(0)
    batch = model.collate([data[i] for i in range(6)])
    assert_same_gradients(model, lambda: model.training_loss(batch),
                          model.enable_activation_checkpointing)


def test_checkpointed_cnn_blocks_give_the_same_gradients():
    from mfmrec.features.efficientnet import EfficientNetLite0

    torch.manual_seed(0)
    cnn = EfficientNetLite0()
    cnn.requires_grad_(False)
    inject_encoder_adapters(cnn, 4, "model.image_encoder")  # frozen blocks, live adapters
    for p in cnn.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    cnn.train()
    for m in cnn.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    x = torch.randn(2, 3, 32, 32)

    def enable():
        cnn.checkpoint_blocks = True

    assert_same_gradients(cnn, lambda: sum(s.sum() for s in cnn.forward_layers(x)), enable)


def test_uncached_iisan_has_nothing_to_checkpoint(encoded, tiny_encoders):
    model = make("iisan-uncached", encoded, tiny_encoders)
    with pytest.raises(ConfigError, match="activation_checkpointing"):
        model.enable_activation_checkpointing()
