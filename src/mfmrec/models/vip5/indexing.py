"""How a generative recommender names items: numbers (the paper) or semantic IDs.

``model.indexing``:

* ``number`` (default, reproduces VIP5/P5): an item is its prompt number
  (``dataset.numbers``, random or P5's sequential numbering), spelled by the tokenizer's
  own pieces;
* ``semantic:NAME``: an item is the code tuple stored in ``DATA/ids/NAME.parquet`` (built by
  ``mfmrec ids build``), written as one word of new tokens, one token per (level, code):
  ``<a_12><b_7><c_3><d_0>`` (the last level is the disambiguation code). Similar items
  share prefixes, so the model can generalise a taste instead of memorising numbers.

New tokens (codes, and TIGER's hashed user tokens ``<u_H>``) are added to the tokenizer in
a fixed order, so every build gives them the same ids. Their embedding rows are new too:
with full tuning the table is resized (every row trains); in adapter modes the pretrained
table stays frozen and bit-identical while the new rows live in a separate trainable table
(:class:`ExtendedEmbedding`, :class:`ExtendedHead`), injected into the transformers T5
through its own ``set_input_embeddings`` / ``set_output_embeddings``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tokenizers import AddedToken
from torch import nn

from mfmrec.errors import ConfigError

LEVEL_LETTERS = "abcdefghij"
NUMBER, SEMANTIC = "number", "semantic"
CODE_INITS = ("random", "features")  # model.code_init


@dataclass(frozen=True)
class Indexing:
    """A parsed ``model.indexing`` value."""

    kind: str  # number | semantic
    ids_name: str | None = None  # the semantic ID set under DATA/ids/

    @classmethod
    def parse(cls, spec: str) -> Indexing:
        if spec == NUMBER:
            return cls(NUMBER)
        kind, _, name = spec.partition(":")
        if kind != SEMANTIC or not name.strip():
            raise ConfigError(f"config field model.indexing: expected 'number' or "
                              f"'semantic:NAME' (an ID set from `mfmrec ids build`), got {spec!r}")
        return cls(SEMANTIC, name.strip())


def code_token(level: int, code: int) -> str:
    return f"<{LEVEL_LETTERS[level]}_{int(code)}>"


def code_vocabulary(codes: list[tuple[int, ...]]) -> list[str]:
    """Every (level, code) token the tuples can use, level by level, codes ascending."""
    depth = len(codes[0])
    if depth > len(LEVEL_LETTERS):
        raise ConfigError(f"semantic IDs with {depth} codes per item: at most "
                          f"{len(LEVEL_LETTERS)} are supported")
    tokens = []
    for level in range(depth):
        top = max(c[level] for c in codes)
        tokens += [code_token(level, c) for c in range(top + 1)]
    return tokens


def code_names(codes: list[tuple[int, ...]]) -> list[str]:
    """Per item, its code word: ``<a_12><b_7><c_3><d_0>``."""
    return ["".join(code_token(lv, c) for lv, c in enumerate(tup)) for tup in codes]


def user_vocabulary(buckets: int) -> list[str]:
    return [f"<u_{h}>" for h in range(buckets)]


def add_tokens(tokenizer, tokens: list[str]) -> int:
    """Add the missing ``tokens`` (in order) as non-special, unnormalised tokens.

    Non-special, so that they keep their own whole-word ids in prompts; returns how many
    were new (a backbone exported after training with them already has them all).
    """
    vocab = tokenizer.get_vocab()
    missing = [t for t in tokens if t not in vocab]
    if missing:
        tokenizer.add_tokens([AddedToken(t, normalized=False, special=False)
                              for t in missing])
    return len(missing)


class ExtendedEmbedding(nn.Module):
    """A frozen token table plus trainable rows for tokens ``>= start``."""

    def __init__(self, base: nn.Embedding, start: int, extra: nn.Embedding):
        super().__init__()
        self.base, self.start, self.extra = base, int(start), extra

    @property
    def weight(self) -> torch.Tensor:
        """The effective (start + new, d) table (a copy: for reading, not for tying)."""
        return torch.cat([self.base.weight[: self.start], self.extra.weight])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        new = ids >= self.start  # (...)
        out = self.base(ids.clamp(max=self.start - 1))  # (..., d)
        if bool(new.any()):
            extra = self.extra((ids - self.start).clamp(min=0))  # (..., d)
            out = torch.where(new[..., None], extra, out)
        return out


class ExtendedHead(nn.Module):
    """The LM head over ``start`` old tokens followed by the new rows' logits."""

    def __init__(self, base: nn.Linear, start: int, extra_weight: nn.Parameter):
        super().__init__()
        self.base, self.start = base, int(start)
        self.extra_weight = extra_weight  # (n_new, d); the embedding's own when tied

    @property
    def weight(self) -> torch.Tensor:
        return torch.cat([self.base.weight[: self.start], self.extra_weight])

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        old = self.base(states)[..., : self.start]  # (..., start)
        new = nn.functional.linear(states, self.extra_weight)  # (..., n_new)
        return torch.cat([old, new], dim=-1)


