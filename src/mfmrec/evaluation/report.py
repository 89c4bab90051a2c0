"""Evaluation reports: JSON + Markdown per split, rich tables, comparisons and a bar chart.

The tables follow the VIP5 paper's Tables 2-4: one table per task, rows = prompts (or
models), columns = metrics (ranking metrics to 4 decimals, text metrics x100 to 2).
A run directory keeps ``eval/<split>.json`` (the evaluator's results, exact) and
``eval/<split>.md`` (the same as tables); ``mfmrec report RUN_DIR`` reprints them.
:func:`make_progress` is the evaluator's progress bar (items/s, ETA; off with --quiet).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from rich import progress as rp
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mfmrec.errors import MfmrecError
from mfmrec.evaluation.metrics import HR_KS, NDCG_KS, metric_names
from mfmrec.evaluation.text_metrics import TEXT_METRICS
from mfmrec.io import atomic_file, write_json

TITLES = {"sequential": "Sequential recommendation", "direct": "Direct recommendation",
          "explanation": "Explanation generation", "rating": "Rating prediction"}
RATING_METRICS = ("rmse", "mae")
MODE_NOTES = {"p5": "P5/VIP5 definitions: corpus BLEU-4 without smoothing, per-sentence "
                    "ROUGE F1, whitespace tokens",
              "standard": "sacrebleu corpus BLEU-4 and rouge-score F1 (library tokenizers)"}
MISSING = "—"


@dataclass
class Section:
    """One table: a title, a note under it, a header and rows of formatted cells."""

    title: str
    note: str
    header: list[str]
    rows: list[list[str]]


def prompt_order(key: str) -> tuple:
    """Natural order of prompt ids: A-3 < A-9 < A-10 < B-5; ``-`` first."""
    m = re.fullmatch(r"([A-Za-z]+)-(\d+)", key)
    return (m.group(1), int(m.group(2)), "") if m else ("", -1, key)


def _fmt(value, text: bool = False) -> str:
    if value is None:
        return MISSING
    return f"{value:.2f}" if text else f"{value:.4f}"


def ranking_columns(results: dict) -> list[str]:
    s = results.get("settings", {})
    return metric_names(s.get("hr_ks", HR_KS), s.get("ndcg_ks", NDCG_KS))


def metric_cells(results: dict, task: str, prompt: str, mode: str = "p5") -> list[str]:
    """Formatted metric cells of one (task, prompt); dashes where absent."""
    entry = results.get("tasks", {}).get(task, {}).get("prompts", {}).get(prompt)
    if task == "explanation":
        values = (entry or {}).get(mode, {})
        return [_fmt(values.get(m), text=True) for m in TEXT_METRICS]
    cols = task_columns(results, task)
    return [_fmt((entry or {}).get(c)) for c in cols]


def task_columns(results: dict, task: str) -> list[str]:
    if task == "rating":
        return list(RATING_METRICS)
    return list(TEXT_METRICS) if task == "explanation" else ranking_columns(results)


AGREEMENT = "top10_agreement_with_beam"


def _validity(entry: dict) -> str:
    if "valid_share" not in entry:
        return MISSING
    return f"{entry['valid_share']:.3f} ({entry['invalid']} invalid, {entry['duplicates']} dup)"


def sections(results: dict) -> list[Section]:
    """The report's tables, in task order."""
    out = []
    for task, body in results.get("tasks", {}).items():
        prompts = sorted(body["prompts"], key=prompt_order)
        if task == "explanation":
            for mode in ("p5", "standard"):
                rows = [[p, *metric_cells(results, task, p, mode),
                         str(body["prompts"][p]["requests"])] for p in prompts]
                out.append(Section(f"{TITLES[task]} ({mode} metrics, x100)",
                                   f"{body['protocol']}; {MODE_NOTES[mode]}",
                                   ["Prompt", *TEXT_METRICS, "requests"], rows))
            continue
        if task == "rating":
            rows = [[p, *metric_cells(results, task, p), str(body["prompts"][p]["ratings"])]
                    for p in prompts]
            out.append(Section(TITLES[task], body["protocol"],
                               ["Prompt", *RATING_METRICS, "ratings"], rows))
            continue
        generated = any("valid_share" in body["prompts"][p] for p in prompts)
        agree = any(AGREEMENT in body["prompts"][p] for p in prompts)  # exact vs beam
        header = ["Prompt", *ranking_columns(results), "users"]
        rows = []
        for p in prompts:
            entry = body["prompts"][p]
            rows.append([p, *metric_cells(results, task, p), str(entry["users"])]
                        + ([_validity(entry)] if generated else [])
                        + ([_fmt(entry.get(AGREEMENT))] if agree else []))
        out.append(Section(TITLES.get(task, task), body["protocol"],
                           header + (["valid share"] if generated else [])
                           + (["top-10 = beam"] if agree else []), rows))
    return out


