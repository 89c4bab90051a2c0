"""The demo's one table, its paired intervals and its example user.

``summary_results`` files every model's numbers as ``[model][prompt][metric]``; a model
without prompts is filed under the seen prompt of the protocol it was scored on: ``A-3``
for full ranking (sequential), ``B-5`` for the 100 stored candidates (direct).
"""

from __future__ import annotations

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from mfmrec.evaluation.evaluator import recommend_top_k
from mfmrec.evaluation.metrics import paired_bootstrap

METRICS = ("HR@5", "NDCG@5", "HR@10", "NDCG@10")
SEEN = {"sequential": "A-3", "direct": "B-5"}


def _prompts(result: dict) -> dict[str, dict]:
    """``{prompt: per-prompt result}`` of a model, prompt-less models filed by protocol."""
    out = {}
    for task, section in result["tasks"].items():
        for key, value in section["prompts"].items():
            out[SEEN[task] if key == "-" else key] = value
    return out


def summary_results(results: dict[str, dict]) -> dict[str, dict[str, dict[str, float]]]:
    return {model: {p: {m: float(v[m]) for m in METRICS} for p, v in _prompts(r).items()}
            for model, r in results.items()}


def intervals(results: dict[str, dict], a: str, b: str, rounds: int = 2000
              ) -> dict[str, dict[str, list[float]]]:
    """``{prompt: {metric: [low, high]}}``: 95% paired bootstrap interval of a - b."""
    ra, rb = _prompts(results[a]), _prompts(results[b])
    out = {}
    for prompt in sorted(set(ra) & set(rb)):
        x, y = np.asarray(ra[prompt]["ranks"]), np.asarray(rb[prompt]["ranks"])
        out[prompt] = {}
        for metric in METRICS:
            _, low, high = paired_bootstrap(x, y, metric, rounds=rounds)
            out[prompt][metric] = [round(low, 4), round(high, 4)]
    return out


def _columns(table: dict) -> list[tuple[str, str]]:
    prompts = sorted({p for rows in table.values() for p in rows})
    return [(p, m) for p in prompts for m in METRICS]


def print_table(table: dict, spans: dict, console: Console) -> None:
    grid = Table(title="Test split (SIMULATED data): A-3 = full ranking over all items, "
                 "history excluded; B-5 = 100 stored candidates")
    grid.add_column("model")
    cols = _columns(table)
    for prompt, metric in cols:
        grid.add_column(f"{prompt} {metric}", justify="right")
    for model, rows in table.items():
        grid.add_row(model, *(f"{rows[p][m]:.4f}" if p in rows else "-" for p, m in cols))
    console.print(grid)
    for prompt, metrics in spans.items():
        text = ", ".join(f"{m} [{lo:+.4f}, {hi:+.4f}]" for m, (lo, hi) in metrics.items())
        console.print(f"multimodal - text-only, {prompt}, paired bootstrap 95%: {text}",
                      markup=False, highlight=False)


def markdown_table(table: dict, spans: dict) -> str:
    cols = _columns(table)
    lines = ["| model | " + " | ".join(f"{p} {m}" for p, m in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for model, rows in table.items():
        lines.append(f"| {model} | " + " | ".join(
            f"{rows[p][m]:.4f}" if p in rows else "-" for p, m in cols) + " |")
    lines.append("")
    for prompt, metrics in spans.items():
        lines.append(f"- multimodal - text-only, {prompt} (paired bootstrap 95%): " + ", ".join(
            f"{m} [{lo:+.4f}, {hi:+.4f}]" for m, (lo, hi) in metrics.items()))
    return "\n".join(lines) + "\n"


def example_user(run, console: Console, user: int = 0, k: int = 5) -> str:
    """One user's history and the model's top-k (A-3, beam search), with titles; items
    the user already has are left out, as the metrics leave them out."""
    ds = run.dataset
    users, hists, _ = ds.targets("test")
    row = int(np.flatnonzero(users == user)[0]) if user in set(users.tolist()) else 0
    history = torch.as_tensor(hists[row])
    seen = set(history.tolist())
    wide = min(k + len(seen), ds.num_items)  # room for the history
    listed = recommend_top_k(run.model, torch.tensor([int(users[row])]), [history], wide,
                             prompt="A-3")[0]
    items = [i for i in listed.tolist() if i >= 0 and i not in seen][:k]
    lines = [f"User {ds.user_ids[int(users[row])]}, history (oldest first):"]
    lines += [f"  - {ds.titles[int(i)]}" for i in history.tolist()]
    lines.append("Recommended next (VIP5 multimodal, A-3, history left out):")
    lines += [f"  {rank}. {ds.titles[int(i)]} ({ds.item_ids[int(i)]})"
              for rank, i in enumerate(items, 1)]
    text = "\n".join(lines)
    console.print(text, markup=False, highlight=False)
    return text
