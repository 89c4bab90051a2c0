"""Extract item features into the store: batched, with a progress bar, resumable.

Each finished batch is written at once to ``features/.partial-<name>/chunk-*.safetensors``
(atomically), beside a ``manifest.json`` that fingerprints the encoder, its
preprocessing and the inputs. A re-run with the same fingerprint loads the chunks and
encodes only the items they lack; a different fingerprint discards them. When every item
is done the chunks are assembled into ``features/<name>.safetensors`` (and
``<name>-layers.safetensors`` with ``layers=True``), written atomically, and the partial
folder is removed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text
from safetensors.torch import load_file, save

from mfmrec.data import load_dataset
from mfmrec.data.dataset import Dataset
from mfmrec.errors import ConfigError, DataError
from mfmrec.features.encoders import Encoder, build_encoder, modality_of, store_name
from mfmrec.features.images import file_stem, images_from_folder, load_image
from mfmrec.features.store import (
    FEATURES_DIR,
    check_name,
    feature_path,
    layers_name,
    read_meta,
    save_features,
)
from mfmrec.io import atomic_file, write_json


@dataclass(frozen=True)
class ExtractResult:
    path: Path
    layers_path: Path | None
    num_items: int
    num_missing: int
    encoded: int  # items encoded by this call (0 when everything was reused)
    reused: int  # items taken from an earlier, interrupted run
    up_to_date: bool = False


class RateColumn(ProgressColumn):
    """Items per second (rich's own speed column counts bytes)."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} items/s" if speed else "- items/s", style="progress.data.speed")


def item_inputs(ds: Dataset, modality: str, images_dir: str | Path | None = None) -> list:
    """Per item, the encoder input: an image path or a title; ``None`` when there is none."""
    if modality == "text":
        return [t.strip() if t and t.strip() else None for t in ds.titles]
    paths = images_from_folder(images_dir, ds.item_ids) if images_dir else ds.image_paths()
    return [p if p is not None and Path(p).is_file() else None for p in paths]


def _fingerprint(encoder: Encoder, layers: bool, inputs: list, item_ids: list[str]) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"encoder": encoder.describe(), "layers": layers}, sort_keys=True,
                        default=str).encode())
    for item_id, x in zip(item_ids, inputs, strict=True):
        h.update(f"{item_id}\t{x}\n".encode())
    return h.hexdigest()


class PartialExtraction:
    """The chunks of an unfinished extraction (``features/.partial-<name>/``)."""

    def __init__(self, dataset_dir: Path, name: str, fingerprint: str):
        self.dir = dataset_dir / FEATURES_DIR / f".partial-{name}"
        self.fingerprint = fingerprint
        manifest = self.dir / "manifest.json"
        if self.dir.is_dir():
            ok = manifest.is_file() and json.loads(manifest.read_text()).get(
                "fingerprint") == fingerprint
            if not ok:  # another encoder, input or setting: its chunks cannot be reused
                shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json(manifest, {"fingerprint": fingerprint})
        self.chunks = [load_file(p) for p in sorted(self.dir.glob("chunk-*.safetensors"))]

    def done(self) -> set[int]:
        return {i for c in self.chunks for key in ("items", "failed") for i in c[key].tolist()}

    def add(self, items: list[int], feats: torch.Tensor, layers: torch.Tensor | None,
            failed: list[int]) -> None:
        chunk = {"items": torch.tensor(items, dtype=torch.int64), "features": feats.contiguous(),
                 "failed": torch.tensor(failed, dtype=torch.int64)}
        if layers is not None:
            chunk["layers"] = layers.contiguous()
        with atomic_file(self.dir / f"chunk-{len(self.chunks):07d}.safetensors", "wb") as fh:
            fh.write(save(chunk))
        self.chunks.append(chunk)

    def assemble(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, list]:
        """(features (N, d), layers (N, L+1, d) or None, encoded (N,) bool, failed items)."""
        with_rows = [c for c in self.chunks if len(c["items"])]
        if not with_rows:
            raise ConfigError("no item could be encoded: every input is missing or unreadable")
        first = with_rows[0]
        feats = first["features"].new_zeros(n, *first["features"].shape[1:])
        layers = first["layers"].new_zeros(n, *first["layers"].shape[1:]) \
            if "layers" in first else None
        encoded = torch.zeros(n, dtype=torch.bool)
        failed: list[int] = []
        for c in self.chunks:
            feats[c["items"]] = c["features"]
            if layers is not None and len(c["items"]):
                layers[c["items"]] = c["layers"]
            encoded[c["items"]] = True
            failed += c["failed"].tolist()
        return feats, layers, encoded, sorted(failed)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _batches(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start: start + size]


def _load_batch(encoder: Encoder, inputs: list, batch: list[int]) -> tuple[list, list, list]:
    """(items that decoded, their encoder inputs, items whose file is unreadable)."""
    if encoder.modality == "text":
        return batch, [inputs[i] for i in batch], []
    ok, images, failed = [], [], []
    for i in batch:
        image = load_image(inputs[i])
        if image is None:
            failed.append(i)
        else:
            ok.append(i)
            images.append(image)
    return ok, images, failed


def _progress(quiet: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), TimeElapsedColumn(), TextColumn("eta"),
                    TimeRemainingColumn(), disable=quiet)


