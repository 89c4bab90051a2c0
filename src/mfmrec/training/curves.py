"""Training curves: loss, learning rate and samples/s over optimizer steps, as one PNG.

Read from a run's ``metrics.jsonl`` (one line per logged window: ``step``, ``loss``,
``lr``, ``samples_per_s``); written by the main process when training finishes
(:func:`mfmrec.training.runs.train`). Matplotlib is imported here only, with the Agg
backend (no display), so importing the training package stays fast.
"""

from __future__ import annotations

from pathlib import Path

from mfmrec.io import atomic_file
from mfmrec.training.progress import MetricsLog

CURVES = "curves.png"  # in the run directory
PANELS = (("loss", "training loss (window mean)"), ("lr", "learning rate"),
          ("samples_per_s", "samples / s"))


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) where the value was logged (samples/s is null in some windows)."""
    pairs = [(r["step"], r[key]) for r in rows if r.get(key) is not None]
    return [p[0] for p in pairs], [float(p[1]) for p in pairs]


def plot_curves(rows: list[dict], path: str | Path, title: str) -> Path:
    """Three stacked panels sharing the step axis, written atomically to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib, ~0.4 s
    from matplotlib.figure import Figure  # lazy: matplotlib, ~0.4 s; only drawing needs it

    fig = Figure(figsize=(7.0, 7.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(PANELS), 1, sharex=True)
    for ax, (key, label) in zip(axes, PANELS, strict=True):
        steps, values = _series(rows, key)
        if steps:
            ax.plot(steps, values, marker="o" if len(steps) < 20 else None, markersize=3)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("optimizer step")
    axes[0].set_title(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    return path


def write_curves(run_dir: str | Path, title: str) -> Path | None:
    """Plot ``RUN/metrics.jsonl`` to ``RUN/curves.png``; None when nothing was logged."""
    run_dir = Path(run_dir)
    rows = [r for r in MetricsLog(run_dir / "metrics.jsonl").read() if "step" in r]
    if not rows:
        return None
    return plot_curves(rows, run_dir / CURVES, title)
