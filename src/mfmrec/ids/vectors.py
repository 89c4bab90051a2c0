"""What each code means in the input space: per level, the mean residual of its items.

Level 0's vector of code ``c`` is the mean input row of the items whose first code is
``c`` (for residual k-means: its centroid); level ``l``'s is the mean of what is left of
those rows once levels ``0..l-1`` are subtracted. A code that no item uses gets a zero
vector. The vectors are computed from the inputs and the codes alone, so they mean the
same for every builder (for the RQ-VAE they live in the input space, not the latent one).

A generative model can start its new code-token embeddings from them
(``model.code_init: features``) instead of at random, so that similar codes begin with
similar embeddings.

``<dataset>/ids/<NAME>.vectors.safetensors`` holds one tensor per level,
``level_0 .. level_{L-1}``, each ``(K, D)`` float32; written with the IDs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from mfmrec.errors import DataError
from mfmrec.ids.store import SemanticIds, ids_path
from mfmrec.io import atomic_file


def code_vectors(x: torch.Tensor, codes: torch.Tensor, codebook: int) -> torch.Tensor:
    """x (N, D), codes (N, L) -> (L, K, D): per level, the mean residual per code."""
    residual = x.float().clone()  # (N, D)
    levels = []
    for level in range(codes.shape[1]):
        col = codes[:, level].long()  # (N,)
        sums = torch.zeros(codebook, x.shape[1]).index_add_(0, col, residual)  # (K, D)
        counts = torch.bincount(col, minlength=codebook).clamp_min(1)[:, None]  # (K, 1)
        means = sums / counts  # (K, D)
        levels.append(means)
        residual = residual - means[col]
    return torch.stack(levels)


def vectors_path(ids_parquet: Path) -> Path:
    """``ids/NAME.vectors.safetensors`` beside ``ids/NAME.parquet``."""
    return ids_parquet.with_suffix(".vectors.safetensors")


def write_vectors(dataset_dir: str | Path, name: str, vectors: torch.Tensor) -> Path:
    """Write the (L, K, D) vectors of ID set ``name``: atomically; same vectors, same bytes."""
    path = vectors_path(ids_path(dataset_dir, name))
    blob = save({f"level_{lv}": vectors[lv].contiguous() for lv in range(len(vectors))})
    with atomic_file(path, "wb") as fh:
        fh.write(blob)
    return path


def read_vectors(ids_parquet: Path, levels: int, codebook: int) -> torch.Tensor:
    """(L, K, D) code vectors of an ID set; a one-line :class:`DataError` when absent
    (IDs built before vectors were stored) or malformed."""
    path = vectors_path(ids_parquet)
    if not path.is_file():
        raise DataError(f"{path}: missing (IDs built without code vectors); rebuild them "
                        f"with `mfmrec ids build`")
    try:
        tensors = load(path.read_bytes())
    except (OSError, SafetensorError) as exc:
        raise DataError(f"{path}: not a readable safetensors file ({exc})") from None
    names = [f"level_{lv}" for lv in range(levels)]
    if sorted(tensors) != sorted(names) or any(
            tensors[n].dim() != 2 or tensors[n].shape[0] != codebook for n in names):
        found = {k: tuple(v.shape) for k, v in tensors.items()}
        raise DataError(f"{path}: expected {levels} tensors level_0.. of shape "
                        f"({codebook}, D), found {found}")
    return torch.stack([tensors[n].float() for n in names])


def load_code_vectors(dataset_dir: str | Path, ids: SemanticIds) -> torch.Tensor:
    """(L, K, D) code vectors stored with the ID set ``ids`` of ``dataset_dir``."""
    return read_vectors(ids_path(dataset_dir, ids.name), ids.levels, ids.codebook)
