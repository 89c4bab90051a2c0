"""Semantic item IDs: each item becomes a short tuple of codes quantised from its content
features (TIGER-style), so similar items share prefixes.

Builders: residual k-means (:func:`residual_kmeans`) and an RQ-VAE (:func:`train_rqvae`);
:func:`build_ids` runs one end to end and writes ``<dataset>/ids/<name>.parquet`` and
``.json``; :func:`load_ids` reads them back and :func:`load_code_vectors` what each code
means in the input space. Lower layer: imports only features, data, io, errors and config.
"""

from mfmrec.ids.build import build_ids
from mfmrec.ids.config import IdBuildConfig, RqvaeConfig, parse_features
from mfmrec.ids.health import HealthReport, disambiguate, health_line, health_report
from mfmrec.ids.inputs import InputMatrix, feature_inputs, matrix_inputs
from mfmrec.ids.kmeans import ResidualKMeans, residual_kmeans
from mfmrec.ids.rqvae import RqvaeResult, train_rqvae
from mfmrec.ids.store import SemanticIds, ids_path, list_ids, load_ids, read_timing
from mfmrec.ids.vectors import code_vectors, load_code_vectors

__all__ = [
    "HealthReport", "IdBuildConfig", "InputMatrix", "ResidualKMeans", "RqvaeConfig",
    "RqvaeResult", "SemanticIds", "build_ids", "code_vectors", "disambiguate", "feature_inputs",
    "health_line", "health_report", "ids_path", "list_ids", "load_code_vectors", "load_ids",
    "matrix_inputs", "parse_features", "read_timing", "residual_kmeans", "train_rqvae",
]
