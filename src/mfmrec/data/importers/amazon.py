"""Import raw Amazon review dumps (McAuley et al., 2014, 2018 and 2023 releases).

Reviews: one JSON object per line (``.json``/``.jsonl`` or gzip-compressed ``.gz``; the
compression is detected from the file's first bytes). 2014/2018: ``reviewerID``,
``asin``, ``overall``, ``unixReviewTime`` and optional ``reviewerName``, ``summary``,
``reviewText`` (2018 adds ``vote``/``style``/``image``, which are ignored). 2023
(detected per file: ``user_id`` instead of ``reviewerID``): ``user_id``,
``parent_asin`` (the item), ``rating``, ``timestamp`` in milliseconds (stored in
seconds; sequences are ordered by the milliseconds), ``title`` (the summary), ``text``;
see :mod:`mfmrec.data.importers.amazon_2023`.

The file is streamed twice (:mod:`mfmrec.data.importers.records`): memory holds small
per-review numbers and the text of the reviews kept, never the raw lines.

Meta (optional): one object per line; the 2014 files hold Python literals, which are
parsed with :func:`ast.literal_eval` (never ``eval``) when :func:`json.loads` fails.
Gives the title and the attributes ``brand``, ``categories``, ``price`` and
``image_url`` (first of ``imageURLHighRes``, ``imageURL``, ``imUrl``; the image
download command reads it). 2023 meta (``parent_asin``, no ``asin``) gives the same
attributes plus ``main_category`` (:func:`~mfmrec.data.importers.amazon_2023.attributes_2023`).

Processing, in this order:

1. exact repeats of (user, item, time) are dropped (the 2018 dumps hold
   duplicated reviews); the first line wins;
2. iterative k-core: users and items with fewer than ``k`` reviews are removed until
   every remaining user and item has at least ``k``;
3. users and items are indexed in order of first appearance in the file; each user's
   sequence is sorted by time with **equal times kept in file order**
   (a stable sort; never by item id, which would leak the id order into the sequence);
4. every kept review becomes a row of ``reviews.parquet``; its explanation sentence and
   feature word are derived by :mod:`mfmrec.data.explanations`.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from mfmrec.data.explanations import extract_explanations
from mfmrec.data.importers.amazon_2023 import attributes_2023, is_meta_2023, price
from mfmrec.data.importers.records import (
    Scan,
    field,
    first_occurrences,
    iter_lines,
    parse_object,
    read_texts,
    scan_reviews,
)
from mfmrec.data.raw import RawDataset
from mfmrec.errors import DataError, located

__all__ = ["import_amazon", "iter_lines", "kcore_mask", "parse_object", "read_meta"]

TIE_BREAK = "equal unixReviewTime: original file order (stable sort)"
TIE_BREAK_2023 = "equal timestamp (ms): original file order (stable sort)"


def _renumber(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes renumbered in order of first appearance, and the old code of each new one."""
    _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)], codes[np.sort(first)]


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


def _legacy_meta(obj: dict, path: Path, lineno: int) -> tuple[str | None, dict]:
    title = field(obj, "title", (str,), path, lineno, False)
    brand = field(obj, "brand", (str,), path, lineno, False)
    attrs = {"brand": html.unescape(brand).strip() if brand else None,
             "categories": _categories(obj), "price": price(obj.get("price")),
             "image_url": _image_url(obj)}
    return title, {k: v for k, v in attrs.items() if v}


def read_meta(path: Path, wanted: set[str]) -> dict[str, tuple[str | None, dict]]:
    """Item id -> (title, attributes) for the items in ``wanted`` (2014, 2018 or 2023)."""
    out: dict[str, tuple[str | None, dict]] = {}
    key: str | None = None
    for lineno, line in iter_lines(path):
        obj = parse_object(line, path, lineno)
        key = key or ("parent_asin" if is_meta_2023(obj) else "asin")
        asin = field(obj, key, (str,), path, lineno, True)
        if asin not in wanted or asin in out:
            continue
        if key == "asin":
            title, attrs = _legacy_meta(obj, path, lineno)
        else:
            title, attrs = field(obj, "title", (str,), path, lineno, False), attributes_2023(obj)
        title = html.unescape(title).strip() if title else None
        out[asin] = (title or None, attrs)
    return out


