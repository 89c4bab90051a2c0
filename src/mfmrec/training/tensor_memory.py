"""Peak *tensor* memory of a block of CPU work: the number a GPU reports, measured on a CPU.

On CUDA, ``torch.cuda.max_memory_allocated`` counts the bytes of live tensors only, and is
what papers report as "GPU memory". A CPU process has no such counter: its resident set
size also holds the interpreter, the libraries, the data and whatever heap the allocator
keeps after a free (:class:`~mfmrec.training.efficiency.MemoryMonitor` reports that RSS).
:class:`TensorPeakProbe` measures the tensor-level number instead:

* ``resident``: the bytes of tensors that are live when the block starts and that the
  caller names (the model's parameters and buffers, the optimizer's state), each storage
  counted once however many views share it (:func:`storage_bytes`);
* ``added``: the highest net amount of CPU memory that the block allocated and had not yet
  freed, read from the PyTorch profiler's allocation records (``profile_memory=True``; each
  record carries the allocator's running total since the profiler started);
* ``peak = resident + added``; and ``sites``: the operators whose allocations are live at
  that peak, largest first (e.g. a dropout mask, the recomputed FFN of a checkpointed block).

The profiler slows the block down, so time it separately (``benchmarks/train_efficiency.py``
profiles one extra, untimed step). The allocation records come from the profiler's event
tree (``torch._C._profiler``), which is not a public API: where it is missing or fails the
probe's result is None and ``error`` says why, so a caller reports "n/a" rather than a
wrong number.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch


@dataclass
class TensorPeak:
    """Bytes: ``resident`` at the start, ``added`` at the peak, and where ``added`` sits."""

    resident: int
    added: int
    sites: list[tuple[str, int]] = field(default_factory=list)

    @property
    def peak(self) -> int:
        return self.resident + self.added

    def as_dict(self, top: int = 8) -> dict:
        return {"tensor_peak_bytes": self.peak, "resident_bytes": self.resident,
                "added_peak_bytes": self.added,
                "sites_at_peak": [[name, size] for name, size in self.sites[:top]]}


def storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages behind ``tensors`` (views and tied weights once)."""
    seen, total = set(), 0
    for t in tensors:
        if t.device.type != "cpu":
            continue
        storage = t.untyped_storage()
        key = storage.data_ptr()
        if key and key not in seen:
            seen.add(key)
            total += storage.nbytes()
    return total


def model_and_optimizer_tensors(model: torch.nn.Module,
                                optimizer: torch.optim.Optimizer | None = None) -> list:
    """Parameters, buffers, gradients still held and every tensor of the optimizer's state
    (moments, steps)."""
    out = [*model.parameters(), *model.buffers()]
    out += [p.grad for p in model.parameters() if p.grad is not None]
    if optimizer is not None:
        out += [v for state in optimizer.state.values() for v in state.values()
                if torch.is_tensor(v)]
    return out


def _allocations(prof) -> list[tuple[int, int, int, int, str]]:
    """(time ns, running total, address, signed size, allocating operator) per record."""
    from torch._C._profiler import _EventType  # lazy: private profiler API, checked at use

    records = []
    stack = [(node, "") for node in prof.profiler.kineto_results.experimental_event_tree()]
    while stack:
        node, parent = stack.pop()
        if node.tag == _EventType.Allocation:
            f = node.extra_fields
            if f.device.type == "cpu":
                records.append((node.start_time_ns, int(f.total_allocated), int(f.ptr),
                                int(f.alloc_size), parent))
            continue
        stack.extend((child, node.name) for child in node.children)
    records.sort(key=lambda r: r[0])
    return records


def peak_of(records: list[tuple[int, int, int, int, str]]) -> tuple[int, list]:
    """The highest running total (>= 0) and the operators live at it, largest first."""
    if not records:
        return 0, []
    at = max(range(len(records)), key=lambda i: records[i][1])
    live: dict[int, tuple[int, str]] = {}
    for _, _, ptr, size, op in records[:at + 1]:
        if size > 0:
            live[ptr] = (size, op)
        else:
            live.pop(ptr, None)
    sites: Counter = Counter()
    for size, op in live.values():
        sites[op or "(outside an operator)"] += size
    return max(records[at][1], 0), sites.most_common()


class TensorPeakProbe:
    """``with TensorPeakProbe(resident_tensors) as probe: step()`` then ``probe.result``."""

    def __init__(self, resident: Iterable[torch.Tensor] = ()):
        self.resident = storage_bytes(resident)
        self.result: TensorPeak | None = None
        self.error: str | None = None
        self._prof = None

    def __enter__(self) -> TensorPeakProbe:
        from torch.profiler import ProfilerActivity, profile  # lazy: only when probing

        self._prof = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
        self._prof.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._prof.__exit__(*exc)
        if exc[0] is not None:
            return
        try:
            added, sites = peak_of(_allocations(self._prof))
        except (AttributeError, ImportError, RuntimeError) as err:
            self.error = f"profiler allocation records unavailable: {err}"
            return
        self.result = TensorPeak(self.resident, added, sites)
