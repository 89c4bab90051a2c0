"""The one causal sequence encoder: SASRec's item encoder and IISAN's user encoder.

A sequence of item vectors, left-padded to ``L <= max_len`` positions, becomes one hidden
state per position::

    h = dropout(LayerNorm(x + pos_emb[max_len - L .. max_len - 1]))   # (B, L, d)
    h = block_k(h) for k = 1..layers                                  # causal attention
    out = final_norm(h)                                               # (B, L, d)

Positions are aligned to the right, so the most recent item always sits at the last
position whatever the padding, and ``out[:, -1]`` is the user state. A block is
self-attention then a feed-forward net, each with residual and layer norm: after the
residual (post-LN, RecBole's layout) or before the sublayer with a final norm (pre-LN,
the paper's code). Padding positions (``valid`` false) enter as zero vectors and are never
attended to; a padding query attends to itself only, so no attention row is empty and
a boolean mask stays NaN-free in any precision.

Two ways to hold it, with the same code and the same parameter names:

* :class:`CausalSequenceEncoder`, a module of its own (IISAN's ``user_encoder``);
* :class:`CausalEncoderMixin`, which registers the parts on the host model itself (SASRec,
  whose checkpoints name them ``pos_emb``, ``emb_norm``, ``blocks``, ``final_norm``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mfmrec.config import check
from mfmrec.models.flops import Flops, causal_encoder_flops


@dataclass
class SequenceEncoderConfig:
    """Shape, dropout and layer-norm layout of the causal encoder."""

    hidden: int = 64  # input, hidden and output width
    layers: int = 2  # self-attention blocks
    heads: int = 1  # attention heads; must divide hidden
    inner: int = 256  # feed-forward width inside a block
    max_len: int = 50  # positions of the positional embedding (longest sequence)
    hidden_dropout: float = 0.2  # on the embedded input and on sublayer outputs
    attn_dropout: float = 0.2  # on attention probabilities
    norm_first: bool = False  # false: post-LN (RecBole); true: pre-LN + final norm (paper)
    norm_eps: float = 1e-12  # epsilon of the layer norms inside the blocks
    edge_norm_eps: float = 1e-12  # epsilon of the input norm and the final norm

    def __post_init__(self) -> None:
        check_encoder_fields(self, "encoder")
        for name in ("norm_eps", "edge_norm_eps"):
            check(getattr(self, name) > 0, f"encoder.{name}", "must be > 0")


def check_encoder_fields(cfg, section: str) -> None:
    """Validate the encoder's shape and dropout fields wherever they live (this config,
    or a model config that carries them, as SASRec's does), naming ``section.field``."""
    for name in ("hidden", "layers", "heads", "inner", "max_len"):
        check(getattr(cfg, name) >= 1, f"{section}.{name}", "must be >= 1")
    check(cfg.hidden % cfg.heads == 0, f"{section}.heads",
          f"must divide {section}.hidden={cfg.hidden}, got {cfg.heads}")
    for name in ("hidden_dropout", "attn_dropout"):
        check(0.0 <= getattr(cfg, name) < 1.0, f"{section}.{name}", "must be in [0, 1)")


class CausalSelfAttention(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape  # (B, L, d)
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(  # (B, H, L, d/H)
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Self-attention then a point-wise feed-forward net, each with residual and norm."""

    def __init__(self, cfg: SequenceEncoderConfig):
        super().__init__()
        self.norm_first = cfg.norm_first
        self.attn = CausalSelfAttention(cfg.hidden, cfg.heads, cfg.attn_dropout)
        self.ffn = nn.Sequential(nn.Linear(cfg.hidden, cfg.inner), nn.GELU(),
                                 nn.Linear(cfg.inner, cfg.hidden))
        self.norm1 = nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps)
        self.norm2 = nn.LayerNorm(cfg.hidden, eps=cfg.norm_eps)
        self.drop = nn.Dropout(cfg.hidden_dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.norm_first:
            x = x + self.drop(self.attn(self.norm1(x), mask))
            return x + self.drop(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attn(x, mask)))
        return self.norm2(x + self.drop(self.ffn(x)))


def causal_mask(valid: torch.Tensor) -> torch.Tensor:
    """(B, L) valid positions -> (B, 1, L, L) bool: may query i attend to key j?"""
    n = valid.shape[1]
    causal = torch.ones(n, n, dtype=torch.bool, device=valid.device).tril()
    eye = torch.eye(n, dtype=torch.bool, device=valid.device)
    # a padding query sees only itself, so no row is fully masked and no padding state
    # mixes in future items
    return (causal & valid[:, None, None, :]) | eye


class CausalEncoderMixin:
    """The encoder's parts and forward pass, registered on an ``nn.Module`` host."""

    pos_emb: nn.Embedding
    emb_norm: nn.LayerNorm
    drop: nn.Dropout
    blocks: nn.ModuleList
    final_norm: nn.Module

    def build_encoder(self, cfg: SequenceEncoderConfig) -> None:
        """Register ``pos_emb``, ``emb_norm``, ``drop``, ``blocks``, ``final_norm``."""
        self.pos_emb = nn.Embedding(cfg.max_len, cfg.hidden)
        self.emb_norm = nn.LayerNorm(cfg.hidden, eps=cfg.edge_norm_eps)
        self.drop = nn.Dropout(cfg.hidden_dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.final_norm = (nn.LayerNorm(cfg.hidden, eps=cfg.edge_norm_eps) if cfg.norm_first
                           else nn.Identity())

    def encode_sequence(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x (B, L, d) left-padded item vectors, valid (B, L) bool -> (B, L, d) states."""
        n, max_len = x.shape[1], self.pos_emb.num_embeddings
        pos = torch.arange(max_len - n, max_len, device=x.device)  # (L,)
        x = torch.where(valid[..., None], x, torch.zeros_like(x))
        h = self.drop(self.emb_norm(x + self.pos_emb(pos)))  # (B, L, d)
        allowed = causal_mask(valid)  # (B, 1, L, L)
        for block in self.blocks:
            h = block(h, allowed)
        return self.final_norm(h)

    def encoder_flops(self, lengths: torch.Tensor) -> Flops:
        """Training FLOPs of encoding sequences of ``lengths`` (B,) real positions."""
        return causal_encoder_flops(self.blocks, self.pos_emb.embedding_dim, lengths)


class CausalSequenceEncoder(CausalEncoderMixin, nn.Module):
    """The causal encoder as a module of its own: ``forward(x, valid)``."""

    def __init__(self, cfg: SequenceEncoderConfig):
        super().__init__()
        self.max_len = cfg.max_len
        self.build_encoder(cfg)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x (B, L, d) left-padded item vectors, valid (B, L) bool -> (B, L, d) states."""
        return self.encode_sequence(x, valid)
