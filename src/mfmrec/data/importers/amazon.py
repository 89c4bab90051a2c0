"""Import raw Amazon review dumps (McAuley et al., 2014 and 2018 schemas).

Reviews: one JSON object per line (``.json`` or gzip-compressed ``.json.gz``; the
compression is detected from the file's first bytes) with ``reviewerID``, ``asin``,
``overall``, ``unixReviewTime`` and optional ``reviewerName``, ``summary``,
``reviewText`` (2018 adds ``vote``/``style``/``image``, which are ignored).

Meta (optional): one object per line; the 2014 files hold Python literals, which are
parsed with :func:`ast.literal_eval` (never ``eval``) when :func:`json.loads` fails.
Gives the title and the attributes ``brand``, ``categories``, ``price`` and
``image_url`` (first of ``imageURLHighRes``, ``imageURL``, ``imUrl``; the image
download command reads it).

Processing, in this order:

1. exact repeats of (user, item, unixReviewTime) are dropped (the 2018 dumps hold
   duplicated reviews); the first line wins;
2. iterative k-core: users and items with fewer than ``k`` reviews are removed until
   every remaining user and item has at least ``k``;
3. users and items are indexed in order of first appearance in the file; each user's
   sequence is sorted by ``unixReviewTime`` with **equal times kept in file order**
   (a stable sort; never by item id, which would leak the id order into the sequence);
4. every kept review becomes a row of ``reviews.parquet``; its explanation sentence and
   feature word are derived by :mod:`mfmrec.data.explanations`.
"""

from __future__ import annotations

import ast
import gzip
import html
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mfmrec.data.explanations import extract_explanations
from mfmrec.data.raw import RawDataset
from mfmrec.errors import DataError, located

