"""``mfmrec demo``: the main job on the embedded (simulated) demo dataset."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Where the demo writes its data "
                             "and runs."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulated data and the runs."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    workers: int = typer.Option(0, "--workers", min=0, help="Training processes; 0 = one per "
                                "training chain (3) when there are 2+ cores; 1 = all in this "
                                "process."),
) -> None:
    """Run the whole pipeline on the embedded demo dataset (simulated users, drawn images)."""
    from mfmrec.pipelines.demo import run_demo  # lazy: torch, ~1.4 s; keeps --help fast

    run_demo(out, seed=seed, quiet=quiet, workers=workers or None)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
