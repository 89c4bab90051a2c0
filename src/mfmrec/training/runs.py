"""A run directory, end to end: its layout, and writing, reading and loading it.

Layout of ``RUN_DIR``::

    config.yaml          the resolved run config (every default filled in)
    run.json             dataset path and name, model, backbone reference, status, versions
    metrics.jsonl        step, epoch, loss, lr, samples_per_s, elapsed
    checkpoints/step-N/  resumable checkpoints (see mfmrec.training.checkpoint)
    checkpoints/latest   name of the newest complete checkpoint
    final/               trainable.safetensors + config.yaml + reference.json
    efficiency.json      parameters, seconds per epoch, samples/s, tokens, MFU, peak memory
    report.md            the same as a Markdown report
    curves.png           loss, learning rate and samples/s over steps (from metrics.jsonl)
    .lock                the pid of the process writing the run (mfmrec.training.lock)

:class:`RunDir` is the one place that knows these names. :func:`train` (what
``mfmrec train`` calls) writes a run; :func:`load_run` rebuilds its trained model through
the registry. Only the main process writes; every process trains.
"""

from __future__ import annotations

import contextlib
import platform
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

import mfmrec
from mfmrec.config import apply_overrides, load_yaml
from mfmrec.data import load_dataset
from mfmrec.errors import ConfigError, MfmrecError
from mfmrec.io import atomic_dir, atomic_file, read_json_object, write_json
from mfmrec.models import registry
from mfmrec.training.checkpoint import TRAINABLE, latest_checkpoint, load_tensors, save_tensors
from mfmrec.training.config import RESUMABLE_CHANGES, RunConfig, differences, resolve
from mfmrec.training.curves import CURVES, write_curves
from mfmrec.training.efficiency import rows_of, to_markdown
from mfmrec.training.integrity import finite, locked
from mfmrec.training.provenance import FINGERPRINT, check_data, data_fingerprint
from mfmrec.training.trainer import Trainer, TrainResult, TrainState, process_state

CONFIG, INFO, FINAL = "config.yaml", "run.json", "final"


class RunDir:
    """One run directory: the names of its files, and reading and writing them."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def started(self) -> bool:
        """Whether a training run already wrote here."""
        return any((self.path / p).exists() for p in ("checkpoints", FINAL, "metrics.jsonl"))

    def start(self, config: RunConfig, info: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.path / CONFIG) as fh:
            fh.write(config.to_yaml())
        self.write_info(info)

    def read_config(self, overrides: Sequence[str] = ()) -> RunConfig:
        """The stored config; dotted ``overrides`` (e.g. ``model.beams=20``) change
        settings that need no other weights, such as decoding."""
        path = self.path / CONFIG
        if not path.is_file():
            raise ConfigError(f"{self.path}: not a run directory (no {CONFIG})")
        data = apply_overrides(load_yaml(path), list(overrides))
        return resolve(data, source=str(path))

    @property
    def curves(self) -> Path:
        """The training-curves PNG (written when training finishes)."""
        return self.path / CURVES

    def read_info(self) -> dict:
        return read_json_object(self.path / INFO, "run info") or {}

    def finished(self) -> bool:
        """Whether training ran to its end (``final/`` written, run.json says so)."""
        return (self.read_info().get("status") == "finished"
                and (self.path / FINAL / TRAINABLE).is_file())

    def write_info(self, info: dict) -> None:
        write_json(self.path / INFO, info)

    def write_final(self, trainable: dict, config: RunConfig, reference: dict) -> None:
        with atomic_dir(self.path / FINAL) as tmp:
            save_tensors(tmp / TRAINABLE, trainable)
            (tmp / CONFIG).write_text(config.to_yaml())
            write_json(tmp / "reference.json", reference)

    def weights(self, checkpoint: str | Path | None = None) -> Path:
        """The trained tensors: ``final/`` (or ``checkpoint``; or the latest checkpoint of
        an unfinished run)."""
        source = Path(checkpoint) if checkpoint else self.path / FINAL
        if not (source / TRAINABLE).is_file() and checkpoint is None:
            source = latest_checkpoint(self.path) or source
        if not (source / TRAINABLE).is_file():
            raise ConfigError(f"{self.path}: no trained weights ({source / TRAINABLE} missing)")
        return source / TRAINABLE

    def load(self, data_dir: str | Path | None = None, checkpoint: str | Path | None = None,
             overrides: Sequence[str] = (), allow_changed_data: bool = False) -> LoadedRun:
        """Rebuild the run's model: the config from ``config.yaml`` (with ``overrides``),
        the data from ``data_dir`` (default: the dataset recorded in ``run.json``), the
        weights from :meth:`weights`. The recorded dataset must still match the run's
        fingerprint of it (:func:`~mfmrec.training.provenance.check_data`) unless
        ``allow_changed_data``; another ``data_dir`` is the caller's choice."""
        config = self.read_config(overrides)
        info = self.read_info()
        recorded = info.get("dataset")
        if data_dir is None and not recorded:
            raise ConfigError(f"{self.path}/{INFO}: no dataset path recorded; pass data_dir")
        data_dir = Path(data_dir if data_dir is not None else recorded)
        if recorded and data_dir.resolve() == Path(recorded).resolve():
            check_data(info, data_dir, self.path, allow_changed_data)
        dataset = load_dataset(data_dir)
        model = build_model(config, dataset)
        source = self.weights(checkpoint)
        tensors = finite(source, load_tensors(source))
        try:
            model.load_trainable_state_dict(tensors)
        except (KeyError, RuntimeError) as exc:  # missing/unknown names, or shape mismatches
            raise ConfigError(f"{source}: does not fit model {config.model_name!r} on "
                              f"{dataset.root} ({str(exc.args[0]).splitlines()[0]})") from None
        model.eval()
        return LoadedRun(model=model, dataset=dataset, config=config, run_dir=self.path,
                         weights=weights_label(source.parent))


