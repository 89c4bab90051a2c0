"""Import RecBole atomic files: ``<name>.inter`` and the optional ``<name>.item``.

Atomic files are tab-separated with a typed header, e.g.::

    user_id:token	item_id:token	rating:float	timestamp:float

Types are ``token``, ``token_seq`` (space-separated tokens), ``float`` and
``float_seq``. ``user_id`` and ``item_id`` must be tokens; ``timestamp`` and ``rating``,
when present, floats. Each user's sequence is ordered by ``timestamp`` with **equal
times kept in file order** (a stable sort), or in file order when there is no
timestamp column. Users and items are indexed in order of first appearance in the
``.inter`` file. In ``<name>.item``, ``title`` (or ``item_name``) becomes the item
title and every other column an attribute. RecBole files carry no review text, so no
``reviews.parquet`` is written (ratings are read, checked and not stored).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mfmrec.data.importers.records import iter_lines
from mfmrec.data.raw import RawDataset
from mfmrec.errors import DataError, located

TYPES = ("token", "token_seq", "float", "float_seq")
TIE_BREAK = "equal timestamp: original file order (stable sort)"
_EXPECTED = {"user_id": "token", "item_id": "token", "timestamp": "float", "rating": "float"}
_TITLE_FIELDS = ("title", "item_name")


def parse_header(line: str, path: Path) -> list[tuple[str, str]]:
    """``name:type`` columns of an atomic file header, checked against :data:`TYPES`."""
    columns = []
    for col in line.rstrip("\r\n").split("\t"):
        name, sep, typ = col.strip().rpartition(":")
        if not sep or not name:
            raise DataError(located(path, f"header column {col!r}: expected name:type", 1))
        if typ not in TYPES:
            raise DataError(located(path, f"header column {name!r}: unknown type {typ!r} "
                                          f"(expected one of {', '.join(TYPES)})", 1))
        want = _EXPECTED.get(name)
        if want is not None and typ != want:
            raise DataError(located(path, f"header column {name!r}: type must be {want}, "
                                          f"got {typ}", 1))
        columns.append((name, typ))
    names = [n for n, _ in columns]
    if len(set(names)) != len(names):
        raise DataError(located(path, "header names a column twice", 1))
    return columns


def _finite(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def _value(raw: str, typ: str, name: str, path: Path, lineno: int):
    try:
        if typ == "float":
            return _finite(raw)
        if typ == "float_seq":
            return [_finite(x) for x in raw.split()]
    except ValueError:
        raise DataError(located(path, f"field {name!r}: expected {typ}, got {raw!r:.40}",
                                lineno)) from None
    return raw.split() if typ == "token_seq" else raw


def read_atomic(path: Path, required: tuple[str, ...]) -> tuple[list[tuple[str, str]],
                                                                 list[tuple[int, dict]]]:
    """Header and typed rows ``(line number, {name: value})`` of an atomic file."""
    lines = iter_lines(path)
    first = next(lines, None)
    if first is None:
        raise DataError(located(path, "empty file (no header)"))
    columns = parse_header(first[1], path)
    for name in required:
        if name not in dict(columns):
            raise DataError(located(path, f"header lacks the {name}:"
                                          f"{_EXPECTED.get(name, 'token')} column", 1))
    rows = []
    for lineno, line in lines:
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != len(columns):
            raise DataError(located(path, f"expected {len(columns)} tab-separated fields, got "
                                          f"{len(fields)}", lineno))
        row = {n: _value(v, t, n, path, lineno) for (n, t), v in zip(columns, fields,
                                                                      strict=True)}
        for name in required:
            if not row[name]:
                raise DataError(located(path, f"field {name!r} is empty", lineno))
        rows.append((lineno, row))
    return columns, rows


def find_inter(src: Path) -> Path:
    """The ``.inter`` file of a RecBole dataset directory (or the file itself)."""
    if src.is_file():
        return src
    if not src.is_dir():
        raise DataError(located(src, "RecBole dataset directory not found"))
    preferred = src / f"{src.name}.inter"
    if preferred.is_file():
        return preferred
    found = sorted(src.glob("*.inter"))
    if len(found) != 1:
        what = "no .inter file" if not found else f"{len(found)} .inter files and none " \
               f"named {preferred.name}"
        raise DataError(located(src, f"expected one <name>.inter file, found {what}"))
    return found[0]


def _items_meta(path: Path, item_ids: list[str]) -> tuple[list, list]:
    columns, rows = read_atomic(path, ("item_id",))
    title_col = next((n for n, _ in columns if n in _TITLE_FIELDS), None)
    found: dict[str, tuple[str | None, dict]] = {}
    for _, row in rows:
        item = row["item_id"]
        if item in found:
            continue
        title = row.get(title_col) if title_col else None
        title = " ".join(title) if isinstance(title, list) else title
        attrs = {k: v for k, v in row.items() if k not in ("item_id", title_col) and v != []
                 and v != ""}
        found[item] = (title or None, attrs)
    titles = [found[i][0] if i in found else None for i in item_ids]
    attributes = [(found[i][1] or None) if i in found else None for i in item_ids]
    return titles, attributes


def import_recbole(src: str | Path, name: str | None = None) -> RawDataset:
    """Read RecBole atomic files into a :class:`RawDataset`."""
    inter = find_inter(Path(src))
    columns, rows = read_atomic(inter, ("user_id", "item_id"))
    if not rows:
        raise DataError(located(inter, "empty dataset (a header and no interactions)"))
    has_time = "timestamp" in dict(columns)
    user_index: dict[str, int] = {}
    item_index: dict[str, int] = {}
    users = np.fromiter((user_index.setdefault(r["user_id"], len(user_index)) for _, r in rows),
                        dtype=np.int64, count=len(rows))
    items = [item_index.setdefault(r["item_id"], len(item_index)) for _, r in rows]
    times = np.asarray([r["timestamp"] for _, r in rows] if has_time else np.zeros(len(rows)),
                       dtype=np.float64)
    order = np.lexsort((np.arange(len(rows)), times, users))  # user, time, file order
    sequences: list[list[int]] = [[] for _ in user_index]
    stamps: list[list[int]] = [[] for _ in user_index]
    for pos in order.tolist():
        sequences[users[pos]].append(items[pos])
        stamps[users[pos]].append(int(times[pos]))
    item_ids = list(item_index)
    item_file = inter.with_suffix(".item")
    titles, attributes = (_items_meta(item_file, item_ids) if item_file.is_file()
                          else (None, None))
    return RawDataset(
        name=name or inter.stem, user_ids=list(user_index), item_ids=item_ids,
        sequences=sequences, item_titles=titles, item_attributes=attributes,
        timestamps=stamps if has_time else None,
        provenance={
            "source": str(inter.parent.resolve()), "importer": "recbole",
            "files": [inter.name] + ([item_file.name] if item_file.is_file() else []),
            "columns": [f"{n}:{t}" for n, t in columns],
            "order": TIE_BREAK if has_time else "file order (no timestamp column)",
        },
    )
