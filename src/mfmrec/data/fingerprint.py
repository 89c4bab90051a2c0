"""Fingerprints of a dataset folder: the size and sha256 of each file a run depends on.

A run records the fingerprint of the dataset it trained on (``run.json``); loading the
run later compares it with the folder as it is now, so that a dataset re-imported with
another seed, or a feature store extracted again, is never mistaken for the original.

The fingerprint covers the files :func:`mfmrec.data.writer.write_dataset` writes
(:data:`CORE`: statistics, users, items, interactions, reviews, splits, negatives) plus
any derived files the caller names (feature stores, semantic IDs, tokenizers), as paths
relative to the dataset folder. Files are hashed in 4 MiB chunks; a file whose size
differs is reported without being hashed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from mfmrec.errors import DataError

CORE_FILES = ("dataset.json", "users.parquet", "items.parquet", "interactions.parquet",
              "reviews.parquet")
CORE_FOLDERS = ("splits", "negatives")
_CHUNK = 1 << 22


def core_files(root: str | Path) -> list[str]:
    """The files ``write_dataset`` wrote into ``root``, relative to it, sorted."""
    root = Path(root)
    found = [name for name in CORE_FILES if (root / name).is_file()]
    for folder in CORE_FOLDERS:
        if (root / folder).is_dir():
            found += [p.relative_to(root).as_posix() for p in (root / folder).rglob("*")
                      if p.is_file() and not any(part.startswith(".")
                                                 for part in p.relative_to(root).parts)]
    return sorted(found)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _entry(path: Path) -> dict:
    try:
        return {"size": path.stat().st_size, "sha256": file_sha256(path)}
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def fingerprint(root: str | Path, extra: Iterable[str] = ()) -> dict[str, dict]:
    """``{relative path: {"size", "sha256"}}`` of the core files and of the ``extra``
    files that exist (relative paths too)."""
    root = Path(root)
    names = set(core_files(root)) | {e for e in extra if (root / e).is_file()}
    return {name: _entry(root / name) for name in sorted(names)}


def _differs(path: Path, recorded: dict) -> bool:
    try:
        if path.stat().st_size != recorded.get("size"):
            return True
    except OSError:
        return True
    return _entry(path)["sha256"] != recorded.get("sha256")


def changes(root: str | Path, recorded: dict[str, dict]) -> dict[str, str]:
    """What differs between the folder now and a recorded :func:`fingerprint`:
    ``{relative path: "changed" | "missing" | "new"}``; empty when nothing did."""
    root = Path(root)
    found = {}
    for name, entry in sorted(recorded.items()):
        path = root / name
        if not path.is_file():
            found[name] = "missing"
        elif _differs(path, entry if isinstance(entry, dict) else {}):
            found[name] = "changed"
    found.update({name: "new" for name in core_files(root) if name not in recorded})
    return found


def summary(found: dict[str, str], limit: int = 4) -> str:
    """``changed: a, b, c, d and 2 more; missing: e`` (the first ``limit`` of each kind)."""
    parts = []
    for kind in ("changed", "missing", "new"):
        names = sorted(n for n, k in found.items() if k == kind)
        if names:
            more = f" and {len(names) - limit} more" if len(names) > limit else ""
            parts.append(f"{kind}: {', '.join(names[:limit])}{more}")
    return "; ".join(parts)