def weights_label(folder: Path) -> str:
    """``final``, ``step N`` for a checkpoint, else the folder itself."""
    if folder.name == FINAL:
        return FINAL
    match = re.fullmatch(r"step-(\d+)", folder.name)
    return f"step {match.group(1)}" if match else str(folder)


@dataclass
class LoadedRun:
    """A trained model rebuilt from a run directory."""

    model: Any  # Recommender, in eval mode, trainable tensors loaded
    dataset: Any  # mfmrec.data.Dataset
    config: RunConfig
    run_dir: Path
    weights: str = FINAL  # which weights were loaded: "final" or "step N"


def load_run(run_dir: str | Path, data_dir: str | Path | None = None,
             checkpoint: str | Path | None = None, overrides: Sequence[str] = (),
             allow_changed_data: bool = False) -> LoadedRun:
    """``RunDir(run_dir).load(data_dir, checkpoint, overrides, allow_changed_data)``."""
    return RunDir(run_dir).load(data_dir, checkpoint, overrides, allow_changed_data)


def build_model(config: RunConfig, dataset) -> Any:
    """Build the registered model; seeded, so randomly initialised frozen parts match."""
    torch.manual_seed(config.train.seed)
    return registry.get(config.model_name).builder(config.model, dataset)


def backbone_reference(model_section: dict) -> dict:
    """Model-config fields that point at weights or tokenizers living outside the run."""
    keys = ("backbone", "pretrained", "tokenizer", "checkpoint")
    return {k: v for k, v in model_section.items()
            if isinstance(v, str) and any(s in k for s in keys)}


def _check_run_dir(run_dir: Path, config: RunConfig, resume: bool) -> None:
    if not resume:
        if RunDir(run_dir).started():
            raise ConfigError(f"{run_dir}: already holds a training run; pass --resume to "
                              "continue it, or choose another --out")
        return
    if (run_dir / CONFIG).is_file():
        changed = [k for k in differences(RunDir(run_dir).read_config(), config)
                   if k not in RESUMABLE_CHANGES]
        if changed:
            raise ConfigError(f"{run_dir}/config.yaml: cannot resume with a different config "
                              f"(changed: {', '.join(changed)}); only "
                              f"{', '.join(sorted(RESUMABLE_CHANGES))} may change")


