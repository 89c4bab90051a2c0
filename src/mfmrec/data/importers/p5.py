"""Import a P5/VIP5 data directory: ``sequential_data.txt``, ``datamaps.json`` and the
optional ``item_titles.tsv``.

``sequential_data.txt`` holds one user per line, ``user_id item_id item_id ...`` with
P5's own numeric ids in time order; ``datamaps.json`` maps them to reviewer ids and
ASINs. Users and items keep P5's order as their internal index. P5's ``.pkl`` files
are pickles and are never read.
"""

from __future__ import annotations

import json
from pathlib import Path

from mfmrec.data.raw import RawDataset
from mfmrec.errors import DataError, located


def _read_datamaps(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    if not path.is_file():
        raise DataError(located(path, "missing file (a P5 directory needs datamaps.json)"))
    try:
        maps = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(located(path, f"invalid JSON ({exc})")) from None
    if not isinstance(maps, dict):
        raise DataError(located(path, "expected a JSON object at the top level"))
    for key in ("id2user", "id2item"):
        if not isinstance(maps.get(key), dict):
            raise DataError(located(path, f"field {key!r} missing or not a mapping"))
        for k, v in maps[key].items():
            if not (k.isascii() and k.isdigit()) or not isinstance(v, str) or not v:
                raise DataError(located(path, f"field {key!r}: expected numeric id -> "
                                              f"string, got {k!r}: {v!r:.40}"))
    return maps["id2user"], maps["id2item"]


def _read_sequences(path: Path, id2user: dict, id2item: dict):
    if not path.is_file():
        raise DataError(located(path, "missing file (a P5 directory needs it)"))
    users: list[str] = []
    raw_items: list[list[str]] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8", errors="strict") as fh:
        try:
            for lineno, line in enumerate(fh, 1):
                parts = line.split()
                if not parts:
                    continue
                if len(parts) < 2 or not all(p.isascii() and p.isdigit() for p in parts):
                    raise DataError(located(path, "expected 'user_id item_id ...' of integers",
                                            lineno))
                if parts[0] not in id2user:
                    raise DataError(located(path, f"user id {parts[0]} absent from "
                                                  "datamaps.json id2user", lineno))
                for p in parts[1:]:
                    if p not in id2item:
                        raise DataError(located(path, f"item id {p} absent from datamaps.json "
                                                      "id2item", lineno))
                if parts[0] in seen:
                    raise DataError(located(path, f"user id {parts[0]} appears twice", lineno))
                seen.add(parts[0])
                users.append(parts[0])
                raw_items.append(parts[1:])
        except UnicodeDecodeError as exc:
            raise DataError(located(path, f"not UTF-8 text ({exc.reason})")) from None
    return users, raw_items


def _read_titles(path: Path) -> dict[str, str]:
    titles: dict[str, str] = {}
    if not path.is_file():
        return titles
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise DataError(located(path, f"not UTF-8 text ({exc.reason})", lineno)) from None
            if lineno == 1 and line.startswith("asin\t"):
                continue
            if not line:
                continue
            if "\t" not in line:
                raise DataError(located(path, "expected 'asin<TAB>title'", lineno))
            asin, title = line.split("\t", 1)
            titles[asin] = title.strip() or None
    return titles


def import_p5(src: str | Path, name: str | None = None) -> RawDataset:
    """Read a P5 directory into a :class:`RawDataset` (internal order = P5 id order)."""
    src = Path(src)
    if not src.is_dir():
        raise DataError(located(src, "P5 source directory not found"))
    id2user, id2item = _read_datamaps(src / "datamaps.json")
    users, raw_items = _read_sequences(src / "sequential_data.txt", id2user, id2item)
    if not users:
        raise DataError(located(src / "sequential_data.txt", "empty dataset (no user lines)"))
    item_keys = sorted(id2item, key=int)
    item_pos = {k: i for i, k in enumerate(item_keys)}
    titles = _read_titles(src / "item_titles.tsv")
    asins = [id2item[k] for k in item_keys]
    order = sorted(range(len(users)), key=lambda i: int(users[i]))
    return RawDataset(
        name=name or src.name,
        user_ids=[id2user[users[i]] for i in order],
        item_ids=asins,
        sequences=[[item_pos[x] for x in raw_items[i]] for i in order],
        item_titles=[titles.get(a) for a in asins],
        provenance={"source": str(src.resolve()), "importer": "p5",
                    "files": ["sequential_data.txt", "datamaps.json"]
                    + (["item_titles.tsv"] if titles else [])},
    )