TIE_BREAK = "equal unixReviewTime: original file order (stable sort)"
_PRICE = re.compile(r"^\$?\s*(\d[\d,]*(?:\.\d+)?)$")


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a plain or gzip-compressed UTF-8 file, blank lines skipped.

    A missing file, a corrupt or truncated gzip stream and non-UTF-8 bytes become a
    one-line :class:`DataError` naming the file (and line where known).
    """
    if not path.is_file():
        raise DataError(located(path, "not a file" if path.exists() else "file not found"))
    with path.open("rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    lineno = 0
    try:
        with gzip.open(path, "rb") if compressed else path.open("rb") as fh:
            # decode line by line so a bad byte is reported on its own line
            for lineno, raw in enumerate(fh, 1):  # noqa: B007 (lineno used below)
                line = raw.decode("utf-8")
                if line.strip():
                    yield lineno, line
    except UnicodeDecodeError as exc:
        raise DataError(located(path, f"not UTF-8 text ({exc.reason})", lineno)) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(located(path, f"corrupt or truncated gzip ({exc})")) from None


def parse_object(line: str, path: Path, lineno: int) -> dict:
    """A JSON object, or a Python-literal dict (old Amazon meta files); never ``eval``."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        try:
            obj = ast.literal_eval(line.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise DataError(located(path, f"invalid JSON ({exc.msg}, column {exc.colno})",
                                    lineno)) from None
    if not isinstance(obj, dict):
        raise DataError(located(path, f"expected a JSON object, got {type(obj).__name__}",
                                lineno))
    return obj


def _field(obj: dict, key: str, types: tuple, path: Path, lineno: int, required: bool):
    value = obj.get(key)
    if value is None:
        if required:
            raise DataError(located(path, f"field {key!r} missing", lineno))
        return None
    if not isinstance(value, types) or isinstance(value, bool):
        names = "/".join(t.__name__ for t in types)
        raise DataError(located(path, f"field {key!r}: expected {names}, got {value!r:.40}",
                                lineno))
    return value


def _read_reviews(path: Path) -> tuple[dict[str, list], bool]:
    """Review columns in file order (repeats dropped) and whether it is the 2018 schema."""
    cols: dict[str, list] = {k: [] for k in ("user", "item", "rating", "time", "summary",
                                             "text", "name")}
    seen: set[tuple[str, str, int]] = set()
    is_2018 = False
    for lineno, line in iter_lines(path):
        obj = parse_object(line, path, lineno)
        user = _field(obj, "reviewerID", (str,), path, lineno, True)
        item = _field(obj, "asin", (str,), path, lineno, True)
        rating = _field(obj, "overall", (int, float), path, lineno, True)
        time = _field(obj, "unixReviewTime", (int,), path, lineno, True)
        summary = _field(obj, "summary", (str,), path, lineno, False) or ""
        text = _field(obj, "reviewText", (str,), path, lineno, False) or ""
        name = _field(obj, "reviewerName", (str,), path, lineno, False)
        is_2018 = is_2018 or any(k in obj for k in ("vote", "style", "image"))
        if (user, item, time) in seen:
            continue
        seen.add((user, item, time))
        for key, value in zip(cols, (user, item, float(rating), time, summary, text, name),
                              strict=True):
            cols[key].append(value)
    if not cols["user"]:
        raise DataError(located(path, "empty dataset (no reviews)"))
    return cols, is_2018


def _codes(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """Integer codes in order of first appearance, and the distinct values."""
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64,
                        count=len(values))
    return codes, list(index)


def kcore_mask(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Rows kept by iterative k-core filtering (every user and item ends with >= k rows)."""
    keep = np.ones(len(users), dtype=bool)
    if k <= 1:
        return keep
    while True:
        u_count = np.bincount(users[keep], minlength=users.max() + 1)
        i_count = np.bincount(items[keep], minlength=items.max() + 1)
        drop = keep & ((u_count[users] < k) | (i_count[items] < k))
        if not drop.any():
            return keep
        keep &= ~drop


def _categories(obj: dict) -> list[str] | None:
    raw = obj.get("categories", obj.get("category"))
    if not isinstance(raw, list):
        return None
    flat = [c for x in raw for c in (x if isinstance(x, list) else [x]) if isinstance(c, str)]
    return list(dict.fromkeys(flat)) or None


def _image_url(obj: dict) -> str | None:
    for key in ("imageURLHighRes", "imageURL"):
        urls = obj.get(key)
        if isinstance(urls, list) and urls and isinstance(urls[0], str) and urls[0]:
            return urls[0]
    url = obj.get("imUrl")
    return url if isinstance(url, str) and url else None


def _price(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _PRICE.match(value.strip()) if isinstance(value, str) else None
    return float(match.group(1).replace(",", "")) if match else None


def read_meta(path: Path, wanted: set[str]) -> dict[str, tuple[str | None, dict]]:
    """ASIN -> (title, attributes) for the items in ``wanted``."""
    out: dict[str, tuple[str | None, dict]] = {}
    for lineno, line in iter_lines(path):
        obj = parse_object(line, path, lineno)
        asin = _field(obj, "asin", (str,), path, lineno, True)
        if asin not in wanted or asin in out:
            continue
        title = _field(obj, "title", (str,), path, lineno, False)
        brand = _field(obj, "brand", (str,), path, lineno, False)
        attrs = {"brand": html.unescape(brand).strip() if brand else None,
                 "categories": _categories(obj), "price": _price(obj.get("price")),
                 "image_url": _image_url(obj)}
        title = html.unescape(title).strip() if title else None
        out[asin] = (title or None, {k: v for k, v in attrs.items() if v})
    return out


def _dataset_name(path: Path) -> str:
    stem = path.name
    for suffix in (".gz", ".json", ".jsonl"):
        stem = stem.removesuffix(suffix)
    return stem.removeprefix("reviews_").lower() or "amazon"


def import_amazon(
    reviews: str | Path, meta: str | Path | None = None, *, kcore: int = 5,
    name: str | None = None,
) -> RawDataset:
    """Read an Amazon review dump (and optional meta) into a :class:`RawDataset`."""
    reviews = Path(reviews)
    if kcore < 0:
        raise DataError(f"--kcore: expected a non-negative integer, got {kcore}")
    cols, is_2018 = _read_reviews(reviews)
    u_codes, _ = _codes(cols["user"])
    i_codes, _ = _codes(cols["item"])
    keep = kcore_mask(u_codes, i_codes, kcore)
    if not keep.any():
        raise DataError(located(reviews, f"empty dataset after {kcore}-core filtering "
                                         f"({len(keep)} reviews read, none kept)"))
    rows = np.flatnonzero(keep)
    users, user_ids = _codes([cols["user"][r] for r in rows])
    items, item_ids = _codes([cols["item"][r] for r in rows])
    times = np.asarray(cols["time"], dtype=np.int64)[rows]
    order = np.lexsort((np.arange(len(rows)), times, users))  # user, time, file order
    sequences: list[list[int]] = [[] for _ in user_ids]
    stamps: list[list[int]] = [[] for _ in user_ids]
    for pos in order.tolist():
        sequences[users[pos]].append(int(items[pos]))
        stamps[users[pos]].append(int(times[pos]))
    names: list[str | None] = [None] * len(user_ids)
    for pos, r in enumerate(rows.tolist()):
        if names[users[pos]] is None and cols["name"][r]:
            names[users[pos]] = cols["name"][r]
    picked = [int(rows[p]) for p in order.tolist()]
    review_cols = _review_columns(cols, picked, users[order], items[order])
    explained = extract_explanations(review_cols["text"], review_cols["summary"])
    review_cols["explanation"] = explained.sentences
    review_cols["feature"] = explained.features
    titles, attributes = _meta_columns(Path(meta) if meta else None, item_ids)
    return RawDataset(
        name=name or _dataset_name(reviews), user_ids=user_ids, item_ids=item_ids,
        sequences=sequences, user_names=names, item_titles=titles,
        item_attributes=attributes, timestamps=stamps, reviews=review_cols,
        provenance={
            "source": str(reviews.resolve()), "importer": "amazon",
            "schema": "2018" if is_2018 else "2014",
            "files": [reviews.name] + ([Path(meta).name] if meta else []),
            "kcore": kcore, "reviews_read": len(keep), "tie_break": TIE_BREAK,
            "duplicates": "repeats of (reviewerID, asin, unixReviewTime) dropped",
        },
        extra_meta={"explanations": explained.meta},
    )


def _review_columns(cols: dict, picked: list[int], users: np.ndarray,
                    items: np.ndarray) -> dict[str, list]:
    return {
        "user": users.tolist(), "item": items.tolist(),
        "rating": [cols["rating"][r] for r in picked],
        "summary": [cols["summary"][r] for r in picked],
        "text": [cols["text"][r] for r in picked],
        "reviewer_name": [cols["name"][r] for r in picked],
        "time": [cols["time"][r] for r in picked],
    }


def _meta_columns(meta: Path | None, item_ids: list[str]):
    if meta is None:
        return None, None
    found = read_meta(meta, set(item_ids))
    titles = [found[a][0] if a in found else None for a in item_ids]
    attributes = [found[a][1] or None if a in found else None for a in item_ids]
    return titles, attributes
