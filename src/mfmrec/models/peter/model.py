"""PETER and PETER+ (Li, Zhang & Chen, ACL 2021: "Personalized Transformer for
Explainable Recommendation").

One small Transformer reads ``[user, item, (feature), <bos>, w_1 .. w_n]`` under PETER's
mask: text positions are causal, every position sees user and item, and the user
position also sees the item (the one change to a left-to-right mask). Three heads share
the hidden states:

* rating: an MLP on the user position (MSE);
* context: the item position predicts the explanation's bag of words (NLL per word);
* explanation: each text position predicts the next word (NLL), decoded greedily.

PETER+ adds the review's feature word after the item (the ground-truth feature of the
review being explained, as in the paper). The loss is ``text_weight * text +
context_weight * context + rating_weight * rating`` with the paper's 1.0 / 1.0 / 0.1.

The word vocabulary is rebuilt deterministically from the training reviews at build time
(explanations plus feature words, most frequent first, at most ``vocab_size``), so
checkpoints hold only tensors. The explanation text comes from the ``text_field`` column
of ``reviews.parquet``; reviews with an empty text do not train.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mfmrec.config import check
from mfmrec.errors import DataError
from mfmrec.models.base import EXPLANATION, Recommender
from mfmrec.models.peter.vocab import BOS_ID, EOS_ID, PAD_ID, Vocabulary, feature_token, tokenize
from mfmrec.models.registry import register
from mfmrec.models.sampling import EpochSamples, model_device

RATING = "rating"
TEXT_FIELDS = ("explanation", "summary", "text")


@dataclass
class PETERConfig:
    """PETER hyper-parameters (defaults: the paper's released code)."""

    hidden: int = 512  # embedding and hidden size (emsize)
    heads: int = 2
    ffn: int = 2048  # feed-forward size (nhid)
    layers: int = 2
    dropout: float = 0.2
    max_words: int = 15  # explanation words kept in training and generated at most
    vocab_size: int = 20_000  # including <pad> <bos> <eos> <unk>
    min_count: int = 1  # rarer training words become <unk>
    text_field: str = "explanation"  # reviews column to explain with
    lowercase: bool = False  # false keeps the references' case, so outputs score like them
    rating_weight: float = 0.1
    context_weight: float = 1.0
    text_weight: float = 1.0
    peter_mask: bool = True  # false: a plain left-to-right mask (the paper's ablation)

    def __post_init__(self) -> None:
        for name in ("hidden", "heads", "ffn", "layers", "max_words"):
            check(getattr(self, name) >= 1, f"model.{name}", "must be >= 1")
        check(self.hidden % self.heads == 0, "model.heads",
              f"must divide model.hidden={self.hidden}, got {self.heads}")
        check(0.0 <= self.dropout < 1.0, "model.dropout", "must be in [0, 1)")
        check(self.vocab_size > 4, "model.vocab_size", "must leave room beyond the 4 specials")
        check(self.min_count >= 1, "model.min_count", "must be >= 1")
        check(self.text_field in TEXT_FIELDS, "model.text_field",
              f"expected one of {', '.join(TEXT_FIELDS)}, got {self.text_field!r}")
        for name in ("rating_weight", "context_weight", "text_weight"):
            check(getattr(self, name) >= 0, f"model.{name}", "must be >= 0")


class ReviewSamples(EpochSamples):
    """One sample per review with a non-empty explanation; no randomness per sample."""

    def __init__(self, rows: dict, vocab: Vocabulary, max_words: int, seed: int):
        super().__init__(seed)
        keep = [i for i, toks in enumerate(rows["tokens"]) if toks]
        self.users = np.asarray(rows["user"], np.int64)[keep]
        self.items = np.asarray(rows["item"], np.int64)[keep]
        self.ratings = np.asarray(rows["rating"], np.float32)[keep]
        self.words = [vocab.encode(rows["tokens"][i][:max_words]) for i in keep]
        self.features = [vocab.id_of(rows["feature"][i]) for i in keep]

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, idx: int) -> dict:
        return {"user": int(self.users[idx]), "item": int(self.items[idx]),
                "rating": float(self.ratings[idx]), "words": self.words[idx],
                "feature": self.features[idx]}


