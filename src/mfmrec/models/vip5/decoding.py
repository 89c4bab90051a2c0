"""Decoding for generative recommenders: trie-constrained beam search and exact scoring.

A generative recommender (P5, VIP5) names an item by generating its number as text. Left
free, beam search also emits strings that are no item at all, or the same item twice;
the papers' code parses the strings and silently drops what does not parse, so a user
may get fewer than k recommendations. Here decoding is *constrained* by a prefix trie of
the valid items' target token ids: every returned hypothesis is a real item, and beam
hypotheses are distinct token paths, hence distinct items.

* :class:`ItemTrie` -- the trie; one for the whole catalogue, or one per example
  (a user's own candidates).
* :func:`constrained_beam_search` -- beam search over a trie for any HF encoder-decoder
  given its encoder outputs; hypotheses are ranked by total log-likelihood.
* :class:`TrieLogitsProcessor` / :func:`trie_prefix_allowed_tokens_fn` -- the same
  constraint for ``model.generate(...)``.
* :func:`teacher_forced_scores` -- the exact log-likelihood of each candidate.
* :func:`unconstrained_beam_search` -- the papers' method, for comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import LogitsProcessor, LogitsProcessorList
from transformers.modeling_outputs import BaseModelOutput

from mfmrec.models.vip5.packing import (  # noqa: F401  (re-exported: part of this API)
    PrefixTree,
    RowDecoder,
    block_causal_mask,
    encoder_hidden,
    expand_encoder,
    packable,
    prefix_tree,
    tree_attention_mask,
)

NEG_INF = float("-inf")


class _Node:
    __slots__ = ("children", "value", "_allowed")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.value: int | None = None
        self._allowed: torch.Tensor | None = None

    def allowed(self) -> torch.Tensor:
        # cached: the same nodes are visited by every beam at every step
        if self._allowed is None:
            self._allowed = torch.tensor(sorted(self.children), dtype=torch.long)
        return self._allowed


class ItemTrie:
    """A prefix trie over token-id sequences, each standing for one value (an item index).

    Every sequence should end with the end-of-sequence token so that no item is a prefix
    of another; two values with the same sequence are an error.
    """

    def __init__(self, sequences: Sequence[Sequence[int]], values: Sequence[int] | None = None):
        values = list(range(len(sequences))) if values is None else list(values)
        if len(values) != len(sequences):
            raise ValueError(f"{len(sequences)} sequences but {len(values)} values")
        self.root = _Node()
        self.max_depth = 0
        for seq, value in zip(sequences, values, strict=True):
            self._insert([int(t) for t in seq], int(value))
        self.size = len(values)

    def _insert(self, seq: list[int], value: int) -> None:
        if not seq:
            raise ValueError(f"empty token sequence for value {value}")
        node = self.root
        for tok in seq:
            node = node.children.setdefault(tok, _Node())
        if node.value is not None:
            raise ValueError(f"values {node.value} and {value} share the token sequence {seq}")
        node.value = value
        self.max_depth = max(self.max_depth, len(seq))

    def __len__(self) -> int:
        return self.size

    def node(self, prefix: Sequence[int]) -> _Node | None:
        """The node reached by ``prefix``, or ``None`` when it leaves the trie."""
        node = self.root
        for tok in prefix:
            node = node.children.get(int(tok))
            if node is None:
                return None
        return node

    def allowed(self, prefix: Sequence[int]) -> list[int]:
        """Tokens that may follow ``prefix`` (empty after a complete sequence or off-trie)."""
        node = self.node(prefix)
        return [] if node is None else sorted(node.children)

    def value(self, seq: Sequence[int]) -> int | None:
        """The value of a complete sequence, or ``None``."""
        node = self.node(seq)
        return None if node is None else node.value


def _trie_for(tries: ItemTrie | Sequence[ItemTrie], example: int) -> ItemTrie:
    return tries if isinstance(tries, ItemTrie) else tries[example]


# ---- constraint for transformers' generate ------------------------------------------------
def trie_prefix_allowed_tokens_fn(
    tries: ItemTrie | Sequence[ItemTrie], eos_token_id: int, start_len: int = 1,
) -> Callable[[int, torch.Tensor], list[int]]:
    """A ``prefix_allowed_tokens_fn`` for ``generate``.

    ``generate`` passes the decoder sequence *including* the decoder start token, so the
    first ``start_len`` tokens are skipped. Off-trie prefixes (only reachable by beams
    padded with -1e9 scores) may only end, so they never produce a valid-looking item.
    """

    def fn(batch_id: int, sent: torch.Tensor) -> list[int]:
        return _trie_for(tries, batch_id).allowed(sent[start_len:].tolist()) or [eos_token_id]

    return fn


class TrieLogitsProcessor(LogitsProcessor):
    """Masks every token that would leave the trie (per example with a list of tries)."""

    def __init__(self, tries: ItemTrie | Sequence[ItemTrie], num_beams: int,
                 eos_token_id: int, start_len: int = 1):
        self.fn = trie_prefix_allowed_tokens_fn(tries, eos_token_id, start_len)
        self.num_beams = num_beams

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        mask = torch.full_like(scores, NEG_INF)  # (B*K, V)
        for row in range(input_ids.shape[0]):
            mask[row, self.fn(row // self.num_beams, input_ids[row])] = 0.0
        return scores + mask


# ---- our own constrained beam search ---------------------------------------------------------
@dataclass
class BeamResult:
    """Per example, the finished hypotheses best first: trie values and log-likelihoods."""

    values: list[list[int]]
    scores: list[list[float]]


def _extensions(nodes: list, finished: list[bool], pad: int, device) -> tuple[torch.Tensor, ...]:
    """(rows, tokens) of every allowed next token: a running beam's trie children, a
    finished beam's pad; dead beams (None) have none."""
    rows, toks = [], []
    for r, node in enumerate(nodes):
        if finished[r]:
            rows.append(r)
            toks.append(torch.tensor([pad]))
        elif node is not None:
            rows.append(r)
            toks.append(node.allowed())
    if not rows:
        return torch.zeros(0, dtype=torch.long, device=device), \
            torch.zeros(0, dtype=torch.long, device=device)
    counts = torch.tensor([len(t) for t in toks])
    return (torch.tensor(rows).repeat_interleave(counts).to(device),
            torch.cat(toks).to(device))


