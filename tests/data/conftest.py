"""Tiny hand-made sources (P5 dirs, Amazon dumps, RecBole files) for the data tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest


def _review(user: str, item: str, time: int, rating: float = 5.0, text: str = "",
           summary: str = "ok", name: str | None = None, **extra) -> dict:
    row = {"reviewerID": user, "asin": item, "overall": rating, "unixReviewTime": time,
           "summary": summary, "reviewText": text, **extra}
    if name is not None:
        row["reviewerName"] = name
    return row


def write_lines(path: Path, rows: list, gz: bool = False) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def p5_dir(tmp_path: Path):
    """Factory: a P5 directory from ``{user_id: [item ids]}`` with ASINs ``A<id>``."""

    def make(seqs: dict[int, list[int]], n_items: int | None = None, titles=True) -> Path:
        d = tmp_path / "p5"
        d.mkdir(exist_ok=True)
        n_items = n_items or max(i for s in seqs.values() for i in s)
        (d / "sequential_data.txt").write_text(
            "".join(f"{u} {' '.join(map(str, s))}\n" for u, s in seqs.items()))
        maps = {"id2user": {str(u): f"U{u}" for u in seqs},
                "id2item": {str(i): f"A{i}" for i in range(1, n_items + 1)}}
        maps["user2id"] = {v: k for k, v in maps["id2user"].items()}
        maps["item2id"] = {v: k for k, v in maps["id2item"].items()}
        (d / "datamaps.json").write_text(json.dumps(maps))
        if titles:
            (d / "item_titles.tsv").write_text(
                "asin\ttitle\n" + "".join(f"A{i}\titem {i}\n" for i in range(1, n_items + 1)))
        return d

    return make


def _grid_reviews(n: int = 120, per_user: int = 5) -> list[dict]:
    """A 5-core ring: user u reviews items u..u+4 (mod n), so every item has 5 users too."""
    rows = []
    for u in range(n):
        for k in range(per_user):
            rows.append(_review(f"u{u:03d}", f"i{(u + k) % n:03d}", 1000 + 10 * k + u,
                                text=f"The strap is fine for guitar {k}. It is a solid strap."))
    return rows


@pytest.fixture
def amazon_file(tmp_path: Path):
    """Factory: write review rows (dicts or raw strings) to a .json or .json.gz file."""

    def make(rows: list, name: str = "reviews_Tiny.json", gz: bool = False) -> Path:
        return write_lines(tmp_path / (name + (".gz" if gz else "")), rows, gz=gz)

    return make


@pytest.fixture
def recbole_dir(tmp_path: Path):
    """Factory: a RecBole dataset directory ``tiny/`` with ``tiny.inter`` (+ ``tiny.item``)."""

    def make(inter: list[str], item: list[str] | None = None) -> Path:
        d = tmp_path / "tiny"
        d.mkdir(exist_ok=True)
        (d / "tiny.inter").write_text("".join(line + "\n" for line in inter))
        if item is not None:
            (d / "tiny.item").write_text("".join(line + "\n" for line in item))
        return d

    return make


@pytest.fixture
def review():
    """Factory: one review dict in the Amazon 2014 schema."""
    return _review


@pytest.fixture
def grid_reviews():
    """Factory: a small 5-core review list over a large item pool."""
    return _grid_reviews
