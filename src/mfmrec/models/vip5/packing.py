"""Decoding many short sequences per example against one encoder pass (beam search's K
beams, candidate scoring's C candidates), used by :mod:`mfmrec.models.vip5.decoding`.

Giving each row its own copy of its example's encoder states makes the decoder project
them to cross-attention keys/values once per row, and per step: that was most of the
decoding time. T5's decoder knows positions only through a relative bias of
(key - query), so the R rows of an example can instead be laid side by side in ONE
decoder sequence of R*T tokens under a block-diagonal causal mask: each block sees
exactly what it would see alone, and the encoder states are projected once per example
(and, across beam steps, kept in transformers' cross-attention cache). Encoder-decoders
with absolute positions keep one row per sequence.

Exact scoring goes further (:func:`prefix_tree`): the candidates of an example share
prefixes (all share the decoder start), so each distinct prefix becomes one node of a tree
laid out as one sequence; :func:`tree_attention_mask` lets a node see only its ancestors,
at their tree distance. A hundred candidates of ~3 tokens become ~180 positions, not 500.

Training packs the same way (:func:`packed_outputs`): several short prompts share one
encoder row and their targets one decoder row, under block-diagonal masks built by the
same :func:`segment_mask` (T5 only, as above).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from dataclasses import dataclass

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


@functools.cache
def _forward_takes_cache(cls: type) -> bool:
    return "cache" in inspect.signature(cls.forward).parameters


def cache_kwarg(model) -> str:
    """The keyword of a model's key/value cache: transformers 5 renames
    ``past_key_values`` to ``cache`` (the old name still works, with a warning)."""
    return "cache" if _forward_takes_cache(type(model)) else "past_key_values"


@contextlib.contextmanager
def removed_after(handles: list):
    """Keep the hooks ``handles`` for the block; remove them however it ends."""
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def packable(model) -> bool:
    """Whether ``model``'s decoder rows may share a sequence (relative positions only)."""
    return getattr(getattr(model, "config", None), "model_type", None) in PACKABLE


def segment_mask(query_segment: torch.Tensor, key_segment: torch.Tensor, dtype: torch.dtype,
                 causal: bool = False) -> torch.Tensor:
    """(..., 1, Q, K) additive mask from segment ids (..., Q) and (..., K): a query sees the
    keys of its own segment only and, ``causal``, only those not after it.

    Segments are contiguous runs of equal ids, so inside one, "not after" is the linear
    order; T5's relative bias (key - query) is then that of the segment laid out alone.
    Any id works as a segment (padding may be one: it then sees only padding).
    """
    keep = query_segment[..., :, None] == key_segment[..., None, :]  # (..., Q, K)
    if causal:
        keep = keep & torch.ones(keep.shape[-2:], dtype=torch.bool,
                                 device=keep.device).tril()
    mask = torch.zeros(keep.shape, dtype=dtype, device=keep.device)
    return mask.masked_fill(~keep, torch.finfo(dtype).min).unsqueeze(-3)


def block_causal_mask(rows: int, length: int, dtype: torch.dtype,
                      device: torch.device) -> torch.Tensor:
    """(1, 1, R*T, R*T) additive mask: token i of block r sees tokens <= i of block r only."""
    block = torch.arange(rows, device=device).repeat_interleave(length)  # (R*T,)
    return segment_mask(block, block, dtype, causal=True)[None]


