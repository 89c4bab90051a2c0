"""Exact full-catalogue scoring for generative recommenders, level by level over the item trie.

A generative recommender names an item by generating its target ids (``<a_12> <b_7> <c_3>
<d_0> </s>``); beam search finds the likeliest few, but only an exhaustive search ranks
the whole catalogue exactly, as a matrix-factorisation model does. Scoring every item by
its own teacher-forced pass decodes each item's full sequence: 12,000 items x 5 tokens.
The items share their prefixes, though -- one root, <= 256 first codes, a few thousand
pairs -- and a token's log-probability depends only on its prefix. So the trie is walked
LEVEL BY LEVEL: at depth d every distinct prefix (a trie node with children) is decoded
once per example, its next-token log-softmax is read at its children's tokens only, and a
child's cumulative score is its parent's plus that log-prob. An item's score is the
cumulative score at its leaf: the exact log-likelihood of its whole sequence, eos included.

Decoding is incremental: a node at depth d is ONE new decoder token whose self-attention
reads its d ancestors' keys/values, kept from the levels above (each node's own entry,
gathered per chunk), so each node costs one token, not d + 1 (re-decoding whole prefixes
measured ~1.6x slower per node at depth 3 on the ``tiny`` preset, and grows with d). The
cross-attention keys/values of an example's encoder states are projected once, by its
root, and reused by every later chunk without a copy: with T5 the chunk's rows of an
example attend to them as one block of queries (a matrix product per head); other models
get them as a stride-0 view per row. The nodes of a level go in chunks of ``max_rows``
(example, node) rows per call; logits are formed and read a slice at a time (log-sum-exp
over V and a gather of the children), so no (rows, V) tensor exceeds ``max_rows`` rows.
Kept per example: one key/value entry per decoded node and decoder layer.

* :class:`CatalogueTree` -- the trie's internal nodes as per-depth tensors, built once per
  trie (:meth:`CatalogueTree.from_trie` remembers it), reused for every user batch;
* :func:`catalogue_scores` -- (B, N) exact log-likelihoods of every item;
* :func:`topk_agreement` -- the share of rows whose top-k sets agree (beam vs exact).
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput

from mfmrec.models.vip5.decoding import HEAD_ROWS, ItemTrie
from mfmrec.models.vip5.packing import (
    additive_key_mask,
    cache_kwarg,
    encoder_hidden,
    packable,
    removed_after,
)

NEG_INF = float("-inf")
KV = list[tuple[torch.Tensor, torch.Tensor]]  # per decoder layer: keys, values


@dataclass(frozen=True)
class Level:
    """The internal nodes (those with children) at one depth d of a trie, and their edges.

    Nodes are numbered per depth in breadth-first order with sorted children, so the
    children of node i are the contiguous edges ``child_ptr[i]:child_ptr[i + 1]``.
    """

    prefix: torch.Tensor  # (P_d, d) token ids from the root to each node
    ancestor: torch.Tensor  # (P_d, d) index of its ancestor at each depth e < d (depth e's nodes)
    child_ptr: list[int]  # P_d + 1 offsets into the edges
    child_parent: torch.Tensor  # (E_d,) the parent node of each edge
    child_token: torch.Tensor  # (E_d,) the token the edge adds
    child_node: torch.Tensor  # (E_d,) the child among depth d + 1's nodes; -1 if it is a leaf
    child_value: torch.Tensor  # (E_d,) the item whose sequence ends at the child; -1 if none

    @property
    def size(self) -> int:
        """P_d, the number of nodes."""
        return len(self.child_ptr) - 1

    def to(self, device: torch.device) -> Level:
        move = {k: v.to(device) if isinstance(v, torch.Tensor) else v
                for k, v in self.__dict__.items()}
        return Level(**move)


_TREES: weakref.WeakKeyDictionary[ItemTrie, CatalogueTree] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class CatalogueTree:
    """A trie as tensors, one :class:`Level` per depth that has internal nodes."""

    levels: list[Level]
    num_items: int  # N: the largest value + 1

    @classmethod
    def from_trie(cls, trie: ItemTrie) -> CatalogueTree:
        """The tree of ``trie``, built on first use and remembered while the trie lives
        (a weak memo: walking 30,000 Python nodes per user batch would be wasted)."""
        tree = _TREES.get(trie)
        if tree is None:
            tree = _TREES[trie] = cls.build(trie)
        return tree

    @classmethod
    def build(cls, trie: ItemTrie) -> CatalogueTree:
        levels, top = [], -1
        nodes, prefixes, ancestors = [trie.root], [()], [()]
        while nodes:
            level, nodes, prefixes, ancestors = _level(nodes, prefixes, ancestors)
            levels.append(level)
            top = max([top, *level.child_value.tolist()])
        return cls(levels, top + 1)


def _level(nodes: list, prefixes: list[tuple], ancestors: list[tuple]):
    """One depth's :class:`Level` and the next depth's internal nodes (walking the trie)."""
    tokens, parents, child_node, child_value, ptr = [], [], [], [], [0]
    below, below_prefix, below_anc = [], [], []
    for i, node in enumerate(nodes):
        for tok in sorted(node.children):
            child = node.children[tok]
            tokens.append(tok)
            parents.append(i)
            child_value.append(-1 if child.value is None else child.value)
            child_node.append(len(below) if child.children else -1)
            if child.children:
                below.append(child)
                below_prefix.append((*prefixes[i], tok))
                below_anc.append((*ancestors[i], i))
        ptr.append(len(tokens))
    depth = len(prefixes[0])

    def table(rows: list[tuple]) -> torch.Tensor:  # (P_d, d), also for d = 0
        return torch.tensor(rows, dtype=torch.long).reshape(len(rows), depth)

    edges = (torch.tensor(x, dtype=torch.long) for x in (parents, tokens, child_node, child_value))
    level = Level(table(prefixes), table(ancestors), ptr, *edges)
    return level, below, below_prefix, below_anc


# ---- decoding ------------------------------------------------------------------------------
def _held(kv: KV) -> DynamicCache:
    """A cache holding ``kv`` as given: ``update`` would concatenate, i.e. copy, a view."""
    cache = DynamicCache()
    for keys, values in kv:
        layer = DynamicLayer()
        layer.lazy_initialization(keys, values)
        layer.keys, layer.values = keys, values
        cache.layers.append(layer)
    return cache


@contextlib.contextmanager
def _query_blocks(model, groups: int):
    """T5: run each cross-attention sublayer on the rows of each example as ONE sequence of
    queries against that example's (H, L, dk) keys/values -- a matrix product per head
    instead of a vector product per row over a broadcast copy. T5's cross-attention has no
    position bias, so each query sees the same keys with the same scores either way."""

    def to_blocks(_module, args):  # (G*R, 1, d) -> (G, R, d)
        return (args[0].reshape(groups, -1, args[0].shape[-1]), *args[1:])

    def to_rows(_module, _args, out):  # (G, R, d) -> (G*R, 1, d)
        return (out[0].reshape(-1, 1, out[0].shape[-1]), *out[1:])

    layers = [block.layer[1] for block in model.get_decoder().block]
    with removed_after([h for layer in layers for h in (
            layer.register_forward_pre_hook(to_blocks), layer.register_forward_hook(to_rows))]):
        yield


@contextlib.contextmanager
def _head_input(model, sink: list[torch.Tensor]):
    """T5: keep what the LM head receives and project nothing; the caller projects it a
    slice at a time, so a chunk's whole (rows, V) logits are never allocated at once."""

    def capture(_module, args):
        sink.append(args[0])
        return (args[0][:, :0],)

    handle = model.get_output_embeddings().register_forward_pre_hook(capture)
    try:
        yield
    finally:
        handle.remove()


