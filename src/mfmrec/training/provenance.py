"""Which data a run trained on, and whether it is still the same when the run is loaded.

``run.json`` keeps ``data_fingerprint``: the size and sha256 of the dataset's own files
(:mod:`mfmrec.data.fingerprint`) and of the derived files the model config names: feature
stores (fields such as ``image_features``, ``text_encoder``, ``image_encoder``: their
``features/<name>.safetensors``, ``<name>-layers.safetensors`` and ``.json`` sidecars),
semantic IDs (``indexing: semantic:NAME``: ``ids/NAME.parquet`` and ``.json``) and the
tokenizer trained into ``tokenizers/``. :func:`check_data` refuses a changed dataset
with one line naming the files, unless the caller allows it (then one warning line).
Runs written before fingerprints existed are loaded unchecked.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from mfmrec.data.fingerprint import changes, fingerprint, summary
from mfmrec.errors import DataError
from mfmrec.features.encoders import store_name
from mfmrec.features.store import FEATURES_DIR, layers_name

FINGERPRINT = "data_fingerprint"
_STORE_FIELDS = ("features", "encoder")  # model-config field names that name feature stores
_SEMANTIC = "semantic:"


def _store_files(name: str) -> list[str]:
    stem = store_name(name)
    return [f"{FEATURES_DIR}/{s}{ext}" for s in (stem, layers_name(stem))
            for ext in (".safetensors", ".json")]


def derived_files(model_section: dict, root: str | Path) -> list[str]:
    """Derived files of the dataset at ``root`` that the model config names, relative."""
    files: list[str] = []
    for key, value in model_section.items():
        if not isinstance(value, str) or not value:
            continue
        if any(part in key for part in _STORE_FIELDS):
            files += _store_files(value)
        if key == "indexing" and value.startswith(_SEMANTIC):
            name = value[len(_SEMANTIC):]
            files += [f"ids/{name}.parquet", f"ids/{name}.json"]
    tokenizers = Path(root) / "tokenizers"
    if tokenizers.is_dir():
        # temporaries of a tokenizer being written (hidden folders) are not part of it
        files += [p.relative_to(root).as_posix() for p in tokenizers.rglob("*")
                  if p.is_file() and not any(part.startswith(".")
                                             for part in p.relative_to(root).parts)]
    return files


def data_fingerprint(model_section: dict, root: str | Path) -> dict[str, dict]:
    """The fingerprint ``run.json`` records for a run of this model on ``root``."""
    return fingerprint(root, derived_files(model_section, root))


def _warn(text: str) -> None:
    print(text, file=sys.stderr)


def check_data(info: dict, root: str | Path, run_dir: str | Path, allow: bool = False,
               warn: Callable[[str], None] = _warn) -> None:
    """Raise :class:`DataError` if the dataset at ``root`` differs from the one the run
    recorded in ``info``; with ``allow``, warn in one line instead. No record: no check."""
    recorded = info.get(FINGERPRINT)
    if not isinstance(recorded, dict):
        return
    changed = changes(root, recorded)
    if not changed:
        return
    what = f"{root}: the dataset changed since {run_dir} was trained ({summary(changed)})"
    if allow:
        warn(f"warning: {what}; using it anyway (--allow-changed-data)")
        return
    raise DataError(f"{what}; retrain the run, restore the data, or pass "
                    "--allow-changed-data to use it anyway")