def additive_key_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, L) 0/1 padding mask -> (B, 1, 1, L) additive one (0 or the dtype's minimum).

    transformers takes a 4D mask as it is and, for T5, adds it to the position bias; a 2D
    mask is first expanded to a (B, 1, Q, L) boolean one and then selected from, which
    costs more than the attention itself for a small model.
    """
    keep = attention_mask[:, None, None, :].bool()  # (B, 1, 1, L)
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(
        ~keep, torch.finfo(dtype).min)


def _bias_layout(_module, _args, out: torch.Tensor) -> torch.Tensor | None:
    """(Q, K, H) bias looked up for T5's compute_bias, stored so that its (H, Q, K)
    permutation is contiguous; same values."""
    return out.permute(2, 0, 1).contiguous().permute(1, 2, 0) if out.dim() == 3 else None


@contextlib.contextmanager
def contiguous_position_bias(model):
    """Give T5's relative position bias a contiguous (1, H, Q, K) layout during the block.

    T5 permutes a (Q, K, H) lookup to (1, H, Q, K); adding the (B, 1, 1, L) mask to that
    strided view makes a strided (B, H, Q, K) sum, which SDPA's path then copies. Laid out
    contiguously, the sum is written once: the encoder runs ~1.5x faster, same values.
    """
    tables = [m.relative_attention_bias for m in model.modules()
              if getattr(m, "has_relative_attention_bias", False)]
    with removed_after([t.register_forward_hook(_bias_layout) for t in tables]):
        yield


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
        self.additive: torch.Tensor | None = None  # (B, 1, 1, L) encoder mask, made on use

    def _shared(self, decoder_input_ids: torch.Tensor, decoder_mask: torch.Tensor) -> dict:
        """Arguments of a packed call: the examples' encoder states (their keys/values once
        the first call projected them) and mask (as :func:`additive_key_mask`)."""
        if self.additive is None:
            self.additive = additive_key_mask(self.mask, self.hidden.dtype)
        cache = EncoderDecoderCache(DynamicCache(), self.cross or DynamicCache())
        return {"encoder_outputs": BaseModelOutput(last_hidden_state=self.hidden),
                "attention_mask": self.additive, cache_kwarg(self.model): cache,
                "use_cache": True, "decoder_input_ids": decoder_input_ids,
                "decoder_attention_mask": decoder_mask}

    def _packed(self, ids: torch.Tensor) -> tuple[dict, torch.Tensor]:
        batch, rows, length = ids.shape
        hidden = self.hidden
        causal = block_causal_mask(rows, length, hidden.dtype, hidden.device)
        kwargs = self._shared(ids.reshape(batch, rows * length), causal.expand(batch, -1, -1, -1))
        return kwargs, torch.arange(1, rows + 1, device=hidden.device) * length - 1  # (R,)

    def _alone(self, ids: torch.Tensor) -> tuple[dict, torch.Tensor]:
        batch, rows, length = ids.shape
        index = torch.arange(batch, device=self.hidden.device).repeat_interleave(rows)
        enc, mask = expand_encoder(self.hidden, self.mask, index)
        kwargs = dict(encoder_outputs=enc, attention_mask=mask, use_cache=False,
                      decoder_input_ids=ids.reshape(batch * rows, length))
        return kwargs, torch.tensor([length - 1], device=self.hidden.device)

    def _run(self, kwargs: dict):
        with contiguous_position_bias(self.model):
            out = self.model(**kwargs)
        cache = out.get("cache")  # transformers 5's name (past_key_values warns)
        if cache is None:
            cache = out.get("past_key_values")
        if self.packed and self.cross is None and isinstance(cache, EncoderDecoderCache):
            self.cross = cache.cross_attention_cache
        return out

    def __call__(self, decoder_input_ids: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """(B, R, T) ids -> (B, R, T, V) logits, or (B, R, V) of each last token."""
        batch, rows, length = decoder_input_ids.shape
        kwargs, last = (self._packed if self.packed else self._alone)(decoder_input_ids)
        with _project_only(self.model, last if last_only else None) as restricted:
            out = self._run(kwargs)
        logits = out.logits[:, last] if last_only and not restricted else out.logits
        return logits.reshape(batch, rows, *([] if last_only else [length]), -1)

    def tree_states(self, tree: PrefixTree) -> torch.Tensor:
        """(B, N) prefix-tree nodes -> (B, N, d) decoder states as the LM head receives them.

        The nodes of an example are one decoder sequence; :func:`tree_attention_mask` makes
        each node see its ancestors at their tree distance, so a node's state equals that of
        its prefix decoded alone. The LM head is skipped (its input is captured): the
        caller projects the states to the vocabulary in slices.
        """
        captured: list[torch.Tensor] = []

        def capture(_module, args):
            captured.append(args[0])
            return (args[0][:, :0],)  # project nothing

        handle = self.model.get_output_embeddings().register_forward_pre_hook(capture)
        try:
            self._run(self._shared(tree.ids, tree_attention_mask(self.model, tree)))
        finally:
            handle.remove()
        return captured[0]  # (B, N, d)


# ---- packed training rows: several prompts per row, each seeing only itself ------------------
def packed_outputs(model, embeds: torch.Tensor, batch: dict):
    """Teacher-forced outputs (loss, logits) of rows that each hold several samples.

    ``batch`` is :func:`mfmrec.models.vip5.prompts.collate.pack`'s: ``segments`` (R, L) and
    ``target_segments`` (R, T) name the sample of every encoder and decoder token (-1 on
    padding), ``decoder_input_ids`` (R, T) are each sample's target shifted right behind
    its own decoder start. Encoder and decoder attend within their sample, cross-attention
    only to their sample's encoder tokens (transformers passes 4D masks through as they
    are), so every token's state, hence each sample's loss, is that of the sample alone;
    the loss is the mean over all target tokens, as for a plain batch.
    """
    enc_seg, dec_seg = batch["segments"], batch["target_segments"]  # (R, L), (R, T)
    dtype = embeds.dtype
    with contiguous_position_bias(model):
        enc = model.get_encoder()(inputs_embeds=embeds,  # (R, L, d)
                                  attention_mask=segment_mask(enc_seg, enc_seg, dtype))
        return model(encoder_outputs=BaseModelOutput(last_hidden_state=enc.last_hidden_state),
                     attention_mask=segment_mask(dec_seg, enc_seg, dtype),  # (R, 1, T, L)
                     decoder_input_ids=batch["decoder_input_ids"],
                     decoder_attention_mask=segment_mask(dec_seg, dec_seg, dtype, causal=True),
                     labels=batch["labels"])


# ---- prefix trees: each distinct prefix of an example's rows decoded once -------------------
@dataclass
class PrefixTree:
    """The distinct decoder-input prefixes of the R rows of each example, as tree nodes.

    Nodes are numbered per example in order of depth (node 0 is the decoder start), so an
    ancestor always comes before its descendants; examples with fewer nodes are padded
    with nodes that see only themselves.
    """

    ids: torch.Tensor  # (B, N) the token each node adds (pad after an example's nodes)
    depth: torch.Tensor  # (B, N) its position in its rows (0: the decoder start)
    ancestor: torch.Tensor  # (B, N, N) bool: key node k is query node q or an ancestor of it
    node: torch.Tensor  # (B, R, T) the node of each row's prefix up to t; 0 where not valid


def prefix_tree(ids: torch.Tensor, valid: torch.Tensor, pad: int = 0) -> PrefixTree:
    """Merge the rows (B, R, T) of each example into a tree of their distinct prefixes.

    ``valid`` (B, R, T) marks the positions to keep; it must be a prefix of each row
    (True then False). Rows that share a prefix share its nodes.
    """
    batch, rows, length = ids.shape
    device = ids.device
    example = torch.arange(batch, device=device)[:, None].expand(batch, rows)  # (B, R)
    node = torch.zeros_like(ids)
    vocab = int(ids.max()) + 1
    seen = torch.zeros(batch, dtype=torch.long, device=device)  # nodes numbered so far
    for t in range(length):
        keep = valid[:, :, t]  # (B, R)
        if not bool(keep.any()):
            break
        # a node is (example, parent node, token): one integer key per kept row
        parent = node[:, :, t - 1] if t else torch.zeros_like(node[:, :, 0])  # (B, R)
        keys = (example * (rows * length) + parent) * vocab + ids[:, :, t]  # (B, R)
        uniq, inverse = torch.unique(keys[keep], return_inverse=True)  # sorted by example
        owner = torch.div(uniq, rows * length * vocab, rounding_mode="floor")  # (U,)
        counts = torch.bincount(owner, minlength=batch)  # (B,) new nodes per example
        first = counts.cumsum(0) - counts  # (B,) where each example starts in ``uniq``
        local = torch.arange(len(uniq), device=device) - first[owner] + seen[owner]
        node[:, :, t][keep] = local[inverse]
        seen += counts
    size = int(seen.max())
    b_idx = example[..., None].expand_as(ids)[valid]
    tree_ids = torch.full((batch, size), pad, dtype=ids.dtype, device=device)
    tree_ids[b_idx, node[valid]] = ids[valid]
    depth = torch.zeros(batch, size, dtype=torch.long, device=device)
    depth[b_idx, node[valid]] = torch.arange(length, device=device).expand_as(ids)[valid]
    return PrefixTree(tree_ids, depth, _ancestors(node, valid, size), node)


def _ancestors(node: torch.Tensor, valid: torch.Tensor, size: int) -> torch.Tensor:
    """(B, N, N) bool: every node sees itself and the nodes of its row's earlier positions."""
    batch, rows, length = node.shape
    pair = valid[..., :, None] & valid[..., None, :]  # (B, R, T, T)
    pair &= torch.ones(length, length, dtype=torch.bool, device=node.device).tril()
    b_idx = torch.arange(batch, device=node.device)[:, None, None, None].expand_as(pair)
    query = node[..., :, None].expand_as(pair)
    key = node[..., None, :].expand_as(pair)
    out = torch.eye(size, dtype=torch.bool, device=node.device).repeat(batch, 1, 1)
    out[b_idx[pair], query[pair], key[pair]] = True
    return out


