"""The feature store: one safetensors file per encoder beside a dataset.

``<dataset>/features/<name>.safetensors`` holds two tensors:

* ``features``: float32, ``(N, d)`` (one row per item, row ``i`` = internal item ``i``) or,
  for per-layer states, ``(N, L+1, d)`` in ``<name>-layers.safetensors``;
* ``missing``: bool ``(N,)``, true for items that had no input (no image, no title, an
  unreadable file). Their rows are zeros on disk and must never be used as if they were
  features: :class:`MissingAwareFeatures` swaps in a learned vector instead.

Everything else (encoder, dimension, preprocessing, the ids of the missing items, a hash
of the item order) is JSON under the single safetensors metadata key ``mfmrec`` and in a
readable sidecar ``<name>.json``. One key, because safetensors writes a multi-key metadata
map in hash order, which would make two extractions differ byte for byte.

Reads go through ``safe_open``, which memory-maps the file.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save
from torch import nn

from mfmrec.data import load_dataset
from mfmrec.data.dataset import Dataset
from mfmrec.errors import DataError
from mfmrec.io import atomic_file, write_json

FEATURES_DIR = "features"
META_KEY = "mfmrec"
STORE_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def layers_name(name: str) -> str:
    """The store name of the per-layer states of encoder ``name``."""
    return f"{name}-layers"


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise DataError(f"feature name {name!r}: use letters, digits and . _ + - only "
                        "(it becomes a file name)")
    return name


def items_digest(item_ids: list[str]) -> str:
    """A hash of the item order: a store only fits the dataset whose rows it was made for."""
    return hashlib.sha256("\n".join(item_ids).encode()).hexdigest()


def feature_path(dataset_dir: str | Path, name: str) -> Path:
    return Path(dataset_dir) / FEATURES_DIR / f"{check_name(name)}.safetensors"


@dataclass(frozen=True)
class FeatureStore:
    """Features of every item of one dataset, and which items had no input."""

    matrix: torch.Tensor  # (N, d) or (N, L+1, d) float32
    missing: torch.Tensor  # (N,) bool
    meta: dict

    @property
    def num_items(self) -> int:
        return self.matrix.shape[0]

    @property
    def dim(self) -> int:
        return self.matrix.shape[-1]

    @property
    def encoder(self) -> str:
        return self.meta.get("encoder", "")


def save_features(dataset_dir, name: str, matrix: torch.Tensor, missing_mask: torch.Tensor,
                  meta: dict, item_ids: list[str] | None = None) -> Path:
    """Write ``features/<name>.safetensors`` (and ``<name>.json``) atomically.

    ``dataset_dir``: a prepared dataset (a :class:`Dataset` or its path; its item ids are
    read from it) or any folder (then pass ``item_ids`` to record the missing items by id).
    ``matrix``: (N, d) or (N, L+1, d); ``missing_mask``: (N,) bool. ``meta`` should name at
    least the encoder and its preprocessing; the missing items, shape and version are added.
    Rows of missing items are zeroed so nothing stale can leak from them.
    """
    root, known_ids = _resolve(dataset_dir)
    item_ids = item_ids if item_ids is not None else known_ids
    if matrix.dim() not in (2, 3):
        raise ValueError(f"features must be (N, d) or (N, L+1, d), got {tuple(matrix.shape)}")
    missing = missing_mask.to(torch.bool).reshape(-1)
    if missing.shape[0] != matrix.shape[0]:
        raise ValueError(f"missing mask has {missing.shape[0]} rows, features {matrix.shape[0]}")
    matrix = matrix.detach().to("cpu", torch.float32).clone().contiguous()
    matrix[missing] = 0.0
    full = dict(meta)
    full.update({
        "store_version": STORE_VERSION, "name": name, "num_items": int(matrix.shape[0]),
        "dim": int(matrix.shape[-1]), "shape": list(matrix.shape),
        "num_missing": int(missing.sum()),
    })
    if item_ids is not None:
        if len(item_ids) != matrix.shape[0]:
            raise ValueError(f"{len(item_ids)} item ids for {matrix.shape[0]} feature rows")
        full["items_sha256"] = items_digest(item_ids)
        full["missing_items"] = [item_ids[i] for i in missing.nonzero().flatten().tolist()]
    blob = save({"features": matrix, "missing": missing.contiguous()},
                metadata={META_KEY: json.dumps(full, sort_keys=True)})
    path = feature_path(root, name)
    with atomic_file(path, "wb") as fh:
        fh.write(blob)
    write_json(path.with_suffix(".json"), full)
    return path


def _resolve(dataset_or_dir) -> tuple[Path, list[str] | None]:
    """A dataset directory and, when it is a prepared dataset, its item ids."""
    if isinstance(dataset_or_dir, Dataset):
        return dataset_or_dir.root, dataset_or_dir.item_ids
    root = Path(dataset_or_dir)
    if (root / "items.parquet").is_file():
        return root, load_dataset(root).item_ids
    return root, None


def read_meta(path: str | Path) -> dict:
    """The metadata of a store file without reading its tensors."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = (fh.metadata() or {}).get(META_KEY)
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise DataError(f"{path}: not a readable safetensors file ({exc})") from None
    if raw is None:
        raise DataError(f"{path}: no '{META_KEY}' metadata; not written by mfmrec")
    return json.loads(raw)


