"""Peak FLOP/s of a training device: the denominator of MFU (model FLOPs utilisation).

* CUDA: the dense (not 2:4-sparse) tensor-core peak from the vendor's datasheet for the
  known GPUs below, per precision (bf16, fp16, tf32, fp32); ``peak_source: datasheet``.
* CPU, and a GPU missing from the table: a square-matmul micro-benchmark in the training
  precision (about a second: the size adapts to the device, the best of a few runs),
  measured once and kept in ``peak_flops.json`` in the cache folder (``$MFMREC_CACHE``,
  else ``$XDG_CACHE_HOME/mfmrec``, else ``~/.cache/mfmrec``), keyed by the device model
  (the CPU's ``model name`` in ``/proc/cpuinfo``), torch version, thread count and dtype;
  ``peak_source: measured matmul`` (``(cached)`` when read back). A damaged cache file is
  measured again and rewritten atomically; one that cannot be written only costs a
  measurement next time.

A benchmark's best matmul rate is what the device reaches on the most favourable dense
work, so on CPU the MFU reads "share of the achievable", not "share of the theoretical".
"""

from __future__ import annotations

import logging
import os
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mfmrec.errors import DataError, MfmrecError
from mfmrec.io import read_json_object, write_json

log = logging.getLogger(__name__)

CACHE_FILE = "peak_flops.json"
DATASHEET, MEASURED = "datasheet", "measured matmul"
CACHED = f"{MEASURED} (cached)"
# dense FLOP/s by precision, first matching name wins (more specific names first)
GPU_PEAKS: tuple[tuple[str, dict[str, float]], ...] = (
    (r"H200", {"bf16": 989e12, "fp16": 989e12, "tf32": 494e12, "fp32": 67e12}),
    (r"H100.*(PCIe|PCIE)", {"bf16": 756e12, "fp16": 756e12, "tf32": 378e12, "fp32": 51e12}),
    (r"H100.*NVL", {"bf16": 835e12, "fp16": 835e12, "tf32": 418e12, "fp32": 60e12}),
    (r"H100", {"bf16": 989e12, "fp16": 989e12, "tf32": 494e12, "fp32": 67e12}),  # SXM
    (r"A100", {"bf16": 312e12, "fp16": 312e12, "tf32": 156e12, "fp32": 19.5e12}),
    (r"L40S", {"bf16": 362e12, "fp16": 362e12, "tf32": 183e12, "fp32": 91.6e12}),
    (r"L4\b", {"bf16": 121e12, "fp16": 121e12, "tf32": 60e12, "fp32": 30.3e12}),
    (r"A10\b", {"bf16": 125e12, "fp16": 125e12, "tf32": 62.5e12, "fp32": 31.2e12}),
    (r"V100", {"fp16": 125e12, "fp32": 15.7e12}),
    (r"T4\b", {"fp16": 65e12, "fp32": 8.1e12}),
)
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "tf32": torch.float32,
           "fp32": torch.float32}


@dataclass(frozen=True)
class Peak:
    """One device's peak FLOP/s in one precision, and where the number comes from."""

    flops_per_s: float
    source: str  # DATASHEET | MEASURED | CACHED
    precision: str  # bf16 | fp16 | tf32 | fp32
    device: str  # the GPU's name or the CPU's model


def cache_dir() -> Path:
    """``$MFMREC_CACHE``, else ``$XDG_CACHE_HOME/mfmrec``, else ``~/.cache/mfmrec``."""
    if os.environ.get("MFMREC_CACHE"):
        return Path(os.environ["MFMREC_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "mfmrec"


def matmul_precision(precision: str, device: torch.device) -> str:
    """The dtype the matmuls of a run use: ``train.precision`` (bf16, fp16, no) -> bf16,
    fp16, or fp32 (tf32 on CUDA when torch lets float32 matmuls use it)."""
    if precision in ("bf16", "fp16"):
        return precision
    if device.type == "cuda" and torch.get_float32_matmul_precision() != "highest":
        return "tf32"
    return "fp32"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def datasheet_peak(name: str, precision: str) -> float | None:
    """The table's peak of GPU ``name`` in ``precision``, or None when not listed."""
    for pattern, peaks in GPU_PEAKS:
        if re.search(pattern, name):
            return peaks.get(precision)
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_matmul(a: torch.Tensor, b: torch.Tensor) -> float:
    _sync(a.device)
    start = time.perf_counter()
    torch.mm(a, b)
    _sync(a.device)
    return time.perf_counter() - start


def measure_matmul(device: torch.device, precision: str, budget_s: float = 1.0) -> float:
    """Best FLOP/s of square matmuls sized to take about ``budget_s / 4`` each (one
    probe first), repeated while the budget lasts (at least 3 runs)."""
    dtype = _DTYPES[precision]
    gen = torch.Generator().manual_seed(0)  # a private generator: no global draw
    probe = torch.randn(512, 512, generator=gen).to(device, dtype)
    _time_matmul(probe, probe)  # warm-up (thread pools, kernels)
    rate = 2 * 512**3 / max(_time_matmul(probe, probe), 1e-9)
    n = int((rate * budget_s / 8) ** (1 / 3)) // 256 * 256
    n = min(max(n, 256), 4096)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    best, runs, start = float("inf"), 0, time.perf_counter()
    while runs < 3 or (time.perf_counter() - start < budget_s and runs < 20):
        best, runs = min(best, _time_matmul(a, b)), runs + 1
    return 2 * n**3 / best


def _cache_key(device: torch.device, precision: str) -> tuple[str, str]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return name, f"cuda|{name}|torch {torch.__version__}|{precision}"
    name = cpu_model()
    return name, (f"{device.type}|{name}|torch {torch.__version__}|"
                  f"threads {torch.get_num_threads()}|{precision}")


def _read_cache(path: Path) -> dict:
    try:
        return read_json_object(path, "peak FLOP/s cache") or {}
    except DataError as exc:
        log.warning("%s; measuring again", exc)
        return {}


def measured_peak(device: torch.device, precision: str) -> Peak:
    """The cached benchmark result for this device, precision, torch and thread count,
    or a new measurement (then cached)."""
    name, key = _cache_key(device, precision)
    path = cache_dir() / CACHE_FILE
    cache = _read_cache(path)
    entry = cache.get(key)
    value = entry.get("flops_per_s") if isinstance(entry, dict) else None
    if isinstance(value, (int, float)) and value > 0:
        return Peak(float(value), CACHED, precision, name)
    flops = measure_matmul(device, precision)
    cache[key] = {"flops_per_s": flops, "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        write_json(path, cache)
    except MfmrecError as exc:  # a read-only home: measure again next time
        log.warning("peak FLOP/s not cached: %s", exc)
    return Peak(flops, MEASURED, precision, name)


def peak_flops(device: torch.device | str, precision: str) -> Peak:
    """Peak FLOP/s of one ``device`` in ``precision`` (bf16, fp16, tf32, fp32): the
    datasheet for known GPUs, else the (cached) matmul benchmark."""
    device = torch.device(device)
    if precision not in _DTYPES:
        raise ValueError(f"precision must be one of {sorted(_DTYPES)}, got {precision!r}")
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        value = datasheet_peak(name, precision)
        if value is not None:
            return Peak(value, DATASHEET, precision, name)
    return measured_peak(device, precision)