def _dataset_dir(run_dir: Path, data_dir: str | Path | None, resume: bool) -> Path:
    if data_dir is not None:
        return Path(data_dir).resolve()
    recorded = RunDir(run_dir).read_info().get("dataset") if resume else None
    if not recorded:
        raise ConfigError("--data: a dataset directory is required (a resumed run reuses "
                          "the one in RUN_DIR/run.json)")
    return Path(recorded)


def run_info(config: RunConfig, dataset, data_dir: Path, status: str) -> dict:
    return {
        "dataset": str(data_dir), "dataset_name": dataset.name,
        "dataset_simulated": dataset.simulated, "model": config.model_name,
        "backbone": backbone_reference(config.to_dict()["model"]), "status": status,
        "versions": {"mfmrec": mfmrec.__version__,
                     "torch": torch.__version__, "python": platform.python_version()},
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        FINGERPRINT: data_fingerprint(config.to_dict()["model"], data_dir),
    }


def train(config: RunConfig, data_dir: str | Path | None, out_dir: str | Path, *,
          resume: bool = False, quiet: bool = False,
          callbacks: Sequence[Callable[[TrainState], None]] = ()) -> TrainResult:
    """Train ``config``'s model on the dataset at ``data_dir`` into ``out_dir``.

    With ``resume``, continue from the latest checkpoint in ``out_dir`` (the config must
    match the stored one) and reach exactly the weights an uninterrupted run reaches; a
    finished run is left untouched (the result says ``already_finished``). The main
    process holds the run directory's lock throughout.
    """
    run_dir = Path(out_dir)
    main = process_state(config.train.cpu).is_main_process
    with locked(run_dir, enabled=main):
        _check_run_dir(run_dir, config, resume)
        if resume and RunDir(run_dir).finished():
            steps = int(RunDir(run_dir).read_info().get("steps", 0))
            return TrainResult(TrainState(step=steps), steps, {}, {}, already_finished=True)
        return _train(config, data_dir, run_dir, resume, quiet, callbacks, main)


def _train(config: RunConfig, data_dir: str | Path | None, run_dir: Path, resume: bool,
           quiet: bool, callbacks: Sequence[Callable[[TrainState], None]],
           main: bool) -> TrainResult:
    data_dir = _dataset_dir(run_dir, data_dir, resume)
    dataset = load_dataset(data_dir)
    model = build_model(config, dataset)
    info = run_info(config, dataset, data_dir, "training")
    if main:
        RunDir(run_dir).start(config, info)
    reference = {k: info[k] for k in ("dataset", "dataset_name", "backbone")}
    trainer = Trainer(model, dataset, config, run_dir, reference=reference, quiet=quiet,
                      callbacks=callbacks)
    try:
        result = trainer.fit(resume=resume)
    except BaseException as exc:
        if main:  # never left saying "training": interrupted (resumable) or failed
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            with contextlib.suppress(MfmrecError):  # e.g. disk full: report the first error
                RunDir(run_dir).write_info({**info, "status": status,
                                            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        raise
    if main:
        _finish(run_dir, config, dataset, info, reference, result)
    return result


def _finish(run_dir: Path, config: RunConfig, dataset, info: dict, reference: dict,
            result: TrainResult) -> None:
    run = RunDir(run_dir)
    run.write_final(result.trainable, config, {**reference, "step": result.state.step})
    write_json(run.path / "efficiency.json", result.efficiency)
    write_curves(run.path, f"{config.model_name} on {dataset.name}"
                 + (" (SIMULATED data)" if dataset.simulated else ""))
    with atomic_file(run.path / "report.md") as fh:
        fh.write(report_markdown(run_dir, config, dataset, result))
    run.write_info({**info, "status": "finished", "steps": result.state.step,
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
        *([f"- training curves: `{Path(run_dir) / CURVES}` (loss, learning rate, samples/s)"]
          if (Path(run_dir) / CURVES).is_file() else []),
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
