"""``mfmrec pretrain``: P5-style pretraining of a T5 backbone for VIP5."""

from __future__ import annotations

from pathlib import Path

import typer

_PARAGRAPHS = (
    "Pretrain a T5 backbone on the recommendation prompts (P5-style), then export it.",
    "The config is a VIP5 run config with `tuning: full` and `image_tokens: 0`: every "
    "weight of a T5 (a preset such as `backbone: small`, or a checkpoint folder) trains on "
    "the text-only prompts of all three task families (sequential, direct, explanation) "
    "through the same trainer as `mfmrec train`. See configs/pretrain-demo.yaml.",
    "--out becomes an ordinary run directory (config.yaml, metrics.jsonl, checkpoints/, "
    "final/, report.md); afterwards OUT/backbone/ holds the exported backbone "
    "(save_pretrained weights, tokenizer, trained whole-word/category embeddings). Start "
    "VIP5 adapter tuning from it with `model.backbone=OUT/backbone`.",
    "No pretrained T5 weights ship with mfmrec: a backbone pretrained here has only seen "
    "this dataset's prompts, and results obtained with it are not those of a T5 "
    "pretrained on C4.",
)
HELP = "\n\n".join(_PARAGRAPHS)


def pretrain_cmd(
    config: Path = typer.Argument(..., help="Pretraining run config YAML (e.g. "
                                  "configs/pretrain-demo.yaml)."),
    overrides: list[str] = typer.Argument(None, help="Dotted key=value overrides, e.g. "
                                          "train.epochs=3 model.backbone=small."),
    data: Path = typer.Option(None, "--data", help="Prepared dataset directory (from "
                              "`mfmrec data import`); optional with --resume."),
    out: Path = typer.Option(..., "--out", help="Run directory to create (or resume); the "
                             "backbone is exported to OUT/backbone/."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its "
                                "latest checkpoint (same config required)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    from accelerate.state import PartialState

    from mfmrec.pipelines.pretrain import check_pretrain_config, pretrain
    from mfmrec.training.config import load_run_config
    from mfmrec.training.runs import print_summary

    run_config = load_run_config(config, overrides or [])
    check_pretrain_config(run_config)  # before any work: a wrong mode fails in one line
    result, backbone = pretrain(run_config, data, out, resume=resume, quiet=quiet)
    if PartialState().is_main_process and result.already_finished:
        typer.echo(f"{out}: already finished ({result.state.step} steps); nothing to do")
    elif PartialState().is_main_process:
        print_summary(result, out)
        typer.echo(f"exported backbone to {backbone} (use model.backbone={backbone})")


def register(app: typer.Typer) -> None:
    app.command("pretrain", help=HELP)(pretrain_cmd)
