"""Analytic training FLOPs of transformer stacks, counted on real tokens only.

A model's :meth:`~mfmrec.models.base.Recommender.batch_cost` uses these counts; the
trainer turns them into achieved FLOP/s and MFU. Only matrix products count (as in
``torch.utils.flop_counter`` and the PaLM/nanoGPT MFU convention); norms, activations,
softmax and losses are left out. Per real token and layer:

* dense layers: ``2 * in * out`` per ``nn.Linear`` (q, k, v, o, the FFN incl. gated
  variants, injected adapters); in a decoder, cross-attention's q and o run per decoder
  token and its k and v per encoder token;
* attention: ``2 * 2 * n_keys * inner`` per query (scores and values), where ``n_keys``
  is the real length of the attended sequence (a causal decoder is charged its whole
  real length, as the computed T x T scores are; padding is never charged);
* an LM head: ``2 * d * vocab`` per decoder token.

Training FLOPs = forward x (1 [forward] + 1 [input gradients] + 1 if the weight needs a
gradient): a trainable matrix costs three forward-sized products, a frozen one two. Both
operands of an attention product are activations, so attention counts three as well.
These are model FLOPs: what activation checkpointing recomputes is not counted again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

FROZEN_PASSES = 2  # forward + gradient of the input
TRAINABLE_PASSES = 3  # + gradient of the weight


@dataclass(frozen=True)
class Flops:
    """Matmul FLOPs of some work: the forward pass alone, and forward + backward."""

    forward: float = 0.0
    training: float = 0.0

    def __add__(self, other: Flops) -> Flops:
        return Flops(self.forward + other.forward, self.training + other.training)

    def times(self, n: float) -> Flops:
        """The same work done ``n`` times (per-token FLOPs x tokens)."""
        return Flops(self.forward * n, self.training * n)


Weights = tuple[tuple[float, torch.Tensor], ...]  # (forward FLOPs per row, weight)


def linear_weights(modules: Iterable[nn.Module]) -> Weights:
    """Every ``nn.Linear`` of ``modules`` (submodules included) as (``2 * in * out``,
    its weight); biases are additions and do not count."""
    return tuple((2.0 * sub.in_features * sub.out_features, sub.weight)
                 for module in modules for sub in module.modules()
                 if isinstance(sub, nn.Linear))


def matrix_weights(module: nn.Module) -> Weights:
    """The weight matrices of a head used whole (an ``nn.Linear``, or VIP5's
    ``ExtendedHead`` with its frozen and its trainable table)."""
    return tuple((2.0 * p.numel(), p) for p in module.parameters() if p.ndim == 2)


def cost_of(weights: Weights) -> Flops:
    """Per-row FLOPs of ``weights``; whether each trains is read now."""
    forward = training = 0.0
    for flops, weight in weights:
        forward += flops
        training += flops * (TRAINABLE_PASSES if weight.requires_grad else FROZEN_PASSES)
    return Flops(forward, training)


def dense(modules: Iterable[nn.Module]) -> Flops:
    """Per-row FLOPs of applying every ``nn.Linear`` of ``modules`` once."""
    return cost_of(linear_weights(modules))


def activations_product(forward: float) -> Flops:
    """A product of two activations (``forward`` FLOPs): backward computes the
    gradients of both operands, two products more."""
    return Flops(forward, TRAINABLE_PASSES * forward)


def attention(pairs: float, inner: int) -> Flops:
    """Scores and values of ``pairs`` (query, key) pairs over ``inner`` channels."""
    return activations_product(4.0 * pairs * inner)


# ---- T5 (VIP5, TIGER) ------------------------------------------------------------------
_PER_ENCODER_TOKEN = ("EncDecAttention.k", "EncDecAttention.v")


def _linears(blocks: Iterable[nn.Module]) -> list[tuple[str, nn.Linear]]:
    return [(name, sub) for block in blocks for name, sub in block.named_modules()
            if isinstance(sub, nn.Linear)]


@dataclass(frozen=True)
class T5Plan:
    """Where a Hugging Face T5 encoder-decoder (adapters included) spends its matmuls:
    found once (walking the modules costs milliseconds per batch), then counted per
    batch in microseconds (whether a weight trains is read live)."""

    per_enc: Weights  # run on every encoder token (cross-attention k, v included)
    per_dec: Weights  # run on every decoder token, the LM head included
    enc_layers: int
    dec_layers: int
    inner: int  # heads x d_kv

    @classmethod
    def of(cls, t5: nn.Module) -> T5Plan | None:
        """The plan of ``t5``, or None when it is not shaped like a T5."""
        encoder, decoder = getattr(t5, "encoder", None), getattr(t5, "decoder", None)
        get_head, config = getattr(t5, "get_output_embeddings", None), getattr(t5, "config", None)
        if not (hasattr(encoder, "block") and hasattr(decoder, "block") and callable(get_head)
                and get_head() is not None and hasattr(config, "d_kv")):
            return None
        dec = _linears(decoder.block)
        per_enc = linear_weights(encoder.block) + linear_weights(
            m for name, m in dec if name.endswith(_PER_ENCODER_TOKEN))
        per_dec = linear_weights(m for name, m in dec if not name.endswith(_PER_ENCODER_TOKEN))
        return cls(per_enc, per_dec + matrix_weights(get_head()), len(encoder.block),
                   len(decoder.block), config.num_heads * config.d_kv)

    def flops(self, enc_lengths: torch.Tensor, dec_lengths: torch.Tensor) -> Flops:
        """Training FLOPs of examples of ``enc_lengths`` (B,) real encoder tokens and
        ``dec_lengths`` (B,) real decoder tokens."""
        enc, dec = enc_lengths.double(), dec_lengths.double()  # (B,), (B,)
        total = (cost_of(self.per_enc).times(float(enc.sum()))
                 + cost_of(self.per_dec).times(float(dec.sum())))
        pairs = (self.enc_layers * float((enc * enc).sum())
                 + self.dec_layers * float((dec * dec).sum() + (dec * enc).sum()))
        return total + attention(pairs, self.inner)


def t5_flops(t5: nn.Module, enc_lengths: torch.Tensor, dec_lengths: torch.Tensor) -> Flops | None:
    """:meth:`T5Plan.flops` of ``t5`` (planned anew: keep a :class:`T5Plan` to count
    many batches); None when ``t5`` is not shaped like a T5."""
    plan = T5Plan.of(t5)
    return plan.flops(enc_lengths, dec_lengths) if plan is not None else None


# ---- causal sequence encoders (SASRec, IISAN's user encoder) -----------------------------
def causal_encoder_flops(blocks: nn.ModuleList, hidden: int, lengths: torch.Tensor) -> Flops:
    """Training FLOPs of a stack of self-attention ``blocks`` over sequences of
    ``lengths`` (B,) real positions each."""
    n = lengths.double()  # (B,)
    return (dense(blocks).times(float(n.sum()))
            + attention(len(blocks) * float((n * n).sum()), hidden))