def tree_attention_mask(model, tree: PrefixTree) -> torch.Tensor:
    """(B, H, N, N) additive decoder mask that turns T5's linear positions into tree ones.

    T5 adds its relative position bias for the linear positions (key - query) and then this
    mask, so an ancestor gets bias(depth difference) - bias(linear offset) + that bias:
    exactly the bias it would get in its own row. Other nodes get the dtype's minimum.
    """
    attn = model.get_decoder().block[0].layer[0].SelfAttention
    batch, size = tree.ids.shape
    device = tree.ids.device
    linear = attn.compute_bias(size, size, device=device)[0]  # (H, N, N)
    steps = -torch.arange(int(tree.depth.max()) + 1, device=device)  # key - query <= 0
    bucket = attn._relative_position_bucket(
        steps, bidirectional=not attn.is_decoder, num_buckets=attn.relative_attention_num_buckets,
        max_distance=attn.relative_attention_max_distance)
    by_step = attn.relative_attention_bias(bucket).T  # (H, D) bias of a key d steps back
    b, q, k = tree.ancestor.nonzero(as_tuple=True)  # (P,) each: the pairs that may attend
    mask = torch.full((batch, linear.shape[0], size, size), torch.finfo(linear.dtype).min,
                      dtype=linear.dtype, device=device)  # (B, H, N, N)
    # advanced indices around a slice: the selection is (P, H)
    mask[b, :, q, k] = (by_step[:, tree.depth[b, q] - tree.depth[b, k]] - linear[:, q, k]).T
    return mask
