"""What every IISAN-family model shares: a user encoder (SASRec's causal encoder,
:mod:`mfmrec.models.sequence`) over item vectors that come from item *content*, trained
with an in-batch softmax, scored over all items.

Subclasses differ only in :meth:`ContentSequenceModel.item_vectors` (cached side network,
side network over live frozen encoders, fine-tuned encoders, encoders with adapters).

Training samples are SASRec's ``sequence`` samples (one per user, every position
predicts the next item). A batch carries its *unique* items once: each item's vector is
computed once per step however often it occurs, and those unique items are the in-batch
candidates of the loss::

    logits[m, j] = <h_m, v_j> - log pop_j        (log-Q correction: popular items appear as
                                                  in-batch negatives more often)

where ``pop`` counts each item's occurrences in the training sequences. Items the same
user interacts with inside the batch (other than the target) are masked out, so a later
positive is never pushed down as a negative.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mfmrec.models.base import DIRECT, SEQUENTIAL, BatchCost, Recommender
from mfmrec.models.flops import Flops, activations_product
from mfmrec.models.sampling import model_device, pad_left
from mfmrec.models.sasrec import SASRecConfig, SequenceSamples
from mfmrec.models.sequence import CausalSequenceEncoder

PAD = -1  # padding / untrained position in the batch's position tensors
EDGE_NORM_EPS = 1e-5  # input and final norm of the user encoder: torch's default, as always


def log_popularity(train_sequences: list[np.ndarray], num_items: int) -> torch.Tensor:
    """(N,) log of each item's count in the training sequences (an unseen item counts 1)."""
    parts = [np.asarray(s, np.int64) for s in train_sequences]
    seen = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    counts = np.bincount(seen, minlength=num_items)[:num_items]
    return torch.from_numpy(np.log(np.maximum(counts, 1).astype(np.float64))).float()


def collate_unique(samples: list[dict]) -> dict:
    """SASRec sequence samples -> unique batch items and positions into them.

    ``items`` (U,) sorted unique item indices; ``input_pos``/``target_pos`` (B, L) index
    into ``items`` (``PAD`` for left padding / untrained positions).
    """
    n = max(len(s["input"]) for s in samples)
    inputs = pad_left([s["input"] for s in samples], n, PAD)  # (B, L)
    targets = pad_left([s["target"] for s in samples], n, PAD)  # (B, L); IGNORE == PAD
    in_mask, tg_mask = inputs != PAD, targets >= 0
    items, inverse = torch.unique(torch.cat([inputs[in_mask], targets[tg_mask]]),
                                  return_inverse=True)
    input_pos = torch.full_like(inputs, PAD)
    target_pos = torch.full_like(targets, PAD)
    k = int(in_mask.sum())
    input_pos[in_mask] = inverse[:k]
    target_pos[tg_mask] = inverse[k:]
    return {"items": items, "input_pos": input_pos, "target_pos": target_pos}