def load_features(dataset_or_dir, name: str) -> FeatureStore:
    """Open ``features/<name>.safetensors`` of a dataset (a :class:`Dataset` or a path).

    When the directory is a prepared dataset, the store must have one row per item and
    the item order it was made for, or a :class:`DataError` says how to rebuild it.
    """
    root, item_ids = _resolve(dataset_or_dir)
    path = feature_path(root, name)
    if not path.is_file():
        raise DataError(f"{path}: no such feature store; create it with "
                        f"`mfmrec features extract {root} --encoder <encoder>`")
    meta = read_meta(path)
    with safe_open(str(path), framework="pt") as fh:
        keys = set(fh.keys())
        if not {"features", "missing"} <= keys:
            raise DataError(f"{path}: expected tensors 'features' and 'missing', got {keys}")
        matrix = fh.get_tensor("features")
        missing = fh.get_tensor("missing").to(torch.bool)
    if missing.shape != (matrix.shape[0],):
        raise DataError(f"{path}: 'missing' has shape {tuple(missing.shape)}, expected "
                        f"({matrix.shape[0]},)")
    if item_ids is not None:
        hint = f"re-run `mfmrec features extract {root} ...`"
        if matrix.shape[0] != len(item_ids):
            raise DataError(f"{path}: {matrix.shape[0]} rows but the dataset has "
                            f"{len(item_ids)} items; {hint}")
        digest = meta.get("items_sha256")
        if digest is not None and digest != items_digest(item_ids):
            raise DataError(f"{path}: made for another item order than {root}; {hint}")
    return FeatureStore(matrix=matrix, missing=missing, meta=meta)


def _how_to_extract(root: Path, name: str) -> str:
    """The command that builds store ``name``, or the stores there when no encoder has it."""
    from mfmrec.features.encoders import IMAGE_ENCODERS, TEXT_ENCODERS  # lazy: error path

    if name in IMAGE_ENCODERS + TEXT_ENCODERS:
        return f"(create them with `mfmrec features extract {root} --encoder {name}`)"
    have = ", ".join(list_features(root)) or "none"
    return (f"(stores here: {have}; a store is named after its encoder: "
            f"`mfmrec features extract {root} --encoder ENCODER`)")


def load_item_features(dataset, name: str, model: str) -> FeatureStore:
    """Store ``name`` of a prepared dataset as one (N, d) vector per item, for ``model``.

    A store that does not exist, or holds per-layer states (N, L+1, d), is a one-line
    :class:`DataError` naming the file, the model that needs it and how to build it.
    """
    path = dataset.features_path(name)
    if not path.is_file():
        raise DataError(f"{path}: image features {name!r} not found; {model} needs them "
                        f"{_how_to_extract(dataset.root, name)}")
    store = load_features(dataset, name)
    if store.matrix.dim() != 2:
        raise DataError(f"{path}: {model} needs one (N, d) feature row per item, got "
                        f"{tuple(store.matrix.shape)} (per-layer states)")
    return store


def list_features(dataset_dir: str | Path) -> list[str]:
    """Names of the finished stores of a dataset (partial extractions excluded)."""
    folder = Path(dataset_dir) / FEATURES_DIR
    return sorted(p.stem for p in folder.glob("*.safetensors") if not p.name.startswith("."))


class MissingAwareFeatures(nn.Module):
    """Look up frozen item features; items without input get one learned vector.

    The table is a non-persistent buffer (checkpoints keep only the learned vector, the
    store on disk is the source of truth). The vector starts at the mean of the present
    rows, so an untrained model treats a missing image as an average one, not as zeros.
    """

    def __init__(self, matrix: torch.Tensor, missing: torch.Tensor):
        super().__init__()
        missing = missing.to(torch.bool)
        table = matrix.detach().float()
        self.register_buffer("table", table, persistent=False)  # (N, d) or (N, L+1, d)
        self.register_buffer("missing", missing, persistent=False)  # (N,)
        present = table[~missing]
        start = present.mean(dim=0) if len(present) else torch.zeros(table.shape[1:])
        self.missing_vector = nn.Parameter(start.clone())  # (d,) or (L+1, d)

    @classmethod
    def from_store(cls, store: FeatureStore) -> MissingAwareFeatures:
        return cls(store.matrix, store.missing)

    @property
    def dim(self) -> int:
        return self.table.shape[-1]

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """items: (...) long -> (..., d) (or (..., L+1, d) for per-layer tables)."""
        rows = self.table[items]
        mask = self.missing[items].reshape(*items.shape, *([1] * (self.table.dim() - 1)))
        return torch.where(mask, self.missing_vector.to(rows.dtype), rows)
