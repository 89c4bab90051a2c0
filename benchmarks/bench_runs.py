"""Run helpers the benchmark scripts share (not a benchmark itself)."""

from __future__ import annotations

import time
from pathlib import Path

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished training run."""
    return (run_dir / "final" / "trainable.safetensors").is_file()


def train_timed(config: str, overrides: list[str], data_dir: Path, run_dir: Path, *,
                skip_existing: bool, quiet: bool) -> tuple[Path, float | None]:
    """Train ``configs/<config>`` with ``overrides`` into ``run_dir``, or reuse a finished
    run there with ``skip_existing``; returns (run dir, training seconds or None if reused)."""
    from mfmrec.training.config import load_run_config
    from mfmrec.training.runs import train

    if skip_existing and finished(run_dir):
        return run_dir, None
    cfg = load_run_config(CONFIGS / config, overrides)
    start = time.perf_counter()
    train(cfg, data_dir, run_dir, quiet=quiet)
    return run_dir, round(time.perf_counter() - start, 1)
