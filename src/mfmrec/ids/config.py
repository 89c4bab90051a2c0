"""How to build semantic item IDs: the method, the code shape, the inputs, the seed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mfmrec.config import check

METHODS = ("rkmeans", "rqvae")


@dataclass
class RqvaeConfig:
    """RQ-VAE hyper-parameters (only used with ``method: rqvae``)."""

    hidden: int = 256  # width of the encoder's and the decoder's hidden layer
    latent: int = 32  # dimension of the latent that the codebooks quantise
    epochs: int = 200  # passes over all items
    batch_size: int = 512  # rows per step (enough steps per epoch); 0 = all items at once
    lr: float = 3e-3  # Adam learning rate
    beta: float = 0.25  # weight of the commitment loss |z - sg(e)|^2
    reset_dead: bool = True  # re-initialise codes unused over an epoch to random residuals

    def __post_init__(self) -> None:
        check(self.hidden >= 1, "rqvae.hidden", f"must be >= 1, got {self.hidden}")
        check(self.latent >= 1, "rqvae.latent", f"must be >= 1, got {self.latent}")
        check(self.epochs >= 0, "rqvae.epochs", f"must be >= 0, got {self.epochs}")
        check(self.batch_size >= 0, "rqvae.batch_size",
              f"must be >= 0 (0 = full batch), got {self.batch_size}")
        check(self.lr > 0 and math.isfinite(self.lr), "rqvae.lr", f"must be > 0, got {self.lr}")
        check(self.beta >= 0 and math.isfinite(self.beta), "rqvae.beta",
              f"must be >= 0, got {self.beta}")


@dataclass
class IdBuildConfig:
    """One semantic-ID build: ``levels`` codes of ``codebook`` values per item (+1 to
    tell colliding items apart).

    ``features``: feature-store names whose rows are L2-normalised, weighted and
    concatenated; empty when the input is a matrix passed in (``--from-run``).
    ``weights``: per-feature multipliers applied after normalisation (default 1.0 each).
    """

    method: str = "rkmeans"  # rkmeans (residual k-means) | rqvae (residual-quantised VAE)
    levels: int = 3  # codes per item before disambiguation (L)
    codebook: int = 256  # values per level (K)
    seed: int = 0  # seeds k-means++ and the RQ-VAE's initialisation and batches
    features: list[str] = field(default_factory=list)  # feature-store names
    weights: dict[str, float] = field(default_factory=dict)  # name -> weight (default 1.0)
    kmeans_iters: int = 25  # Lloyd iterations per level (rkmeans, and RQ-VAE codebook init)
    rqvae: RqvaeConfig = field(default_factory=RqvaeConfig)

    def __post_init__(self) -> None:
        check(self.method in METHODS, "method",
              f"unknown method {self.method!r} (known: {', '.join(METHODS)})")
        check(self.levels >= 1, "levels", f"must be >= 1, got {self.levels}")
        check(self.codebook >= 2, "codebook", f"must be >= 2, got {self.codebook}")
        check(self.kmeans_iters >= 1, "kmeans_iters", f"must be >= 1, got {self.kmeans_iters}")
        check(len(set(self.features)) == len(self.features), "features",
              f"a feature is listed twice: {self.features}")
        for name, weight in self.weights.items():
            check(name in self.features, "weights",
                  f"weight for {name!r}, which is not in features {self.features}")
            check(isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0,
                  "weights", f"{name}: weight must be a number > 0, got {weight!r}")

    def weight(self, name: str) -> float:
        return float(self.weights.get(name, 1.0))


def parse_features(spec: str) -> tuple[list[str], dict[str, float]]:
    """``"efficientnet-lite0,minilm:0.5"`` -> (["efficientnet-lite0", "minilm"],
    {"minilm": 0.5}); a name without ``:weight`` weighs 1.0."""
    names: list[str] = []
    weights: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, sep, raw = part.partition(":")
        name = name.strip()
        check(bool(name), "features", f"empty feature name in {spec!r}")
        if sep:
            try:
                weights[name] = float(raw)
            except ValueError:
                check(False, "features", f"{part!r}: weight {raw!r} is not a number")
        names.append(name)
    check(bool(names), "features", f"no feature name in {spec!r}")
    return names, weights
