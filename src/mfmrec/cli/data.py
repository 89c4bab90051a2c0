"""``mfmrec data ...``: import datasets, build the demo, print statistics."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mfmrec.data import RawDataset, load_dataset, write_dataset
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


def _report(out: Path) -> None:
    stats = load_dataset(out).stats()
    typer.echo(f"wrote {out}: {stats['users']} users, {stats['items']} items, "
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
            negatives: int) -> None:
    with _io_errors():
        write_dataset(read(), out, seed=seed, indexing=indexing, num_negatives=negatives)
    _report(out)


@import_app.command("p5")
def import_p5_cmd(
    src: Path = typer.Argument(..., help="P5/VIP5 directory (sequential_data.txt, "
                               "datamaps.json, optional item_titles.tsv)."),
    out: Path = OUT, seed: int = SEED, indexing: str = INDEXING, negatives: int = NEG,
    name: str = typer.Option(None, help="Dataset name (default: the folder name)."),
) -> None:
    """Import a P5/VIP5 split (Amazon Beauty, Sports, ...)."""
    from mfmrec.data.importers.p5 import import_p5

    _finish(lambda: import_p5(src, name=name), out, seed, indexing, negatives)


@import_app.command("amazon")
def import_amazon_cmd(
    reviews: Path = typer.Argument(..., help="Amazon reviews, one JSON object per line "
                                   "(.json or .json.gz; 2014 or 2018 schema)."),
    out: Path = OUT,
    meta: Path = typer.Option(None, "--meta", help="Amazon meta file (.json[.gz]; JSON or "
                              "the 2014 Python-literal lines) for titles, brand, categories, "
                              "price and image URL."),
    kcore: int = typer.Option(5, "--kcore", help="Keep only users and items with at least "
                              "this many reviews, iterated until stable (0 = no filtering)."),
    seed: int = SEED, indexing: str = INDEXING, negatives: int = NEG,
    name: str = typer.Option(None, help="Dataset name (default: from the file name)."),
) -> None:
    """Import a raw Amazon review dump with k-core filtering, reviews and explanations.

    Sequences follow review time; equal times keep the file's order.
    Each review gets an explanation sentence and a feature word derived from its text.
    """
    from mfmrec.data.importers.amazon import import_amazon

    _finish(lambda: import_amazon(reviews, meta, kcore=kcore, name=name), out, seed,
            indexing, negatives)


@import_app.command("recbole")
def import_recbole_cmd(
    src: Path = typer.Argument(..., help="RecBole dataset directory with <name>.inter "
                               "(and optional <name>.item), or the .inter file."),
    out: Path = OUT, seed: int = SEED, indexing: str = INDEXING, negatives: int = NEG,
    name: str = typer.Option(None, help="Dataset name (default: the .inter file's stem)."),
) -> None:
    """Import RecBole atomic files (typed, tab-separated .inter/.item)."""
    from mfmrec.data.importers.recbole import import_recbole

    _finish(lambda: import_recbole(src, name=name), out, seed, indexing, negatives)


@data_app.command("demo")
def demo_cmd(
    out: Path = OUT,
    seed: int = typer.Option(0, "--seed", help="Seed of the simulated users, items and "
                             "images."),
) -> None:
    """Write the small embedded demo dataset (SIMULATED users and drawn product images)."""
    from mfmrec.data.demo import build_demo

    with _io_errors():
        path = build_demo(out, seed=seed)
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


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
