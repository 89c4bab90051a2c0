"""The IISAN cache: every item's pooled per-layer encoder states, memory-mapped.

The feature pipeline computes it once (``mfmrec features extract DATA --encoder NAME
--layers``) into ``features/<NAME>-layers.safetensors``: a float32 tensor ``features`` of
shape ``(num_items, L + 1, d)`` and a bool ``missing`` of shape ``(num_items,)``.

:class:`LayerCache` maps the ``features`` tensor straight from the file with
``numpy.memmap`` (read-only), using the safetensors layout (an 8-byte little-endian
header length, a JSON header with each tensor's dtype, shape and byte offsets, then the
data). Only the rows and layers a batch needs are read, so training never holds the
whole cache in memory and never loads, runs or even imports an encoder.
:class:`CachedStates` is the model part that reads it, with a learned stand-in
(:class:`MissingFill`) for items that had no input.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from torch import nn

from mfmrec.errors import DataError
from mfmrec.features.store import feature_path, items_digest, layers_name, read_meta
from mfmrec.models.iisan.towers import TEXT

_DTYPES = {"F32": np.float32, "F16": np.float16}


def read_header(path: Path) -> tuple[dict, int]:
    """(safetensors JSON header, byte offset where the data section starts)."""
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise DataError(f"{path}: truncated safetensors file")
        (size,) = struct.unpack("<Q", raw)
        try:
            header = json.loads(fh.read(size))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DataError(f"{path}: unreadable safetensors header") from None
    return header, 8 + size


class LayerCache:
    """Per-layer states of one encoder for every item of one dataset (read-only)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: no such layer cache")
        header, start = read_header(self.path)
        entry = header.get("features")
        if entry is None or len(entry.get("shape", ())) != 3:
            raise DataError(f"{self.path}: expected a (N, L+1, d) tensor 'features'; "
                            "was it extracted with --layers?")
        dtype = _DTYPES.get(entry["dtype"])
        if dtype is None:
            raise DataError(f"{self.path}: unsupported dtype {entry['dtype']} "
                            "(expected F32 or F16)")
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if end - begin != int(np.prod(shape)) * np.dtype(dtype).itemsize:
            raise DataError(f"{self.path}: tensor 'features' has a wrong byte length")
        self.states = np.memmap(self.path, dtype=dtype, mode="r", offset=start + begin,
                                shape=shape)  # (N, L+1, d)
        with safe_open(str(self.path), framework="pt") as fh:
            self.missing = fh.get_tensor("missing").to(torch.bool)  # (N,)
        self.meta = read_meta(self.path)

    @classmethod
    def open(cls, dataset, encoder: str) -> LayerCache:
        """The cache of ``encoder`` beside a prepared dataset, checked against its items."""
        path = feature_path(dataset.root, layers_name(encoder))
        if not path.is_file():
            raise DataError(
                f"{path}: no layer cache for encoder {encoder!r}; create it with "
                f"`mfmrec features extract {dataset.root} --encoder {encoder} --layers`")
        cache = cls(path)
        if cache.num_items != dataset.num_items:
            raise DataError(f"{path}: {cache.num_items} rows but the dataset has "
                            f"{dataset.num_items} items; re-run the extraction")
        digest = cache.meta.get("items_sha256")
        if digest is not None and digest != items_digest(dataset.item_ids):
            raise DataError(f"{path}: made for another item order; re-run the extraction")
        return cache

    @property
    def num_items(self) -> int:
        return self.states.shape[0]

    @property
    def num_states(self) -> int:
        """``L + 1``: the embedding (stem) output and one state per layer."""
        return self.states.shape[1]

    @property
    def dim(self) -> int:
        """The stored width (narrower layers are zero-padded up to it)."""
        return self.states.shape[2]

    @property
    def layer_dims(self) -> list[int]:
        dims = (self.meta.get("layers") or {}).get("dims")
        return list(dims) if dims else [self.dim] * self.num_states

    def rows(self, items: torch.Tensor | np.ndarray, layers: list[int]) -> torch.Tensor:
        """(U,) item indices and the wanted state indices -> (U, len(layers), d) float32."""
        idx = np.asarray(items.cpu() if torch.is_tensor(items) else items, dtype=np.int64)
        sel = np.asarray(layers, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_items):
            raise IndexError(f"item index outside 0..{self.num_items - 1}")
        block = self.states[idx[:, None], sel[None, :]]  # a copy: (U, k, d)
        return torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))


class MissingFill(nn.Module):
    """A learned stand-in for the states of items without an input (no title, no photo).

    It starts at zeros; stored rows of such items are zeros too, but they are never
    used as if they were an encoder's output.
    """

    def __init__(self, num_states: int, width: int):
        super().__init__()
        self.vector = nn.Parameter(torch.zeros(num_states, width))  # (k, d)

    def forward(self, states: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
        """states (U, k, d), missing (U,) -> (U, k, d)."""
        return torch.where(missing[:, None, None], self.vector.to(states.dtype), states)


class CachedStates(nn.Module):
    """Tapped states read from the layer caches: no encoder is built, loaded or run."""

    def __init__(self, caches: dict[str, LayerCache], states: dict[str, list[int]]):
        super().__init__()
        self.caches, self.states = caches, states  # per modality: cache, state indices
        self.fill = nn.ModuleDict({m: MissingFill(len(states[m]), caches[m].dim)
                                   for m in caches})

    def forward(self, items: torch.Tensor) -> dict[str, torch.Tensor]:
        device, idx = self.fill[TEXT].vector.device, items.cpu()
        out = {}
        for m, cache in self.caches.items():
            rows = cache.rows(idx, self.states[m]).to(device)  # (U, k, d)
            out[m] = self.fill[m](rows, cache.missing[idx].to(device))
        return out
