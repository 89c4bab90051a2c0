"""Training efficiency: parameters, time, throughput, peak memory, and IISAN's TPME.

Every training run writes ``efficiency.json`` built by :func:`efficiency_report`:

* parameters: total, trainable, trainable % and, when the model's
  ``parameter_groups()`` names parts, the trainable count of each part;
* time: training seconds (steps and data loading; checkpoint writing excluded), seconds
  per epoch and samples per second (all processes together);
* memory, measured by :class:`MemoryMonitor`:
  - on CUDA: ``torch.cuda.max_memory_allocated`` after a reset at the start of training
    (tensors only, the number papers report as "GPU memory");
  - on CPU: the resident set size. ``ru_maxrss`` is the peak RSS over the *whole
    process lifetime* (imports, dataset loading, earlier runs in the same process), so
    a sampling thread also reads ``VmRSS`` from ``/proc/self/status`` during training
    and reports the training-phase peak and its increase over the RSS at the start;
* tokens and FLOPs, summed over every micro-batch of every process from the model's
  ``batch_cost`` (:class:`CostMeter`): ``tokens`` (``real``, ``padded``,
  ``padding_share``), ``real_tokens_per_s``, ``training_flops`` (forward + backward of
  the real tokens, analytic: :mod:`mfmrec.models.flops`), ``achieved_flops_per_s``,
  ``peak_flops_per_s`` (one device's peak x processes, :mod:`mfmrec.training.peak`;
  ``peak_source``: datasheet or a cached matmul benchmark) and ``mfu`` = achieved /
  peak. Padding is never counted as work, so a run that pads half its batches shows it
  in ``padding_share`` and in a lower MFU. A model without tokens (BPR) or without a
  FLOP count gets None there, and ``mfu_note`` says why.

:func:`tpme` combines time, parameters and memory of several compared methods into the
TPME score of the IISAN paper (lower is better).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from mfmrec.models.base import BatchCost
from mfmrec.training.peak import Peak

try:  # resource exists on POSIX only
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None

TPME_KEYS = ("time", "params", "memory")
_STATUS = Path("/proc/self/status")


# ---- parameters ------------------------------------------------------------------------
def parameter_counts(model: torch.nn.Module) -> dict:
    """Total and trainable parameters (shared tensors counted once), and parts if named."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out = {"total": total, "trainable": trainable,
           "trainable_pct": round(100.0 * trainable / total, 4) if total else 0.0}
    groups = getattr(model, "parameter_groups", None)
    parts = dict(groups()) if callable(groups) else {}
    # summary keys (VIP5 reports "total" and "all_params") repeat the counts above
    parts = {k: v for k, v in parts.items() if k not in ("total", "all_params")}
    if parts and set(parts) != {"all"}:
        out["by_part"] = {k: int(v) for k, v in parts.items()}
    return out