def _best_extensions(logits: torch.Tensor, nodes: list, finished: list[bool],
                     scores: torch.Tensor, width: int, k: int, pad: int):
    """The k best allowed extensions of each example's ``width`` beams, best first.

    Only allowed tokens are scored (a log-softmax read at a few entries per row, not a
    (B, W*V) matrix to sort): a running beam's child at score + log-prob, a finished beam's
    pad at no cost. Returns (scores (B, K), parent beam (B, K), token (B, K)); slots with
    no extension left get score -inf.
    """
    n, device = logits.shape[0], logits.device
    batch = n // width
    r_idx, t_idx = _extensions(nodes, finished, pad, device)  # (E,), (E,)
    done = torch.tensor(finished, dtype=torch.bool, device=device)[r_idx]
    norm = logits.logsumexp(-1)  # (N,) the softmax normaliser
    gain = torch.where(done, 0.0, logits[r_idx, t_idx] - norm[r_idx])
    value = scores.reshape(-1)[r_idx] + gain  # (E,)
    example = r_idx // width
    counts = torch.bincount(example, minlength=batch)  # (B,)
    start = counts.cumsum(0) - counts
    width_e = max(k, int(counts.max()) if len(counts) else 0)
    dense = torch.full((batch, width_e), NEG_INF, device=device)  # (B, M)
    dense[example, torch.arange(len(r_idx), device=device) - start[example]] = value
    best, pos = dense.topk(k, dim=1)  # (B, K)
    flat = (start[:, None] + pos).clamp(max=max(len(r_idx) - 1, 0))
    live = best > NEG_INF
    zero = torch.zeros_like(pos)
    parent = torch.where(live, r_idx[flat] % width, zero) if len(r_idx) else zero
    token = torch.where(live, t_idx[flat], torch.full_like(pos, pad)) if len(r_idx) else zero
    return best, parent, token


