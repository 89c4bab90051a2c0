"""Efficiency report: parameter counts, memory measurement, TPME golden values."""

from __future__ import annotations

import mmap
import sys
import time

import pytest
import torch
from torch import nn

from mfmrec.training.efficiency import (
    MemoryMonitor,
    current_rss,
    efficiency_report,
    lifetime_peak_rss,
    parameter_counts,
    to_markdown,
    tpme,
    tpme_row,
)


def test_tpme_golden():
    rows = [{"time": 10, "params": 100, "memory": 1000},
            {"time": 20, "params": 50, "memory": 3000},
            {"time": 30, "params": 200, "memory": 2000}]
    # time -> [0, .5, 1]; params -> [1/3, 0, 1]; memory -> [0, 1, .5]
    assert tpme(rows) == pytest.approx([0.1 / 3, 0.225 + 0.45, 0.45 + 0.1 + 0.225])
    assert tpme(rows, weights=(0, 1, 0)) == pytest.approx([1 / 3, 0, 1])


def test_tpme_constant_quantity_and_bad_input():
    rows = [{"time": 5, "params": 1, "memory": 2}, {"time": 5, "params": 3, "memory": 2}]
    assert tpme(rows) == pytest.approx([0.0, 0.1])
    assert tpme(rows[:1]) == [0.0]
    with pytest.raises(ValueError, match="weights"):
        tpme(rows, weights=(0.5, 0.5))
    with pytest.raises(ValueError, match="'memory'"):
        tpme([{"time": 1, "params": 1}])


class _Split(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(10, 10)  # 110, frozen
        self.adapter = nn.Linear(10, 2)  # 22, trainable
        self.tied = self.adapter  # shared: counted once
        self.backbone.requires_grad_(False)

    def parameter_groups(self):
        return {"adapter": 22}


def test_parameter_counts_with_parts_and_shared_tensors():
    counts = parameter_counts(_Split())
    assert counts == {"total": 132, "trainable": 22, "trainable_pct": round(2200 / 132, 4),
                      "by_part": {"adapter": 22}}
    assert "by_part" not in parameter_counts(nn.Linear(2, 2))


def _fresh_pages(size: int) -> mmap.mmap:
    """Anonymous pages, all touched: unlike ``np.ones`` they can never be recycled from
    memory freed (but kept resident) by earlier tests in the same process."""
    block = mmap.mmap(-1, size)
    block.write(b"\x01" * size)
    return block


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_cpu_monitor_sees_memory_allocated_during_the_block():
    monitor = MemoryMonitor("cpu", interval=0.01).start()
    block = _fresh_pages(48 * 2**20)  # 48 MiB, touched
    kept = monitor.stop()
    assert kept["memory_kind"] == "cpu_rss_sampled"
    assert kept["rss_increase_bytes"] >= 40 * 2**20
    assert kept["ru_maxrss_bytes"] >= kept["rss_peak_bytes"] - 2**20
    del block
    # a transient allocation freed before stop() is caught by the sampling thread
    monitor = MemoryMonitor("cpu", interval=0.01).start()
    transient = _fresh_pages(48 * 2**20)
    time.sleep(0.5)  # give the sampler a few wake-ups (not a timing assertion)
    del transient
    seen = monitor.stop()
    assert seen["rss_increase_bytes"] >= 40 * 2**20
    assert current_rss() < seen["rss_peak_bytes"]


def test_lifetime_peak_is_at_least_current():
    assert lifetime_peak_rss() >= current_rss() - 2**20


def test_report_derives_rates_and_renders_markdown():
    memory = {"peak_memory_bytes": 3 * 2**20, "memory_kind": "cpu_rss_sampled",
              "rss_increase_bytes": 2**20, "ru_maxrss_bytes": 5 * 2**20}
    report = efficiency_report(_Split(), train_seconds=8.0, epochs=2.0, samples=400, steps=20,
                               memory=memory, device="cpu")
    assert report["seconds_per_epoch"] == 4.0 and report["samples_per_s"] == 50.0
    assert report["device"] == "cpu"
    md = to_markdown(report)
    assert "| trainable parameters | 22 (16.67%) |" in md
    assert "| peak memory (cpu_rss_sampled) | 3.0 MiB |" in md
    assert "ru_maxrss (process lifetime)" in md
    assert tpme_row(report) == {"time": 4.0, "params": 22, "memory": 3 * 2**20}


def test_cuda_peak_when_available():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    monitor = MemoryMonitor("cuda").start()
    x = torch.empty(2**20, device="cuda")  # 4 MiB
    out = monitor.stop()
    assert out["memory_kind"] == "cuda_peak_allocated"
    assert out["peak_memory_bytes"] >= x.numel() * 4