# ---- memory ----------------------------------------------------------------------------
def current_rss() -> int | None:
    """This process's resident set size in bytes (Linux ``VmRSS``), or None."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        return None
    return None


def lifetime_peak_rss() -> int | None:
    """``ru_maxrss`` in bytes: the peak RSS since the process started."""
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # macOS: bytes; Linux: KiB


class MemoryMonitor:
    """Peak memory over a block: CUDA peak allocated on a GPU, sampled RSS on CPU."""

    def __init__(self, device: torch.device | str = "cpu", interval: float = 0.02):
        self.device, self.interval = torch.device(device), interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rss_start = self.rss_peak = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            rss = current_rss()
            if rss is not None and (self.rss_peak is None or rss > self.rss_peak):
                self.rss_peak = rss

    def start(self) -> MemoryMonitor:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self.rss_start = self.rss_peak = current_rss()
        if self.rss_start is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True,
                                            name="mfmrec-rss-sampler")
            self._thread.start()
        return self

    def stop(self) -> dict:
        """Stop sampling and return the measurements (bytes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        rss_now = current_rss()
        if rss_now is not None and self.rss_peak is not None:
            self.rss_peak = max(self.rss_peak, rss_now)
        out = {"ru_maxrss_bytes": lifetime_peak_rss(), "rss_start_bytes": self.rss_start,
               "rss_peak_bytes": self.rss_peak,
               "rss_increase_bytes": (self.rss_peak - self.rss_start
                                      if self.rss_peak is not None else None)}
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            out["cuda_peak_allocated_bytes"] = int(torch.cuda.max_memory_allocated(self.device))
            out["peak_memory_bytes"], out["memory_kind"] = (
                out["cuda_peak_allocated_bytes"], "cuda_peak_allocated")
        else:
            peak = self.rss_peak if self.rss_peak is not None else out["ru_maxrss_bytes"]
            out["peak_memory_bytes"] = peak
            out["memory_kind"] = "cpu_rss_sampled" if self.rss_peak is not None else "ru_maxrss"
        return out

    def __enter__(self) -> MemoryMonitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        if not self._stop.is_set():
            self.result = self.stop()


# ---- tokens and FLOPs -----------------------------------------------------------------
class CostMeter:
    """Sums the :class:`BatchCost` of the micro-batches one process trains on."""

    FIELDS = ("batches", "with_tokens", "with_flops", "real", "padded", "flops")

    def __init__(self, values: Sequence[float] | None = None):
        self.values = dict(zip(self.FIELDS, values or [0.0] * len(self.FIELDS), strict=True))

    def add(self, cost: BatchCost | None) -> None:
        v = self.values
        v["batches"] += 1
        if cost is None:
            return
        v["with_tokens"] += 1
        v["real"] += cost.real_tokens
        v["padded"] += cost.padded_tokens
        if cost.flops is not None:
            v["with_flops"] += 1
            v["flops"] += cost.flops

    def tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """(6,) float64, for a sum over processes."""
        return torch.tensor([self.values[k] for k in self.FIELDS], dtype=torch.float64,
                            device=device)

    @property
    def flops(self) -> float | None:
        """The FLOPs of every batch, or None when some batch had no count."""
        v = self.values
        return v["flops"] if v["batches"] and v["with_flops"] == v["batches"] else None


def _flops_note(meter: CostMeter, peak: Peak | None) -> str | None:
    v = meter.values
    if not v["batches"]:
        return "no micro-batches trained in this session"
    if not v["with_flops"]:
        return ("the model counts no tokens (batch_cost)" if not v["with_tokens"]
                else "the model counts no FLOPs (batch_cost)")
    if v["with_flops"] < v["batches"]:
        return f"FLOPs counted for {v['with_flops']:.0f} of {v['batches']:.0f} micro-batches"
    return None if peak is not None else "no peak FLOP/s (measured on the main process)"


def throughput(meter: CostMeter, train_seconds: float, peak: Peak | None,
               processes: int = 1) -> dict:
    """Tokens, padding share, real tokens/s, achieved FLOP/s and MFU of a run whose
    processes' costs ``meter`` sums; ``peak`` is one device's."""
    v, timed = meter.values, train_seconds > 0
    tokens = None
    if v["with_tokens"]:
        share = 1.0 - v["real"] / v["padded"] if v["padded"] else 0.0
        tokens = {"real": int(v["real"]), "padded": int(v["padded"]),
                  "padding_share": round(share, 6)}
    flops = meter.flops
    achieved = flops / train_seconds if flops is not None and timed else None
    total_peak = peak.flops_per_s * processes if peak is not None else None
    out = {"tokens": tokens,
           "real_tokens_per_s": round(v["real"] / train_seconds, 3) if tokens and timed else None,
           "training_flops": flops, "achieved_flops_per_s": achieved,
           "peak_flops_per_s": total_peak, "peak_source": peak.source if peak else None,
           "peak_precision": peak.precision if peak else None,
           "peak_device": peak.device if peak else None,
           "mfu": achieved / total_peak if achieved and total_peak else None}
    note = _flops_note(meter, peak)
    if out["mfu"] is None:
        out["mfu_note"] = note or "no training time measured"
    return out


# ---- the report ------------------------------------------------------------------------
def efficiency_report(model: torch.nn.Module, *, train_seconds: float, epochs: float,
                      samples: int, steps: int, memory: dict, costs: CostMeter | None = None,
                      peak: Peak | None = None, **context) -> dict:
    """One run's efficiency numbers (``costs``: the batches' tokens and FLOPs summed over
    processes; ``context``: device, processes, precision ...)."""
    processes = int(context.get("processes", 1))
    return {
        "parameters": parameter_counts(model),
        "train_seconds": round(train_seconds, 4),
        "epochs": round(epochs, 4),
        "seconds_per_epoch": round(train_seconds / epochs, 4) if epochs else None,
        "samples": int(samples), "steps": int(steps),
        "samples_per_s": round(samples / train_seconds, 3) if train_seconds > 0 else None,
        **throughput(costs or CostMeter(), train_seconds, peak, processes),
        "memory": memory, **context,
    }


def _bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"


def _num(x: float | None, fmt: str) -> str:
    return "n/a" if x is None else format(x, fmt)


def _flop_rate(x: float | None) -> str:
    if x is None:
        return "n/a"
    for unit, scale in (("PFLOP/s", 1e15), ("TFLOP/s", 1e12), ("GFLOP/s", 1e9),
                        ("MFLOP/s", 1e6)):
        if x >= scale:
            return f"{x / scale:,.2f} {unit}"
    return f"{x:,.0f} FLOP/s"


def _token_rows(report: dict) -> list[tuple[str, str]]:
    """Tokens, FLOP/s and MFU rows (reports written before they existed have none)."""
    if "mfu" not in report:
        return []
    tokens = report.get("tokens")
    rows = [("real tokens (padding share)",
             f"{tokens['real']:,} of {tokens['padded']:,} ({tokens['padding_share']:.1%} padding)"
             if tokens else "n/a"),
            ("real tokens per second", _num(report.get("real_tokens_per_s"), ",.1f")),
            ("achieved FLOP/s", _flop_rate(report.get("achieved_flops_per_s")))]
    if report.get("peak_flops_per_s") is not None:
        rows.append((f"peak FLOP/s ({report['peak_source']}, {report['peak_precision']})",
                     _flop_rate(report["peak_flops_per_s"])))
    mfu = report.get("mfu")
    rows.append(("MFU", f"{mfu:.2%}" if mfu is not None
                 else f"n/a ({report.get('mfu_note', 'unknown')})"))
    return rows


def rows_of(report: dict) -> list[tuple[str, str]]:
    """(quantity, value) rows for printing or Markdown."""
    p, m = report["parameters"], report["memory"]
    rows = [("total parameters", f"{p['total']:,}"),
            ("trainable parameters", f"{p['trainable']:,} ({p['trainable_pct']:.2f}%)")]
    rows += [(f"  trainable: {k}", f"{v:,}") for k, v in p.get("by_part", {}).items()]
    rows += [("seconds per epoch", _num(report.get("seconds_per_epoch"), ",.3f")),
             ("samples per second", _num(report.get("samples_per_s"), ",.1f")),
             *_token_rows(report),
             (f"peak memory ({m['memory_kind']})", _bytes(m.get("peak_memory_bytes")))]
    if m.get("rss_increase_bytes") is not None:
        rows.append(("RSS increase during training", _bytes(m["rss_increase_bytes"])))
    if m.get("ru_maxrss_bytes") is not None:
        rows.append(("ru_maxrss (process lifetime)", _bytes(m["ru_maxrss_bytes"])))
    return rows


def to_markdown(report: dict) -> str:
    lines = ["| quantity | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows_of(report)]
    return "\n".join(lines) + "\n"


# ---- TPME ------------------------------------------------------------------------------
def tpme_row(report: dict) -> dict:
    """The (time, params, memory) of one efficiency report, for :func:`tpme`."""
    return {"time": report["seconds_per_epoch"], "params": report["parameters"]["trainable"],
            "memory": report["memory"]["peak_memory_bytes"]}


def tpme(rows: Sequence[Mapping[str, float]],
         weights: Sequence[float] = (0.45, 0.1, 0.45)) -> list[float]:
    """TPME of each compared method: every quantity (training time, trainable parameters,
    peak memory) is min-max normalised across ``rows``, then weighted by ``weights``
    (time, params, memory) and summed. A quantity equal for all rows contributes 0."""
    if len(weights) != 3 or any(w < 0 for w in weights):
        raise ValueError(f"weights: expected three non-negative numbers, got {weights}")
    if not rows:
        raise ValueError("tpme needs at least one row")
    scores = [0.0] * len(rows)
    for key, weight in zip(TPME_KEYS, weights, strict=True):
        values = []
        for i, row in enumerate(rows):
            if row.get(key) is None:
                raise ValueError(f"row {i}: missing {key!r} (need {', '.join(TPME_KEYS)})")
            values.append(float(row[key]))
        lo, hi = min(values), max(values)
        for i, v in enumerate(values):
            scores[i] += weight * ((v - lo) / (hi - lo) if hi > lo else 0.0)
    return scores