def _per_row(t: torch.Tensor, rows: int) -> torch.Tensor:
    """(G, ...) -> (G*rows, ...), each example's entry repeated for its rows: a view when
    G == 1 (other models) or rows == 1 (the roots), so nothing is copied."""
    return t[:, None].expand(-1, rows, *t.shape[1:]).reshape(-1, *t.shape[1:])


@dataclass
class _Group:
    """G examples scored together: their encoder side, shared by all their chunks."""

    model: torch.nn.Module
    hidden: torch.Tensor  # (G, L, d)
    additive: torch.Tensor  # (G, 1, 1, L) encoder mask
    cache_kwarg: str
    packed: bool  # T5: query blocks for cross-attention, the LM head applied by us
    cross: KV | None = None  # per layer (G, H, L, dk), projected by the roots' call

    def step(self, ids: torch.Tensor, past: KV) -> tuple[torch.Tensor, KV]:
        """(G, R) new tokens after G*R prefixes whose keys/values are ``past``
        (G*R, H, d, dk) -> (G, R, .) what :meth:`project` maps to next-token logits, and
        the rows' own (G, R, H, dk) keys/values. Other than T5, G is 1 and the rows share
        views of its encoder side."""
        groups, rows = ids.shape
        blocks = self.cross is not None and self.packed
        hidden, additive, cross = self.hidden, self.additive, DynamicCache()
        if not blocks:  # one row per sequence
            hidden, additive = _per_row(hidden, rows), _per_row(additive, rows)
        if self.cross is not None:
            cross = _held(self.cross if blocks else [
                (_per_row(k, rows), _per_row(v, rows)) for k, v in self.cross])
        cache = EncoderDecoderCache(_held(past) if past else DynamicCache(), cross)
        sink: list[torch.Tensor] = []
        with contextlib.ExitStack() as hooks:
            if blocks:
                hooks.enter_context(_query_blocks(self.model, groups))
            if self.packed:
                hooks.enter_context(_head_input(self.model, sink))
            out = self.model(encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
                             attention_mask=additive, decoder_input_ids=ids.reshape(-1, 1),
                             use_cache=True, **{self.cache_kwarg: cache})
        if self.cross is None:
            self.cross = [(lay.keys, lay.values) for lay in cache.cross_attention_cache.layers]
        own = [tuple(t[:, :, -1].reshape(groups, rows, *t.shape[1:2], t.shape[-1])
                     for t in (lay.keys, lay.values)) for lay in cache.self_attention_cache.layers]
        head_in = sink[0] if sink else out.logits.float()  # (G*R, 1, .)
        return head_in[:, -1].reshape(groups, rows, -1), own

    def project(self, head_in: torch.Tensor) -> torch.Tensor:
        """(G, S, .) -> (G, S, V) float32 logits (T5 projects here; others already did)."""
        return self.model.get_output_embeddings()(head_in).float() if self.packed else head_in


