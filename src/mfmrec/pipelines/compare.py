"""Compare models: train each run config, evaluate all with one protocol, one table.

``mfmrec compare CONFIG... --data DATA --out OUT`` calls :func:`compare`:

1. each config trains into ``OUT/runs/<config stem>`` (:func:`mfmrec.training.runs.train`);
   a finished run with the same resolved config is reused, an unfinished one resumed;
2. every run is evaluated by the one evaluator with the **same** :class:`EvalConfig`: the
   first config's ``eval:`` section (defaults if it has none), after the overrides;
3. ``OUT/compare.md`` and ``OUT/compare.json`` hold the tables (one per task), and
   ``OUT/hr10.png`` / ``OUT/ndcg10.png`` chart the sequential task's HR@10 and NDCG@10.

Overrides (``--set``): ``train.*`` and ``eval.*`` apply to every config; an unprefixed
``model.*`` override applies to the configs whose model has that field (``model.hidden``
fits SASRec, not BPR-MF; the skips are recorded); ``STEM:key=value`` applies to the
config ``STEM.yaml`` only. With ``budget_min``, every run gets the same wall-clock budget
(``train.max_minutes``) and a constant learning rate (``train.schedule=constant``), so a
run stopped by the budget is not judged half-way through a decay.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

from rich.console import Console

from mfmrec.config import load_yaml, to_dict
from mfmrec.errors import ConfigError
from mfmrec.evaluation import report as R
from mfmrec.evaluation.evaluator import evaluate
from mfmrec.io import atomic_file, write_json
from mfmrec.training.config import differences, load_run_config
from mfmrec.training.runs import RunDir, load_run, train

CHARTS = {"HR@10": "hr10.png", "NDCG@10": "ndcg10.png"}
TASK_ORDER = ("sequential", "direct", "explanation", "rating")


def _split_override(text: str, stems: list[str]) -> tuple[str | None, str]:
    """``STEM:key=value`` -> (STEM, "key=value"); a bare ``key=value`` -> (None, text)."""
    head = text.split("=", 1)[0]
    if ":" not in head:
        return None, text
    stem, rest = text.split(":", 1)
    if stem not in stems:
        raise ConfigError(f"--set {text}: {stem!r} names no config (configs: {', '.join(stems)})")
    return stem, rest


def _model_fields(path: Path) -> set[str] | None:
    """Field names of the config's model (None when it cannot be told before loading)."""

    try:
        config = load_run_config(path)
    except ConfigError:
        return None  # let the real load report it, with the overrides applied
    return {f.name for f in dataclasses.fields(config.model)}


def plan_overrides(configs: list[Path], overrides: list[str]) -> tuple[dict, list[str]]:
    """``{stem: [overrides]}`` and notes naming the ``model.*`` overrides a config lacks."""
    stems = [p.stem for p in configs]
    fields = {p.stem: _model_fields(p) for p in configs}
    plan: dict[str, list[str]] = {s: [] for s in stems}
    notes = []
    for text in overrides:
        stem, item = _split_override(text, stems)
        if "=" not in item:
            raise ConfigError(f"--set {text}: expected key=value")
        key = item.split("=", 1)[0].strip()
        if stem is not None:
            plan[stem].append(item)
            continue
        if not key.startswith("model."):
            for s in stems:
                plan[s].append(item)
            continue
        field = key.split(".")[1]
        fits = [s for s in stems if fields[s] is None or field in fields[s]]
        if not fits:
            raise ConfigError(f"--set {text}: no config's model has the field {key!r}")
        for s in fits:
            plan[s].append(item)
        notes += [f"`{item}` not applied to {s} (its model has no field `{field}`)"
                  for s in stems if s not in fits]
    return plan, notes


def _check_configs(configs: list[Path]) -> None:
    if not configs:
        raise ConfigError("compare: give at least one CONFIG")
    for path in configs:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: config file not found")
    stems = [p.stem for p in configs]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise ConfigError(f"compare: two configs share the name {twice[0]!r} (their runs would "
                          "share OUT/runs/<name>); rename one")


def _train_one(config, data: Path, run_dir: Path, quiet: bool, console: Console) -> str:
    """Train, resume or reuse ``run_dir``; returns what happened."""

    run = RunDir(run_dir)
    if (run_dir / "final").is_dir():
        changed = [k for k in differences(run.read_config(), config)
                   if not k.startswith("eval.")]  # the comparison's eval config rules
        if changed:
            raise ConfigError(f"{run_dir}: holds a finished run with another config (changed: "
                              f"{', '.join(changed)}); choose another --out or remove it")
        return "reused"
    resume = (run_dir / "checkpoints").is_dir()
    if run.started() and not resume:  # ours, stopped before its first checkpoint: restart
        shutil.rmtree(run_dir)
    console.print(f"[bold]training[/] {run_dir.name} ({config.model_name})"
                  + (" — resuming" if resume else ""))
    train(config, data, run_dir, resume=resume, quiet=quiet)
    return "resumed" if resume else "trained"


