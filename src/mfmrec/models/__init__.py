"""Models behind one recommender contract (see :mod:`mfmrec.models.base`)."""

from mfmrec.models.base import (
    DIRECT,
    EXPLANATION,
    GENERATED_LIST,
    RATING,
    SCORES,
    SEQUENTIAL,
    TASKS,
    Recommender,
)

__all__ = ["DIRECT", "EXPLANATION", "GENERATED_LIST", "RATING", "SCORES", "SEQUENTIAL", "TASKS",
           "Recommender"]
