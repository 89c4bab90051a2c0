"""Batch inference: the top-k items of every user of a trained run, to one Parquet file.

``mfmrec recommend RUN_DIR --all-users --k 20 --out recs.parquet`` calls
:func:`recommend_all`. Each user gets exactly what ``mfmrec recommend RUN_DIR --user ID``
prints: the same decoding (:func:`~mfmrec.evaluation.evaluator.recommend_top_k`), the
user's full history as input, history items excluded unless ``include_seen``.

Columns, one row per (user, rank):

=============  =========  ==============================================================
``user``       string     the user's external id
``user_index`` int64      the user's internal index
``rank``       int32      1-based
``item``       int64      the item's internal index (a generated list may hold an
                          invalid index; its ``item_id`` is then null)
``item_id``    string     the item's external id
``score``      float64    the model's ``score_items`` value (seen items, kept only when
                          fewer than k unseen items exist, score -inf); NaN for models that
                          generate their list by beam search (VIP5, TIGER), which expose no
                          per-item score through the contract: the rank is their order
=============  =========  ==============================================================

The file's schema metadata records the run, model, k, ``include_seen`` and whether the
data is SIMULATED. The file is written to a temporary sibling and renamed into place.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from rich.console import Console

from mfmrec.errors import MfmrecError
from mfmrec.evaluation.evaluator import recommend_scored
from mfmrec.evaluation.report import make_progress
from mfmrec.io import atomic_file

SCHEMA = pa.schema([("user", pa.string()), ("user_index", pa.int64()), ("rank", pa.int32()),
                    ("item", pa.int64()), ("item_id", pa.string()), ("score", pa.float64())])
SCORE_NOTES = {"scores": "score_items value of the model (higher is better)",
               "list": "NaN: the list comes from beam search, which exposes no per-item "
                       "score; rank is the model's order"}


def _check(run, k: int, batch_size: int, out: Path) -> None:
    if "sequential" not in run.model.tasks:
        raise MfmrecError(f"model {run.model.name} does not recommend items (sequential task)")
    if k < 1:
        raise MfmrecError(f"--k: must be >= 1, got {k}")
    if batch_size < 1:
        raise MfmrecError(f"--batch-size: must be >= 1, got {batch_size}")
    if out.suffix != ".parquet":
        raise MfmrecError(f"--out: {out} must end in .parquet")
    if out.is_dir():
        raise MfmrecError(f"--out: {out} is a directory")


def _batch_table(ds, users: list[int], items: np.ndarray, scores: np.ndarray) -> pa.Table:
    """Rows of one batch: users x ranks, user-major."""
    b, k = items.shape
    flat = items.reshape(-1).astype(np.int64)
    valid = (flat >= 0) & (flat < ds.num_items)
    item_ids = [ds.item_ids[i] if ok else None for i, ok in zip(flat.tolist(), valid, strict=True)]
    user_index = np.repeat(np.asarray(users, dtype=np.int64), k)
    return pa.Table.from_arrays(
        [pa.array([ds.user_ids[u] for u in user_index.tolist()], pa.string()),
         pa.array(user_index), pa.array(np.tile(np.arange(1, k + 1, dtype=np.int32), b)),
         pa.array(flat), pa.array(item_ids, pa.string()),
         pa.array(scores.reshape(-1).astype(np.float64))], schema=SCHEMA)


def _metadata(run, k: int, include_seen: bool, prompt: str | None) -> dict[bytes, bytes]:
    produces = run.model.produces
    meta = {"run_dir": str(Path(run.run_dir).resolve()), "model": run.model.name, "k": str(k),
            "include_seen": str(include_seen).lower(), "prompt": prompt or "",
            "score": SCORE_NOTES.get(produces, produces),
            "simulated": str(bool(run.dataset.simulated)).lower()}
    return {f"mfmrec.{key}".encode(): value.encode() for key, value in meta.items()}


def recommend_all(run, k: int, out: str | Path, batch_size: int = 256,
                  include_seen: bool = False, quiet: bool = False, prompt: str | None = None,
                  console: Console | None = None) -> Path:
    """Write the top-``k`` items of every user of ``run`` (a :class:`LoadedRun`) to
    ``out`` (Parquet), ``batch_size`` users per model call; returns the path."""


    out = Path(out)
    _check(run, k, batch_size, out)
    ds = run.dataset
    k = min(k, ds.num_items)
    schema = SCHEMA.with_metadata(_metadata(run, k, include_seen, prompt))
    with atomic_file(out, "wb") as fh, pq.ParquetWriter(fh, schema) as writer, \
            make_progress(not quiet, console) as bar:
        task = bar.add_task("recommending", total=ds.num_users, unit="users")
        for start in range(0, ds.num_users, batch_size):
            users = list(range(start, min(start + batch_size, ds.num_users)))
            histories = [torch.as_tensor(ds.sequences[u], dtype=torch.long) for u in users]
            items, scores = recommend_scored(run.model, torch.tensor(users), histories, k,
                                             prompt=prompt, exclude_history=not include_seen)
            writer.write_table(_batch_table(ds, users, items, scores).cast(schema))
            bar.advance(task, len(users))
    return out