def _training_row(stem: str, run_dir: Path, status: str) -> list[str]:

    info = json.loads((run_dir / "run.json").read_text())
    eff_path = run_dir / "efficiency.json"
    eff = json.loads(eff_path.read_text()) if eff_path.is_file() else {}
    seconds = eff.get("train_seconds")
    return [stem, info.get("model", "?"), str(info.get("steps", "?")),
            f"{seconds:.1f}" if seconds is not None else R.MISSING,
            str(eff.get("parameters", {}).get("trainable", R.MISSING)), status]


def _check_chart_metrics(results: dict[str, dict]) -> None:
    for stem, res in results.items():
        for prompt, entry in res["tasks"].get("sequential", {}).get("prompts", {}).items():
            missing = [m for m in CHARTS if m not in entry]
            if missing:
                raise ConfigError(f"eval.hr_ks / eval.ndcg_ks: {stem} ({prompt}) has no "
                                  f"{missing[0]}; the charts need cut-off 10")
    if not any("sequential" in res["tasks"] for res in results.values()):
        raise ConfigError("compare: no config's model does the sequential task (the charts "
                          "plot its HR@10 and NDCG@10)")


def write_outputs(out: Path, results: dict[str, dict], training: list[list[str]],
                  meta: dict) -> dict:
    """compare.md, compare.json and the two charts; returns the JSON document."""
    _check_chart_metrics(results)
    sections = [R.models_table(results, task) for task in TASK_ORDER
                if any(task in r["tasks"] for r in results.values())]
    train_sec = R.Section("Training", "this session's training time; reused runs: their "
                          "last session", ["Config", "Model", "steps", "seconds",
                                           "trainable params", "status"], training)
    sim = " (SIMULATED data)" if meta["simulated"] else ""
    charts = {}
    for metric, name in CHARTS.items():
        charts[metric] = str(R.bar_chart(
            results, out / name, metrics=(metric,), ylabel=metric,
            title=f"{metric}, sequential ({meta['eval']['split']} split) — "
                  f"{meta['dataset']}{sim}"))
    notes = "\n".join(f"- {n}" for n in meta["notes"])
    md = (f"# Model comparison on {meta['dataset']}{sim}\n\n{notes}\n\n"
          + "\n".join(R.section_markdown(s) for s in [*sections, train_sec]))
    with atomic_file(out / "compare.md") as fh:
        fh.write(md)
    doc = {**meta, "charts": charts, "results": results,
           "tables": [dataclasses.asdict(s) for s in [*sections, train_sec]]}
    write_json(out / "compare.json", doc)
    return doc


def _notes(eval_source: str, cfg, budget_min: float | None, skipped: list[str]) -> list[str]:
    notes = [f"every model evaluated by the same evaluator with the same eval config "
             f"(from {eval_source}): {cfg.split} split, "
             f"{cfg.users if cfg.users else 'all'} users, full ranking with history "
             f"{'excluded' if cfg.exclude_history else 'kept'}, generated lists scored by "
             f"{cfg.sequential_scorer}"]
    if budget_min is not None:
        notes.append(f"training budget: {budget_min:g} min of wall clock per config "
                     "(train.max_minutes), learning rate constant (train.schedule=constant)")
    return notes + skipped


def compare(configs: list[str | Path], data: str | Path, out: str | Path, *,
            budget_min: float | None = None, overrides: list[str] = (), quiet: bool = False,
            console: Console | None = None) -> dict:
    """Train (or reuse) and evaluate every config; write the tables and charts in ``out``.

    Returns the ``compare.json`` document (``tables``: the report's sections as dicts)."""

    console = console or Console()
    configs, out, data = [Path(c) for c in configs], Path(out), Path(data)
    _check_configs(configs)
    if budget_min is not None and budget_min <= 0:
        raise ConfigError(f"--budget-min: must be > 0, got {budget_min}")
    if not (data / "dataset.json").is_file():
        raise ConfigError(f"--data: {data} is not a dataset directory (no dataset.json)")
    budget = ([f"train.max_minutes={budget_min}", "train.schedule=constant"]
              if budget_min is not None else [])
    plan, skipped = plan_overrides(configs, list(overrides))
    loaded = {p.stem: load_run_config(p, [*plan[p.stem], *budget]) for p in configs}
    eval_cfg = next(iter(loaded.values())).eval
    results, training = {}, []
    start = time.time()
    for stem, config in loaded.items():
        run_dir = out / "runs" / stem
        status = _train_one(config, data, run_dir, quiet, console)
        training.append(_training_row(stem, run_dir, status))
        run = load_run(run_dir)
        results[stem] = evaluate(run.model, run.dataset, eval_cfg, progress=not quiet,
                                 console=console)
        R.write_report(run_dir, f"compare-{eval_cfg.split}", results[stem])
    source = f"{configs[0].name}'s eval: section" if load_yaml(configs[0]).get("eval") \
        else "the defaults"
    meta = {"configs": [str(p) for p in configs], "data": str(data),
            "dataset": next(iter(results.values()))["dataset"],
            "simulated": bool(next(iter(results.values()))["simulated"]),
            "eval": to_dict(eval_cfg), "budget_min": budget_min, "overrides": plan,
            "notes": _notes(source, eval_cfg, budget_min, skipped),
            "runs": {s: str(out / "runs" / s) for s in loaded},
            "elapsed_s": round(time.time() - start, 1)}
    return write_outputs(out, results, training, meta)
