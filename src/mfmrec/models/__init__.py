"""Models behind one recommender contract (see :mod:`mfmrec.models.base`)."""

from mfmrec.models.base import DIRECT, EXPLANATION, SEQUENTIAL, Recommender

__all__ = ["DIRECT", "EXPLANATION", "SEQUENTIAL", "Recommender"]
