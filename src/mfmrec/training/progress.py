"""What a training run shows and logs: a rich progress bar and ``metrics.jsonl``.

Both live on the main process only. The bar shows step, loss, samples/s and ETA and is
switched off by ``quiet``; the log gets one JSON line every ``log_every`` steps with
``step``, ``epoch`` (fractional), ``loss``, ``lr``, ``samples_per_s`` and ``elapsed``.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from mfmrec.io import atomic_file, write_error


class MetricsLog:
    """Appends JSON lines to ``metrics.jsonl``; a resumed run first drops the lines it
    logged after its last checkpoint, so every step appears once."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path, self.enabled = Path(path), enabled

    def truncate_after(self, step: int) -> None:
        if not self.enabled or not self.path.is_file():
            return
        kept = [line for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line)["step"] <= step]
        with atomic_file(self.path) as fh:
            fh.write("".join(line + "\n" for line in kept))

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as fh:
                fh.write(json.dumps(record, sort_keys=True) + "\n")
        except OSError as exc:  # a resume drops any partial line after its checkpoint
            raise write_error(exc, self.path) from None

    def read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


class ProgressDisplay:
    """A rich progress bar over optimizer steps (or epochs: ``rate_unit=None`` drops the
    rate column); a no-op when disabled."""

    def __init__(self, total: int | None, start: int, title: str, enabled: bool = True,
                 console: Console | None = None, rate_unit: str | None = "samples/s"):
        self.enabled = enabled
        self._progress = None
        if not enabled:
            return
        rate = [TextColumn("{task.fields[rate]} " + rate_unit)] if rate_unit else []
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), *rate,
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console, transient=False,
        )
        self._task = self._progress.add_task(title, total=total, completed=start,
                                             loss="-", rate="-")

    def __enter__(self) -> ProgressDisplay:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, step: int, description: str, loss: float | None = None,
               rate: float | None = None, total: int | None = None) -> None:
        if self._progress is None:
            return
        fields: dict = {} if total is None else {"total": total}
        if loss is not None:
            fields["loss"] = f"{loss:.4f}"
        if rate is not None:
            fields["rate"] = f"{rate:,.0f}"
        self._progress.update(self._task, completed=step, description=description, **fields)
