"""``mfmrec data ...``: import datasets, build the demo, attach images, print statistics.

Every command goes through one error path: an input the user can fix (a missing or
damaged file, a wrong option) is a :class:`~mfmrec.errors.MfmrecError` that the entry
point prints as one line (exit 2, no traceback); datasets are written atomically, so a
failed import leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mfmrec.data import RawDataset, load_dataset, write_dataset
from mfmrec.data.importers.amazon import import_amazon
from mfmrec.data.importers.microlens import import_microlens
from mfmrec.data.importers.p5 import import_p5
from mfmrec.data.importers.products import import_products
from mfmrec.data.importers.recbole import import_recbole
from mfmrec.data.writer import check_out
from mfmrec.errors import DataError

data_app = typer.Typer(help="Import, generate and inspect datasets.", no_args_is_help=True)
import_app = typer.Typer(help="Import a dataset from a source format into the mfmrec format.",
                         no_args_is_help=True)
data_app.add_typer(import_app, name="import")

OUT = typer.Option(..., "--out", help="Output dataset directory (written atomically).")
SEED = typer.Option(2022, "--seed", help="Seed of splits, negatives and random indexing.")
INDEXING = typer.Option(
    "random", "--indexing",
    help="Item numbering inside prompts: 'random' (default, no leakage) or 'sequential' "
         "(P5's first-appearance order; reproduces the paper and its known leakage).",
)
NEG = typer.Option(99, "--negatives", help="Frozen negatives per user for direct recommendation.")
FORCE = typer.Option(False, "--force", help="Replace an existing dataset at --out (atomically; "
                     "its derived features/, ids/... are dropped, and said so).")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")


def _report(out: Path, note: str = "") -> None:
    stats = load_dataset(out).stats()
    typer.echo(f"wrote {out}{note}: {stats['users']} users, {stats['items']} items, "
               f"{stats['interactions']} interactions, {stats['reviews']} reviews")


@contextlib.contextmanager
def _io_errors() -> Iterator[None]:
    """An unreadable input or unwritable output is the user's to fix: one line, exit 2."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or "input/output"
        raise DataError(f"{where}: {exc.strerror or exc}") from None


def _finish(read: Callable[[], RawDataset], out: Path, seed: int, indexing: str,
            negatives: int, note: str = "", force: bool = False) -> None:
    """Read the source and write the dataset under :func:`_io_errors`, then report."""
    check_out(out, force)  # before reading: refuse an existing dataset at once
    with _io_errors():
        write_dataset(read(), out, seed=seed, indexing=indexing, num_negatives=negatives,
                      force=force)
    _report(out, note)


@import_app.command("p5")
def import_p5_cmd(
    src: Path = typer.Argument(..., help="P5/VIP5 directory (sequential_data.txt, "
                               "datamaps.json, optional item_titles.tsv)."),
    out: Path = OUT, seed: int = SEED, indexing: str = INDEXING, negatives: int = NEG,
    name: str = typer.Option(None, help="Dataset name (default: the folder name)."),
    force: bool = FORCE,
) -> None:
    """Import a P5/VIP5 split (Amazon Beauty, Sports, ...)."""
    _finish(lambda: import_p5(src, name=name), out, seed, indexing, negatives, force=force)


@import_app.command("amazon")
def import_amazon_cmd(
    reviews: Path = typer.Argument(..., help="Amazon reviews, one JSON object per line "
                                   "(.json/.jsonl, or .gz; the 2014, 2018 or 2023 release, "
                                   "detected from the fields; 2023 items are parent_asin)."),
    out: Path = OUT,
    meta: Path = typer.Option(None, "--meta", help="Amazon meta file (.json[l][.gz]; JSON or "
                              "the 2014 Python-literal lines; 2023 meta keyed by parent_asin) "
                              "for titles, brand, categories, price and image URL."),
    kcore: int = typer.Option(5, "--kcore", help="Keep only users and items with at least "
                              "this many reviews, iterated until stable (0 = no filtering)."),
    seed: int = SEED, indexing: str = INDEXING, negatives: int = NEG,
    name: str = typer.Option(None, help="Dataset name (default: from the file name)."),
    force: bool = FORCE,
) -> None:
    """Import a raw Amazon review dump with k-core filtering, reviews and explanations.

    Sequences follow review time; equal times keep the file's order.
    Each review gets an explanation sentence and a feature word derived from its text.
    """
    _finish(lambda: import_amazon(reviews, meta, kcore=kcore, name=name), out, seed,
            indexing, negatives, force=force)


@import_app.command("recbole")
def import_recbole_cmd(
    src: Path = typer.Argument(..., help="RecBole dataset directory with <name>.inter "
                               "(and optional <name>.item), or the .inter file."),
    out: Path = OUT, seed: int = SEED, indexing: str = INDEXING, negatives: int = NEG,
    name: str = typer.Option(None, help="Dataset name (default: the .inter file's stem)."),
    force: bool = FORCE,
) -> None:
    """Import RecBole atomic files (typed, tab-separated .inter/.item)."""
    _finish(lambda: import_recbole(src, name=name), out, seed, indexing, negatives,
            force=force)