def review_rows(dataset, split: str, text_field: str, lowercase: bool) -> dict:
    """Columns of one review split with the explanation tokenised and features normalised."""
    table = dataset.reviews_of(split)
    if table is None:
        raise DataError(f"{dataset.root}: no reviews.parquet; PETER needs reviews with "
                        f"explanations (import a dataset that has review text)")
    if text_field not in table.column_names:
        raise DataError(f"{dataset.root / 'reviews.parquet'}: no column {text_field!r}")
    return {"user": table.column("user").to_pylist(), "item": table.column("item").to_pylist(),
            "rating": [r if r is not None else 0.0 for r in table.column("rating").to_pylist()],
            "tokens": [tokenize(t, lowercase) for t in table.column(text_field).to_pylist()],
            "feature": [feature_token(f, lowercase)
                        for f in table.column("feature").to_pylist()]}


def build_vocabulary(rows: dict, cfg: PETERConfig, use_feature: bool) -> Vocabulary:
    texts = [toks[: cfg.max_words] for toks in rows["tokens"] if toks]
    if not texts:
        raise DataError(f"no training review has a non-empty {cfg.text_field!r}: "
                        "nothing for PETER to learn to explain")
    extra = rows["feature"] if use_feature else ()
    return Vocabulary.build(texts, extra, max_size=cfg.vocab_size, min_count=cfg.min_count)


