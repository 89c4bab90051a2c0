"""``mfmrec ids build | show``: semantic item IDs (TIGER-style) for a dataset."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import typer

from mfmrec.errors import DataError
from mfmrec.training.progress import ProgressDisplay

ids_app = typer.Typer(help="Semantic item IDs: quantise item features into short code "
                           "tuples (residual k-means or RQ-VAE), inspect their health.",
                      no_args_is_help=True)

FEATURES_HELP = (
    "Comma-separated feature stores of the dataset (see `mfmrec features info`), each "
    "L2-normalised per row, optionally weighted as name:weight (default 1.0), then "
    "concatenated, e.g. efficientnet-lite0,minilm:0.5."
)


def item_table_from_run(run_dir: Path, data_dir: Path):
    """The item embedding table (num_items, d) of a trained run, without a padding row."""
    from torch import nn  # lazy: torch, ~1.4 s; keeps --help fast

    from mfmrec.training.runs import load_run  # lazy: pulls in the model registry

    run = load_run(run_dir, data_dir)
    table = getattr(run.model, "item_emb", None)
    model = run.config.model_name
    if not isinstance(table, nn.Embedding):
        raise DataError(f"{run_dir}: model {model} has no item embedding table")
    weight = table.weight.detach()
    n = run.dataset.num_items
    if weight.shape[0] == n + 1 and table.padding_idx == 0:
        weight = weight[1:]  # SASRec-style: row 0 is padding, item i at row i + 1
    if weight.shape[0] != n:
        raise DataError(f"{run_dir}: model {model}'s item table has {weight.shape[0]} rows "
                        f"for {n} items")
    return weight


@contextlib.contextmanager
def epoch_bar(enabled: bool, title: str) -> Iterator:
    """A rich progress bar over RQ-VAE epochs; yields the callback (None when quiet)."""
    if not enabled:
        yield None
        return
    with ProgressDisplay(None, 0, title, rate_unit=None) as bar:
        yield lambda epoch, epochs, loss: bar.update(epoch, title, loss=loss, total=epochs)


@ids_app.command("build")
def build_cmd(
    data_dir: Path = typer.Argument(..., help="A prepared dataset directory."),
    name: str = typer.Option(..., "--name", help="Name of the IDs: writes ids/NAME.parquet, "
                             "ids/NAME.json and ids/NAME.timing.json in the dataset."),
    features: str = typer.Option(None, "--features", help=FEATURES_HELP),
    from_run: Path = typer.Option(None, "--from-run", help="Quantise the item embedding "
                                  "table of this trained run (SASRec, BPR, ...) instead."),
    method: str = typer.Option("rkmeans", "--method", help="rkmeans (residual k-means, "
                               "seconds) or rqvae (RQ-VAE with the rotation trick, minutes)."),
    levels: int = typer.Option(3, "--levels", help="Codes per item before the "
                               "disambiguation code."),
    codebook: int = typer.Option(256, "--codebook", help="Values per level; at most the "
                                 "number of items."),
    seed: int = typer.Option(0, "--seed", help="Seeds k-means++ and the RQ-VAE; the same "
                             "seed and inputs give byte-identical files."),
    epochs: int = typer.Option(None, "--epochs", help="RQ-VAE epochs (default 200)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Give every item a semantic ID: LEVELS codes + 1 disambiguation code.

    Exactly one of --features / --from-run. Prints the health line (codebook usage,
    perplexity, collisions, reconstruction error, build time) and the files written.
    """
    from mfmrec.ids import (  # lazy: torch, ~1.4 s; keeps --help fast
        IdBuildConfig,
        RqvaeConfig,
        build_ids,
        health_line,
        parse_features,
    )
    from mfmrec.ids.health import HealthReport  # lazy: torch, ~1.4 s; keeps --help fast
    from mfmrec.ids.store import ids_path, meta_path, read_timing  # lazy: torch, ~1.4 s
    from mfmrec.ids.vectors import vectors_path  # lazy: torch, ~1.4 s

    if (features is None) == (from_run is None):
        raise DataError("ids build: give --features or --from-run, exactly one")
    names, weights = parse_features(features) if features is not None else ([], {})
    rqvae = RqvaeConfig() if epochs is None else RqvaeConfig(epochs=epochs)
    config = IdBuildConfig(method=method, levels=levels, codebook=codebook, seed=seed,
                           features=names, weights=weights, rqvae=rqvae)
    matrix = item_table_from_run(from_run, data_dir) if from_run is not None else None
    with epoch_bar(method == "rqvae" and not quiet, f"RQ-VAE {name}") as progress:
        ids = build_ids(data_dir, name, config, matrix=matrix,
                        source=str(from_run) if from_run is not None else None,
                        progress=progress)
    report = HealthReport.from_dict(ids.meta["health"], read_timing(data_dir, name))
    typer.echo(f"{name}: {ids.num_items} items, {health_line(report)}")
    path = ids_path(data_dir, name)
    typer.echo(f"wrote {path}, {meta_path(data_dir, name)} and {vectors_path(path)}")


@ids_app.command("show")
def show_cmd(
    data_dir: Path = typer.Argument(..., help="A prepared dataset directory."),
    name: str = typer.Argument(..., help="Name given to `mfmrec ids build --name`."),
) -> None:
    """Print the health line of built semantic IDs, and how they were made."""
    from mfmrec.ids import health_line, load_ids, read_timing  # lazy: torch, ~1.4 s
    from mfmrec.ids.build import dataset_item_ids  # lazy: torch, ~1.4 s; keeps --help fast
    from mfmrec.ids.health import HealthReport  # lazy: torch, ~1.4 s; keeps --help fast

    ids = load_ids(data_dir, name, dataset_item_ids(data_dir))
    report = HealthReport.from_dict(ids.meta["health"], read_timing(data_dir, name))
    inputs = ", ".join(f"{b['name']}:{b['weight']:g}" for b in ids.meta.get("features", []))
    typer.echo(f"{name}: {ids.meta.get('method')} on {inputs}, {ids.num_items} items, "
               f"{health_line(report)}")


def register(app: typer.Typer) -> None:
    app.add_typer(ids_app, name="ids")
