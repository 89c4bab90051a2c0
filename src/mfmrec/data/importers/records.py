"""Line reading and the streamed, compact review records of the Amazon importer.

Reviews are read in two passes so that memory follows the k-core state, not the file:

1. :func:`scan_reviews` checks every line and keeps, per review, only small numbers
   (interned user and item codes, rating, time, line number) in typed arrays;
2. after de-duplication and k-core filtering, :func:`read_texts` reads the file again
   and keeps the text fields of the reviews that survived, and nothing else.

A review schema (:class:`Schema`) names the fields of one release: 2014/2018
(``reviewerID``, ``asin``, ``overall``, ``unixReviewTime`` in seconds) or 2023
(``user_id``, ``parent_asin``, ``rating``, ``timestamp`` in milliseconds).
"""

from __future__ import annotations

import ast
import gzip
import json
import math
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mfmrec.errors import DataError, located

_INT64 = 2**63 - 1


@dataclass(frozen=True)
class Schema:
    """Field names of one Amazon review release, and its time unit."""

    name: str
    user: str
    item: str
    rating: str
    time: str
    summary: str
    text: str
    reviewer_name: str | None
    time_scale: int  # source time units per second


LEGACY = Schema("2014", "reviewerID", "asin", "overall", "unixReviewTime", "summary",
                "reviewText", "reviewerName", 1)
REVIEWS_2023 = Schema("2023", "user_id", "parent_asin", "rating", "timestamp", "title",
                      "text", None, 1000)
_MARKS_2018 = ("vote", "style", "image")


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
    except RecursionError:
        raise DataError(located(path, "invalid JSON (nested too deeply)", lineno)) from None
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


def field(obj: dict, key: str, types: tuple, path: Path, lineno: int, required: bool):
    """``obj[key]`` checked against ``types`` (``None`` when absent and optional)."""
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


@dataclass
class Scan:
    """Pass 1: one entry per review line, in file order (small numbers only)."""

    schema: Schema
    users: np.ndarray  # int64 codes in order of first appearance
    items: np.ndarray
    ratings: np.ndarray  # float64
    times: np.ndarray  # int64, in the source's unit
    lines: np.ndarray  # int64 line numbers
    is_2018: bool
    user_ids: list[str]  # by code
    item_ids: list[str]


def _numbers(obj: dict, s: Schema, path: Path, lineno: int) -> tuple[str, str, float, int]:
    user = field(obj, s.user, (str,), path, lineno, True)
    item = field(obj, s.item, (str,), path, lineno, True)
    rating = field(obj, s.rating, (int, float), path, lineno, True)
    time = field(obj, s.time, (int,), path, lineno, True)
    if not math.isfinite(rating):
        raise DataError(located(path, f"field {s.rating!r}: not a finite number", lineno))
    if abs(time) > _INT64:
        raise DataError(located(path, f"field {s.time!r}: {time} out of range", lineno))
    for key in (s.summary, s.text, s.reviewer_name):
        if key is not None:
            field(obj, key, (str,), path, lineno, False)
    return user, item, float(rating), time


def detect_schema(obj: dict) -> Schema:
    """The 2023 release has ``user_id`` where 2014/2018 have ``reviewerID``."""
    return REVIEWS_2023 if "user_id" in obj and "reviewerID" not in obj else LEGACY


def scan_reviews(path: Path) -> Scan:
    """Pass 1 over a review file: check every line, keep compact numeric records."""
    codes: tuple[dict[str, int], dict[str, int]] = ({}, {})
    cols = (array("q"), array("q"), array("d"), array("q"), array("q"))
    schema: Schema | None = None
    is_2018 = False
    for lineno, line in iter_lines(path):
        obj = parse_object(line, path, lineno)
        schema = schema or detect_schema(obj)
        user, item, rating, time = _numbers(obj, schema, path, lineno)
        is_2018 = is_2018 or any(k in obj for k in _MARKS_2018)
        for col, value in zip(cols, (codes[0].setdefault(user, len(codes[0])),
                                     codes[1].setdefault(item, len(codes[1])),
                                     rating, time, lineno), strict=True):
            col.append(value)
    if schema is None:
        raise DataError(located(path, "empty dataset (no reviews)"))
    users, items, ratings, times, lines = (np.frombuffer(c, dtype=c.typecode) for c in cols)
    return Scan(schema, users.astype(np.int64), items.astype(np.int64),
                ratings.astype(np.float64), times.astype(np.int64),
                lines.astype(np.int64), is_2018 and schema is LEGACY, list(codes[0]),
                list(codes[1]))


def first_occurrences(users: np.ndarray, items: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Mask of rows that are not an exact repeat of an earlier (user, item, time)."""
    order = np.lexsort((np.arange(len(users)), times, items, users))
    u, i, t = users[order], items[order], times[order]
    repeat = (u[1:] == u[:-1]) & (i[1:] == i[:-1]) & (t[1:] == t[:-1])
    keep = np.ones(len(users), dtype=bool)
    keep[order[1:][repeat]] = False
    return keep


def read_texts(path: Path, schema: Schema, lines: np.ndarray) -> dict[str, list]:
    """Pass 2: summary, text and reviewer name of the given (ascending) line numbers."""
    out: dict[str, list] = {"summary": [], "text": [], "name": []}
    wanted = iter(lines.tolist())
    target = next(wanted, None)
    for lineno, line in iter_lines(path):
        if lineno != target:
            continue
        obj = parse_object(line, path, lineno)
        out["summary"].append(obj.get(schema.summary) or "")
        out["text"].append(obj.get(schema.text) or "")
        out["name"].append(obj.get(schema.reviewer_name) if schema.reviewer_name else None)
        target = next(wanted, None)
        if target is None:
            break
    if target is not None:
        raise DataError(located(path, "changed while it was being read", target))
    return out
