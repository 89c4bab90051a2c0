"""The main job: build the embedded demo dataset and print what it holds.

The data is simulated (users, reviews) with images drawn by code; every table it prints
says so.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from mfmrec.data import load_dataset


def build_data(out: Path, seed: int) -> Path:
    from mfmrec.data.demo import build_demo

    data_dir = out / "data"
    if not (data_dir / "dataset.json").is_file():
        build_demo(data_dir, seed=seed)
    return data_dir


def print_stats(data_dir: Path, console: Console) -> None:
    ds = load_dataset(data_dir)
    table = Table(title=f"demo dataset {data_dir} (SIMULATED users and reviews; drawn images)")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for key, value in ds.stats().items():
        table.add_row(key, str(value))
    console.print(table)


def run_demo(out: Path, seed: int = 0, quiet: bool = False) -> None:
    console = Console(quiet=False)
    data_dir = build_data(Path(out), seed)
    print_stats(data_dir, console)
