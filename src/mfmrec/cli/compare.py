"""``mfmrec compare``: train several run configs, evaluate them alike, one table."""

from __future__ import annotations

from pathlib import Path

import typer

HELP = """Train each CONFIG into OUT/runs/<config name> (a finished run is reused), evaluate
every run with the same evaluator and eval config (the first config's eval: section, or
the defaults), and write OUT/compare.md, OUT/compare.json and bar charts of HR@10 and
NDCG@10 (OUT/hr10.png, OUT/ndcg10.png). Prints the table.

Overrides (`--set key=value ...`; key=value words among the CONFIGs count too, so
`--set train.epochs=1 model.hidden=16` works): train.* and eval.* apply to every config;
an unprefixed model.* applies where the model has the field (model.hidden=16 changes
SASRec, not BPR-MF); NAME:key=value applies to NAME.yaml only (--set bpr-mf:model.dim=8).
"""


def compare_cmd(
    args: list[str] = typer.Argument(..., metavar="CONFIG... [KEY=VALUE...]",
                                     help="Run config YAMLs (see configs/), then overrides."),
    data: Path = typer.Option(..., "--data", help="Prepared dataset directory."),
    out: Path = typer.Option(..., "--out", help="Output directory (runs/, compare.md, "
                             "compare.json, hr10.png, ndcg10.png)."),
    budget_min: float = typer.Option(None, "--budget-min", help="The same wall-clock training "
                                     "budget per config, in minutes (train.max_minutes, with "
                                     "train.schedule=constant)."),
    overrides: list[str] = typer.Option(None, "--set", help="key=value override (repeat the "
                                        "option; see above for scope)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    from rich.console import Console  # lazy: keeps mfmrec --help fast

    from mfmrec.evaluation.report import (  # lazy: pulls in the metrics stack; keeps --help fast
        Section,
        print_section,
    )
    from mfmrec.pipelines.compare import compare  # lazy: pulls in torch and the trainer (~2 s)

    configs = [Path(a) for a in args if "=" not in a or Path(a).is_file()]
    overrides = [*(overrides or []), *(a for a in args if "=" in a and not Path(a).is_file())]
    console = Console()
    doc = compare(configs, data, out, budget_min=budget_min, overrides=overrides,
                  quiet=quiet, console=console)
    sim = " (SIMULATED data)" if doc["simulated"] else ""
    console.print(f"[bold]model comparison on {doc['dataset']}{sim}[/bold]")
    for note in doc["notes"]:
        console.print(f"- {note}", markup=False, highlight=False)
    for table in doc["tables"]:
        print_section(Section(**table), console)
    console.print(f"wrote {Path(out) / 'compare.md'}, compare.json, "
                  + ", ".join(Path(p).name for p in doc["charts"].values()))


def register(app: typer.Typer) -> None:
    app.command("compare", help=HELP)(compare_cmd)
