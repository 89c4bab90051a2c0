"""The matrix that semantic IDs quantise: one row per item.

From feature stores (``efficientnet-lite0,minilm``): each store's rows are L2-normalised
(so no encoder dominates by scale), multiplied by the store's weight (default 1.0; set
with ``name:weight``, e.g. ``minilm:0.5``) and concatenated: ``(N, d_1 + d_2 + ...)``.
An item flagged ``missing`` in a store (no image, no title) keeps a zero block there:
it is placed by the stores it has, and an item missing everywhere sits at the origin.

From a matrix (collaborative item embeddings of a trained model): rows are L2-normalised
too, so IDs follow the embeddings' directions, which is what dot-product scores rank by
once popularity (the norm) is set aside.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mfmrec.errors import DataError
from mfmrec.features.store import list_features, load_features

NORMALISATION = "l2 per row, then times the weight"
EPS = 1e-12


@dataclass(frozen=True)
class InputMatrix:
    """Rows to quantise and where they came from (recorded in ``ids/NAME.json``)."""

    matrix: torch.Tensor  # (N, D) float32
    blocks: list[dict]  # per source: name, dim, weight, normalisation, encoder, num_missing

    @property
    def num_items(self) -> int:
        return int(self.matrix.shape[0])


def l2_rows(x: torch.Tensor) -> torch.Tensor:
    """(N, d) -> (N, d) with unit rows; an all-zero row stays zero."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(EPS)


def check_finite(x: torch.Tensor, where: str, item_ids: list[str] | None = None) -> None:
    """One-line :class:`DataError` naming the first item whose row holds NaN or inf."""
    bad = (~torch.isfinite(x)).reshape(x.shape[0], -1).any(1).nonzero().flatten()
    if len(bad):
        i = int(bad[0])
        label = f"item {i}" + (f" ({item_ids[i]})" if item_ids is not None else "")
        more = f" (and {len(bad) - 1} more rows)" if len(bad) > 1 else ""
        raise DataError(f"{where}: {label} has a NaN or infinite value{more}")


def check_codebook(num_items: int, codebook: int, where: str) -> None:
    """A codebook needs at least one item per code to be initialised by k-means."""
    if codebook > num_items:
        raise DataError(f"{where}: codebook {codebook} is larger than the {num_items} items; "
                        f"use --codebook {max(2, num_items // 4)} or fewer")


def feature_inputs(dataset_dir: str | Path, names: list[str],
                   weights: dict[str, float] | None = None,
                   item_ids: list[str] | None = None) -> InputMatrix:
    """Load, normalise, weight and concatenate the stores ``names`` of a dataset."""
    weights = weights or {}
    available = list_features(dataset_dir)
    for name in names:
        if name not in available:
            listed = ", ".join(available) if available else "none; run `mfmrec features extract`"
            raise DataError(f"{dataset_dir}: no feature store {name!r} (available: {listed})")
    parts, blocks = [], []
    for name in names:
        store = load_features(dataset_dir, name)
        where = f"{Path(dataset_dir) / 'features' / name}.safetensors"
        if store.matrix.dim() != 2:
            raise DataError(f"{where}: per-layer store of shape {tuple(store.matrix.shape)}; "
                            "use the pooled (N, d) store")
        if parts and store.num_items != parts[0].shape[0]:
            raise DataError(f"{where}: {store.num_items} rows, but {names[0]} has "
                            f"{parts[0].shape[0]}")
        check_finite(store.matrix, where, item_ids)
        weight = float(weights.get(name, 1.0))
        block = l2_rows(store.matrix.float()) * weight  # (N, d_i)
        block[store.missing] = 0.0
        parts.append(block)
        blocks.append({"name": name, "dim": store.dim, "weight": weight,
                       "normalisation": NORMALISATION, "encoder": store.encoder,
                       "num_missing": int(store.missing.sum())})
    return InputMatrix(matrix=torch.cat(parts, dim=1).contiguous(), blocks=blocks)


def matrix_inputs(matrix: torch.Tensor, name: str, where: str,
                  item_ids: list[str] | None = None) -> InputMatrix:
    """A plain (N, d) float matrix (e.g. a model's item embeddings), L2-normalised."""
    if matrix.dim() != 2 or not matrix.is_floating_point():
        raise DataError(f"{where}: expected an (N, d) float matrix, got "
                        f"{tuple(matrix.shape)} {matrix.dtype}")
    matrix = matrix.detach().to("cpu", torch.float32)
    check_finite(matrix, where, item_ids)
    block = {"name": name, "dim": int(matrix.shape[1]), "weight": 1.0,
             "normalisation": NORMALISATION, "encoder": "", "num_missing": 0}
    return InputMatrix(matrix=l2_rows(matrix).contiguous(), blocks=[block])
