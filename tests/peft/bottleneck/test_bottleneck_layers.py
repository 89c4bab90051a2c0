"""The adapter module, the dropout stand-in and the output hook, on plain torch modules."""

from __future__ import annotations

import copy

import torch
from torch import nn

from mfmrec.peft import AdaptedDropout, BottleneckAdapter
from mfmrec.peft.bottleneck.layers import attach_hooked, detach_hooked, has_hooked


def test_adapter_formula_hand_computed():
    ad = BottleneckAdapter(d_model=2, reduction_factor=2, activation="relu")  # hidden 1
    with torch.no_grad():
        ad.down.weight.copy_(torch.tensor([[1.0, -1.0]]))
        ad.down.bias.fill_(0.5)
        ad.up.weight.copy_(torch.tensor([[2.0], [3.0]]))
        ad.up.bias.copy_(torch.tensor([0.1, 0.0]))
    x = torch.tensor([[3.0, 1.0], [0.0, 4.0]])
    # row 0: relu(3-1+0.5)=2.5 -> +[5.1, 7.5]; row 1: relu(-4+0.5)=0 -> +[0.1, 0]
    assert torch.allclose(ad(x), torch.tensor([[8.1, 8.5], [0.1, 4.0]]))


def test_gelu_adapter_width_and_zero_start():
    ad = BottleneckAdapter(d_model=64, reduction_factor=8)
    assert ad.down.out_features == 8 and ad.up.in_features == 8
    x = torch.randn(3, 5, 64)
    assert torch.equal(ad(x), x)
    assert isinstance(ad.act, torch.nn.GELU)


def _nonzero(d: int) -> BottleneckAdapter:
    ad = BottleneckAdapter(d, 2)
    with torch.no_grad():
        ad.up.weight.normal_()
    return ad


def test_adapted_dropout_runs_the_adapter_then_the_dropout():
    ad = _nonzero(4)
    wrapped = AdaptedDropout(ad, nn.Dropout(0.5)).eval()
    x = torch.randn(2, 3, 4)
    assert torch.equal(wrapped(x), ad(x))
    wrapped.train()
    torch.manual_seed(0)
    out = wrapped(x)
    assert ((out == 0) | torch.isclose(out, 2 * ad(x))).all()  # dropped or scaled by 1/(1-p)


class _Attention(nn.Module):  # returns (states, weights) like transformers' attention
    def __init__(self):
        super().__init__()
        self.out = nn.Linear(4, 4)

    def forward(self, x):  # (B, T, 4) -> ((B, T, 4), (B, T))
        return self.out(x), x.sum(-1)


def test_hook_adapts_token_states_and_leaves_attention_weights():
    module, ad = _Attention(), _nonzero(4)
    x = torch.randn(2, 3, 4)
    plain = module(x)
    attach_hooked(module, ad)
    states, weights = module(x)
    assert has_hooked(module) and module.adapter is ad
    assert torch.allclose(states, ad(plain[0])) and torch.equal(weights, plain[1])
    detach_hooked(module)
    assert not has_hooked(module) and not module._forward_hooks
    assert torch.equal(module(x)[0], plain[0])


def test_hook_adapts_feature_maps_over_channels():
    conv, ad = nn.Conv2d(3, 4, 1), _nonzero(4)
    x = torch.randn(2, 3, 5, 6)
    plain = conv(x)  # (B, C, H, W)
    attach_hooked(conv, ad)
    expected = ad(plain.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    assert torch.allclose(conv(x), expected)


def test_a_deep_copy_runs_its_own_hooked_adapter():
    module = nn.Linear(4, 4)
    attach_hooked(module, BottleneckAdapter(4, 2))
    twin = copy.deepcopy(module)
    with torch.no_grad():
        twin.adapter.up.weight.fill_(1.0)
    x = torch.randn(3, 4)
    assert torch.equal(module(x), module.adapter(nn.functional.linear(x, module.weight,
                                                                      module.bias)))
    assert not torch.allclose(twin(x), module(x))
