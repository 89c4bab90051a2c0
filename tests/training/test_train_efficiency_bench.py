"""benchmarks/train_efficiency.py's comparison: the tensor-peak column and its ratio to full."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import train_efficiency as bench  # noqa: E402

MIB = 2**20


def _result(mode: str, seconds: list[float], rss: int, tensor: int | None) -> dict:
    memory = {"peak_memory_bytes": rss * MIB, "rss_increase_bytes": rss * MIB // 2,
              "memory_kind": "cpu_rss_sampled"}
    return {"mode": mode, "parameters": {"trainable": 10, "trainable_pct": 1.0},
            "memory": memory, "step_seconds": seconds, "losses": [2.0, 1.5],
            "tensor_memory": None if tensor is None else {"tensor_peak_bytes": tensor * MIB}}


def test_table_reports_the_tensor_peak_ratio_and_na_without_it():
    full = _result("full", [2.0, 4.0], 3000, 1600)
    adapters = _result("adapters", [1.0, 3.0], 2400, 800)
    no_probe = _result("adapters-self", [1.0, 3.0], 2400, None)
    rows = [bench.summarise(r, full) for r in (full, adapters, no_probe)]
    assert rows[1]["tensor_peak_mib"] == 800 and rows[2]["tensor_peak_mib"] is None
    assert rows[1]["median_pair_ratio"] == 0.625  # median of 1/2 and 3/4
    lines = bench.table(rows, cpu=True).splitlines()
    assert lines[0].endswith("| tensor peak MiB | tensor peak vs full |")
    assert lines[3].endswith("| 800 | 0.500 |")
    assert lines[4].endswith("| n/a | n/a |")
    assert "tensor peak" not in bench.table(rows, cpu=False)


def test_the_flag_reaches_the_workers(monkeypatch):
    seen = []

    class Done:
        returncode, stderr = 0, ""
        stdout = bench.MARK + '{"mode": "full"}\n'

    monkeypatch.setattr(bench.subprocess, "run", lambda cmd, **kw: seen.append(cmd) or Done)
    args = bench.parse_args(["--data", "d", "--shape", "tiny", "--no-tensor-memory"])
    assert args.tensor_memory is False
    bench._spawn("full", args)
    assert "--no-tensor-memory" in seen[0]
    bench._spawn("full", bench.parse_args(["--data", "d", "--shape", "tiny"]))
    assert "--no-tensor-memory" not in seen[1]