def sinusoid(length: int, dim: int) -> torch.Tensor:
    """(length, dim) fixed sine/cosine positions (Vaswani et al.), as PETER uses."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(1e4) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


class PETER(Recommender):
    name = "peter"
    tasks = frozenset({EXPLANATION, RATING})
    use_feature = False

    def __init__(self, cfg: PETERConfig, num_users: int, num_items: int, vocab: Vocabulary):
        super().__init__()
        self.cfg, self.vocab = cfg, vocab
        self.src_len = 3 if self.use_feature else 2  # positions before <bos>
        d = cfg.hidden
        self.user_emb = nn.Embedding(num_users, d)
        self.item_emb = nn.Embedding(num_items, d)
        self.word_emb = nn.Embedding(len(vocab), d)
        layer = nn.TransformerEncoderLayer(d, cfg.heads, cfg.ffn, cfg.dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.to_word = nn.Linear(d, len(vocab))
        self.rating_head = nn.Sequential(nn.Linear(d, d), nn.Sigmoid(), nn.Linear(d, 1))
        self.drop = nn.Dropout(cfg.dropout)
        total = self.src_len + cfg.max_words + 1
        self.register_buffer("positions", sinusoid(total, d), persistent=False)  # (T, d)
        self.register_buffer("mask", self._mask(total, cfg.peter_mask), persistent=False)
        for weight in (self.user_emb.weight, self.item_emb.weight, self.word_emb.weight,
                       self.to_word.weight, self.rating_head[0].weight,
                       self.rating_head[2].weight):
            nn.init.uniform_(weight, -0.1, 0.1)
        for bias in (self.to_word.bias, self.rating_head[0].bias, self.rating_head[2].bias):
            nn.init.zeros_(bias)

    @staticmethod
    def _mask(total: int, peter: bool) -> torch.Tensor:
        """(T, T) bool, True = may not attend: causal, plus user->item under PETER's mask."""
        blocked = torch.ones(total, total, dtype=torch.bool).triu(1)
        if peter:
            blocked[0, 1] = False
        return blocked

    def encode(self, users, items, features, text) -> torch.Tensor:
        """(B,) users/items/features and (B, T) words -> (B, S + T, d) hidden states."""
        parts = [self.user_emb(users)[:, None], self.item_emb(items)[:, None]]
        if self.use_feature:
            parts.append(self.word_emb(features)[:, None])
        x = torch.cat(parts + [self.word_emb(text)], dim=1)  # (B, S + T, d)
        n = x.shape[1]
        x = self.drop(x * math.sqrt(self.cfg.hidden) + self.positions[:n])
        source = torch.zeros(len(text), self.src_len, dtype=torch.bool, device=text.device)
        pad = torch.cat([source, text == PAD_ID], dim=1)  # (B, S + T)
        return self.encoder(x, mask=self.mask[:n, :n], src_key_padding_mask=pad)

    # ---- training ----------------------------------------------------------------------
    def train_data(self, dataset, split: str = "train", seed: int = 0) -> ReviewSamples:
        rows = review_rows(dataset, split, self.cfg.text_field, self.cfg.lowercase)
        return ReviewSamples(rows, self.vocab, self.cfg.max_words, seed)

    def collate(self, samples: list[dict]) -> dict:
        n = max(len(s["words"]) for s in samples) + 2
        seq = torch.full((len(samples), n), PAD_ID, dtype=torch.long)
        for row, s in enumerate(samples):
            ids = [BOS_ID, *s["words"], EOS_ID]
            seq[row, : len(ids)] = torch.tensor(ids)
        col = {k: [s[k] for s in samples] for k in ("user", "item", "feature")}
        return {**{k: torch.tensor(v, dtype=torch.long) for k, v in col.items()},
                "rating": torch.tensor([s["rating"] for s in samples]),  # (B,)
                "seq": seq}  # (B, n): <bos> words <eos> <pad>...

    def training_loss(self, batch: dict) -> torch.Tensor:
        seq = batch["seq"]
        hidden = self.encode(batch["user"], batch["item"], batch["feature"], seq[:, :-1])
        target = seq[:, 1:]  # (B, T)
        logits = self.to_word(hidden[:, self.src_len:])  # (B, T, V)
        text = F.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=PAD_ID)
        context = F.log_softmax(self.to_word(hidden[:, 1]), dim=-1)  # (B, V)
        words = (target != PAD_ID) & (target != EOS_ID)  # the bag of explanation words
        ctx = -(context.gather(1, target) * words).sum() / words.sum().clamp(min=1)
        rating = F.mse_loss(self.rating_head(hidden[:, 0]).squeeze(-1), batch["rating"])
        cfg = self.cfg
        return cfg.text_weight * text + cfg.context_weight * ctx + cfg.rating_weight * rating

    # ---- inference ---------------------------------------------------------------------
    def _inputs(self, requests: list[dict]) -> tuple[torch.Tensor, ...]:
        device = model_device(self)
        users = torch.tensor([int(r["user"]) for r in requests], device=device)
        items = torch.tensor([int(r["item"]) for r in requests], device=device)
        lower = self.cfg.lowercase
        feats = torch.tensor([self.vocab.id_of(feature_token(r.get("feature"), lower))
                              for r in requests], device=device)
        return users, items, feats

    @torch.no_grad()
    def explain(self, requests: list[dict], prompt: str | None = None) -> list[str]:
        """Greedy decoding of at most ``max_words`` words per request."""
        if not requests:
            return []
        users, items, feats = self._inputs(requests)
        text = torch.full((len(requests), 1), BOS_ID, dtype=torch.long, device=users.device)
        done = torch.zeros(len(requests), dtype=torch.bool, device=users.device)
        for _ in range(self.cfg.max_words):
            hidden = self.encode(users, items, feats, text)
            word = self.to_word(hidden[:, -1]).argmax(-1)  # (B,)
            word = word.masked_fill(done, PAD_ID)  # finished rows only pad
            text = torch.cat([text, word[:, None]], dim=1)
            done |= word == EOS_ID
            if bool(done.all()):
                break
        return [self.vocab.decode(row[1:].tolist()) for row in text.cpu()]

    @torch.no_grad()
    def predict_rating(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(B,) predicted ratings; the user position sees only user and item."""
        device = model_device(self)
        users, items = users.to(device), items.to(device)
        bos = torch.full((len(users), 1), BOS_ID, dtype=torch.long, device=device)
        unk = torch.full((len(users),), self.vocab.id_of(None), device=device)
        hidden = self.encode(users, items, unk, bos)
        return self.rating_head(hidden[:, 0]).squeeze(-1)


class PETERPlus(PETER):
    name = "peter+"
    use_feature = True


def _build(cls: type[PETER], config: PETERConfig, dataset) -> PETER:
    rows = review_rows(dataset, "train", config.text_field, config.lowercase)
    if cls.use_feature and not any(rows["feature"]):
        raise DataError(f"{dataset.root / 'reviews.parquet'}: the 'feature' column is empty; "
                        "PETER+ needs a feature word per review (use model.name=peter)")
    vocab = build_vocabulary(rows, config, cls.use_feature)
    return cls(config, dataset.num_users, dataset.num_items, vocab)


@register("peter", PETERConfig, "PETER: personalized Transformer for explanation generation")
def build_peter(config: PETERConfig, dataset) -> PETER:
    return _build(PETER, config, dataset)


@register("peter+", PETERConfig, "PETER+: PETER with the review's feature word as input")
def build_peter_plus(config: PETERConfig, dataset) -> PETERPlus:
    return _build(PETERPlus, config, dataset)
