"""Write a :class:`RawDataset` to the on-disk format, atomically.

Layout of a prepared dataset directory::

    dataset.json             statistics, provenance, indexing, seed, simulated flag
    users.parquet            user (int32), user_id (str), name (str|null)
    items.parquet            item (int32), item_id (str), number (int64), title, image,
                             attributes (JSON str)
    interactions.parquet     user, item, position (int32), timestamp (int64|null)
    reviews.parquet          user, item, rating, summary, text, explanation, feature,
                             reviewer_name, time          (when the source has reviews)
    splits/sequential.parquet   split label per interaction row (train/valid/test)
    splits/reviews.parquet      split label per review row
    negatives/candidates.parquet  user, split, positive, candidates (list of 100 items)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mfmrec.data import splits as S
from mfmrec.data.raw import REVIEW_COLUMNS, RawDataset
from mfmrec.errors import DataError
from mfmrec.io import atomic_dir, write_json

FORMAT_VERSION = 1


def _write(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")


def _items_table(raw: RawDataset, numbers: np.ndarray) -> pa.Table:
    n = len(raw.item_ids)
    attrs = raw.item_attributes or [None] * n
    return pa.table({
        "item": pa.array(np.arange(n, dtype=np.int32)),
        "item_id": pa.array(raw.item_ids, pa.string()),
        "number": pa.array(numbers, pa.int64()),
        "title": pa.array(raw.item_titles or [None] * n, pa.string()),
        "image": pa.array(raw.item_images or [None] * n, pa.string()),
        "attributes": pa.array(
            [json.dumps(a, sort_keys=True) if a else None for a in attrs], pa.string()
        ),
    })


def _interactions_table(raw: RawDataset) -> pa.Table:
    users = np.repeat(np.arange(len(raw.sequences), dtype=np.int32),
                      [len(s) for s in raw.sequences])
    items = np.fromiter((i for s in raw.sequences for i in s), dtype=np.int32,
                        count=len(users))
    pos = np.fromiter((p for s in raw.sequences for p in range(len(s))), dtype=np.int32,
                      count=len(users))
    ts = None
    if raw.timestamps is not None:
        ts = np.fromiter((t for s in raw.timestamps for t in s), dtype=np.int64,
                         count=len(users))
    return pa.table({
        "user": users, "item": items, "position": pos,
        "timestamp": pa.array(ts if ts is not None else [None] * len(users), pa.int64()),
    })


def _candidates_table(raw: RawDataset, labels, num_negatives: int, rng) -> pa.Table:
    n_items = len(raw.item_ids)
    rows = {"user": [], "split": [], "positive": [], "candidates": []}
    for user, (seq, lab) in enumerate(zip(raw.sequences, labels, strict=True)):
        history = set(seq)
        for split in (S.VALID, S.TEST):
            if split not in lab:
                continue
            positive = seq[lab.index(split)]
            try:
                cands = S.sample_candidates(history, positive, n_items, num_negatives, rng)
            except ValueError as exc:
                source = raw.provenance.get("source", raw.name)
                raise DataError(f"{source}: user {raw.user_ids[user]}: {exc} "
                                "(lower --negatives)") from None
            rows["user"].append(user)
            rows["split"].append(split)
            rows["positive"].append(positive)
            rows["candidates"].append(cands)
    return pa.table({
        "user": pa.array(rows["user"], pa.int32()),
        "split": pa.array(rows["split"], pa.string()),
        "positive": pa.array(rows["positive"], pa.int32()),
        "candidates": pa.array(rows["candidates"], pa.list_(pa.int32())),
    })


def statistics(raw: RawDataset) -> dict:
    users, items = len(raw.user_ids), len(raw.item_ids)
    inter = sum(len(s) for s in raw.sequences)
    reviews = len(raw.reviews["user"]) if raw.reviews is not None else 0
    return {
        "users": users, "items": items, "interactions": inter, "reviews": reviews,
        "avg_seq_len": round(inter / users, 4) if users else 0.0,
        "sparsity": round(1 - inter / (users * items), 6) if users and items else 1.0,
    }


def validate(raw: RawDataset, source: str) -> None:
    if not raw.user_ids or not raw.item_ids or not any(raw.sequences):
        raise DataError(f"{source}: empty dataset (no users, items or interactions)")
    n = len(raw.item_ids)
    for u, seq in enumerate(raw.sequences):
        if any(not 0 <= i < n for i in seq):
            raise DataError(f"{source}: user {raw.user_ids[u]} refers to an unknown item")


def check_out(out: Path, force: bool = False) -> None:
    """Refuse to write into an existing non-empty ``out`` unless ``force``; even then,
    replace only a prepared dataset.

    The write replaces ``out`` as a whole, so a mistyped ``--out ~`` must not delete a
    user's folder, and a dataset that runs were trained on is not replaced by accident.
    """
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not (out.is_dir() and (out / "dataset.json").is_file()):
        raise DataError(f"{out}: exists and is not an mfmrec dataset; refusing to replace it "
                        "(choose a new --out directory)")
    if not force:
        raise DataError(f"{out}: already holds a dataset; pass --force to replace it (runs "
                        "trained on it will then refuse the changed data), or choose a new "
                        "--out directory")


def dropped_entries(out: Path, tmp: Path) -> list[str]:
    """What replacing ``out`` by ``tmp`` drops: entries of ``out`` (derived data such as
    ``features/``, ``ids/``, ``tokenizers/``) that the new dataset does not have."""
    if not out.is_dir():
        return []
    return sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir()
                  if not p.name.startswith(".") and not (tmp / p.name).exists())


def _stderr(text: str) -> None:
    print(text, file=sys.stderr)


def write_dataset(
    raw: RawDataset, out: str | Path, *, seed: int = 2022, indexing: str = "random",
    num_negatives: int = 99, assets: Callable[[Path], None] | None = None,
    force: bool = False, note: Callable[[str], None] = _stderr,
) -> Path:
    """Split, sample negatives, index items and write ``raw`` to ``out`` atomically.

    ``assets(tmp_dir)``, when given, writes extra files (e.g. the demo's images) into the
    temporary directory before it is renamed into place. An existing dataset at ``out``
    is replaced only with ``force`` (in one rename; on failure it stays as it was), and
    ``note`` gets one line listing the derived folders of the old one that are dropped.
    """
    if indexing not in S.INDEXINGS:
        raise DataError(f"--indexing: expected one of {', '.join(S.INDEXINGS)}, got {indexing}")
    if num_negatives < 0:
        raise DataError(f"--negatives: expected a non-negative integer, got {num_negatives}")
    validate(raw, raw.provenance.get("source", raw.name))
    out = Path(out)
    check_out(out, force)
    # independent streams so changing one part never shifts another
    rng_idx, rng_rev, rng_neg = (np.random.default_rng([seed, k]) for k in range(3))
    labels = S.leave_one_out([len(s) for s in raw.sequences])
    numbers = S.item_numbers(raw.sequences, len(raw.item_ids), indexing, rng_idx)
    with atomic_dir(out) as tmp:
        (tmp / "splits").mkdir()
        (tmp / "negatives").mkdir()
        _write(pa.table({
            "user": pa.array(np.arange(len(raw.user_ids), dtype=np.int32)),
            "user_id": pa.array(raw.user_ids, pa.string()),
            "name": pa.array(raw.user_names or [None] * len(raw.user_ids), pa.string()),
        }), tmp / "users.parquet")
        _write(_items_table(raw, numbers), tmp / "items.parquet")
        _write(_interactions_table(raw), tmp / "interactions.parquet")
        _write(pa.table({"split": pa.array([x for lab in labels for x in lab], pa.string())}),
               tmp / "splits" / "sequential.parquet")
        _write(_candidates_table(raw, labels, num_negatives, rng_neg),
               tmp / "negatives" / "candidates.parquet")
        review_split = _write_reviews(raw, tmp, rng_rev)
        meta = {
            "format_version": FORMAT_VERSION, "name": raw.name, "simulated": raw.simulated,
            "statistics": statistics(raw), "provenance": raw.provenance,
            "indexing": indexing, "seed": seed, "num_negatives": num_negatives,
            "splits": {
                "sequential": "leave-one-out: last item test, second-to-last valid, rest "
                              "train; users with <3 interactions only train",
                "reviews": review_split,
            },
            **raw.extra_meta,
        }
        if assets is not None:
            assets(tmp)
        write_json(tmp / "dataset.json", meta)
        dropped = dropped_entries(out, tmp)
    if dropped:
        note(f"note: {out}: replaced; dropped the old dataset's derived data, which no "
             f"longer matches: {', '.join(dropped)}")
    return out


def _write_reviews(raw: RawDataset, tmp: Path, rng) -> dict | None:
    if raw.reviews is None:
        return None
    r = raw.reviews
    table = pa.table({
        "user": pa.array(r["user"], pa.int32()), "item": pa.array(r["item"], pa.int32()),
        "rating": pa.array(r["rating"], pa.float32()),
        **{c: pa.array(r[c], pa.string()) for c in REVIEW_COLUMNS[3:8]},
        "time": pa.array(r["time"], pa.int64()),
    })
    _write(table, tmp / "reviews.parquet")
    labels = S.split_reviews(np.asarray(r["user"]), np.asarray(r["item"]), rng)
    _write(pa.table({"split": pa.array(labels.tolist(), pa.string())}),
           tmp / "splits" / "reviews.parquet")
    counts = {k: int((labels == k).sum()) for k in (S.TRAIN, S.VALID, S.TEST)}
    return {"rule": "random 8:1:1; every user and item keeps a training review", **counts}
