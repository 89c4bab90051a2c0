"""Pad a list of :class:`~mfmrec.models.vip5.prompts.tasks.PromptSample` into one batch.

The batch a VIP5-style model consumes::

    input_ids       (B, L) long   padded with the tokenizer's pad id
    attention_mask  (B, L) long   1 on real tokens
    whole_word_ids  (B, L) long   0 on </s> and padding
    category_ids    (B, L) long   1 on image placeholders, else 0
    image_items     (B, M) long   internal item index behind each placeholder token, in
                                  order of appearance (k consecutive entries per item);
                                  -1 padding; M = most placeholders in the batch
    labels          (B, T) long   target ids, -100 padding (only when every sample has
                                  a target)
    task, template_id             lists of str

A model gathers the image features of ``image_items`` (where >= 0), maps them, and
scatters the result into the positions where ``category_ids == 1``: row b's j-th
placeholder position receives ``image_items[b, j]``'s mapped vector.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mfmrec.models.vip5.prompts.tasks import PromptSample

IGNORE_INDEX = -100


def _pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max((len(r) for r in rows), default=0)
    out = torch.full((len(rows), width), value, dtype=torch.long)
    for b, row in enumerate(rows):
        if row:
            out[b, : len(row)] = torch.as_tensor(list(row), dtype=torch.long)
    return out


def collate(samples: Sequence[PromptSample], tokenizer=None, pad_id: int | None = None) -> dict:
    """Batch ``samples``; the pad id comes from ``tokenizer`` (or ``pad_id``, default 0)."""
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    if pad_id is None:
        pad_id = tokenizer.pad_token_id if tokenizer is not None else 0
    input_ids = _pad([s.input_ids for s in samples], pad_id)  # (B, L)
    batch = {
        "input_ids": input_ids,
        "attention_mask": _pad([[1] * len(s.input_ids) for s in samples], 0),  # (B, L)
        "whole_word_ids": _pad([s.whole_word_ids for s in samples], 0),  # (B, L)
        "category_ids": _pad([s.category_ids for s in samples], 0),  # (B, L)
        "image_items": _pad([s.image_items for s in samples], -1),  # (B, M)
        "task": [s.task for s in samples],
        "template_id": [s.template_id for s in samples],
    }
    if all(s.labels is not None for s in samples):
        batch["labels"] = _pad([s.labels for s in samples], IGNORE_INDEX)  # (B, T)
    return batch


def placeholder_positions(batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rows, cols, items)`` of every placeholder token, row-major.

    A model scatters ``mapped[items]`` into ``embeds[rows, cols]``: both the placeholder
    mask and ``image_items`` are read row by row, in order of appearance, and a row holds
    as many placeholders as it has non-padding ``image_items``.
    """
    rows, cols = (batch["category_ids"] == 1).nonzero(as_tuple=True)  # (P,), (P,)
    items = batch["image_items"][batch["image_items"] >= 0]  # (P,)
    if items.numel() != rows.numel():
        raise ValueError(f"{rows.numel()} placeholder tokens but {items.numel()} image items")
    return rows, cols, items