def extend_vocabulary(backbone: nn.Module, start: int, size: int, *, frozen_base: bool,
                      seed: int) -> None:
    """Give ``backbone`` embeddings for token ids ``start..size-1`` (new tokens).

    ``frozen_base``: keep the existing table untouched and add a separate trainable table
    (adapter modes); otherwise resize the transformers way (full tuning). New rows are drawn
    from N(0, std of the existing rows) under ``seed``.
    """
    if size <= start:
        return
    shared = backbone.get_input_embeddings()
    std = float(shared.weight.detach().std())
    if not frozen_base:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            backbone.resize_token_embeddings(size, mean_resizing=False)
            with torch.no_grad():
                backbone.get_input_embeddings().weight[start:].normal_(0.0, std)
        return
    generator = torch.Generator().manual_seed(seed)
    extra = nn.Embedding(size - start, shared.embedding_dim)
    with torch.no_grad():
        extra.weight.copy_(torch.randn(extra.weight.shape, generator=generator) * std)
    head = backbone.get_output_embeddings()
    tied = head is not None and head.weight is shared.weight
    extra_weight = extra.weight if tied else nn.Parameter(
        torch.randn(extra.weight.shape, generator=generator) * float(head.weight.std()))
    backbone.set_input_embeddings(ExtendedEmbedding(shared, start, extra))
    backbone.set_output_embeddings(ExtendedHead(head, start, extra_weight))
    backbone.config.vocab_size = size


def projected_code_rows(vectors: torch.Tensor, d_model: int, std: float) -> torch.Tensor:
    """(L, K, D) code vectors -> (L, K, d_model) embedding rows.

    Each level is centred over its used codes; one basis, the top principal directions of
    level 0's centred vectors, projects every level (so a level's rows keep their relative
    scale within the level); each level is then scaled to an RMS of ``std`` per element.
    Unused codes (zero vectors) give zero rows.
    """
    used = vectors.abs().sum(-1) > 0  # (L, K)
    centred = torch.zeros_like(vectors)
    for level in range(len(vectors)):
        v = vectors[level][used[level]]  # (K', D)
        centred[level][used[level]] = v - v.mean(0) if len(v) > 1 else v
    _, _, vt = torch.linalg.svd(centred[0], full_matrices=False)  # vt (r, D)
    basis = vt[:d_model].T  # (D, r), r <= d_model
    rows = torch.zeros(*vectors.shape[:2], d_model)  # (L, K, d)
    rows[..., : basis.shape[1]] = centred @ basis
    for level in range(len(rows)):
        rms = rows[level][used[level]].pow(2).mean().sqrt()
        if float(rms) > 0:
            rows[level] *= std / rms
    return rows


def init_code_rows(backbone: nn.Module, tokenizer, start: int, vectors: torch.Tensor) -> int:
    """Start the new code tokens' embedding rows (ids >= ``start``) from their (L, K, D)
    vectors (:func:`projected_code_rows`, at the std of the pretrained rows), in the input
    table and, when untied, in the output head; returns how many rows were set."""
    embed, head = backbone.get_input_embeddings(), backbone.get_output_embeddings()
    table = embed.extra.weight if isinstance(embed, ExtendedEmbedding) else embed.weight
    offset = start if isinstance(embed, ExtendedEmbedding) else 0
    std = float(embed.weight[:start].detach().std())
    rows = projected_code_rows(vectors, backbone.config.d_model, std)  # (L, K, d)
    vocab = tokenizer.get_vocab()
    pairs = [(vocab[code_token(lv, c)], lv, c) for lv in range(rows.shape[0])
             for c in range(rows.shape[1])
             if vocab.get(code_token(lv, c), -1) >= start and rows[lv, c].any()]
    if not pairs:
        return 0
    token = torch.tensor([p[0] for p in pairs])  # (P,)
    value = rows[[p[1] for p in pairs], [p[2] for p in pairs]]  # (P, d)
    with torch.no_grad():
        table[token - offset] = value.to(table.dtype)
        out = head.extra_weight if isinstance(head, ExtendedHead) else head.weight
        if out is not table:  # an untied head gets the same start
            out[token - offset] = value.to(out.dtype)
    return len(pairs)


def is_new_token_parameter(name: str) -> bool:
    """Whether a backbone parameter name is a new-token table (trains in every mode)."""
    return name.endswith("extra.weight") or name.endswith("extra_weight")
