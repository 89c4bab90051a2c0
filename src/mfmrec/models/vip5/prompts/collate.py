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

:func:`pack` batches training samples several to a row (sequence packing); its batch
adds ``segments`` (R, L) and ``target_segments`` (R, T), the sample of each encoder and
decoder token (-1 on padding), and ``decoder_input_ids`` (R, T); ``task`` and
``template_id`` stay per sample.

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


def pack_rows(lengths: Sequence[int], target_lengths: Sequence[int], max_length: int,
              max_target_length: int) -> list[list[int]]:
    """Sample indices per row, first-fit decreasing by encoder length: a row takes a sample
    while it stays within ``max_length`` encoder and ``max_target_length`` decoder tokens
    (a sample over either budget gets a row of its own)."""
    rows: list[list[int]] = []
    used: list[tuple[int, int]] = []  # (encoder, decoder) tokens of each row
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):  # stable
        for r, (enc, dec) in enumerate(used):
            if enc + lengths[i] <= max_length and dec + target_lengths[i] <= max_target_length:
                rows[r].append(i)
                used[r] = (enc + lengths[i], dec + target_lengths[i])
                break
        else:
            rows.append([i])
            used.append((lengths[i], target_lengths[i]))
    return rows


def _joined(rows: list[list[int]], parts, value: int) -> torch.Tensor:
    """(R, width) of ``parts(i)`` concatenated over each row's samples ``i``, padded."""
    return _pad([[x for i in row for x in parts(i)] for row in rows], value)


def pack(samples: Sequence[PromptSample], tokenizer, decoder_start_token_id: int,
         max_length: int | None = None, max_target_length: int = 64) -> dict:
    """Training samples packed several to a row (:func:`pack_rows`); ``max_length`` None:
    the longest prompt of the batch, so no row is longer than the plain batch's. A plain
    :func:`collate` batch when packing would save no row."""
    if any(s.labels is None for s in samples):
        raise ValueError("packing needs a target for every sample")
    budget = max_length or max(len(s.input_ids) for s in samples)
    rows = pack_rows([len(s.input_ids) for s in samples], [len(s.labels) for s in samples],
                     budget, max_target_length)
    if len(rows) == len(samples):
        return collate(samples, tokenizer)
    pad_id, by = tokenizer.pad_token_id, samples
    return {
        "input_ids": _joined(rows, lambda i: by[i].input_ids, pad_id),  # (R, L)
        "attention_mask": _joined(rows, lambda i: [1] * len(by[i].input_ids), 0),  # (R, L)
        "whole_word_ids": _joined(rows, lambda i: by[i].whole_word_ids, 0),  # (R, L)
        "category_ids": _joined(rows, lambda i: by[i].category_ids, 0),  # (R, L)
        "image_items": _joined(rows, lambda i: by[i].image_items, -1),  # (R, M)
        "segments": _joined(rows, lambda i: [i] * len(by[i].input_ids), -1),  # (R, L)
        "labels": _joined(rows, lambda i: by[i].labels, IGNORE_INDEX),  # (R, T)
        "decoder_input_ids": _joined(  # each target shifted right behind its own start
            rows, lambda i: [decoder_start_token_id, *by[i].labels[:-1]], pad_id),  # (R, T)
        "target_segments": _joined(rows, lambda i: [i] * len(by[i].labels), -1),  # (R, T)
        "task": [s.task for s in samples],
        "template_id": [s.template_id for s in samples],
    }
