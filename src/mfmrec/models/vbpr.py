"""VBPR: visual Bayesian personalised ranking (He & McAuley, AAAI 2016).

BPR-MF plus a visual preference term over each item's image feature ``f_i``::

    s(u, i) = b_i + gamma_u . gamma_i + theta_u . (E f_i) + beta' . f_i

(the global and user biases of the paper cancel in the pairwise loss). ``E`` projects
the frozen image features into a small visual space learned jointly with the factors.
The features come from the dataset's feature store (``features/<encoder>.safetensors``,
written by ``mfmrec features extract``); items without an image share one learned
feature vector (the store's ``MissingAwareFeatures``). The features are rebuilt from the
dataset at build time and are not part of the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mfmrec.config import check
from mfmrec.features.store import MissingAwareFeatures, load_item_features
from mfmrec.models.bpr import PairwiseRecommender
from mfmrec.models.registry import register
from mfmrec.models.sampling import model_device


@dataclass
class VBPRConfig:
    """VBPR hyper-parameters; ``dim + visual_dim`` is the user vector size."""

    dim: int = 32  # collaborative factors gamma
    visual_dim: int = 32  # visual factors theta (rows of E)
    image_features: str = "efficientnet-lite0"  # encoder name in the feature store
    normalize_features: bool = True  # divide features by their largest magnitude
    item_bias: bool = True  # b_i
    init_std: float = 0.01  # normal init of factors and E

    def __post_init__(self) -> None:
        check(self.dim >= 1, "model.dim", f"must be >= 1, got {self.dim}")
        check(self.visual_dim >= 1, "model.visual_dim", f"must be >= 1, got {self.visual_dim}")
        check(bool(self.image_features.strip()), "model.image_features",
              "must name an image encoder, e.g. efficientnet-lite0")
        check(self.init_std > 0, "model.init_std", "must be > 0")


class VBPR(PairwiseRecommender):
    name = "vbpr"

    def __init__(self, cfg: VBPRConfig, num_users: int, features: torch.Tensor,
                 missing: torch.Tensor):
        super().__init__(num_users, features.shape[0])
        self.cfg = cfg
        if cfg.normalize_features:
            scale = features[~missing].abs().max() if bool((~missing).any()) else 0.0
            features = features / scale if scale > 0 else features
        # frozen table rebuilt from the store (kept out of checkpoints); items without an
        # image share one learned vector instead of a meaningless zero row
        self.features = MissingAwareFeatures(features, missing)
        dim = features.shape[1]
        self.user_emb = nn.Embedding(num_users, cfg.dim)
        self.item_emb = nn.Embedding(self.num_items, cfg.dim)
        self.user_visual = nn.Embedding(num_users, cfg.visual_dim)
        self.projection = nn.Linear(dim, cfg.visual_dim, bias=False)  # E
        self.visual_bias = nn.Linear(dim, 1, bias=False)  # beta'
        for weight in (self.user_emb.weight, self.item_emb.weight, self.user_visual.weight,
                       self.projection.weight, self.visual_bias.weight):
            nn.init.normal_(weight, std=cfg.init_std)
        self.item_bias = nn.Parameter(torch.zeros(self.num_items)) if cfg.item_bias else None

    def item_terms(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Item-side factors ``[gamma_i ; E f_i]`` (..., k + k') and biases (...)."""
        feats = self.features(items)  # (..., F)
        vectors = torch.cat([self.item_emb(items), self.projection(feats)], dim=-1)
        bias = self.visual_bias(feats).squeeze(-1)
        if self.item_bias is not None:
            bias = bias + self.item_bias[items]
        return vectors, bias

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.user_emb(users), self.user_visual(users)], dim=-1)  # (B, k+k')

    def score_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        vectors, bias = self.item_terms(items)  # (B, C, k+k'), (B, C)
        return (self.user_vectors(users)[:, None, :] * vectors).sum(-1) + bias

    def score_items(self, users: torch.Tensor, histories=None, prompt=None) -> torch.Tensor:
        users = users.to(model_device(self))
        vectors, bias = self.item_terms(torch.arange(self.num_items, device=users.device))
        return self.user_vectors(users) @ vectors.T + bias  # (B, N)


@register("vbpr", VBPRConfig, "VBPR: BPR-MF plus a visual term over item image features")
def build_vbpr(config: VBPRConfig, dataset) -> VBPR:
    store = load_item_features(dataset, config.image_features, "VBPR")
    return VBPR(config, dataset.num_users, store.matrix.float(), store.missing)