class ContentSequenceModel(Recommender):
    """Base of the IISAN family; subclasses implement :meth:`item_vectors`."""

    tasks = frozenset({SEQUENTIAL, DIRECT})

    def __init__(self, user_cfg: SASRecConfig, num_items: int, log_pop: torch.Tensor,
                 logq: bool = True, score_chunk: int = 512):
        super().__init__()
        self.user_cfg, self.num_items = user_cfg, num_items
        self.logq, self.score_chunk = logq, score_chunk
        self.user_encoder = CausalSequenceEncoder(  # SASRec's encoder over item vectors
            user_cfg.encoder_config(edge_norm_eps=EDGE_NORM_EPS))
        self.register_buffer("log_pop", log_pop.float(), persistent=False)  # (N,)
        self._table: torch.Tensor | None = None  # all item vectors, eval mode only

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        """(U,) item indices -> (U, hidden) item vectors (with gradients when training)."""
        raise NotImplementedError

    def item_vector_flops(self, n_items: int) -> Flops | None:
        """Training FLOPs of :meth:`item_vectors` on ``n_items`` items; None: not counted
        (encoders that run live)."""
        return None

    # ---- training ----------------------------------------------------------------------
    def train_data(self, dataset, split: str = "train", seed: int = 0) -> SequenceSamples:
        if split != "train":
            raise ValueError(f"{self.name} trains on the 'train' split only, got {split!r}")
        return SequenceSamples(dataset.train_sequences, self.num_items, self.user_cfg, seed)

    def collate(self, samples: list[dict]) -> dict:
        return collate_unique(samples)

    def training_loss(self, batch: dict) -> torch.Tensor:
        device = model_device(self)
        items = batch["items"].to(device)  # (U,)
        input_pos = batch["input_pos"].to(device)  # (B, L)
        target_pos = batch["target_pos"].to(device)  # (B, L)
        vectors = self.item_vectors(items)  # (U, d)
        valid = input_pos != PAD
        hidden = self.user_encoder(vectors[input_pos.clamp(min=0)], valid)  # (B, L, d)
        trained = target_pos != PAD  # (B, L)
        logits = hidden[trained] @ vectors.T  # (M, U)
        if self.logq:
            logits = logits - self.log_pop[items]
        target = target_pos[trained]  # (M,)
        own = self._user_items(input_pos, target_pos, len(items))  # (B, U)
        rows = trained.nonzero()[:, 0]  # (M,) the user of each trained position
        others = own[rows] & ~F.one_hot(target, len(items)).bool()  # (M, U)
        logits = logits.masked_fill(others, torch.finfo(logits.dtype).min)
        return F.cross_entropy(logits, target)

    def batch_cost(self, batch: dict) -> BatchCost:
        """Real tokens: history positions that hold an item; FLOPs (where the item
        vectors are counted): the user encoder, the item vectors of the batch's unique
        items and the in-batch logits."""
        input_pos = batch["input_pos"]  # (B, L), PAD on the left
        lengths = (input_pos != PAD).sum(1)  # (B,)
        cost = BatchCost(int(lengths.sum()), input_pos.numel())
        n_items = len(batch["items"])
        items = self.item_vector_flops(n_items)
        if items is None:
            return cost
        trained = float((batch["target_pos"] != PAD).sum())
        logits = activations_product(2.0 * trained * n_items * self.user_cfg.hidden)  # (M, U)
        flops = self.user_encoder.encoder_flops(lengths) + items + logits
        return BatchCost(cost.real_tokens, cost.padded_tokens, flops.training)

    @staticmethod
    def _user_items(input_pos: torch.Tensor, target_pos: torch.Tensor, n: int) -> torch.Tensor:
        """(B, U) bool: which of the batch's unique items each user touches."""
        own = torch.zeros(input_pos.shape[0], n + 1, dtype=torch.bool, device=input_pos.device)
        for pos in (input_pos, target_pos):
            own.scatter_(1, torch.where(pos == PAD, n, pos), True)  # column n soaks up padding
        return own[:, :n]

    # ---- scoring -----------------------------------------------------------------------
    def train(self, mode: bool = True):
        self._table = None  # item vectors change once training resumes
        return super().train(mode)

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        super().load_trainable_state_dict(state)
        self._table = None

    @torch.no_grad()
    def all_item_vectors(self) -> torch.Tensor:
        """(N, d) every item's vector, in chunks; kept while the model stays in eval mode."""
        if self._table is not None:
            return self._table
        device = model_device(self)
        parts = [self.item_vectors(torch.arange(s, min(s + self.score_chunk, self.num_items),
                                                device=device))
                 for s in range(0, self.num_items, self.score_chunk)]
        table = torch.cat(parts)  # (N, d)
        if not self.training:
            self._table = table
        return table

    def user_states(self, histories: list[torch.Tensor], table: torch.Tensor) -> torch.Tensor:
        """(B, d): the encoder state at each history's most recent item."""
        items = pad_left([h.cpu() for h in histories], self.user_cfg.max_len, PAD)  # (B, L)
        items = items.to(table.device)
        valid = items != PAD
        return self.user_encoder(table[items.clamp(min=0)], valid)[:, -1]

    @torch.no_grad()
    def score_items(self, users: torch.Tensor, histories: list[torch.Tensor],
                    prompt: str | None = None) -> torch.Tensor:
        table = self.all_item_vectors()  # (N, d)
        return self.user_states(histories, table) @ table.T  # (B, N)

    @torch.no_grad()
    def score_candidates(self, users, histories, candidates, prompt=None) -> torch.Tensor:
        table = self.all_item_vectors()
        state = self.user_states(histories, table)  # (B, d)
        return (table[candidates.to(table.device)] * state[:, None, :]).sum(-1)  # (B, C)
