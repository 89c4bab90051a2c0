"""``mfmrec data ...``: import datasets, build the demo, print statistics."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mfmrec.data import load_dataset, write_dataset

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


def _finish(raw, out: Path, seed: int, indexing: str, negatives: int) -> None:
    write_dataset(raw, out, seed=seed, indexing=indexing, num_negatives=negatives)
    stats = load_dataset(out).stats()
    typer.echo(f"wrote {out}: {stats['users']} users, {stats['items']} items, "
               f"{stats['interactions']} interactions, {stats['reviews']} reviews")


@import_app.command("p5")
def import_p5_cmd(
    src: Path = typer.Argument(..., help="P5/VIP5 directory (sequential_data.txt, "
                               "datamaps.json, optional item_titles.tsv)."),
    out: Path = OUT, seed: int = SEED, indexing: str = INDEXING, negatives: int = NEG,
    name: str = typer.Option(None, help="Dataset name (default: the folder name)."),
) -> None:
    """Import a P5/VIP5 split (Amazon Beauty, Sports, ...)."""
    from mfmrec.data.importers.p5 import import_p5

    _finish(import_p5(src, name=name), out, seed, indexing, negatives)


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
