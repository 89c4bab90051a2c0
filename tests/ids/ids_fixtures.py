"""Helpers of the ID tests (imported by name: a module called ``conftest`` is ambiguous)."""

from __future__ import annotations

import torch


def clustered(n: int, dim: int, centres: int, seed: int, noise: float = 0.05) -> torch.Tensor:
    """(n, dim) rows around ``centres`` random centres."""
    gen = torch.Generator().manual_seed(seed)
    c = torch.randn(centres, dim, generator=gen)
    pick = torch.randint(centres, (n,), generator=gen)
    return c[pick] + noise * torch.randn(n, dim, generator=gen)