@torch.no_grad()
def constrained_beam_search(
    model, encoder_outputs: BaseModelOutput | torch.Tensor, attention_mask: torch.Tensor,
    tries: ItemTrie | Sequence[ItemTrie], num_beams: int, *,
    decoder_start_token_id: int, eos_token_id: int, pad_token_id: int,
) -> BeamResult:
    """Beam search whose hypotheses are paths of the trie(s), scored by summed log-prob.

    Finished hypotheses stay in the beam (extended by pad at zero cost) and compete with
    running ones, so the result is the ``num_beams`` best complete items the search found,
    best first. The decoder re-reads its short prefix each step (item numbers are a few
    tokens), so no cache has to follow the beams; the K beams of an example are decoded
    together (:class:`RowDecoder`).
    """
    batch = attention_mask.shape[0]
    k = num_beams
    device = attention_mask.device
    seqs = torch.full((batch * k, 1), decoder_start_token_id, dtype=torch.long, device=device)
    scores = torch.full((batch, k), NEG_INF, device=device)
    scores[:, 0] = 0.0  # one live beam per example at the start: no duplicate paths
    nodes = [_trie_for(tries, b).root for b in range(batch) for _ in range(k)]
    finished = torch.zeros(batch * k, dtype=torch.bool, device=device)
    depth = max(_trie_for(tries, b).max_depth for b in range(batch))
    decoder = RowDecoder(model, encoder_outputs, attention_mask)
    for step in range(depth):
        width = 1 if step == 0 else k  # at the start the K beams of an example are one root
        beams = torch.arange(k, device=device)[:width]
        logits = decoder(seqs.reshape(batch, k, -1)[:, :width], last_only=True)
        rows = (torch.arange(batch, device=device)[:, None] * k + beams).reshape(-1).tolist()
        scores, beam, token = _best_extensions(
            logits.reshape(batch * width, -1).float(), [nodes[r] for r in rows],
            finished[rows].tolist(), scores[:, :width], width, k, pad_token_id)  # (B, K) each
        parent = (beam + torch.arange(batch, device=device)[:, None] * k).reshape(-1)
        token = token.reshape(-1)
        seqs = torch.cat([seqs[parent], token[:, None]], dim=1)
        alive = scores.reshape(-1) > NEG_INF
        was_finished = finished[parent]
        finished = alive & (was_finished | (token == eos_token_id))
        nodes = _advance(nodes, parent.tolist(), token.tolist(), alive.tolist(),
                         was_finished.tolist())
        if bool((finished | ~alive).all()):
            break
    return _collect(nodes, finished, scores, batch, k)


def _advance(nodes, parents, tokens, alive, was_finished) -> list:
    """Trie node of each new beam; finished beams keep their leaf, dead ones get None."""
    out = []
    for p, t, a, f in zip(parents, tokens, alive, was_finished, strict=True):
        out.append(None if not a else nodes[p] if f else nodes[p].children.get(t))
    return out


def _collect(nodes, finished, scores, batch: int, k: int) -> BeamResult:
    values, out_scores = [], []
    flat_scores = scores.reshape(-1).tolist()
    for b in range(batch):
        vals, scs = [], []
        for r in range(b * k, (b + 1) * k):  # topk keeps beams sorted best first
            if finished[r] and nodes[r] is not None and nodes[r].value is not None:
                vals.append(nodes[r].value)
                scs.append(flat_scores[r])
        values.append(vals)
        out_scores.append(scs)
    return BeamResult(values, out_scores)


# ---- exact scoring ------------------------------------------------------------------------
HEAD_ROWS = 256  # decoder states projected to the vocabulary at a time (tree scoring)


