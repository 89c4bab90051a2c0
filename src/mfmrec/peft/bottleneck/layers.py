"""The adapter module and the two ways it enters a network without touching its code.

* :class:`AdaptedDropout` replaces a sublayer's ``dropout`` child where that dropout is
  applied to the sublayer's output just before the residual add and nowhere else (T5,
  BERT-like): the adapter runs, then the original dropout.
* :func:`adapt_output` is a forward hook on a module whose output is the adapted value
  (ViT/CLIP attention and MLP, CNN blocks); the adapter is registered as the module's
  ``adapter`` child, so ``.to()``, ``state_dict`` and checkpoints see it.

Either way an adapter parameter's name contains ``.adapter.``.
"""

from __future__ import annotations

import torch
from torch import nn

from mfmrec.peft.bottleneck.config import ACTIVATIONS

HOOK_CHILD = "adapter"  # the child name of an adapter that a forward hook runs


class BottleneckAdapter(nn.Module):
    """``x + up(act(down(x)))``; ``up`` is zero-initialised so it starts as the identity."""

    def __init__(self, d_model: int, reduction_factor: int = 8, activation: str = "gelu"):
        super().__init__()
        hidden = max(1, d_model // reduction_factor)
        self.down = nn.Linear(d_model, hidden)
        self.act = ACTIVATIONS[activation]()
        self.up = nn.Linear(hidden, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's default init for the down-projection (as LoRA does for A) and zeros
        # for the up-projection: identity at start, yet ``up`` gets gradients at once
        self.down.reset_parameters()
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., d) -> (..., d)
        return x + self.up(self.act(self.down(x)))


class AdaptedDropout(nn.Module):
    """Stands in for a sublayer's ``dropout``: adapter first, then the original dropout."""

    def __init__(self, adapter: BottleneckAdapter, dropout: nn.Module):
        super().__init__()
        self.adapter = adapter
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, d) -> (B, L, d)
        return self.dropout(self.adapter(x))


def _adapt(adapter: BottleneckAdapter, x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 4:  # (B, C, H, W): adapt over channels
        return adapter(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    return adapter(x)  # (B, T, d)


def adapt_output(module: nn.Module, inputs: tuple, output):
    """Forward hook: the module's output through its ``adapter`` child.

    Stateless (it finds the adapter on the module it is called with), so a deep copy of
    an adapted model runs its own adapters. Attention modules return ``(states, weights)``:
    only the states are adapted.
    """
    adapter = getattr(module, HOOK_CHILD)
    if isinstance(output, tuple):
        return (_adapt(adapter, output[0]), *output[1:])
    return _adapt(adapter, output)


def attach_hooked(module: nn.Module, adapter: BottleneckAdapter) -> None:
    """Make ``adapter`` the ``adapter`` child of ``module`` and run it on every output."""
    module.add_module(HOOK_CHILD, adapter)
    module.register_forward_hook(adapt_output)


def has_hooked(module: nn.Module) -> bool:
    return isinstance(getattr(module, HOOK_CHILD, None), BottleneckAdapter)


def detach_hooked(module: nn.Module) -> None:
    """Undo :func:`attach_hooked`: drop the hook and the ``adapter`` child."""
    # torch has no public way to list a module's hooks; the handle is not kept because a
    # deep copy of the model would share it with the original
    hooks = module._forward_hooks
    for key in [k for k, fn in hooks.items() if fn is adapt_output]:
        del hooks[key]
    delattr(module, HOOK_CHILD)
