"""A training run directory, end to end: what ``mfmrec train`` calls.

Layout of ``RUN_DIR``::

    config.yaml          the resolved run config (every default filled in)
    run.json             dataset path and name, model, backbone reference, status, versions
    metrics.jsonl        step, epoch, loss, lr, samples_per_s, elapsed
    checkpoints/step-N/  resumable checkpoints (see mfmrec.training.checkpoint)
    checkpoints/latest   name of the newest complete checkpoint
    final/               trainable.safetensors + config.yaml + reference.json
    efficiency.json      parameters, seconds per epoch, samples/s, peak memory
    report.md            the same as a Markdown report

Only the main process writes; every process trains.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

import mfmrec
from mfmrec.data import load_dataset
from mfmrec.errors import ConfigError
from mfmrec.io import atomic_dir, atomic_file, write_json
from mfmrec.training import checkpoint as ckpt_io
from mfmrec.training.config import RESUMABLE_CHANGES, RunConfig, differences
from mfmrec.training.efficiency import rows_of, to_markdown
from mfmrec.training.trainer import Trainer, TrainResult, TrainState, process_state


def _check_run_dir(run_dir: Path, config: RunConfig, resume: bool) -> None:
    started = any((run_dir / p).exists() for p in ("checkpoints", "final", "metrics.jsonl"))
    if not resume:
        if started:
            raise ConfigError(f"{run_dir}: already holds a training run; pass --resume to "
                              "continue it, or choose another --out")
        return
    if (run_dir / "config.yaml").is_file():
        changed = [k for k in differences(ckpt_io.read_run_config(run_dir), config)
                   if k not in RESUMABLE_CHANGES]
        if changed:
            raise ConfigError(f"{run_dir}/config.yaml: cannot resume with a different config "
                              f"(changed: {', '.join(changed)}); only "
                              f"{', '.join(sorted(RESUMABLE_CHANGES))} may change")


def _dataset_dir(run_dir: Path, data_dir: str | Path | None, resume: bool) -> Path:
    if data_dir is not None:
        return Path(data_dir).resolve()
    recorded = ckpt_io.read_run_info(run_dir).get("dataset") if resume else None
    if not recorded:
        raise ConfigError("--data: a dataset directory is required (a resumed run reuses "
                          "the one in RUN_DIR/run.json)")
    return Path(recorded)


def run_info(config: RunConfig, dataset, data_dir: Path, status: str) -> dict:
    return {
        "dataset": str(data_dir), "dataset_name": dataset.name,
        "dataset_simulated": dataset.simulated, "model": config.model_name,
        "backbone": ckpt_io.backbone_reference(config.model), "status": status,
        "versions": {"mfmrec": mfmrec.__version__,
                     "torch": torch.__version__, "python": platform.python_version()},
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def train(config: RunConfig, data_dir: str | Path | None, out_dir: str | Path, *,
          resume: bool = False, quiet: bool = False,
          callbacks: Sequence[Callable[[TrainState], None]] = ()) -> TrainResult:
    """Train ``config``'s model on the dataset at ``data_dir`` into ``out_dir``.

    With ``resume``, continue from the latest checkpoint in ``out_dir`` (the config must
    match the stored one) and reach exactly the weights an uninterrupted run reaches.
    """
    run_dir = Path(out_dir)
    _check_run_dir(run_dir, config, resume)
    data_dir = _dataset_dir(run_dir, data_dir, resume)
    dataset = load_dataset(data_dir)
    model = ckpt_io.build_model(config, dataset)
    main = process_state(config.train.cpu).is_main_process
    info = run_info(config, dataset, data_dir, "training")
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_file(run_dir / "config.yaml") as fh:
            fh.write(config.to_yaml())
        write_json(run_dir / "run.json", info)
    reference = {k: info[k] for k in ("dataset", "dataset_name", "backbone")}
    trainer = Trainer(model, dataset, config, run_dir, reference=reference, quiet=quiet,
                      callbacks=callbacks)
    result = trainer.fit(resume=resume)
    if main:
        _finish(run_dir, config, dataset, info, reference, result)
    return result


def _finish(run_dir: Path, config: RunConfig, dataset, info: dict, reference: dict,
            result: TrainResult) -> None:
    with atomic_dir(run_dir / "final") as tmp:
        ckpt_io.save_tensors(tmp / ckpt_io.TRAINABLE, result.trainable)
        (tmp / "config.yaml").write_text(config.to_yaml())
        write_json(tmp / "reference.json", {**reference, "step": result.state.step})
    write_json(run_dir / "efficiency.json", result.efficiency)
    (run_dir / "report.md").write_text(report_markdown(run_dir, config, dataset, result))
    write_json(run_dir / "run.json", {**info, "status": "finished",
                                      "steps": result.state.step,
                                      "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def report_markdown(run_dir: Path, config: RunConfig, dataset, result: TrainResult) -> str:
    eff = result.efficiency
    data = f"{dataset.name}" + (" (SIMULATED data)" if dataset.simulated else "")
    loss = f"{result.last_loss:.4f}" if result.last_loss is not None else "n/a"
    lines = [
        f"# Training run: {config.model_name} on {data}", "",
        f"- run directory: `{run_dir}`",
        f"- dataset: `{dataset.root}`",
        f"- optimizer steps: {result.state.step} of {result.total_steps} "
        f"({result.state.epoch} full epochs)",
        f"- last logged loss: {loss}",
        f"- device: {eff.get('device')}, processes: {eff.get('processes')}, "
        f"precision: {eff.get('precision')}",
        "", "## Efficiency (this session)", "", to_markdown(eff),
        "Peak memory: CUDA peak allocated on GPU; on CPU the RSS sampled during training "
        "(`ru_maxrss` is the whole process lifetime's peak).", "",
        "## Config", "", "```yaml", config.to_yaml().rstrip(), "```", "",
    ]
    return "\n".join(lines)


def print_summary(result: TrainResult, run_dir: Path, console: Console | None = None) -> None:
    """The efficiency table and where the run went."""
    console = console or Console()
    table = Table(title=f"training efficiency ({result.state.step} steps)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in rows_of(result.efficiency):
        table.add_row(key, value)
    console.print(table)
    loss = f", last loss {result.last_loss:.4f}" if result.last_loss is not None else ""
    console.print(f"wrote {run_dir}{loss}")
