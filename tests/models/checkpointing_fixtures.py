"""Shared by the activation-checkpointing tests of VIP5 and IISAN."""

from __future__ import annotations

from collections.abc import Callable

import torch


def grads_and_saved(model: torch.nn.Module, loss_of: Callable[[], torch.Tensor]
                    ) -> tuple[dict[str, torch.Tensor], int]:
    """Every trainable parameter's gradient after one backward of ``loss_of()``, and how
    many tensors its forward saved for backward."""
    model.zero_grad(set_to_none=True)
    saved = [0]

    def pack(t):
        saved[0] += 1
        return t

    torch.manual_seed(0)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_of()
    loss.backward()
    return ({n: p.grad.clone() for n, p in model.named_parameters()
             if p.requires_grad and p.grad is not None}, saved[0])