def _title(results: dict) -> str:
    sim = " — SIMULATED data" if results.get("simulated") else ""
    return (f"{results.get('model', '?')} on {results.get('dataset', '?')} "
            f"({results.get('split', '?')} split){sim}")


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(results: dict) -> str:
    """The whole report as Markdown: one table per task, skipped tasks, examples."""
    s = results.get("settings", {})
    parts = [f"# Evaluation: {_title(results)}",
             f"users: {results.get('users')}, items: {results.get('num_items')}, "
             f"seed: {s.get('seed')}, ties: {s.get('ties', 'pessimistic')}"
             + (f", weights: {results['weights']}" if "weights" in results else "")]
    for sec in sections(results):
        parts += [f"## {sec.title}", f"_{sec.note}_", _md_table(sec.header, sec.rows)]
    for prompt, entry in sorted(results.get("tasks", {}).get("explanation", {})
                                .get("prompts", {}).items(), key=lambda kv: prompt_order(kv[0])):
        examples = entry.get("examples", [])
        if examples:
            parts.append(f"### Examples ({prompt})")
            parts += [f"- reference: {e['reference']}\n  generated: "
                      f"{e['generated'] or '(empty)'}" for e in examples]
    if results.get("skipped"):
        parts.append("## Skipped")
        parts += [f"- {task}: {why}" for task, why in results["skipped"].items()]
    return "\n\n".join(parts) + "\n"


def _rich_table(title: str, header: list[str], rows: list[list[str]], note: str = "") -> Table:
    table = Table(title=title, caption=note or None)
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def print_report(results: dict, console: Console | None = None) -> None:
    """Print the report's tables with rich."""
    console = console or Console()
    console.print(f"[bold]{_title(results)}[/bold]")
    for sec in sections(results):
        console.print(_rich_table(sec.title, sec.header, sec.rows, sec.note))
    for task, why in results.get("skipped", {}).items():
        console.print(f"[dim]skipped {task}: {why}[/dim]")


# ---- progress ---------------------------------------------------------------------------
class _RateColumn(rp.ProgressColumn):
    """``12.3 users/s``: the throughput researchers compare across models."""

    def render(self, task) -> Text:
        unit = task.fields.get("unit", "it")
        speed = f"{task.speed:,.1f}" if task.speed else "?"
        return Text(f"{speed} {unit}/s", style="progress.data.speed")


def make_progress(enabled: bool, console: Console | None = None) -> rp.Progress:
    """A rich bar with done/total, rate and ETA; ``enabled=False`` is the --quiet switch."""
    return rp.Progress(rp.TextColumn("[bold]{task.description}"), rp.BarColumn(),
                       rp.MofNCompleteColumn(), _RateColumn(), rp.TimeRemainingColumn(),
                       console=console, disable=not enabled, transient=False)


# ---- files ----------------------------------------------------------------------------
def write_report(run_dir: str | Path, split: str, results: dict) -> tuple[Path, Path]:
    """Write ``eval/<split>.json`` and ``eval/<split>.md`` atomically; returns both."""
    folder = Path(run_dir) / "eval"
    json_path, md_path = folder / f"{split}.json", folder / f"{split}.md"
    write_json(json_path, results)
    with atomic_file(md_path) as fh:
        fh.write(render_markdown(results))
    return json_path, md_path