def _run_batches(encoder: Encoder, partial: PartialExtraction, inputs: list, todo: list[int],
                 batch_size: int, layers: bool, quiet: bool) -> int:
    with _progress(quiet) as bar:
        task = bar.add_task(f"{encoder.name}", total=len(todo))
        for batch in _batches(todo, batch_size):
            ok, xs, failed = _load_batch(encoder, inputs, batch)
            feats, states = (encoder.encode_batch(xs, layers=layers) if ok
                             else (torch.zeros(0, encoder.dim), None))
            if layers and states is None and ok:
                raise ConfigError(f"encoder {encoder.name} has no per-layer states")
            partial.add(ok, feats, states, failed)
            bar.advance(task, len(batch))
    return len(todo)


def extract_features(
    dataset: str | Path | Dataset, encoder: str | Encoder, *, model_path: str | Path | None = None,
    images_dir: str | Path | None = None, batch_size: int = 32, device: str = "cpu",
    layers: bool = False, name: str | None = None, force: bool = False, quiet: bool = False,
) -> ExtractResult:
    """Encode every item of a prepared dataset and write its feature store.

    ``encoder`` is a name (see :mod:`mfmrec.features.encoders`) or a ready
    :class:`Encoder`. A store already made with the same fingerprint is left alone unless
    ``force``; an interrupted run resumes from its chunks.
    """
    if batch_size < 1:
        raise ConfigError(f"--batch-size: must be >= 1, got {batch_size}")
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    enc_name = encoder if isinstance(encoder, str) else encoder.name
    name = check_name(name or store_name(enc_name, model_path))
    modality = modality_of(enc_name) if isinstance(encoder, str) else encoder.modality
    inputs = item_inputs(ds, modality, images_dir)
    if not any(x is not None for x in inputs):
        what = "image" if modality == "image" else "title"
        hint = " (run `mfmrec data images` or pass --images DIR)" if modality == "image" else ""
        raise ConfigError(f"{ds.root}: no item has an {what}{hint}")
    enc = build_encoder(encoder, model_path, device) if isinstance(encoder, str) else encoder
    fingerprint = _fingerprint(enc, layers, inputs, ds.item_ids)
    path = feature_path(ds.root, name)
    if not force and _up_to_date(ds.root, name, fingerprint, layers):
        meta = read_meta(path)
        lpath = feature_path(ds.root, layers_name(name)) if layers else None
        return ExtractResult(path, lpath, meta["num_items"], meta["num_missing"], 0, 0, True)
    partial = PartialExtraction(ds.root, name, fingerprint)
    done = partial.done()
    todo = [i for i, x in enumerate(inputs) if x is not None and i not in done]
    encoded = _run_batches(enc, partial, inputs, todo, batch_size, layers, quiet)
    return _finish(ds, enc, name, partial, inputs, fingerprint, layers, encoded, len(done))


def _up_to_date(root: Path, name: str, fingerprint: str, layers: bool) -> bool:
    names = [name, layers_name(name)] if layers else [name]
    paths = [feature_path(root, n) for n in names]
    return all(p.is_file() and read_meta(p).get("fingerprint") == fingerprint for p in paths)


def _finish(ds: Dataset, enc: Encoder, name: str, partial: PartialExtraction, inputs: list,
            fingerprint: str, layers: bool, encoded: int, reused: int) -> ExtractResult:
    feats, states, ok, failed = partial.assemble(ds.num_items)
    ids = ds.item_ids
    meta = dict(enc.describe(), fingerprint=fingerprint, dataset=ds.name,
                no_input=sum(x is None for x in inputs),
                unreadable_items=[ids[i] for i in failed])
    layers_path = None
    if layers:
        layer_meta = dict(meta, features_of=name)
        layers_path = save_features(ds, layers_name(name), states, ~ok, layer_meta)
    path = save_features(ds, name, feats, ~ok, meta)
    partial.remove()
    return ExtractResult(path, layers_path, ds.num_items, int((~ok).sum()), encoded, reused)


def import_features(dataset: str | Path | Dataset, name: str, folder: str | Path,
                    description: str = "", modality: str = "image") -> Path:
    """Make a store from ``folder/<item id>.npy`` files made elsewhere (e.g. CLIP RN50).

    Each file holds one vector (shape ``(d,)`` or ``(1, d)``); items without a file are
    recorded as missing. Files are read with ``allow_pickle=False``.
    """
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--from: {folder} is not a directory")
    rows: dict[int, np.ndarray] = {}
    for i, item_id in enumerate(ds.item_ids):
        for stem in (item_id, file_stem(item_id)):
            f = folder / f"{stem}.npy"
            if f.is_file():
                try:
                    rows[i] = np.load(f, allow_pickle=False).astype(np.float32).reshape(-1)
                except (ValueError, OSError) as exc:
                    raise DataError(f"{f}: not a numeric .npy array ({exc})") from None
                break
    if not rows:
        raise DataError(f"{folder}: no <item id>.npy file matches an item of {ds.root}")
    dims = {v.shape[0] for v in rows.values()}
    if len(dims) != 1:
        raise DataError(f"{folder}: vectors of different sizes {sorted(dims)}")
    matrix = torch.zeros(ds.num_items, dims.pop())
    for i, v in rows.items():
        matrix[i] = torch.from_numpy(v)
    missing = torch.ones(ds.num_items, dtype=torch.bool)
    missing[list(rows)] = False
    meta = {"encoder": name, "modality": modality, "dim": matrix.shape[1],
            "model": {"imported_from": str(folder.resolve()), "description": description},
            "preprocessing": "unknown (made outside mfmrec)", "pooling": "as imported"}
    return save_features(ds, check_name(name), matrix, missing, meta)
