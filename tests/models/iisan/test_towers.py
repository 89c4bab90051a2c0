"""The side network's parts: gates, blocks, group layer-dropping order, alignment shapes."""

from __future__ import annotations

import math

import pytest
import torch

from mfmrec.models.iisan.towers import (
    IMAGE,
    INTER,
    TEXT,
    Fusion,
    Gate,
    SideBlock,
    SideNetwork,
    Step,
    group_schedule,
)


def test_schedule_runs_surplus_image_blocks_alone_first():
    assert group_schedule(2, 4) == [
        Step(IMAGE, None, 0), Step(IMAGE, None, 1),
        Step(TEXT, 0, None), Step(IMAGE, None, 2), Step(INTER, 0, 2),
        Step(TEXT, 1, None), Step(IMAGE, None, 3), Step(INTER, 1, 3),
    ]


def test_schedule_surplus_text_blocks_and_symmetric_and_text_only():
    assert group_schedule(3, 1) == [Step(TEXT, 0, None), Step(TEXT, 1, None),
                                    Step(TEXT, 2, None), Step(IMAGE, None, 0),
                                    Step(INTER, 2, 0)]
    assert group_schedule(2, 2) == [Step(TEXT, 0, None), Step(IMAGE, None, 0), Step(INTER, 0, 0),
                                    Step(TEXT, 1, None), Step(IMAGE, None, 1), Step(INTER, 1, 1)]
    assert group_schedule(3, 0) == [Step(TEXT, j, None) for j in range(3)]
    with pytest.raises(ValueError):
        group_schedule(0, 2)


def test_gate_starts_at_one_half_and_temperature_sharpens_it():
    gate = Gate(temperature=0.1)
    state, tapped = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 4.0])
    assert torch.allclose(gate(state, tapped), torch.tensor([1.0, 2.0]))
    with torch.no_grad():
        gate.p.fill_(0.1)  # p / T = 1
    g = 1 / (1 + math.exp(-1))
    assert gate.value.item() == pytest.approx(g)
    assert torch.allclose(gate(state, tapped), torch.tensor([2 * g, 4 * (1 - g)]))


def test_side_block_is_the_identity_until_trained():
    block = SideBlock(6, 2)
    x = torch.randn(3, 6)
    assert torch.equal(block(x), x)
    with torch.no_grad():
        block.up.weight.fill_(1.0)
    assert not torch.allclose(block(x), x)


def test_untrained_text_tower_is_the_gated_average_of_its_taps():
    net = SideNetwork(4, None, text_taps=2, image_taps=0, hidden=3, fusion="sum")
    text = torch.randn(5, 3, 4)  # states 0, tap 1, tap 2
    expected_state = 0.5 * (0.5 * text[:, 0] + 0.5 * text[:, 1]) + 0.5 * text[:, 2]
    expected = net.fusion({TEXT: expected_state})
    assert torch.allclose(net(text), expected, atol=1e-6)
    assert net.modalities == (TEXT,)


def _recording_network(align: str) -> tuple[SideNetwork, list]:
    """4 text taps (width 6) and 2 image taps (width 10); records every gate input."""
    net = SideNetwork(6, 10, text_taps=4, image_taps=2, hidden=5, bottleneck=3, align=align)
    calls = []
    for name in (TEXT, IMAGE, INTER):
        for j, gate in enumerate(getattr(net, name).gates):
            gate.register_forward_hook(
                lambda m, inputs, out, name=name, j=j: calls.append((name, j, inputs[1])))
    return net, calls


def test_versa_order_and_alignment_text_to_image():
    net, calls = _recording_network("text_to_image")
    assert len(net.align) == 3  # the starting states + 2 lockstep steps
    assert all(a.in_features == 6 and a.out_features == 10 for a in net.align)
    assert net.inter.width == 10
    u = 2
    text = torch.arange(5.0)[None, :, None].expand(u, 5, 6).clone()  # state j == j
    image = (100 + torch.arange(3.0))[None, :, None].expand(u, 3, 10).clone()
    out = net(text, image)
    assert out.shape == (u, 5)
    order = [(name, j) for name, j, _ in calls]
    assert order == [(TEXT, 0), (TEXT, 1), (TEXT, 2), (IMAGE, 0), (INTER, 0),
                     (TEXT, 3), (IMAGE, 1), (INTER, 1)]
    tapped = {(name, j): x for name, j, x in calls}
    assert torch.equal(tapped[(TEXT, 2)], text[:, 3])  # text tap 2 is state 3
    assert torch.equal(tapped[(IMAGE, 1)], image[:, 2])
    # the inter-modal input of lockstep step k: aligned text tap + image tap
    assert torch.allclose(tapped[(INTER, 0)], net.align[1](text[:, 3]) + image[:, 1])
    assert torch.allclose(tapped[(INTER, 1)], net.align[2](text[:, 4]) + image[:, 2])


def test_alignment_the_other_way_and_equal_widths():
    net, calls = _recording_network("image_to_text")
    assert all(a.in_features == 10 and a.out_features == 6 for a in net.align)
    text, image = torch.randn(3, 5, 6), torch.randn(3, 3, 10)
    net(text, image)
    inter = [x for name, _, x in calls if name == INTER]
    assert [tuple(x.shape) for x in inter] == [(3, 6), (3, 6)]
    same = SideNetwork(6, 6, 2, 2, hidden=4)
    assert all(isinstance(a, torch.nn.Identity) for a in same.align)


def test_image_states_required_exactly_when_there_is_an_image_tower():
    net = SideNetwork(4, 6, 1, 1, hidden=3)
    with pytest.raises(ValueError, match="image states"):
        net(torch.randn(2, 2, 4))


@pytest.mark.parametrize("mode", ["concat", "sum", "mean"])
def test_fusion_modes(mode):
    fusion = Fusion({TEXT: 4, IMAGE: 6}, hidden=3, mode=mode)
    outputs = {TEXT: torch.randn(2, 4), IMAGE: torch.randn(2, 6)}
    parts = [fusion.proj[k](fusion.norms[k](outputs[k])) for k in (TEXT, IMAGE)]
    expected = {"concat": lambda: fusion.out(torch.cat(parts, -1)),
                "sum": lambda: parts[0] + parts[1],
                "mean": lambda: (parts[0] + parts[1]) / 2}[mode]()
    assert torch.allclose(fusion(outputs), expected, atol=1e-6)


def test_side_dropout_acts_only_while_training():
    torch.manual_seed(0)
    net = SideNetwork(6, 10, text_taps=2, image_taps=2, hidden=5, bottleneck=3, dropout=0.5)
    for block in [*net.text.blocks, *net.image.blocks, *net.inter.blocks]:
        with torch.no_grad():
            block.up.weight.normal_()  # make the blocks' bottleneck count
    text, image = torch.randn(4, 3, 6), torch.randn(4, 3, 10)
    net.train()
    assert not torch.allclose(net(text, image), net(text, image))  # two dropout masks
    net.eval()
    assert torch.equal(net(text, image), net(text, image))
    quiet = SideNetwork(6, 10, text_taps=2, image_taps=2, hidden=5, bottleneck=3)
    quiet.load_state_dict(net.state_dict())  # dropout has no parameters
    assert torch.allclose(quiet(text, image), net(text, image))
