"""The visual side of VIP5's prompts: image features -> k soft tokens per item.

Each item mentioned in a prompt is followed by k placeholder tokens; their embeddings are
replaced by the output of a small mapping network applied to the item's image feature
(read from the dataset's feature store, aligned to the item index). Items without an
image get the store's learned "missing" feature vector before mapping. The whole-word and
category embeddings that VIP5 adds to the encoder input live here too
(:class:`PromptEmbeddings`).
"""

from __future__ import annotations

import torch
from torch import nn

from mfmrec.features.store import MissingAwareFeatures

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


class MappingNetwork(nn.Module):
    """Linear -> activation -> Linear to k*d, then LayerNorm per token: (N, F) -> (N, k, d)."""

    def __init__(self, feature_dim: int, d_model: int, num_tokens: int = 2,
                 hidden: int | None = None, activation: str = "gelu"):
        super().__init__()
        hidden = hidden or d_model
        self.num_tokens, self.d_model = num_tokens, d_model
        self.fc1 = nn.Linear(feature_dim, hidden)
        self.act = _ACTIVATIONS[activation]()
        self.fc2 = nn.Linear(hidden, num_tokens * d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.fc2(self.act(self.fc1(features)))  # (N, k*d)
        return self.norm(out.view(-1, self.num_tokens, self.d_model))  # (N, k, d)


class ItemImageTokens(nn.Module):
    """Item features (with a learned vector for items without an image) -> k tokens each."""

    def __init__(self, features: MissingAwareFeatures, mapping: MappingNetwork):
        super().__init__()
        self.features = features
        self.mapping = mapping

    @property
    def num_tokens(self) -> int:
        return self.mapping.num_tokens

    def forward(self, items: torch.Tensor) -> torch.Tensor:  # (U,) -> (U, k, d)
        return self.mapping(self.features(items))

    def fill(self, embeds: torch.Tensor, placeholders: torch.Tensor,
             image_items: torch.Tensor) -> torch.Tensor:
        """Write the item tokens into the placeholder positions of ``embeds``.

        ``placeholders`` (B, L) marks placeholder tokens; ``image_items`` (B, M) names the
        item of each placeholder in order (-1 pads), k consecutive entries per item, so the
        j-th entry of a row is token ``j % k`` of its item.
        """
        valid = image_items >= 0  # (B, M)
        if not torch.equal(valid.sum(1), placeholders.sum(1)):
            raise ValueError("image_items does not match the image placeholders of the batch: "
                             f"{valid.sum(1).tolist()} vs {placeholders.sum(1).tolist()}")
        if not bool(valid.any()):
            return embeds
        slot = torch.arange(image_items.shape[1], device=embeds.device) % self.num_tokens
        items = image_items[valid]  # (P,) row-major, like the placeholder positions
        slots = slot.expand_as(image_items)[valid]
        unique, inverse = items.unique(return_inverse=True)
        tokens = self(unique)[inverse, slots].to(embeds.dtype)  # (P, d)
        return embeds.masked_scatter(placeholders[..., None], tokens)


class PromptEmbeddings(nn.Module):
    """Whole-word and category (text / image) embeddings added to the encoder input."""

    def __init__(self, d_model: int, positions: int = 512, categories: int = 2,
                 init_std: float = 0.0):
        super().__init__()
        self.whole_word = nn.Embedding(positions, d_model)
        self.category = nn.Embedding(categories, d_model)
        for emb in (self.whole_word, self.category):
            # std 0 starts as the bare backbone; the paper's frozen random tables use 1.0
            if init_std > 0:
                nn.init.normal_(emb.weight, std=init_std)
            else:
                nn.init.zeros_(emb.weight)

    def forward(self, embeds: torch.Tensor, whole_word_ids: torch.Tensor,
                category_ids: torch.Tensor) -> torch.Tensor:  # (B, L, d)
        # prompts longer than the table share its last id; the encoder truncates them anyway
        words = whole_word_ids.clamp(0, self.whole_word.num_embeddings - 1)
        return embeds + self.whole_word(words) + self.category(category_ids)