def _past(kept: list[KV], ancestor: torch.Tensor) -> KV:
    """Per layer (G*R, H, d, dk): each row's ancestors' keys/values, root first."""
    out = []
    for layer in range(len(kept[0]) if kept else 0):
        pair = [torch.stack([kept[e][layer][j][:, ancestor[:, e]] for e in range(len(kept))], 3)
                for j in (0, 1)]  # (G, R, H, d, dk) each
        out.append(tuple(t.reshape(-1, *t.shape[2:]) for t in pair))
    return out


def _group_scores(group: _Group, levels: list[Level], start: int, max_rows: int,
                  out: torch.Tensor) -> None:
    """Fill ``out`` (G, N) with the item scores, one trie depth after another."""
    groups, device = out.shape[0], out.device
    chunk = max(1, max_rows // groups)  # nodes per call: G * chunk rows at most
    head_rows = max(1, min(max_rows, HEAD_ROWS) // groups)  # nodes per slice of logits
    kept: list[KV] = []  # per depth, per layer: (G, P_d, H, dk) keys/values of its nodes
    cum = torch.zeros(groups, 1, device=device)  # (G, P_d) log-likelihood of each prefix
    for depth, level in enumerate(levels):
        last = depth + 1 == len(levels)  # the deepest level is nobody's ancestor
        below = torch.full((groups, 0 if last else levels[depth + 1].size), NEG_INF,
                           device=device)  # (G, P_{d+1})
        chunks: list[KV] = []
        for lo in range(0, level.size, chunk):
            hi = min(lo + chunk, level.size)
            ids = level.prefix[lo:hi, -1] if depth else torch.full(
                (1,), start, dtype=torch.long, device=device)  # (R,) each node's last token
            head_in, own = group.step(ids.expand(groups, -1), _past(kept, level.ancestor[lo:hi]))
            for a in range(lo, hi, head_rows):  # (G, S, V) logits at a time
                b = min(a + head_rows, hi)
                logits = group.project(head_in[:, a - lo:b - lo])
                _score_children(level, a, b, logits, cum, below, out)
            if not last:
                chunks.append(own)
        if chunks:
            kept.append([tuple(torch.cat([c[layer][j] for c in chunks], 1) for j in (0, 1))
                         for layer in range(len(chunks[0]))])
        cum = below


def _logsumexp_(logits: torch.Tensor) -> torch.Tensor:
    """(..., V) -> (...) logsumexp, overwriting ``logits``: no second (rows, V) tensor is
    allocated (fresh large buffers cost page faults; the logits are scratch by now)."""
    top = logits.amax(-1, keepdim=True)  # (..., 1)
    return logits.sub_(top).exp_().sum(-1).log_().add_(top[..., 0])


def _score_children(level: Level, lo: int, hi: int, logits: torch.Tensor, cum: torch.Tensor,
                    below: torch.Tensor, out: torch.Tensor) -> None:
    """Score the edges of nodes lo..hi: parent's score + log P(token | parent's prefix)."""
    edges = slice(level.child_ptr[lo], level.child_ptr[hi])
    parent, token = level.child_parent[edges], level.child_token[edges]  # (E,)
    picked = logits[:, parent - lo, token]  # (G, E)
    norm = _logsumexp_(logits)  # (G, R) the softmax normaliser over the whole vocabulary
    score = cum[:, parent] + picked - norm[:, parent - lo]  # (G, E)
    node, value = level.child_node[edges], level.child_value[edges]
    below[:, node[node >= 0]] = score[:, node >= 0]
    out[:, value[value >= 0]] = score[:, value >= 0]


@torch.no_grad()
def catalogue_scores(model, encoder_outputs: BaseModelOutput | torch.Tensor,
                     attention_mask: torch.Tensor, trie: ItemTrie | CatalogueTree, *,
                     decoder_start_token_id: int, max_rows: int = 1024) -> torch.Tensor:
    """(B, N) float32: the exact log-likelihood of every item's target ids, per example.

    ``trie``'s values are item indices (N = the largest + 1; items absent get -inf). Any HF
    encoder-decoder that takes an :class:`EncoderDecoderCache` works; the model should be
    in eval mode. ``max_rows`` bounds the (example, prefix) rows decoded, and the rows of
    logits held, per call. T5 scores ``max_rows // widest level`` examples together (at
    least one); other models one example at a time.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1, got {max_rows}")
    tree = trie if isinstance(trie, CatalogueTree) else CatalogueTree.from_trie(trie)
    hidden = encoder_hidden(encoder_outputs)  # (B, L, d)
    additive = additive_key_mask(attention_mask, hidden.dtype)  # (B, 1, 1, L)
    levels = [level.to(hidden.device) for level in tree.levels]
    out = torch.full((hidden.shape[0], tree.num_items), NEG_INF, device=hidden.device)
    step = max(1, max_rows // max(lv.size for lv in levels)) if packable(model) else 1
    for lo in range(0, hidden.shape[0], step):
        group = _Group(model, hidden[lo:lo + step], additive[lo:lo + step], cache_kwarg(model),
                       packable(model))
        _group_scores(group, levels, decoder_start_token_id, max_rows, out[lo:lo + step])
    return out


def topk_agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Share of rows whose k items are the same set in ``a`` and ``b`` (both (B, k))."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.shape[0] == 0:
        return float("nan")
    same = (a.sort(-1).values == b.sort(-1).values).all(-1)  # (B,)
    return same.float().mean().item()