def _dataset_name(path: Path) -> str:
    stem = path.name
    for suffix in (".gz", ".json", ".jsonl"):
        stem = stem.removesuffix(suffix)
    return stem.removeprefix("reviews_").lower() or "amazon"


def _kept_rows(scan: Scan, kcore: int, path: Path) -> tuple[np.ndarray, int]:
    """Rows (file order) that are first occurrences and survive the k-core; how many
    first occurrences were read."""
    rows = np.flatnonzero(first_occurrences(scan.users, scan.items, scan.times))
    keep = kcore_mask(scan.users[rows], scan.items[rows], kcore)
    if not keep.any():
        raise DataError(located(path, f"empty dataset after {kcore}-core filtering "
                                      f"({len(rows)} reviews read, none kept)"))
    return rows[keep], len(rows)


def _provenance(path: Path, meta: Path | None, scan: Scan, kcore: int, read: int) -> dict:
    schema = scan.schema
    name = "2018" if scan.is_2018 else schema.name
    return {
        "source": str(path.resolve()), "importer": "amazon", "schema": name,
        "files": [path.name] + ([meta.name] if meta else []),
        "kcore": kcore, "reviews_read": read,
        "tie_break": TIE_BREAK if schema.name == "2014" else TIE_BREAK_2023,
        "duplicates": f"repeats of ({schema.user}, {schema.item}, {schema.time}) dropped",
    }


def import_amazon(
    reviews: str | Path, meta: str | Path | None = None, *, kcore: int = 5,
    name: str | None = None,
) -> RawDataset:
    """Read an Amazon review dump (and optional meta) into a :class:`RawDataset`."""
    reviews = Path(reviews)
    meta = Path(meta) if meta else None
    if kcore < 0:
        raise DataError(f"--kcore: expected a non-negative integer, got {kcore}")
    scan = scan_reviews(reviews)
    rows, read = _kept_rows(scan, kcore, reviews)
    users, user_codes = _renumber(scan.users[rows])
    items, item_codes = _renumber(scan.items[rows])
    times = scan.times[rows]
    order = np.lexsort((np.arange(len(rows)), times, users))  # user, time, file order
    texts = read_texts(reviews, scan.schema, scan.lines[rows])
    seconds = times // scan.schema.time_scale
    sequences: list[list[int]] = [[] for _ in user_codes]
    stamps: list[list[int]] = [[] for _ in user_codes]
    for u, i, t in zip(users[order].tolist(), items[order].tolist(), seconds[order].tolist(),
                       strict=True):
        sequences[u].append(i)
        stamps[u].append(t)
    names: list[str | None] = [None] * len(user_codes)
    for u, n in zip(users.tolist(), texts["name"], strict=True):
        if names[u] is None and n:
            names[u] = n
    picked = order.tolist()
    review_cols = {
        "user": users[order].tolist(), "item": items[order].tolist(),
        "rating": scan.ratings[rows][order].tolist(),
        "summary": [texts["summary"][p] for p in picked],
        "text": [texts["text"][p] for p in picked],
        "reviewer_name": [texts["name"][p] for p in picked],
        "time": seconds[order].tolist(),
    }
    del texts
    explained = extract_explanations(review_cols["text"], review_cols["summary"])
    review_cols["explanation"] = explained.sentences
    review_cols["feature"] = explained.features
    user_ids = [scan.user_ids[c] for c in user_codes.tolist()]
    item_ids = [scan.item_ids[c] for c in item_codes.tolist()]
    titles, attributes = _meta_columns(meta, item_ids)
    return RawDataset(
        name=name or _dataset_name(reviews), user_ids=user_ids, item_ids=item_ids,
        sequences=sequences, user_names=names, item_titles=titles,
        item_attributes=attributes, timestamps=stamps, reviews=review_cols,
        provenance=_provenance(reviews, meta, scan, kcore, read),
        extra_meta={"explanations": explained.meta},
    )


def _meta_columns(meta: Path | None, item_ids: list[str]):
    if meta is None:
        return None, None
    found = read_meta(meta, set(item_ids))
    titles = [found[a][0] if a in found else None for a in item_ids]
    attributes = [found[a][1] or None if a in found else None for a in item_ids]
    return titles, attributes
