"""Where the real data lives.

The real datasets and the T5 tokenizer sit *beside* the repository in ``../shared``
and are never copied into it. Code finds them through, in order: an explicit argument,
the ``MFMREC_SHARED`` environment variable, then ``../shared`` next to the current
directory or next to the source checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MFMREC_SHARED"
_REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """Return the shared folder, or ``None`` when it cannot be found."""
    candidates = []
    if explicit:
        candidates.append(Path(explicit))
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    candidates += [Path.cwd().parent / "shared", _REPO_ROOT.parent / "shared"]
    for cand in candidates:
        if (cand / "data").is_dir() or (cand / "models").is_dir():
            return cand.resolve()
    return None


def shared_path(*parts: str, explicit: str | os.PathLike | None = None) -> Path | None:
    """A path inside the shared folder, or ``None`` when it is absent."""
    root = shared_dir(explicit)
    if root is None:
        return None
    path = root.joinpath(*parts)
    return path if path.exists() else None
