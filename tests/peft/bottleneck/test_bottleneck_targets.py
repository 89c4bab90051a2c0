"""The target table of every architecture: where adapters go, that they start as the
identity, and that removing them restores the original modules and outputs."""

from __future__ import annotations

import copy
import importlib

import pytest
import torch
from torch import nn

from mfmrec.errors import ConfigError
from mfmrec.peft import (
    BLOCK,
    CROSS,
    FFN,
    SELF,
    TARGETS,
    AdaptedDropout,
    AdapterSpec,
    adapters_of,
    architecture_of,
    count_adapters,
    inject_adapters,
    is_adapter_parameter,
    remove_adapters,
)

IDS = torch.tensor([[2, 5, 7, 9, 3], [2, 6, 3, 0, 0]])


def _t5_out(m):
    return m(input_ids=IDS[:, 1:], decoder_input_ids=IDS[:, :3]).logits


def _bert_out(m):
    return m(input_ids=IDS, attention_mask=(IDS != 0).long()).last_hidden_state


def _pixels_out(m):
    torch.manual_seed(5)
    out = m(pixel_values=torch.randn(2, 3, 32, 32), output_hidden_states=True)
    return torch.stack(out.hidden_states)  # (L+1, B, T, d)


def _cnn_out(m):
    torch.manual_seed(5)
    return torch.cat(m.forward_layers(torch.randn(1, 3, 64, 64)), dim=1)  # (1, sum dims)


# fixture, architecture, forward, adapters per kind with every kind on
CASES = {
    "t5": ("t5", "t5", _t5_out, {SELF: 4, CROSS: 2, FFN: 4}),
    "bert": ("bert", "bert", _bert_out, {SELF: 3, FFN: 3}),
    "vit": ("vit", "vit", _pixels_out, {SELF: 2, FFN: 2}),
    "clip": ("clip", "clip_vision_model", _pixels_out, {SELF: 3, FFN: 3}),
    "cnn": ("cnn", "EfficientNetLite0", _cnn_out, {BLOCK: 16}),
}


@pytest.fixture(params=list(CASES))
def case(request):
    fixture, arch, run, counts = CASES[request.param]
    return copy.deepcopy(request.getfixturevalue(fixture)), arch, run, counts


def _structure(model: nn.Module) -> list[tuple[str, str, int]]:
    return [(n, type(m).__name__, len(m._forward_hooks)) for n, m in model.named_modules()]


def _perturb(model: nn.Module) -> None:
    with torch.no_grad():
        for ad in adapters_of(model).values():
            ad.up.weight.normal_(std=0.5)


def test_every_architecture_starts_as_its_backbone_and_removes_cleanly(case):
    model, arch, run, counts = case
    assert architecture_of(model) == arch
    with torch.no_grad():
        bare = run(model)
    # after a first call: transformers adds its own hooks to capture hidden states then
    structure, names = _structure(model), list(model.state_dict())
    injected = inject_adapters(model, AdapterSpec(reduction_factor=4))
    assert count_adapters(model) == counts and len(injected) == sum(counts.values())
    with torch.no_grad():
        assert torch.equal(run(model), bare)
        _perturb(model)
        assert not torch.allclose(run(model), bare)
    assert remove_adapters(model) == len(injected)
    assert _structure(model) == structure and list(model.state_dict()) == names
    with torch.no_grad():
        assert torch.equal(run(model), bare)
    assert count_adapters(model) == dict.fromkeys(counts, 0)


def test_every_adapter_parameter_is_named_as_one(case):
    model, _, _, _ = case
    before = {n for n, _ in model.named_parameters()}
    inject_adapters(model, AdapterSpec())
    added = {n for n, _ in model.named_parameters()} - before
    assert added and all(is_adapter_parameter(n) for n in added)
    assert not any(is_adapter_parameter(n) for n in before)


def test_bert_adapters_sit_before_the_residual_in_both_output_sublayers(bert):
    model = copy.deepcopy(bert)
    injected = inject_adapters(model, AdapterSpec(reduction_factor=4))
    layer = model.encoder.layer[0]
    assert isinstance(layer.attention.output.dropout, AdaptedDropout)
    assert isinstance(layer.output.dropout, AdaptedDropout)
    assert set(injected) == {f"encoder.layer.{i}.{s}" for i in range(3)
                             for s in ("attention.output", "output")}
    assert all(ad.down.out_features == 4 for ad in injected.values())  # 16 // 4
    assert "encoder.layer.0.output.dropout.adapter.up.weight" in model.state_dict()


def test_hooked_adapters_are_children_of_their_sublayers(vit, clip, cnn):
    names = {"vit": "layers.1.mlp", "clip": "vision_model.encoder.layers.2.self_attn",
             "cnn": "_blocks.15"}
    for key, model in (("vit", vit), ("clip", clip), ("cnn", cnn)):
        model = copy.deepcopy(model)
        injected = inject_adapters(model, AdapterSpec(bottleneck=8))
        sublayer = model.get_submodule(names[key])
        assert injected[names[key]] is sublayer.adapter
        assert f"{names[key]}.adapter.down.weight" in model.state_dict()


def test_cnn_adapter_widths_follow_each_block(cnn):
    model = copy.deepcopy(cnn)
    injected = inject_adapters(model, AdapterSpec(bottleneck=8))
    widths = [(ad.down.in_features, ad.down.out_features) for ad in injected.values()]
    assert widths[0] == (16, 8) and widths[-1] == (320, 8)
    assert [block._bn2.num_features for block in model._blocks] == [w for w, _ in widths]


def test_kinds_select_sublayers(t5, bert):
    assert count_adapters(_injected(t5, {SELF, FFN})) == {SELF: 4, CROSS: 0, FFN: 4}
    assert count_adapters(_injected(bert, {FFN})) == {SELF: 0, FFN: 3}
    with pytest.raises(ValueError, match="no sublayers of kinds"):
        _injected(bert, {BLOCK})


def _injected(model, kinds):
    model = copy.deepcopy(model)
    inject_adapters(model, AdapterSpec(kinds=frozenset(kinds)))
    return model


def test_injecting_twice_fails_for_hooks_too(clip):
    model = copy.deepcopy(clip)
    inject_adapters(model, AdapterSpec())
    with pytest.raises(ValueError, match="already has an adapter"):
        inject_adapters(model, AdapterSpec())


@pytest.mark.parametrize("model", [
    nn.Sequential(nn.Linear(4, 4)),
    pytest.param("distilbert", id="distilbert"),
])
def test_an_unsupported_architecture_fails_with_one_clear_line(model):
    if model == "distilbert":
        from transformers import DistilBertConfig, DistilBertModel

        model = DistilBertModel(DistilBertConfig(vocab_size=20, dim=8, n_layers=1, n_heads=2,
                                                 hidden_dim=16, max_position_embeddings=8))
    with pytest.raises(ConfigError) as err:
        inject_adapters(model, AdapterSpec())
    message = str(err.value)
    assert "\n" not in message and "no target table" in message
    assert architecture_of(model) in message and "bert" in message  # names the supported


def test_every_class_in_the_table_exists():
    from mfmrec.features import efficientnet

    for arch, table in TARGETS.items():
        if arch == "EfficientNetLite0":
            module = efficientnet
        else:
            folder = arch.replace("-", "_").removesuffix("_vision_model")
            module = importlib.import_module(f"transformers.models.{folder}.modeling_{folder}")
        for cls in table:
            assert isinstance(getattr(module, cls, None), type), f"{arch}: {cls}"