@import_app.command("microlens")
def import_microlens_cmd(
    src: Path = typer.Argument(..., help="MicroLens folder: <name>_pairs.csv (user,item,"
                               "timestamp; or <name>_pairs.tsv: user<TAB>items in time "
                               "order), optional <name>_titles.csv or <name>_title_en.csv "
                               "(item,title) and covers/<item>.jpg (or <name>_covers/)."),
    out: Path = OUT, seed: int = SEED, indexing: str = INDEXING, negatives: int = NEG,
    name: str = typer.Option(None, help="Dataset name (default: <name>, lower-cased)."),
) -> None:
    """Import MicroLens-50k/100k (micro-videos: interactions, titles, cover images).

    Sequences follow the timestamps (milliseconds are stored in seconds); equal times
    keep the file's order. Covers are linked in place.
    """
    _finish(lambda: import_microlens(src, name=name), out, seed, indexing, negatives)


@import_app.command("products")
def import_products_cmd(
    styles: Path = typer.Argument(..., help="styles.csv (id, articleType, baseColour, "
                                  "productDisplayName, ...)."),
    images: Path = typer.Option(..., "--images", help="Folder of <id>.jpg product photos."),
    out: Path = OUT, seed: int = SEED, indexing: str = INDEXING, negatives: int = NEG,
    users: int = typer.Option(2000, "--users", help="Number of SIMULATED users."),
    min_len: int = typer.Option(5, "--min-len", help="Shortest simulated sequence."),
    max_len: int = typer.Option(20, "--max-len", help="Longest simulated sequence."),
    hide_in_text: str = typer.Option("", "--hide-in-text", help="Comma-separated attributes "
                                     "to remove from titles (e.g. baseColour,articleType) so "
                                     "only the photo shows them."),
    name: str = typer.Option(None, help="Dataset name (default: fashion-products-sim)."),
    force: bool = FORCE,
) -> None:
    """Import a product-photo catalogue with SIMULATED users and reviews.

    Simulated tastes depend on what the photos show (colour, article type); reviews are
    templated. dataset.json marks everything simulated.
    """
    hide = tuple(a.strip() for a in hide_in_text.split(",") if a.strip())
    _finish(lambda: import_products(styles, images, users=users, seed=seed, hide_in_text=hide,
                                    min_len=min_len, max_len=max_len, name=name),
            out, seed, indexing, negatives, note=" (SIMULATED users)", force=force)


@data_app.command("demo")
def demo_cmd(
    out: Path = OUT,
    seed: int = typer.Option(0, "--seed", help="Seed of the simulated users, items and "
                             "images."),
    force: bool = FORCE,
) -> None:
    """Write the small embedded demo dataset (SIMULATED users and drawn product images)."""
    from mfmrec.data.demo import build_demo  # lazy: PIL, ~15 ms; only `data demo` draws images

    with _io_errors():
        path = build_demo(out, seed=seed, force=force)
    _report(Path(path))


@data_app.command("stats")
def stats_cmd(
    path: Path = typer.Argument(..., help="A prepared dataset directory."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Print users, items, interactions, reviews, average sequence length and sparsity."""
    ds = load_dataset(path)
    stats = {"name": ds.name, "simulated": ds.simulated,
             "indexing": ds.meta.get("indexing"), **ds.stats()}
    if as_json:
        typer.echo(json.dumps(stats, sort_keys=True))
        return
    table = Table(title=f"{ds.name}" + (" (SIMULATED)" if ds.simulated else ""))
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for key, value in stats.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) and not isinstance(
            value, bool) else str(value))
    Console().print(table)


@data_app.command("images")
def images_cmd(
    data_dir: Path = typer.Argument(..., help="A prepared dataset directory."),
    from_meta: Path = typer.Option(None, "--from-meta", help="Amazon metadata (.json/.json.gz; "
                                   "2014 imUrl or 2018 imageURLHighRes/imageURL). Default: "
                                   "attributes['image_url'] stored by the importer."),
    images: Path = typer.Option(None, "--images", help="Use a local folder of <item id>.<ext> "
                                "files instead of downloading."),
    workers: int = typer.Option(8, "--workers", help="Parallel downloads."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds per connect/read."),
    retries: int = typer.Option(3, "--retries", help="Extra attempts after transient errors."),
    max_mb: float = typer.Option(10.0, "--max-mb", help="Refuse larger images (MB)."),
    quiet: bool = QUIET,
) -> None:
    """Attach item images: download them from URLs, or point at a local folder.

    Downloads resume (valid files are kept), and failures are reported in
    images/report.json, never fatal.
    """
    from mfmrec.features.download import DownloadConfig  # lazy: torch, ~1.4 s; keeps --help fast
    from mfmrec.features.ingest import IMAGES_DIR, REPORT, ingest_images  # lazy: torch, ~1.4 s

    if from_meta is not None and images is not None:
        raise typer.BadParameter("give --from-meta or --images, not both")
    cfg = DownloadConfig(workers=workers, timeout=timeout, total_timeout=max(60.0, timeout),
                         retries=retries, max_bytes=int(max_mb * 1e6))
    with _io_errors():
        rep = ingest_images(data_dir, from_meta=from_meta, images_dir=images, cfg=cfg,
                            quiet=quiet)
    done = rep.get("found", rep.get("downloaded", 0) + rep.get("cached", 0))
    typer.echo(f"{data_dir}: {done} images attached, {rep['failed']} failed, "
               f"{rep['items_with_image']} items now have an image; report in "
               f"{Path(data_dir) / IMAGES_DIR / REPORT}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
