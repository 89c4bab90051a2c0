"""Integrity of a run directory: one writer at a time, and no diverged weights.

**The lock.** ``RUN/.lock`` holds the writer's pid, and the writer holds an exclusive
``flock`` on it for as long as it runs. Of two processes starting together exactly one
gets the flock; the other fails with one line naming the folder and the holder. The
kernel drops the flock when its process dies however it dies (SIGKILL, a crash), so a
lock left behind is simply taken over, with a note on stderr; two processes taking over
the same stale lock at once still get it one at a time (the race a pid check alone
loses). A live pid in a lock that no flock holds (an older mfmrec) is respected too.
Only the main process of a launch takes the lock; the others never write the run
directory.

**Numerical guards.** The trainer stops at the first non-finite loss, before it reaches
the weights, and refuses to checkpoint weights that an update made non-finite
(:class:`DivergenceGuard`): the last checkpoint on disk stays the last good one, and the
run is never marked finished. Loading refuses non-finite weights too (:func:`finite`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from mfmrec.errors import DataError, MfmrecError
from mfmrec.training.checkpoint import latest_checkpoint

LOCK = ".lock"
_ATTEMPTS = 3  # x10: opens of a lock file that its releasing holder may unlink meanwhile


class RunLocked(MfmrecError):
    """Another live process is writing this run directory."""


def _note(text: str) -> None:
    print(text, file=sys.stderr)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def holder(path: Path) -> int | None:
    """The pid in a lock file; None when it is missing, empty or not a pid."""
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


_HELD: dict[Path, int] = {}  # lock path -> the open descriptor holding its flock


def _open_locked(path: Path) -> int | None:
    """A descriptor of ``path`` holding its exclusive flock, or None if another open
    file holds it. Retries while the file it locked was unlinked or replaced meanwhile
    (a releasing holder unlinks it while still holding the flock)."""
    for _ in range(_ATTEMPTS * 10):
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise RunLocked(f"{path.parent}: could not take the lock {path}; other processes keep "
                    "replacing it")


def _current_holder(path: Path) -> int | None:
    pid = holder(path)
    if pid is None and path.exists():  # locked an instant ago, pid not yet written
        time.sleep(0.2)
        pid = holder(path)
    return pid


def _in_use(run_dir: Path, path: Path, pid: int | None) -> RunLocked:
    who = f"pid {pid}" if pid is not None else "pid unknown"
    return RunLocked(f"{run_dir}: in use by another mfmrec process ({who}); wait for it to "
                     f"end or choose another --out (lock: {path})")


def acquire(run_dir: Path, note: Callable[[str], None] = _note) -> Path:
    """Take the lock of ``run_dir`` (creating the folder) or raise :class:`RunLocked`."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK
    fd = _open_locked(path)
    if fd is None:
        raise _in_use(run_dir, path, _current_holder(path))
    pid = holder(path)
    if pid is not None and pid != os.getpid() and _alive(pid):
        # a live writer that holds no flock (an older mfmrec): still respected
        os.close(fd)
        raise _in_use(run_dir, path, pid)
    if pid is not None or path.stat().st_size:
        what = f"pid {pid}, no longer running" if pid is not None else "no pid in it"
        note(f"note: {path}: taking over a stale lock ({what})")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[path] = fd
    return path


def release(path: Path) -> None:
    """Remove the lock if this process holds it (unlinked before the flock is let go, so
    a waiting process never takes a file that is about to vanish)."""
    fd = _HELD.pop(path, None)
    if fd is None:
        return
    if holder(path) == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    os.close(fd)


@contextlib.contextmanager
def locked(run_dir: Path, enabled: bool = True) -> Iterator[None]:
    """Hold the lock of ``run_dir`` for the block (``enabled=False``: do nothing)."""
    if not enabled:
        yield
        return
    created = not Path(run_dir).exists()
    path = acquire(run_dir)
    try:
        yield
    finally:
        release(path)
        if created:  # refused before writing anything: leave no empty folder behind
            with contextlib.suppress(OSError):
                Path(run_dir).rmdir()


# ---- numerical guards -----------------------------------------------------------------
def nonfinite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding NaN or infinity."""
    return [k for k, v in tensors.items() if v.is_floating_point() and not v.isfinite().all()]


def finite(source: Path, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` unchanged, or a one-line error if any holds NaN or infinity."""
    bad = nonfinite(tensors)
    if bad:
        raise DataError(f"{source}: non-finite values (NaN or infinity) in {len(bad)} "
                        f"tensor(s), e.g. {bad[0]}; the run diverged")
    return tensors


class DivergenceGuard:
    """The trainer's checks; each process checks its own values and all agree, so that
    every process stops at the same step."""

    def __init__(self, accelerator: Any, run_dir: Path):
        self.accelerator, self.run_dir = accelerator, Path(run_dir)

    def loss(self, loss: torch.Tensor, step: int) -> None:
        """Stop before a non-finite loss of optimizer step ``step`` reaches the weights."""
        if self._any_process(not bool(torch.isfinite(loss))):
            raise self._diverged(step, f"non-finite loss {loss.item()}")

    def weights(self, model: torch.nn.Module, step: int) -> None:
        """Refuse to checkpoint trainable weights that an update made non-finite."""
        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        if self._any_process(bool(nonfinite(trainable))):
            raise self._diverged(step, "non-finite weights after the update")

    def _any_process(self, flag: bool) -> bool:
        value = torch.tensor([float(flag)], device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            value = self.accelerator.reduce(value, "max")
        return bool(value.item() > 0)

    def _diverged(self, step: int, what: str) -> MfmrecError:
        last = latest_checkpoint(self.run_dir)
        kept = f"kept {last.name}, the last good checkpoint" if last else "no checkpoint kept"
        return MfmrecError(f"training diverged at step {step}: {what}; {kept}; lower "
                           "train.lr or check the data")
