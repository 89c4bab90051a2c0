"""Give a prepared dataset its item images: from Amazon metadata URLs or a local folder.

* URLs come from an Amazon metadata file (``imUrl`` in the 2014 dump, whose lines are
  Python literals; ``imageURLHighRes`` then ``imageURL`` in the 2018 dump, JSON lines;
  in the 2023 release, items are keyed by ``parent_asin`` and ``images`` holds dicts:
  the ``MAIN`` variant first, its ``large`` URL preferred; plain or gzipped), or,
  without one, from ``attributes["image_url"]`` that the Amazon
  importer stores. Downloads land in ``<dataset>/images/`` and are referenced relative
  to the dataset, so the folder stays movable.
* A local folder of ``<item id>.<ext>`` files is referenced in place (absolute paths).

``items.parquet``'s ``image`` column is rewritten atomically; items whose image could
not be had keep what they had. ``images/report.json`` lists every failure with its URL
and reason.
"""

from __future__ import annotations

import ast
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mfmrec.data import load_dataset
from mfmrec.data.importers.amazon_2023 import image_url_2023
from mfmrec.errors import DataError, located
from mfmrec.features.download import DownloadConfig, download_images, summarize
from mfmrec.features.images import images_from_folder, load_image
from mfmrec.io import atomic_file, write_json

IMAGES_DIR = "images"
REPORT = "report.json"


def _parse_line(line: str, path: Path, lineno: int) -> dict:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        try:  # the 2014 dump writes Python dict literals (single quotes)
            obj = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise DataError(located(path, "neither JSON nor a Python dict literal",
                                    lineno)) from None
    if not isinstance(obj, dict):
        raise DataError(located(path, "expected one object per line", lineno))
    return obj


def url_of(record: dict) -> str | None:
    """The best image URL of one metadata record (high resolution first; 2023 ``images``)."""
    if isinstance(record.get("images"), list) and "parent_asin" in record:
        return image_url_2023(record["images"])
    for key in ("imageURLHighRes", "imageURL", "imUrl"):
        value = record.get(key)
        if isinstance(value, list):
            value = next((v for v in value if isinstance(v, str) and v.strip()), None)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def image_urls_from_meta(path: str | Path, wanted: set[str] | None = None) -> dict[str, str]:
    """``{asin: url}`` from an Amazon metadata file (``.json`` or ``.json.gz``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--from-meta: {path} not found")
    opener = gzip.open if path.suffix == ".gz" else open
    urls: dict[str, str] = {}
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                rec = _parse_line(line, path, lineno)
                asin = rec.get("asin", rec.get("parent_asin"))
                if not isinstance(asin, str) or (wanted is not None and asin not in wanted):
                    continue
                url = url_of(rec)
                if url:
                    urls[asin] = url
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None
    return urls


def write_image_column(dataset_dir: Path, images: list[str | None]) -> None:
    """Replace the ``image`` column of ``items.parquet`` atomically."""
    path = dataset_dir / "items.parquet"
    table = pq.read_table(path)
    if len(images) != table.num_rows:
        raise ValueError(f"{len(images)} image paths for {table.num_rows} items")
    col = table.schema.get_field_index("image")
    table = table.set_column(col, "image", pa.array(images, pa.string()))
    with atomic_file(path, "wb") as fh:
        pq.write_table(table, fh, compression="zstd")


def _from_folder(ds, folder: Path) -> tuple[list[str | None], dict]:
    found = images_from_folder(folder, ds.item_ids)
    images, bad = [], []
    for item_id, p in zip(ds.item_ids, found, strict=True):
        if p is not None and load_image(p) is None:
            bad.append({"item_id": item_id, "path": str(p), "error": "not a decodable image"})
            p = None
        images.append(str(p) if p is not None else None)
    report = {"source": str(folder.resolve()), "requested": ds.num_items,
              "found": sum(x is not None for x in images), "failed": len(bad),
              "no_file": ds.num_items - len(bad) - sum(x is not None for x in images),
              "failures": bad}
    return images, report


def _urls(ds, from_meta: Path | None) -> dict[int, str]:
    if from_meta is not None:
        by_asin = image_urls_from_meta(from_meta, set(ds.item_ids))
        return {i: by_asin[x] for i, x in enumerate(ds.item_ids) if x in by_asin}
    urls = {}
    for i, attrs in enumerate(ds.attributes):
        url = attrs.get("image_url") if isinstance(attrs, dict) else None
        if isinstance(url, str) and url.strip():
            urls[i] = url.strip()
    return urls


def ingest_images(dataset_dir: str | Path, from_meta: str | Path | None = None,
                  images_dir: str | Path | None = None, cfg: DownloadConfig | None = None,
                  quiet: bool = False) -> dict:
    """Attach images to a prepared dataset; returns the report (also saved as JSON)."""
    ds = load_dataset(dataset_dir)
    root = ds.root.resolve()
    current = ds.items.column("image").to_pylist()
    if images_dir is not None:
        found, report = _from_folder(ds, Path(images_dir))
    else:
        urls = _urls(ds, Path(from_meta) if from_meta else None)
        if not urls:
            where = from_meta or "attributes['image_url'] of items.parquet"
            raise DataError(f"{where}: no image URL for any item of {root}")
        jobs = [(i, ds.item_ids[i], u) for i, u in sorted(urls.items())]
        outcomes = download_images(jobs, root / IMAGES_DIR, cfg, quiet=quiet)
        found = [None] * ds.num_items
        for o in outcomes:
            if o.path is not None:
                found[o.item] = Path(o.path).relative_to(root).as_posix()
        report = {"source": str(from_meta or "attributes.image_url"),
                  **summarize(outcomes, ds.item_ids), "no_url": ds.num_items - len(urls)}
    images = [new if new is not None else old for new, old in zip(found, current, strict=True)]
    write_image_column(root, images)
    report["items_with_image"] = sum(x is not None for x in images)
    write_json(root / IMAGES_DIR / REPORT, report)
    return report
