"""train.compile and train.activation_checkpointing as the trainer applies them."""

from __future__ import annotations

import warnings

import pytest
import torch

from mfmrec.training import speedups


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3, 1)
        self.checkpointed = False

    def training_loss(self, batch):
        return (self.lin(batch) + torch.rand(()) * 0).pow(2).mean()

    def enable_activation_checkpointing(self):
        self.checkpointed = True


class Flags:
    def __init__(self, activation_checkpointing=False, compile=False):
        self.activation_checkpointing, self.compile = activation_checkpointing, compile


def test_off_by_default_is_the_plain_loss():
    model = Tiny()
    fn = speedups.loss_function(model, Flags())
    assert fn == model.training_loss and not model.checkpointed


def test_checkpointing_flag_enables_it_on_the_model():
    model = Tiny()
    speedups.loss_function(model, Flags(activation_checkpointing=True))
    assert model.checkpointed


def test_compile_failure_warns_once_and_trains_eagerly(monkeypatch):
    def broken(fn):
        def call(*_a, **_k):
            torch.rand(5)  # a failed attempt that drew random numbers
            raise RuntimeError("no C++ compiler\nlong trace")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    model, batch = Tiny(), torch.ones(4, 3)
    fn = speedups.loss_function(model, Flags(compile=True))
    torch.manual_seed(0)
    model.training_loss(batch)  # what one eager step draws
    eager_rng = torch.get_rng_state()
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="train.compile: torch.compile failed "
                                         r"\(RuntimeError: no C\+\+ compiler\)"):
        first = fn(batch)
    assert torch.equal(torch.get_rng_state(), eager_rng)  # the failed try drew nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        second = fn(batch)
    assert torch.equal(first, model.training_loss(batch)) and torch.equal(first, second)


def test_compile_success_uses_the_compiled_function(monkeypatch):
    calls = []

    def fake(fn):
        def compiled(batch):
            calls.append(1)
            return fn(batch)
        return compiled

    monkeypatch.setattr(torch, "compile", fake)
    model, batch = Tiny(), torch.ones(2, 3)
    fn = speedups.loss_function(model, Flags(compile=True))
    assert torch.equal(fn(batch), model.training_loss(batch)) and fn(batch) is not None
    assert len(calls) == 2
