"""Decoding many short sequences per example against one encoder pass (beam search's K
beams, candidate scoring's C candidates), used by :mod:`mfmrec.evaluation.decoding`.

Giving each row its own copy of its example's encoder states makes the decoder project
them to cross-attention keys/values once per row, and per step: that was most of the
decoding time. T5's decoder knows positions only through a relative bias of
(key - query), so the R rows of an example can instead be laid side by side in ONE
decoder sequence of R*T tokens under a block-diagonal causal mask: each block sees
exactly what it would see alone, and the encoder states are projected once per example
(and, across beam steps, kept in transformers' cross-attention cache). Encoder-decoders
with absolute positions keep one row per sequence.
"""

from __future__ import annotations

import contextlib

import torch
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput

PACKABLE = frozenset({"t5", "mt5"})  # model types whose decoder positions are relative


def encoder_hidden(encoder_outputs: BaseModelOutput | torch.Tensor) -> torch.Tensor:
    """(B, L, d) states from encoder outputs or from the tensor itself."""
    if isinstance(encoder_outputs, torch.Tensor):
        return encoder_outputs  # (B, L, d)
    return encoder_outputs.last_hidden_state


def expand_encoder(encoder_outputs: BaseModelOutput | torch.Tensor, attention_mask: torch.Tensor,
                   index: torch.Tensor) -> tuple[BaseModelOutput, torch.Tensor]:
    """Encoder states and mask of rows ``index`` (repeats allowed): one encoder pass, many uses."""
    return BaseModelOutput(last_hidden_state=encoder_hidden(encoder_outputs)[index]), \
        attention_mask[index]


def packable(model) -> bool:
    """Whether ``model``'s decoder rows may share a sequence (relative positions only)."""
    return getattr(getattr(model, "config", None), "model_type", None) in PACKABLE


def block_causal_mask(rows: int, length: int, dtype: torch.dtype,
                      device: torch.device) -> torch.Tensor:
    """(1, 1, R*T, R*T) additive mask: token i of block r sees tokens <= i of block r only."""
    block = torch.arange(rows, device=device).repeat_interleave(length)  # (R*T,)
    pos = torch.arange(length, device=device).repeat(rows)  # (R*T,)
    keep = (block[:, None] == block[None, :]) & (pos[:, None] >= pos[None, :])
    mask = torch.zeros(keep.shape, dtype=dtype, device=device)
    return mask.masked_fill(~keep, torch.finfo(dtype).min)[None, None]


@contextlib.contextmanager
def _project_only(model, positions: torch.Tensor | None):
    """Apply the output projection only at ``positions`` of the decoder states (beam search
    needs the last token of each prefix; the vocabulary projection is most of a small
    model's step). Yields whether the projection was restricted."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if positions is None or head is None:
        yield False
        return
    handle = head.register_forward_pre_hook(lambda _m, args: (args[0][:, positions],))
    try:
        yield True
    finally:
        handle.remove()


class RowDecoder:
    """Logits of R decoder sequences per example against the examples' encoder states.

    Packed (T5), the examples' cross-attention keys/values are projected by the first call
    and kept for the next ones (a beam step re-reads its prefixes against the same states).
    """

    def __init__(self, model, encoder_outputs: BaseModelOutput | torch.Tensor,
                 attention_mask: torch.Tensor):
        self.model, self.mask = model, attention_mask
        self.hidden = encoder_hidden(encoder_outputs)  # (B, L, d)
        self.packed = packable(model)
        self.cross = None  # transformers' DynamicCache of the cross-attention keys/values

    def _packed(self, ids: torch.Tensor) -> tuple[dict, torch.Tensor]:
        batch, rows, length = ids.shape
        hidden = self.hidden
        causal = block_causal_mask(rows, length, hidden.dtype, hidden.device)
        cache = EncoderDecoderCache(DynamicCache(), self.cross or DynamicCache())
        kwargs = dict(encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
                      attention_mask=self.mask, past_key_values=cache, use_cache=True,
                      decoder_input_ids=ids.reshape(batch, rows * length),
                      decoder_attention_mask=causal.expand(batch, -1, -1, -1))
        return kwargs, torch.arange(1, rows + 1, device=hidden.device) * length - 1  # (R,)

    def _alone(self, ids: torch.Tensor) -> tuple[dict, torch.Tensor]:
        batch, rows, length = ids.shape
        index = torch.arange(batch, device=self.hidden.device).repeat_interleave(rows)
        enc, mask = expand_encoder(self.hidden, self.mask, index)
        kwargs = dict(encoder_outputs=enc, attention_mask=mask, use_cache=False,
                      decoder_input_ids=ids.reshape(batch * rows, length))
        return kwargs, torch.tensor([length - 1], device=self.hidden.device)

    def __call__(self, decoder_input_ids: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """(B, R, T) ids -> (B, R, T, V) logits, or (B, R, V) of each last token."""
        batch, rows, length = decoder_input_ids.shape
        kwargs, last = (self._packed if self.packed else self._alone)(decoder_input_ids)
        with _project_only(self.model, last if last_only else None) as restricted:
            out = self.model(**kwargs)
        cache = getattr(out, "past_key_values", None)
        if self.packed and self.cross is None and isinstance(cache, EncoderDecoderCache):
            self.cross = cache.cross_attention_cache
        logits = out.logits[:, last] if last_only and not restricted else out.logits
        return logits.reshape(batch, rows, *([] if last_only else [length]), -1)


