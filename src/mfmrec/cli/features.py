"""``mfmrec features ...``: extract, import and inspect item features."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mfmrec.cli.data import QUIET

features_app = typer.Typer(help="Item features: extract with an image/text encoder, import, "
                                "inspect.", no_args_is_help=True)

ENCODER_HELP = (
    "efficientnet-lite0 (default; real ImageNet weights from the installed package), "
    "clip-vit-b32 | clip-vit-b16 | clip-vit-l14 (need --model-path to a local CLIP folder), "
    "clip-rn50 | clip-rn101 (need --model-path to OpenAI's RN50.pt / RN101.pt), "
    "minilm (all-MiniLM-L6-v2 title features), or hf:PATH (any local Hugging Face text model, "
    "mean-pooled)."
)


@features_app.command("extract")
def extract_cmd(
    data_dir: Path = typer.Argument(..., help="A prepared dataset directory."),
    encoder: str = typer.Option("efficientnet-lite0", "--encoder", "-e", help=ENCODER_HELP),
    model_path: Path = typer.Option(None, "--model-path", help="Local weights: a model folder "
                                    "(CLIP ViT, hf), a .pth state dict (efficientnet-lite0) or "
                                    "OpenAI's RN50.pt / RN101.pt (clip-rn50 / clip-rn101)."),
    images: Path = typer.Option(None, "--images", help="Read images from this folder of "
                                "<item id>.<ext> files instead of the dataset's image column."),
    batch_size: int = typer.Option(32, "--batch-size", help="Items per forward pass."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    layers: bool = typer.Option(False, "--layers", help="Also store per-layer pooled states "
                                "(N, L+1, d) in features/<name>-layers.safetensors (IISAN)."),
    name: str = typer.Option(None, "--name", help="Store name (default: the encoder name; "
                             "hf:PATH -> hf-<folder>)."),
    force: bool = typer.Option(False, "--force", help="Recompute even if an identical store "
                               "exists."),
    quiet: bool = QUIET,
) -> None:
    """Encode every item into features/<name>.safetensors.

    Resumable: after an interruption, re-run the same command and finished batches are
    kept. Items without an input are recorded as missing, never silently zero.
    """
    from mfmrec.features.extract import extract_features  # lazy: torch, ~1.4 s; keeps --help fast

    res = extract_features(data_dir, encoder, model_path=model_path, images_dir=images,
                           batch_size=batch_size, device=device, layers=layers, name=name,
                           force=force, quiet=quiet)
    if res.up_to_date:
        typer.echo(f"{res.path}: up to date ({res.num_items} items, {res.num_missing} without "
                   "input; --force recomputes)")
        return
    reused = f", reused {res.reused} from an interrupted run" if res.reused else ""
    typer.echo(f"wrote {res.path}: {res.num_items} items, {res.num_missing} without input "
               f"(encoded {res.encoded}{reused})"
               + (f"; layers in {res.layers_path}" if res.layers_path else ""))


@features_app.command("import")
def import_cmd(
    data_dir: Path = typer.Argument(..., help="A prepared dataset directory."),
    name: str = typer.Option(..., "--name", help="Store name, e.g. clip-rn50."),
    source: Path = typer.Option(..., "--from", help="Folder of <item id>.npy vectors."),
    description: str = typer.Option("", "--description", help="How they were made."),
    modality: str = typer.Option("image", "--modality", help="image or text."),
) -> None:
    """Import features computed elsewhere (e.g. CLIP RN50 with OpenAI's clip package)."""
    from mfmrec.features.extract import import_features  # lazy: torch, ~1.4 s; keeps --help fast

    path = import_features(data_dir, name, source, description, modality)
    typer.echo(f"wrote {path}")


@features_app.command("info")
def info_cmd(data_dir: Path = typer.Argument(..., help="A prepared dataset directory.")) -> None:
    """List the feature stores of a dataset: shape, missing items, encoder, pooling."""
    from mfmrec.features.store import feature_path, list_features, read_meta  # lazy: torch, ~1.4 s

    table = Table(title=f"features of {data_dir}")
    for col in ("name", "shape", "missing", "pooling"):
        table.add_column(col)
    for name in list_features(data_dir):
        meta = read_meta(feature_path(data_dir, name))
        table.add_row(name, " x ".join(map(str, meta.get("shape", []))),
                      str(meta.get("num_missing")), str(meta.get("pooling", "")))
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(features_app, name="features")
