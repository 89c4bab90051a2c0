"""Build semantic IDs: inputs -> quantiser -> disambiguation -> health -> store.

Every check on the inputs runs before anything is computed or written, so a bad input
leaves no file behind.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from mfmrec.data import load_dataset
from mfmrec.errors import DataError
from mfmrec.features.store import items_digest
from mfmrec.ids.config import IdBuildConfig
from mfmrec.ids.health import HealthReport, disambiguate, health_report
from mfmrec.ids.inputs import InputMatrix, check_codebook, feature_inputs, matrix_inputs
from mfmrec.ids.kmeans import residual_kmeans
from mfmrec.ids.rqvae import Progress, train_rqvae
from mfmrec.ids.store import FORMAT_VERSION, SemanticIds, check_name, load_ids, write_ids
from mfmrec.ids.vectors import code_vectors, write_vectors


@dataclasses.dataclass(frozen=True)
class Quantised:
    codes: torch.Tensor  # (N, L) int64
    reconstruction: torch.Tensor  # (N, D)
    details: dict  # method-specific numbers for the JSON (e.g. per-level MSE)


def dataset_item_ids(dataset_dir: str | Path) -> list[str] | None:
    """The item ids of a prepared dataset, or None for a plain folder."""
    root = Path(dataset_dir)
    if not (root / "items.parquet").is_file():
        return None
    return load_dataset(root).item_ids


def gather_inputs(dataset_dir: str | Path, config: IdBuildConfig, matrix: torch.Tensor | None,
                  source: str | None, item_ids: list[str] | None) -> InputMatrix:
    if (matrix is None) == (not config.features):
        raise DataError("ids build: give feature names or a matrix (--from-run), exactly one")
    if matrix is None:
        inputs = feature_inputs(dataset_dir, config.features, config.weights, item_ids)
    else:
        inputs = matrix_inputs(matrix, "item-embeddings", source or "matrix", item_ids)
    if item_ids is not None and inputs.num_items != len(item_ids):
        raise DataError(f"{source or dataset_dir}: {inputs.num_items} rows but the dataset "
                        f"has {len(item_ids)} items")
    check_codebook(inputs.num_items, config.codebook, source or str(dataset_dir))
    return inputs


def quantise(x: torch.Tensor, config: IdBuildConfig,
             progress: Progress | None = None) -> Quantised:
    """x (N, D) -> codes (N, L) with the configured method."""
    if config.method == "rkmeans":
        km = residual_kmeans(x, config.levels, config.codebook, seed=config.seed,
                             iters=config.kmeans_iters)
        return Quantised(km.codes, km.reconstruct(),
                         {"level_mse": [float(f"{m:.6g}") for m in km.level_mse]})
    res = train_rqvae(x, config.levels, config.codebook, config.rqvae, seed=config.seed,
                      kmeans_iters=config.kmeans_iters, progress=progress)
    return Quantised(res.codes, res.reconstruction,
                     {"initial_mse": float(f"{res.initial_mse:.6g}"),
                      "final_loss": float(f"{res.losses[-1]:.6g}") if res.losses else None})


def build_meta(name: str, config: IdBuildConfig, inputs: InputMatrix, q: Quantised,
               report: HealthReport, dedup_size: int, source: str | None,
               item_ids: list[str] | None) -> dict:
    meta = {
        "format_version": FORMAT_VERSION, "name": name, "method": config.method,
        "levels": config.levels, "codebook": config.codebook, "seed": config.seed,
        "kmeans_iters": config.kmeans_iters, "dedup_size": dedup_size,
        "num_items": inputs.num_items, "input_dim": int(inputs.matrix.shape[1]),
        "features": inputs.blocks, "source": source,
        "items_digest": items_digest(item_ids) if item_ids is not None else None,
        "health": report.stable_dict(), "method_details": q.details,
    }
    if config.method == "rqvae":
        meta["rqvae"] = dataclasses.asdict(config.rqvae)
    return meta


def build_ids(dataset_dir: str | Path, name: str, config: IdBuildConfig,
              matrix: torch.Tensor | None = None, source: str | None = None,
              progress: Progress | None = None) -> SemanticIds:
    """Build, check and write ``<dataset_dir>/ids/<name>.{parquet,json,timing.json}`` and
    the per-level code vectors (``<name>.vectors.safetensors``).

    Inputs: ``config.features`` (stores of the dataset) or ``matrix`` (N, d), e.g. a
    trained model's item embeddings, with ``source`` naming where it came from.
    ``progress`` is called after every RQ-VAE epoch.
    """
    start = time.perf_counter()
    check_name(name)
    item_ids = dataset_item_ids(dataset_dir)
    inputs = gather_inputs(dataset_dir, config, matrix, source, item_ids)
    q = quantise(inputs.matrix, config, progress)
    dedup = disambiguate(q.codes)  # (N,)
    full = torch.cat([q.codes, dedup[:, None]], dim=1)  # (N, L+1)
    seconds = time.perf_counter() - start
    report = health_report(q.codes, config.codebook, inputs.matrix, q.reconstruction, seconds)
    meta = build_meta(name, config, inputs, q, report, int(dedup.max()) + 1, source, item_ids)
    write_vectors(dataset_dir, name, code_vectors(inputs.matrix, q.codes, config.codebook))
    write_ids(dataset_dir, name, full, meta, seconds)
    return load_ids(dataset_dir, name, item_ids)
