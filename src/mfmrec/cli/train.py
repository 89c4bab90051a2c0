"""``mfmrec train``: train any registered model from a run config."""

from __future__ import annotations

from pathlib import Path

import typer

HELP = """Train a model from a run config (YAML with model:, train: and eval: sections).

Overrides use dotted keys: `train.lr=5e-4 train.epochs=3 model.hidden=32`.

The run directory gets config.yaml (resolved), run.json (dataset path), metrics.jsonl,
checkpoints/step-N/ (resumable), final/trainable.safetensors, efficiency.json and
report.md. A killed run continues exactly where its last checkpoint left off with
--resume.

Several GPUs or nodes (DDP; `train.distributed=fsdp` shards parameters instead):
`accelerate launch --multi_gpu --num_processes 4 -m mfmrec.cli.main train CONFIG ...`
or `torchrun --nproc_per_node 4 -m mfmrec.cli.main train CONFIG ...`. Several CPU
processes joined by gloo: `torchrun --standalone --nproc_per_node 2 -m mfmrec.cli.main
train CONFIG ...` (accelerate's own multi-CPU launch needs MPI). `train.batch_size` is per
process; only the first process writes the run directory.
"""


def train_cmd(
    config: Path = typer.Argument(..., help="Run config YAML (see configs/)."),
    overrides: list[str] = typer.Argument(None, help="Dotted key=value overrides, e.g. "
                                          "train.lr=5e-4 model.hidden=32."),
    data: Path = typer.Option(None, "--data", help="Prepared dataset directory (from `mfmrec "
                              "data import`); optional with --resume."),
    out: Path = typer.Option(..., "--out", help="Run directory to create (or resume)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its "
                                "latest checkpoint (same config required)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    from mfmrec.training.config import load_run_config
    from mfmrec.training.runs import print_summary, train

    run_config = load_run_config(config, overrides or [])
    result = train(run_config, data, out, resume=resume, quiet=quiet)
    from accelerate.state import PartialState

    if not PartialState().is_main_process:
        return
    if result.already_finished:
        typer.echo(f"{out}: already finished ({result.state.step} steps); nothing to do")
    else:
        print_summary(result, out)


def register(app: typer.Typer) -> None:
    app.command("train", help=HELP)(train_cmd)
