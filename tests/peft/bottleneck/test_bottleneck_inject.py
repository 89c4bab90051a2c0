"""Injecting into transformers' T5 (tiny random model): counts, identity, removal, freezing."""

from __future__ import annotations

import copy

import pytest
import torch

from mfmrec.peft import (
    CROSS,
    FFN,
    SELF,
    AdaptedDropout,
    AdapterSpec,
    adapters_of,
    count_adapters,
    freeze_except,
    inject_adapters,
    is_adapter_parameter,
    is_layer_norm_parameter,
    remove_adapters,
)


def _logits(model):
    ids = torch.tensor([[5, 6, 7, 1], [8, 9, 1, 0]])
    dec = torch.tensor([[0, 11, 12], [0, 13, 1]])
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=(ids != 0).long(), decoder_input_ids=dec).logits


@pytest.mark.parametrize("kinds,expected", [
    ({SELF, CROSS, FFN}, {SELF: 4, CROSS: 2, FFN: 4}),
    ({SELF, FFN}, {SELF: 4, CROSS: 0, FFN: 4}),
])
def test_adapter_count_per_mode(t5, kinds, expected):
    model = copy.deepcopy(t5)
    injected = inject_adapters(model, AdapterSpec(reduction_factor=8, kinds=frozenset(kinds)))
    assert count_adapters(model) == expected
    assert len(injected) == sum(expected.values()) == len(adapters_of(model))
    # encoder: self + FFN per layer; decoder: self (+ cross) + FFN per layer
    enc = [n for n in injected if n.startswith("encoder.")]
    assert len(enc) == 2 * t5.config.num_layers


def test_zero_init_adapters_keep_the_backbone_function(t5):
    bare = _logits(t5)
    model = copy.deepcopy(t5)
    inject_adapters(model, AdapterSpec())
    assert torch.equal(_logits(model), bare)
    with torch.no_grad():
        for ad in adapters_of(model).values():
            ad.up.weight.normal_(std=0.5)
    assert not torch.allclose(_logits(model), bare)
    assert remove_adapters(model) == 10
    assert torch.equal(_logits(model), bare)


def test_injection_point_is_the_sublayer_dropout(t5):
    model = copy.deepcopy(t5)
    inject_adapters(model, AdapterSpec())
    sub = model.decoder.block[0].layer[1]
    assert type(sub).__name__ == "T5LayerCrossAttention"
    assert isinstance(sub.dropout, AdaptedDropout)
    with pytest.raises(ValueError, match="already has an adapter"):
        inject_adapters(model, AdapterSpec())


def test_adapter_count_matches_parameter_formula(t5):
    model = copy.deepcopy(t5)
    inject_adapters(model, AdapterSpec(reduction_factor=8))
    d, r = 64, 8
    per = d * r + r + r * d + d
    n = sum(p.numel() for name, p in model.named_parameters() if is_adapter_parameter(name))
    assert n == 10 * per


def test_freeze_except_adapters_and_layer_norms(t5):
    model = copy.deepcopy(t5)
    inject_adapters(model, AdapterSpec())
    n = freeze_except(model, lambda name: is_adapter_parameter(name)
                      or is_layer_norm_parameter(model, name))
    names = {name for name, p in model.named_parameters() if p.requires_grad}
    assert "shared.weight" not in names and "encoder.final_layer_norm.weight" in names
    assert all(".adapter." in x or "layer_norm" in x for x in names)
    # 2*2 encoder + 2*3 decoder sublayer norms + 2 final norms, each d=64
    norms = (4 + 6 + 2) * 64
    assert n == norms + sum(p.numel() for name, p in model.named_parameters()
                            if is_adapter_parameter(name))
