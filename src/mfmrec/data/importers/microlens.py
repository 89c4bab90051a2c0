"""Import MicroLens (Ni et al., 2023; the IISAN-Versa benchmark) from its published files.

Expected layout of ``DIR`` (``<name>`` is e.g. ``MicroLens-50k`` or ``MicroLens-100k``)::

    <name>_pairs.csv      header user,item,timestamp; one interaction per row
                          (timestamps in milliseconds are stored in seconds)
    <name>_pairs.tsv      used only without the .csv: "user<TAB>item item item ...",
                          each user's items already in time order, no timestamps
    <name>_titles.csv     optional, header item,title (or <name>_title_en.csv)
    covers/<item>.jpg     optional cover images (or <name>_covers/)

Each user's sequence follows the timestamps, **equal times kept in file order** (a
stable sort); users and items are indexed in order of first appearance. Items without
a title or a cover keep ``None``. Covers are referenced in place (absolute paths).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from mfmrec.data.importers.records import iter_lines
from mfmrec.data.raw import RawDataset
from mfmrec.errors import DataError, located

TIE_BREAK = "equal timestamp: original file order (stable sort)"
_MS_ABOVE = 10**11  # a timestamp above this is in milliseconds (year 5138 in seconds)
_COVER_EXTS = (".jpg", ".jpeg", ".png")


def _one(src: Path, patterns: tuple[str, ...]) -> Path | None:
    for pattern in patterns:
        found = sorted(src.glob(pattern))
        if len(found) > 1:
            raise DataError(located(src, f"several files match {pattern}: "
                                         f"{', '.join(p.name for p in found)}"))
        if found:
            return found[0]
    return None


def _split(path: Path, lineno: int, line: str) -> list[str]:
    try:
        return [f.strip() for f in next(csv.reader([line.rstrip("\r\n")]))]
    except csv.Error as exc:
        raise DataError(located(path, f"malformed CSV ({exc})", lineno)) from None


def _csv_rows(path: Path, header: tuple[str, ...], ids: int) -> list[tuple[int, list[str]]]:
    """(line, fields) of a CSV file whose first line is ``header``; the first ``ids``
    fields of every row must be non-empty."""
    lines = iter_lines(path)
    lineno, line = next(lines, (1, ""))
    if tuple(f.lower() for f in _split(path, lineno, line)) != header:
        raise DataError(located(path, f"expected the header {','.join(header)}", lineno))
    rows = []
    for lineno, line in lines:
        fields = _split(path, lineno, line)
        if len(fields) != len(header):
            raise DataError(located(path, f"expected {len(header)} fields "
                                          f"({','.join(header)}), got {len(fields)}", lineno))
        if not all(fields[:ids]):
            raise DataError(located(path, f"empty {header[fields.index('')]}", lineno))
        rows.append((lineno, fields))
    return rows


def _pairs_csv(path: Path) -> tuple[list[str], list[str], list[int]]:
    users, items, times = [], [], []
    for lineno, (user, item, stamp) in _csv_rows(path, ("user", "item", "timestamp"), 2):
        try:
            time = int(stamp)
        except ValueError:
            raise DataError(located(path, f"timestamp {stamp!r:.40} is not an integer",
                                    lineno)) from None
        if abs(time) >= 2**62:
            raise DataError(located(path, f"timestamp {time} out of range", lineno))
        users.append(user)
        items.append(item)
        times.append(time)
    return users, items, times


def _pairs_tsv(path: Path) -> tuple[list[str], list[str], list[int]]:
    users, items, times = [], [], []
    for lineno, line in iter_lines(path):
        user, sep, rest = line.rstrip("\r\n").partition("\t")
        seq = rest.replace(",", " ").split()
        if not sep or not user.strip() or not seq:
            raise DataError(located(path, "expected user<TAB>item item ...", lineno))
        users += [user.strip()] * len(seq)
        items += seq
        times += range(len(seq))  # the file's order is the time order
    return users, items, times


def _titles(path: Path | None, item_ids: list[str]) -> list[str | None] | None:
    if path is None:
        return None
    found: dict[str, str] = {}
    for _, (item, title) in _csv_rows(path, ("item", "title"), 1):
        found.setdefault(item, title)
    return [found.get(i) or None for i in item_ids]


def _covers(folder: Path | None, item_ids: list[str]) -> list[str | None] | None:
    if folder is None:
        return None
    index = {p.stem: p for p in sorted(folder.iterdir())
             if p.suffix.lower() in _COVER_EXTS and p.is_file()}
    return [str(index[i].resolve()) if i in index else None for i in item_ids]


def _sequences(users: list[str], items: list[str], times: list[int]):
    index_u: dict[str, int] = {}
    index_i: dict[str, int] = {}
    u = np.fromiter((index_u.setdefault(x, len(index_u)) for x in users), np.int64, len(users))
    i = np.fromiter((index_i.setdefault(x, len(index_i)) for x in items), np.int64, len(items))
    t = np.asarray(times, dtype=np.int64)
    order = np.lexsort((np.arange(len(u)), t, u))
    sequences: list[list[int]] = [[] for _ in index_u]
    stamps: list[list[int]] = [[] for _ in index_u]
    for a, b, c in zip(u[order].tolist(), i[order].tolist(), t[order].tolist(), strict=True):
        sequences[a].append(b)
        stamps[a].append(c)
    return list(index_u), list(index_i), sequences, stamps


def import_microlens(src: str | Path, name: str | None = None) -> RawDataset:
    """Read a MicroLens directory (see the module docstring) into a :class:`RawDataset`."""
    src = Path(src)
    if not src.is_dir():
        raise DataError(located(src, "not a directory (expected a MicroLens folder)"))
    pairs = _one(src, ("*_pairs.csv", "*_pairs.tsv"))
    if pairs is None:
        raise DataError(located(src, "no <name>_pairs.csv or <name>_pairs.tsv found"))
    read = _pairs_csv if pairs.suffix == ".csv" else _pairs_tsv
    users, items, times = read(pairs)
    if not users:
        raise DataError(located(pairs, "empty dataset (no interactions)"))
    in_ms = pairs.suffix == ".csv" and max(map(abs, times)) > _MS_ABOVE
    user_ids, item_ids, sequences, stamps = _sequences(
        users, items, [t // 1000 for t in times] if in_ms else times)
    titles_file = _one(src, ("*_titles.csv", "*_title_en.csv"))
    covers = next((d for d in (src / "covers", *sorted(src.glob("*_covers"))) if d.is_dir()),
                  None)
    stem = pairs.name.rsplit("_pairs", 1)[0]
    return RawDataset(
        name=name or stem.lower() or "microlens", user_ids=user_ids, item_ids=item_ids,
        sequences=sequences, item_titles=_titles(titles_file, item_ids),
        item_images=_covers(covers, item_ids),
        timestamps=stamps if pairs.suffix == ".csv" else None,
        provenance={"source": str(src.resolve()), "importer": "microlens",
                    "files": [p.name for p in (pairs, titles_file, covers) if p is not None],
                    "timestamps": ("milliseconds, stored in seconds" if in_ms else
                                   "as given" if pairs.suffix == ".csv" else "none (.tsv)"),
                    "tie_break": TIE_BREAK},
    )
