"""Opt-in speed and memory trade-offs of the training loop (``train:`` flags).

* ``activation_checkpointing``: the model recomputes the activations of its large blocks
  in backward (:meth:`~mfmrec.models.base.Recommender.enable_activation_checkpointing`);
  a model without such blocks refuses with a one-line error.
* ``compile``: the training loss runs through ``torch.compile``. Compilation happens at
  the first call; if it fails there (or at a later recompilation), one warning names the
  failure, the eager function takes over and training continues. On a failure at the
  first step the random state is put back first, so the run equals an eager run.

Both are off by default, and off they change nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

from mfmrec.training import checkpoint as ckpt_io

LossFn = Callable[[Any], torch.Tensor]


class CompiledLoss:
    """``torch.compile`` of ``eager``, falling back to ``eager`` where compiling fails."""

    def __init__(self, eager: LossFn):
        self.eager = eager
        self.compiled: LossFn | None = None
        self.failed, self.calls = False, 0

    def __call__(self, batch: Any) -> torch.Tensor:
        if self.failed:
            return self.eager(batch)
        rng = ckpt_io.rng_state() if self.calls == 0 else None
        self.calls += 1
        try:
            if self.compiled is None:
                self.compiled = torch.compile(self.eager)
            return self.compiled(batch)
        except Exception as exc:  # any compiler failure: warn once, train eagerly
            self._fall_back(exc, rng)
            return self.eager(batch)

    def _fall_back(self, exc: Exception, rng) -> None:
        self.failed, self.compiled = True, None
        if rng is not None:
            ckpt_io.set_rng_state(*rng)  # the failed attempt may have drawn numbers
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        warnings.warn(f"train.compile: torch.compile failed ({type(exc).__name__}: {first}); "
                      "training continues without compilation", stacklevel=3)


def loss_function(model: Any, cfg: Any) -> LossFn:
    """The model's training loss as the loop calls it: checkpointing enabled on the model
    when ``cfg.activation_checkpointing``, compiled when ``cfg.compile``."""
    if cfg.activation_checkpointing:
        model.enable_activation_checkpointing()
    return CompiledLoss(model.training_loss) if cfg.compile else model.training_loss
