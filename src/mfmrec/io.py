"""Atomic writes: write to a temporary sibling, then rename, so nothing is half-written.

A failed write (disk full, no permission, read-only file system) raises
:class:`WriteError`, one line naming the file, after removing the temporary file or
folder; whatever was at the target before is left as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mfmrec.errors import DataError, MfmrecError


class WriteError(MfmrecError):
    """A file could not be written (disk full, permissions, read-only file system...)."""

    def __init__(self, path: Path, why: str, target: Path):
        self.path, self.why, self.target = path, why, target
        verb = "cannot write" if path.is_relative_to(target.parent) else "cannot access"
        super().__init__(f"{path}: {verb} ({why}); nothing was changed at {target}")

    def moved(self, tmp: Path, target: Path) -> WriteError:
        """The same error told of ``target``, when it happened inside its temporary
        folder ``tmp``."""
        if not self.path.is_relative_to(tmp):
            return self
        return WriteError(target / self.path.relative_to(tmp), self.why, target)


def write_error(exc: OSError, target: Path, tmp: Path | None = None) -> WriteError:
    """One line for ``exc``: the file it names (under ``tmp``: as it would be in
    ``target``), else ``target``, and why."""
    name = Path(exc.filename) if exc.filename else (tmp or target)
    why = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    error = WriteError(name, why, target)
    return error.moved(tmp, target) if tmp is not None else error


@contextlib.contextmanager
def _as_write_error(target: Path, tmp: Path | None = None) -> Iterator[None]:
    try:
        yield
    except WriteError as exc:
        raise (exc.moved(tmp, target) if tmp is not None else exc) from None
    except FileExistsError:
        raise
    except OSError as exc:
        raise write_error(exc, target, tmp) from None


def _swap(tmp: Path, target: Path) -> None:
    """Put ``tmp`` at ``target``; an old ``target`` is put back if that fails."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except OSError:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` only if the block succeeds."""
    target = Path(target)
    with _as_write_error(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        with _as_write_error(target, tmp):
            os.chmod(tmp, 0o755)  # mkdtemp makes 0700; a dataset is meant to be shared
            yield tmp
            if target.exists() and not overwrite:
                raise FileExistsError(target)
            _swap(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike, mode: str = "w") -> Iterator:
    """Open a temporary sibling of ``target`` for writing; rename it into place on success."""
    target = Path(target)
    with _as_write_error(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with _as_write_error(target, Path(tmp)):
            with os.fdopen(fd, mode) as fh:
                yield fh
            os.chmod(tmp, 0o644)  # mkstemp makes 0600
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: object) -> None:
    """Write JSON atomically, pretty-printed with sorted keys (stable bytes)."""
    with atomic_file(path) as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.write("\n")


def read_json_object(path: str | os.PathLike, what: str) -> dict | None:
    """The JSON object in ``path`` (None when the file is missing); a damaged file or
    another JSON value is one :class:`DataError` naming the file and ``what`` it held."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable {what} ({exc})") from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: expected a JSON object ({what})")
    return value
