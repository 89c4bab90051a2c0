"""Checkpoints and run directories on disk; no pickles anywhere.

A checkpoint ``RUN/checkpoints/step-N/`` holds::

    trainable.safetensors   only the tensors that train (frozen backbones are rebuilt)
    optimizer.safetensors   optimizer state tensors, keyed "state/<parameter>/<name>"
    rng.safetensors         torch (and CUDA) RNG states of every process, as byte tensors
    state.json              step, epoch position, scheduler, grad scaler, optimizer
                            hyper-parameters, python/numpy RNG states, references
    config.yaml             the resolved run config
    checksums.json          sha256 of each .safetensors file, recorded when it is written

Each checkpoint is written into a temporary directory and renamed into place, then the
``RUN/checkpoints/latest`` file is replaced atomically; a run killed at any instant
leaves the previous checkpoint usable. The run directory around them (config, final
weights, loading a trained model) is :mod:`mfmrec.training.runs`.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from mfmrec.errors import ConfigError, DataError
from mfmrec.io import atomic_dir, atomic_file, read_json_object, write_json
from mfmrec.training.config import RunConfig

FORMAT_VERSION = 1
TRAINABLE = "trainable.safetensors"
CHECKSUMS = "checksums.json"  # {file name: sha256} beside the weight files it covers
_STEP_DIR = re.compile(r"^step-(\d+)$")


# ---- tensors and states ----------------------------------------------------------------
def _cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses views that share storage; a contiguous CPU copy each is safe
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``tensors`` to ``path`` and record its sha256 in ``checksums.json`` beside it."""
    path = Path(path)
    blob = save(_cpu(tensors), metadata={"format": "pt"})
    with atomic_file(path, "wb") as fh:  # a failed write: one line naming the file
        fh.write(blob)
    sums = _read_checksums(path.parent)
    sums[path.name] = hashlib.sha256(blob).hexdigest()
    write_json(path.parent / CHECKSUMS, sums)


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file after checking it against its recorded sha256 (files
    written before checksums existed are read unchecked); damage is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: checkpoint file missing")
    expected = _read_checksums(path.parent).get(path.name)
    if expected is not None and (found := sha256_of(path)) != expected:
        raise DataError(f"{path}: damaged weights file (sha256 {found[:12]}..., recorded "
                        f"{expected[:12]}... when written); restore it or retrain")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable weights file ({exc})") from None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _read_checksums(folder: Path) -> dict[str, str]:
    return read_json_object(folder / CHECKSUMS, "checksums (file name -> sha256)") or {}


def rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    """This process's RNG states: torch/CUDA as byte tensors, python/numpy as JSON."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = state
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {"python": [version, list(words), gauss],
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted((k for k in tensors if k.startswith("cuda.")),
                                       key=lambda k: int(k.split(".")[1]))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, words, gauss = meta["python"]
    random.setstate((version, tuple(words), gauss))
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """An FQN-keyed optimizer state dict -> (tensors, JSON-able rest)."""
    tensors, scalars = {}, {}
    for param, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"state/{param}/{key}"] = value
            else:
                scalars.setdefault(str(param), {})[key] = value
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()}
              for g in state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[str, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, rest = name.split("/", 1)
        param, key = rest.rsplit("/", 1)
        state.setdefault(param, {})[key] = value
    for param, entries in meta.get("scalars", {}).items():
        state.setdefault(param, {}).update(entries)
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()}
              for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


# ---- checkpoint directories ------------------------------------------------------------
@dataclass
class Checkpoint:
    """Everything a checkpoint holds, in memory."""

    trainable: dict[str, torch.Tensor]
    optimizer: dict  # FQN-keyed optimizer state dict
    rng: list[tuple[dict[str, torch.Tensor], dict]]  # one (tensors, meta) per process
    state: dict  # step, epoch, batch, samples, elapsed, scheduler, scaler, world_size

    @property
    def step(self) -> int:
        return int(self.state["step"])


def save_checkpoint(run_dir: Path, ckpt: Checkpoint, config: RunConfig, reference: dict,
                    keep: int = 0) -> Path:
    """Write ``checkpoints/step-N`` atomically, point ``latest`` at it, prune old ones."""
    root = Path(run_dir) / "checkpoints"
    target = root / f"step-{ckpt.step}"
    opt_tensors, opt_meta = flatten_optimizer(ckpt.optimizer)
    rng_tensors = {f"rank{r}.{k}": v for r, (t, _) in enumerate(ckpt.rng) for k, v in t.items()}
    with atomic_dir(target) as tmp:
        save_tensors(tmp / TRAINABLE, ckpt.trainable)
        save_tensors(tmp / "optimizer.safetensors", opt_tensors)
        save_tensors(tmp / "rng.safetensors", rng_tensors)
        write_json(tmp / "state.json", {
            **ckpt.state, "format_version": FORMAT_VERSION, "optimizer": opt_meta,
            "rng": [meta for _, meta in ckpt.rng], "reference": reference,
        })
        (tmp / "config.yaml").write_text(config.to_yaml())
    with atomic_file(root / "latest") as fh:
        fh.write(target.name + "\n")
    if keep:
        for old in list_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return target


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoint directories of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    found = [(int(m.group(1)), p) for p in root.glob("step-*")
             if (m := _STEP_DIR.match(p.name)) and (p / "state.json").is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint named by ``checkpoints/latest`` (or the newest one), else None."""
    pointer = Path(run_dir) / "checkpoints" / "latest"
    if pointer.is_file():
        path = pointer.parent / pointer.read_text().strip()
        if (path / "state.json").is_file():
            return path
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def read_checkpoint(path: Path) -> Checkpoint:
    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path / 'state.json'}: unreadable checkpoint state ({exc})") from None
    rng_tensors = load_tensors(path / "rng.safetensors")
    rng = []
    for r, meta in enumerate(state.pop("rng")):
        prefix = f"rank{r}."
        rng.append(({k[len(prefix):]: v for k, v in rng_tensors.items()
                     if k.startswith(prefix)}, meta))
    optimizer = unflatten_optimizer(load_tensors(path / "optimizer.safetensors"),
                                    state.pop("optimizer"))
    return Checkpoint(load_tensors(path / TRAINABLE), optimizer, rng, state)