def saved_splits(run_dir: str | Path) -> list[str]:
    folder = Path(run_dir) / "eval"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def load_report(run_dir: str | Path, split: str) -> dict:
    path = Path(run_dir) / "eval" / f"{split}.json"
    if not path.is_file():
        raise MfmrecError(f"{path}: no saved report (run `mfmrec evaluate {run_dir}` first)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise MfmrecError(f"{path}: invalid JSON ({exc})") from None


# ---- comparisons ----------------------------------------------------------------------
def side_by_side(runs: dict[str, dict], task: str = "sequential", mode: str = "p5",
                 metrics: list[str] | None = None) -> Section:
    """Rows = prompts (union over runs), one column group per run (``"multimodal"`` vs
    ``"text-only"``...); ``metrics`` narrows each group (default: all of the task's)."""
    if not runs:
        raise ValueError("side_by_side needs at least one run")
    prompts = sorted({p for r in runs.values()
                      for p in r.get("tasks", {}).get(task, {}).get("prompts", {})},
                     key=prompt_order)
    header, picks = ["Prompt"], {}
    for name, res in runs.items():
        cols = task_columns(res, task)
        picks[name] = [cols.index(m) for m in (metrics or cols) if m in cols]
        header += [f"{name} {cols[i]}" for i in picks[name]]
    rows = []
    for p in prompts:
        row = [p]
        for name, res in runs.items():
            cells = metric_cells(res, task, p, mode)
            row += [cells[i] for i in picks[name]]
        rows.append(row)
    note = MODE_NOTES[mode] if task == "explanation" else "ranking metrics"
    return Section(f"{TITLES.get(task, task)}: {' vs '.join(runs)}", note, header, rows)


def models_table(runs: dict[str, dict], task: str = "sequential", mode: str = "p5") -> Section:
    """Rows = (run, prompt) pairs, columns = the task's metrics (a model comparison)."""
    first = next(iter(runs.values()), {})
    header = ["Model", "Prompt", *task_columns(first, task)]
    rows = []
    for name, res in runs.items():
        prompts = res.get("tasks", {}).get(task, {}).get("prompts", {})
        for p in sorted(prompts, key=prompt_order):
            rows.append([name, p, *metric_cells(res, task, p, mode)])
    return Section(TITLES.get(task, task), MODE_NOTES.get(mode, "") if task == "explanation"
                   else "ranking metrics", header, rows)


def section_markdown(section: Section) -> str:
    return f"## {section.title}\n\n_{section.note}_\n\n{_md_table(section.header, section.rows)}\n"


def print_section(section: Section, console: Console | None = None) -> None:
    (console or Console()).print(_rich_table(section.title, section.header, section.rows,
                                             section.note))


def bar_chart(runs: dict[str, dict], path: str | Path, task: str = "sequential",
              metrics: tuple[str, ...] = ("HR@10", "NDCG@10"), title: str | None = None,
              xlabel: str = "model (prompt)", ylabel: str = "score") -> Path:
    """A grouped bar chart (PNG) of ``metrics`` for every (run, prompt); Agg backend, no
    display needed. A missing metric raises instead of plotting a zero."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib, ~0.4 s
    from matplotlib.figure import Figure  # lazy: matplotlib, ~0.4 s; only bar charts need it

    labels, values = [], []
    for name, res in runs.items():
        prompts = res.get("tasks", {}).get(task, {}).get("prompts", {})
        for p in sorted(prompts, key=prompt_order):
            labels.append(name if p == "-" else f"{name} ({p})")
            missing = [m for m in metrics if m not in prompts[p]]
            if missing:
                raise MfmrecError(f"bar chart: {name} ({p}) has no {missing[0]} result")
            values.append([prompts[p][m] for m in metrics])
    if not labels:
        raise MfmrecError(f"bar chart: no run has {task} results")
    fig = Figure(figsize=(max(5.5, 1.2 * len(labels) + 1.5), 3.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / len(metrics)
    for j, metric in enumerate(metrics):
        xs = [i + (j - (len(metrics) - 1) / 2) * width for i in range(len(labels))]
        bars = ax.bar(xs, [v[j] for v in values], width=width, label=metric)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or TITLES.get(task, task), fontsize=10)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=120)
    return path