@torch.no_grad()
def teacher_forced_scores(
    model, encoder_outputs: BaseModelOutput | torch.Tensor, attention_mask: torch.Tensor,
    cand_token_ids: torch.Tensor, chunk_rows: int | None = None,
) -> torch.Tensor:
    """(B, C) log-likelihood of each candidate's target ids under teacher forcing.

    ``cand_token_ids`` is (B, C, T), padded with -100 (each row ends with eos). The encoder
    ran once; the C candidates of an example are decoded together. With T5 they are merged
    into a tree of their distinct prefixes (:func:`prefix_tree`): each prefix is decoded,
    and its full-vocabulary log-softmax computed, once. Other models get one
    :class:`RowDecoder` row per candidate. ``chunk_rows`` bounds how many (example,
    candidate) rows one decoder pass takes: whole examples (at least one) for trees, at
    least one candidate per example otherwise.
    """
    batch, n_cand, _ = cand_token_ids.shape
    dec_in = model.prepare_decoder_input_ids_from_labels(
        cand_token_ids.reshape(batch * n_cand, -1)).reshape(cand_token_ids.shape)  # (B, C, T)
    if packable(model) and model.get_output_embeddings() is not None:
        step = max(1, chunk_rows // n_cand) if chunk_rows else batch  # examples per pass
        hidden = encoder_hidden(encoder_outputs)  # (B, L, d)
        return torch.cat([_tree_scores(
            model, RowDecoder(model, hidden[lo:lo + step], attention_mask[lo:lo + step]),
            dec_in[lo:lo + step], cand_token_ids[lo:lo + step])
            for lo in range(0, batch, step)])
    step = max(1, chunk_rows // batch) if chunk_rows else n_cand  # candidates per pass
    decoder = RowDecoder(model, encoder_outputs, attention_mask)
    return torch.cat([_row_scores(decoder, dec_in[:, lo:lo + step],
                                  cand_token_ids[:, lo:lo + step])
                      for lo in range(0, n_cand, step)], dim=1)


def _row_scores(decoder: RowDecoder, dec_in: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
    """(B, c) scores from (B, c, T, V) logits of every row and position."""
    logits = decoder(dec_in).float()  # (B, c, T, V)
    valid = lab != -100
    tok_logp = logits.log_softmax(-1).gather(-1, lab.clamp(min=0)[..., None])[..., 0]
    return (tok_logp * valid).sum(-1)


def _tree_scores(model, decoder: RowDecoder, dec_in: torch.Tensor,
                 lab: torch.Tensor) -> torch.Tensor:
    """(B, c) scores: each distinct prefix decoded once, projected to the vocabulary once."""
    valid = lab != -100  # (B, c, T)
    tree = prefix_tree(dec_in, valid, pad=model.config.pad_token_id or 0)
    states = decoder.tree_states(tree)  # (B, N, d)
    rows = tree.node + torch.arange(lab.shape[0], device=lab.device)[:, None, None] \
        * states.shape[1]  # (B, c, T) rows of the flattened states
    out = torch.zeros(lab.shape, device=lab.device)  # (B, c, T)
    out[valid] = _read_log_probs(model.get_output_embeddings(),
                                 states.reshape(-1, states.shape[-1]), rows[valid], lab[valid])
    return out.sum(-1)


def _read_log_probs(head: torch.nn.Module, states: torch.Tensor, rows: torch.Tensor,
                    tokens: torch.Tensor) -> torch.Tensor:
    """(P,) log P(tokens[p] | states[rows[p]]) under the full-vocabulary softmax.

    The (S, V) log-softmax is made HEAD_ROWS states at a time (a slice stays in cache and
    the whole matrix is never held); each slice answers the pairs whose row it holds.
    """
    order = rows.argsort()
    rows, tokens = rows[order], tokens[order]  # (P,) grouped by slice
    starts = torch.arange(0, len(states) + HEAD_ROWS, HEAD_ROWS, device=rows.device)
    bounds = torch.searchsorted(rows, starts).tolist()
    out = torch.empty(len(rows), device=rows.device)
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=False)):
        if hi > lo:
            base = i * HEAD_ROWS
            logp = head(states[base:base + HEAD_ROWS]).float().log_softmax(-1)  # (S', V)
            out[lo:hi] = logp[rows[lo:hi] - base, tokens[lo:hi]]
    return torch.empty_like(out).index_put_((order,), out)  # back to the callers' order


# ---- the papers' method -----------------------------------------------------------------------
@dataclass
class ParsedBeams:
    """Unconstrained beams parsed to values; what was dropped is counted, not hidden."""

    values: list[list[int]]
    invalid: int  # strings that parsed to no value
    duplicates: int  # values generated more than once for the same example


@torch.no_grad()
def unconstrained_beam_search(
    model, encoder_outputs: BaseModelOutput | torch.Tensor, attention_mask: torch.Tensor,
    num_beams: int, decode: Callable[[torch.Tensor], list[str]], parse: Callable[[str], int | None],
    max_new_tokens: int, logits_processor: LogitsProcessorList | None = None,
) -> ParsedBeams:
    """P5/VIP5's decoding: plain beam search, strings parsed, unparseable ones dropped."""
    # a fresh wrapper: generate expands encoder_outputs *in place* to one row per beam
    enc = BaseModelOutput(last_hidden_state=encoder_hidden(encoder_outputs))
    out = model.generate(
        encoder_outputs=enc, attention_mask=attention_mask, num_beams=num_beams,
        num_return_sequences=num_beams, max_new_tokens=max_new_tokens, do_sample=False,
        early_stopping=True, logits_processor=logits_processor,
    )  # (B*K, T)
    texts = decode(out)
    values, invalid, dups = [], 0, 0
    for b in range(attention_mask.shape[0]):
        seen: list[int] = []
        for text in texts[b * num_beams:(b + 1) * num_beams]:
            value = parse(text)
            if value is None:
                invalid += 1
            elif value in seen:
                dups += 1
            else:
                seen.append(value)
        values.append(seen)
    return ParsedBeams(values, invalid, dups)


def parse_number(text: str, value_of_number: dict[int, int]) -> int | None:
    """The value of a generated item number, or ``None`` if it names no item."""
    text = text.strip()
    if not text.isdigit():
        return None
    return value_of_number.get(int(text))
