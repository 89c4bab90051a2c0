"""The side-adapted network of IISAN / IISAN-Versa: gated adapter towers over tapped layers.

A frozen encoder with ``L`` layers yields ``L + 1`` pooled states per item (entry 0 is the
embedding or stem output). A *tower* starts from state 0 and, for every tapped layer
``l`` in its tap list, mixes its running state ``s`` with that layer's state ``h_l``
through a learned gate and runs one side adapter block::

    g = sigmoid(p / T)              p starts at 0, so g = 0.5: half tower, half encoder
    s <- block(g * s + (1 - g) * h_l)
    block(x) = x + up(act(down(x)))

Tapping only some layers is IISAN's LayerDrop (the paper taps every second layer).

Three towers: an intra-modal text tower, an intra-modal image tower, and an inter-modal
tower whose tapped input at each step is the sum of one text and one image state after
*dimension alignment* (a linear map from one encoder's width to the other's, one per
step; IISAN-Versa). When the two tap lists differ in length (*group layer-dropping*), the
longer tower's surplus blocks run alone first; then text, image and inter-modal steps
advance in lockstep over the remaining taps. :func:`group_schedule` is that order.

Each tower's final state is projected to the item width and the projections are fused
(concatenation + linear by default). Optional dropout (``dropout``, training only) acts on
each block's bottleneck activation and on each tower's normalised output before its
projection: the side network is the only trainable item model, and without it the
projections of 384-1280-d frozen states over-fit small data.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

TEXT, IMAGE, INTER = "text", "image", "inter"
ALIGNS = ("text_to_image", "image_to_text")
FUSIONS = ("concat", "sum", "mean")


class Step(NamedTuple):
    """One block of the side network: which tower, and which tap of each encoder it reads
    (an index into that encoder's tap list; ``None`` when the step does not read it)."""

    tower: str
    text: int | None
    image: int | None


def group_schedule(text_taps: int, image_taps: int) -> list[Step]:
    """The order the side network runs its blocks in.

    Surplus blocks of the deeper tower first (alone), then for every lockstep pair:
    text block, image block, inter-modal block. ``image_taps == 0`` is the text-only
    network (no image and no inter-modal tower).
    """
    if text_taps < 1 or image_taps < 0:
        raise ValueError(f"need >= 1 text tap and >= 0 image taps, got {text_taps}, {image_taps}")
    if image_taps == 0:
        return [Step(TEXT, j, None) for j in range(text_taps)]
    shared = min(text_taps, image_taps)
    extra_t, extra_i = text_taps - shared, image_taps - shared
    steps = [Step(TEXT, j, None) for j in range(extra_t)]
    steps += [Step(IMAGE, None, j) for j in range(extra_i)]
    for k in range(shared):
        t, i = extra_t + k, extra_i + k
        steps += [Step(TEXT, t, None), Step(IMAGE, None, i), Step(INTER, t, i)]
    return steps


class Gate(nn.Module):
    """``g * state + (1 - g) * tapped`` with ``g = sigmoid(p / T)`` and ``p`` learned.

    The temperature sharpens the gate: with T = 0.1 a small change of ``p`` moves the mix
    far, so each block can learn quickly how much of the encoder layer to let in.
    """

    def __init__(self, temperature: float = 0.1):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"gate temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.p = nn.Parameter(torch.zeros(()))

    @property
    def value(self) -> torch.Tensor:
        return torch.sigmoid(self.p / self.temperature)

    def forward(self, state: torch.Tensor, tapped: torch.Tensor) -> torch.Tensor:
        g = self.value
        return g * state + (1.0 - g) * tapped  # (..., d)


class SideBlock(nn.Module):
    """The side adapter block ``x + up(act(down(x)))``.

    ``up`` starts at zero so an untrained tower is exactly the gated running average of
    its tapped layers: training starts from the frozen encoder's own features.
    """

    def __init__(self, width: int, bottleneck: int, dropout: float = 0.0):
        super().__init__()
        self.down = nn.Linear(width, bottleneck)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        self.up = nn.Linear(bottleneck, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (U, d) -> (U, d)
        return x + self.up(self.drop(self.act(self.down(x))))


class SideTower(nn.Module):
    """A chain of gated side blocks, one per tapped layer."""

    def __init__(self, width: int, steps: int, bottleneck: int, temperature: float,
                 dropout: float = 0.0):
        super().__init__()
        self.width = width
        self.gates = nn.ModuleList(Gate(temperature) for _ in range(steps))
        self.blocks = nn.ModuleList(SideBlock(width, bottleneck, dropout) for _ in range(steps))

    def __len__(self) -> int:
        return len(self.blocks)

    def step(self, j: int, state: torch.Tensor, tapped: torch.Tensor) -> torch.Tensor:
        return self.blocks[j](self.gates[j](state, tapped))


def _align(source: int, target: int) -> nn.Module:
    return nn.Identity() if source == target else nn.Linear(source, target)


class Fusion(nn.Module):
    """Projects each tower's output to ``hidden`` and fuses the projections."""

    def __init__(self, widths: dict[str, int], hidden: int, mode: str = "concat",
                 dropout: float = 0.0):
        super().__init__()
        if mode not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {mode!r}")
        self.mode, self.names = mode, list(widths)
        self.norms = nn.ModuleDict({k: nn.LayerNorm(w) for k, w in widths.items()})
        self.drop = nn.Dropout(dropout)
        self.proj = nn.ModuleDict({k: nn.Linear(w, hidden) for k, w in widths.items()})
        self.out = nn.Linear(hidden * len(widths), hidden) if mode == "concat" else None

    def forward(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        # the norm puts encoders of very different scales (BERT vs CNN stages) on one footing
        parts = [self.proj[k](self.drop(self.norms[k](outputs[k]))) for k in self.names]
        if self.out is not None:
            return self.out(torch.cat(parts, dim=-1))  # (U, h)
        stacked = torch.stack(parts)  # (M, U, h)
        return stacked.sum(0) if self.mode == "sum" else stacked.mean(0)


class SideNetwork(nn.Module):
    """Text, image and inter-modal towers over tapped states, fused into item vectors.

    ``forward`` takes the states the taps need, in tap order, each preceded by state 0:
    ``text`` (U, 1 + len(text taps), d_text) and ``image`` (U, 1 + len(image taps),
    d_image) or ``None`` for a text-only network.
    """

    def __init__(self, text_width: int, image_width: int | None, text_taps: int,
                 image_taps: int, hidden: int, bottleneck: int = 64,
                 temperature: float = 0.1, align: str = "text_to_image",
                 fusion: str = "concat", dropout: float = 0.0):
        super().__init__()
        if align not in ALIGNS:
            raise ValueError(f"align must be one of {ALIGNS}, got {align!r}")
        self.schedule = group_schedule(text_taps, image_taps if image_width else 0)
        self.align_mode = align
        self.text = SideTower(text_width, text_taps, bottleneck, temperature, dropout)
        widths = {TEXT: text_width}
        self.image = self.inter = self.align = None
        if image_width:
            source, target = ((text_width, image_width) if align == "text_to_image"
                              else (image_width, text_width))
            shared = min(text_taps, image_taps)
            self.image = SideTower(image_width, image_taps, bottleneck, temperature, dropout)
            self.inter = SideTower(target, shared, bottleneck, temperature, dropout)
            # entry 0 aligns the starting (embedding) states, entry k + 1 lockstep step k
            self.align = nn.ModuleList(_align(source, target) for _ in range(shared + 1))
            widths.update({IMAGE: image_width, INTER: target})
        self.fusion = Fusion(widths, hidden, fusion, dropout)

    @property
    def modalities(self) -> tuple[str, ...]:
        return (TEXT,) if self.image is None else (TEXT, IMAGE)

    def _joint(self, k: int, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """The inter-modal input of alignment slot ``k``: aligned text + image (U, d_w)."""
        if self.align_mode == "text_to_image":
            return self.align[k](text) + image
        return text + self.align[k](image)

    def forward(self, text: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        if (image is None) != (self.image is None):
            raise ValueError("image states must be given exactly when the network has an "
                             "image tower")
        states = {TEXT: text[:, 0]}  # (U, d_text)
        if image is not None:
            states[IMAGE] = image[:, 0]  # (U, d_image)
            states[INTER] = self._joint(0, text[:, 0], image[:, 0])
        inter_step = 0
        for step in self.schedule:
            if step.tower == TEXT:
                states[TEXT] = self.text.step(step.text, states[TEXT], text[:, 1 + step.text])
            elif step.tower == IMAGE:
                states[IMAGE] = self.image.step(step.image, states[IMAGE],
                                                image[:, 1 + step.image])
            else:
                joint = self._joint(inter_step + 1, text[:, 1 + step.text],
                                    image[:, 1 + step.image])
                states[INTER] = self.inter.step(inter_step, states[INTER], joint)
                inter_step += 1
        return self.fusion(states)  # (U, hidden)

    def gate_values(self) -> dict[str, list[float]]:
        """Each tower's gates after the sigmoid: how much tower state each block keeps."""
        towers = {TEXT: self.text, IMAGE: self.image, INTER: self.inter}
        return {k: [round(float(g.value), 4) for g in t.gates]
                for k, t in towers.items() if t is not None}
