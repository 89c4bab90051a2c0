"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

Item embedding into the shared causal encoder (:mod:`mfmrec.models.sequence`: learned
positional embedding, a stack of causal self-attention blocks), and the last hidden state
dotted with every item embedding as the full-ranking score. Layer norm sits after each
residual (RecBole's layout, ``norm_first: false``) or before each sublayer with a final
norm (the paper's code, ``norm_first: true``).

Training samples (``samples``), built from ``dataset.train_sequences`` only:
  * ``prefix`` (default, RecBole): every prefix ``s[:t]`` of a training sequence is one
    sample whose single target is ``s[t]``;
  * ``sequence`` (the paper): one sample per user, input ``s[:-1]`` and the shifted
    target ``s[1:]``, every position trained; only the last ``max_len + 1`` items of a
    long sequence are used, as in the original code.

Loss (``loss``): ``ce`` = softmax cross-entropy over all items (default); ``bce`` = the
paper's binary cross-entropy with one sampled negative per trained position, drawn from
items the user never interacted with in training, seeded by (seed, epoch, index).

Items keep their internal indices outside this module; inside, row 0 of the item table
is padding and item ``i`` lives at row ``i + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mfmrec.config import check
from mfmrec.models.base import DIRECT, SEQUENTIAL, BatchCost, Recommender
from mfmrec.models.flops import cost_of
from mfmrec.models.registry import register
from mfmrec.models.sampling import (
    EpochSamples,
    interacted_sets,
    model_device,
    pad_left,
    sample_negative,
)
from mfmrec.models.sequence import (
    CausalEncoderMixin,
    SequenceEncoderConfig,
    check_encoder_fields,
)

PAD = 0
IGNORE = -1  # target of an untrained (padding or context-only) position


@dataclass
class SASRecConfig:
    """SASRec hyper-parameters (defaults: RecBole's, with the paper's 0.2 dropout)."""

    hidden: int = 64  # embedding and hidden size
    layers: int = 2  # self-attention blocks
    heads: int = 1  # attention heads; must divide hidden
    inner: int = 256  # feed-forward size inside a block
    max_len: int = 50  # most recent items the model reads
    hidden_dropout: float = 0.2  # on embeddings and sublayer outputs
    attn_dropout: float = 0.2  # on attention probabilities
    loss: str = "ce"  # ce (all items) | bce (one sampled negative per position)
    samples: str = "prefix"  # prefix (RecBole) | sequence (the paper)
    norm_first: bool = False  # false: post-LN as RecBole; true: pre-LN as the paper
    init_std: float = 0.02  # normal init of embeddings and linear weights
    norm_eps: float = 1e-12  # layer-norm epsilon (RecBole's)

    def __post_init__(self) -> None:
        check_encoder_fields(self, "model")
        check(self.loss in ("ce", "bce"), "model.loss", f"expected ce or bce, got {self.loss!r}")
        check(self.samples in ("prefix", "sequence"), "model.samples",
              f"expected prefix or sequence, got {self.samples!r}")
        check(self.init_std > 0, "model.init_std", "must be > 0")
        check(self.norm_eps > 0, "model.norm_eps", "must be > 0")

    def encoder_config(self, **changes) -> SequenceEncoderConfig:
        """The causal encoder's part of these settings (``changes`` override fields)."""
        fields = {"hidden": self.hidden, "layers": self.layers, "heads": self.heads,
                  "inner": self.inner, "max_len": self.max_len,
                  "hidden_dropout": self.hidden_dropout, "attn_dropout": self.attn_dropout,
                  "norm_first": self.norm_first, "norm_eps": self.norm_eps,
                  "edge_norm_eps": self.norm_eps}
        return SequenceEncoderConfig(**{**fields, **changes})


class SequenceSamples(EpochSamples):
    """(input items, per-position target, per-position negative) from training sequences."""

    def __init__(self, sequences: list[np.ndarray], num_items: int, cfg: SASRecConfig,
                 seed: int):
        super().__init__(seed)
        self.sequences = [np.asarray(s, np.int64) for s in sequences]
        self.seen = interacted_sets(self.sequences)
        self.num_items, self.max_len = num_items, cfg.max_len
        self.negatives = cfg.loss == "bce"
        users = [u for u, s in enumerate(self.sequences) if len(s) >= 2]
        if cfg.samples == "sequence":
            self.index = [(u, len(self.sequences[u]) - 1) for u in users]
        else:
            self.index = [(u, t) for u in users for t in range(1, len(self.sequences[u]))]
        self.all_positions = cfg.samples == "sequence"

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, idx: int) -> dict:
        user, end = self.index[idx]
        seq = self.sequences[user]
        start = max(0, end - self.max_len)
        inputs = seq[start:end]  # (L,)
        targets = seq[start + 1: end + 1].copy()
        if not self.all_positions:
            targets[:-1] = IGNORE
        sample = {"input": inputs, "target": targets}
        if self.negatives:
            rng = self.rng(idx)
            sample["negative"] = np.asarray(
                [sample_negative(rng, self.num_items, self.seen[user]) if t >= 0 else IGNORE
                 for t in targets], np.int64)
        return sample


class SASRec(CausalEncoderMixin, Recommender):
    """Item table + the shared causal encoder (its parts sit on the model: stable names)."""

    name = "sasrec"
    tasks = frozenset({SEQUENTIAL, DIRECT})

    def __init__(self, cfg: SASRecConfig, num_items: int):
        super().__init__()
        self.cfg, self.num_items = cfg, num_items
        self.item_emb = nn.Embedding(num_items + 1, cfg.hidden, padding_idx=PAD)
        self.build_encoder(cfg.encoder_config())
        self.apply(self._init)
        with torch.no_grad():
            self.item_emb.weight[PAD].zero_()

    def _init(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=self.cfg.init_std)
        if isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)

    # ---- encoder -----------------------------------------------------------------------
    def encode(self, items: torch.Tensor) -> torch.Tensor:
        """(B, L) padded item rows -> (B, L, d) causal hidden states."""
        return self.encode_sequence(self.item_emb(items), items != PAD)

    # ---- training ----------------------------------------------------------------------
    def train_data(self, dataset, split: str = "train", seed: int = 0) -> SequenceSamples:
        if split != "train":
            raise ValueError(f"SASRec trains on the 'train' split only, got {split!r}")
        return SequenceSamples(dataset.train_sequences, self.num_items, self.cfg, seed)

    def collate(self, samples: list[dict]) -> dict:
        n = max(len(s["input"]) for s in samples)
        batch = {"input": pad_left([s["input"] for s in samples], n, PAD, shift=1),
                 "target": pad_left([s["target"] for s in samples], n, IGNORE)}
        if "negative" in samples[0]:
            batch["negative"] = pad_left([s["negative"] for s in samples], n, IGNORE)
        return batch  # (B, L) each; targets and negatives are 0-based, IGNORE elsewhere

    def training_loss(self, batch: dict) -> torch.Tensor:
        hidden = self.encode(batch["input"])  # (B, L, d)
        trained = batch["target"] != IGNORE  # (B, L)
        h = hidden[trained]  # (M, d)
        target = batch["target"][trained]  # (M,)
        if self.cfg.loss == "ce":
            logits = h @ self.item_emb.weight[1:].T  # (M, N)
            return F.cross_entropy(logits, target)
        pos = (h * self.item_emb(target + 1)).sum(-1)  # (M,)
        neg = (h * self.item_emb(batch["negative"][trained] + 1)).sum(-1)
        return (F.softplus(-pos) + F.softplus(neg)).mean()

    def batch_cost(self, batch: dict) -> BatchCost:
        """Real tokens: history positions that hold an item; FLOPs: the encoder on them
        and, with ``loss: ce``, the logits over all items of each trained position."""
        items = batch["input"]  # (B, L), PAD on the left
        lengths = (items != PAD).sum(1)  # (B,)
        flops = self.encoder_flops(lengths)
        if self.cfg.loss == "ce":
            trained = int((batch["target"] != IGNORE).sum())
            table = ((2.0 * self.cfg.hidden * self.num_items, self.item_emb.weight),)
            flops += cost_of(table).times(trained)
        return BatchCost(int(lengths.sum()), items.numel(), flops.training)

    # ---- scoring -----------------------------------------------------------------------
    def user_states(self, histories: list[torch.Tensor]) -> torch.Tensor:
        """(B, d): the hidden state at each history's most recent item."""
        items = pad_left(histories, self.cfg.max_len, PAD, shift=1)  # (B, max_len)
        return self.encode(items.to(model_device(self)))[:, -1]

    def score_items(self, users: torch.Tensor, histories: list[torch.Tensor],
                    prompt: str | None = None) -> torch.Tensor:
        return self.user_states(histories) @ self.item_emb.weight[1:].T  # (B, N)

    def score_candidates(self, users, histories, candidates, prompt=None) -> torch.Tensor:
        state = self.user_states(histories)  # (B, d)
        cand = self.item_emb(candidates.to(state.device) + 1)  # (B, C, d)
        return (cand * state[:, None, :]).sum(-1)  # (B, C)


@register("sasrec", SASRecConfig, "SASRec: causal self-attention over item sequences")
def build_sasrec(config: SASRecConfig, dataset) -> SASRec:
    return SASRec(config, dataset.num_items)
