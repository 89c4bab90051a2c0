"""Semantic IDs on disk, beside a dataset.

``<dataset>/ids/<NAME>.parquet``: columns ``item`` (int32, 0..N-1 in order) and ``codes``
(list<int32>, length ``L + 1`` for every item: the ``L`` quantised codes, then the
disambiguation code: 0 for an item whose ``L``-tuple is unique, 0, 1, 2, ... in item
order within a group sharing one, as TIGER does; so every tuple is distinct). Written
with pyarrow, zstd, no pandas metadata.

``<dataset>/ids/<NAME>.json``: method, levels, codebook, seed, inputs (features with
their normalisation and weights, or the matrix source), RQ-VAE hyper-parameters when
used, ``items_digest`` of the dataset's item order and the health report.

``<dataset>/ids/<NAME>.timing.json``: ``{"build_seconds": ...}``. The build time lives
apart so that ``NAME.parquet`` and ``NAME.json`` are byte-identical for the same inputs
and seed. All three are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from mfmrec.errors import DataError
from mfmrec.features.store import items_digest
from mfmrec.io import atomic_file, write_json

IDS_DIR = "ids"
FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
SCHEMA = pa.schema([("item", pa.int32()), ("codes", pa.list_(pa.int32()))])


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise DataError(f"ids name {name!r}: use letters, digits and . _ + - only "
                        "(it becomes a file name)")
    return name


def ids_path(dataset_dir: str | Path, name: str) -> Path:
    """``<dataset>/ids/<name>.parquet``; its JSON and timing sidecars sit beside it."""
    return Path(dataset_dir) / IDS_DIR / f"{check_name(name)}.parquet"


def meta_path(dataset_dir: str | Path, name: str) -> Path:
    return ids_path(dataset_dir, name).with_suffix(".json")


def timing_path(dataset_dir: str | Path, name: str) -> Path:
    return ids_path(dataset_dir, name).with_suffix(".timing.json")


def list_ids(dataset_dir: str | Path) -> list[str]:
    folder = Path(dataset_dir) / IDS_DIR
    return sorted(p.stem for p in folder.glob("*.parquet") if not p.name.startswith("."))


@dataclass(frozen=True)
class SemanticIds:
    """Every item's semantic ID: ``levels`` codes plus one disambiguation code."""

    name: str
    codes: list[tuple[int, ...]]  # per item, length levels + 1, all distinct
    levels: int  # L
    codebook: int  # values per level, K
    dedup_size: int  # values of the disambiguation code (its max + 1)
    meta: dict

    @property
    def num_items(self) -> int:
        return len(self.codes)


def write_ids(dataset_dir: str | Path, name: str, codes: torch.Tensor, meta: dict,
              build_seconds: float) -> tuple[Path, Path]:
    """Write codes (N, L+1) and ``meta``; returns (parquet path, json path)."""
    path = ids_path(dataset_dir, name)
    rows = codes.to(torch.int32).tolist()
    table = pa.table({"item": pa.array(range(len(rows)), pa.int32()),
                      "codes": pa.array(rows, pa.list_(pa.int32()))}, schema=SCHEMA)
    with atomic_file(path, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")
    write_json(meta_path(dataset_dir, name), meta)
    write_json(timing_path(dataset_dir, name), {"build_seconds": round(build_seconds, 3)})
    return path, meta_path(dataset_dir, name)


def read_timing(dataset_dir: str | Path, name: str) -> float | None:
    """The build time of ``name`` in seconds, or None when its sidecar is absent."""
    try:
        return float(json.loads(timing_path(dataset_dir, name).read_text())["build_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_meta(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"{path}: missing (rebuild with `mfmrec ids build`)")
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable JSON ({exc})") from None
    for key, kind in (("levels", int), ("codebook", int), ("dedup_size", int)):
        if not isinstance(meta, dict) or not isinstance(meta.get(key), kind):
            raise DataError(f"{path}: field {key!r} missing or not an integer")
    return meta


def _read_codes(path: Path) -> list[tuple[int, ...]]:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: not a readable parquet file ({exc})") from None
    if not table.schema.equals(SCHEMA):
        raise DataError(f"{path}: expected columns item int32, codes list<int32>; got "
                        f"{', '.join(f'{f.name} {f.type}' for f in table.schema)}")
    if table.column("item").to_pylist() != list(range(table.num_rows)):
        raise DataError(f"{path}: column item must be 0..N-1 in order")
    return [tuple(c) if c is not None else () for c in table.column("codes").to_pylist()]


def _check_codes(path: Path, codes: list[tuple[int, ...]], meta: dict) -> None:
    levels, codebook, dedup = meta["levels"], meta["codebook"], meta["dedup_size"]
    for i, row in enumerate(codes):
        if len(row) != levels + 1:
            raise DataError(f"{path}: item {i} has {len(row)} codes, expected {levels + 1}")
        if not all(0 <= c < codebook for c in row[:-1]) or not 0 <= row[-1] < dedup:
            raise DataError(f"{path}: item {i} has a code out of range: {list(row)}")
    if len(set(codes)) != len(codes):
        raise DataError(f"{path}: two items share a semantic ID")


def load_ids(dataset_dir: str | Path, name: str,
             item_ids: list[str] | None = None) -> SemanticIds:
    """Open ``ids/<name>``; with ``item_ids`` (the dataset's, in order), also check that
    the IDs were built for that item order."""
    path = ids_path(dataset_dir, name)
    if not path.is_file():
        raise DataError(f"{path}: no such semantic IDs; build them with "
                        f"`mfmrec ids build {dataset_dir} --name {name} ...`")
    meta = _read_meta(meta_path(dataset_dir, name))
    codes = _read_codes(path)
    _check_codes(path, codes, meta)
    if item_ids is not None:
        hint = f"rebuild with `mfmrec ids build {dataset_dir} --name {name} ...`"
        if len(item_ids) != len(codes):
            raise DataError(f"{path}: {len(codes)} items but the dataset has "
                            f"{len(item_ids)}; {hint}")
        if meta.get("items_digest") != items_digest(item_ids):
            raise DataError(f"{path}: built for another item order; {hint}")
    return SemanticIds(name=name, codes=codes, levels=meta["levels"],
                       codebook=meta["codebook"], dedup_size=meta["dedup_size"], meta=meta)
