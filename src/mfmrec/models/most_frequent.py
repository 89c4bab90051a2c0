"""Most frequent explanation: the trivial floor of explanation generation.

Every request is answered with a most frequent *training* explanation, so a generator
(PETER, VIP5) has to beat it to show that it writes anything user- or item-specific:

* ``per_item: true`` (item mode): the item's own most frequent training explanation
  (ties: the first in training order); an item without training reviews falls back to
  the whole-set one;
* ``per_item: false`` (global mode): the whole-set most frequent one, for everybody.

Nothing trains; build it with ``registry.get("most-frequent-explanation")`` and score it
with the shared evaluator (``tasks=["explanation"]``), like any model.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from mfmrec.config import check
from mfmrec.errors import DataError
from mfmrec.models.base import EXPLANATION, Recommender
from mfmrec.models.registry import register


@dataclass
class MostFrequentExplanationConfig:
    """Item mode (the item's own explanation) or global mode (one for everybody)."""

    per_item: bool = True

    def __post_init__(self) -> None:
        check(isinstance(self.per_item, bool), "model.per_item",
              f"expected true or false, got {self.per_item!r}")


class MostFrequentExplanation(Recommender):
    """Answers every explanation request with a most frequent training explanation."""

    name = "most-frequent-explanation"
    tasks = frozenset({EXPLANATION})

    def __init__(self, dataset, per_item: bool):
        super().__init__()
        pairs = _training_explanations(dataset)
        # Counter.most_common keeps first-insertion order among equal counts
        self.fallback = Counter(t for _, t in pairs).most_common(1)[0][0]
        by_item: dict[int, Counter] = defaultdict(Counter)
        for item, text in pairs:
            by_item[item][text] += 1
        self.by_item = ({i: c.most_common(1)[0][0] for i, c in by_item.items()}
                        if per_item else {})
        self.label = "item-mode" if per_item else "global-mode"  # its row in reports

    def explain(self, requests: list[dict], prompt: str | None = None) -> list[str]:
        return [self.by_item.get(int(r["item"]), self.fallback) for r in requests]


def _training_explanations(dataset) -> list[tuple[int, str]]:
    """(item, explanation) of every training review with a non-empty explanation."""
    table = dataset.reviews_of("train")
    if table is None:
        raise DataError(f"{dataset.root}: no reviews.parquet; the most-frequent-explanation "
                        "baseline needs training reviews")
    items = table.column("item").to_pylist()
    texts = table.column("explanation").to_pylist()
    pairs = [(i, t) for i, t in zip(items, texts, strict=True) if t and t.strip()]
    if not pairs:
        raise DataError(f"{dataset.root}: no training review has an explanation")
    return pairs


@register("most-frequent-explanation", MostFrequentExplanationConfig,
          "Most frequent training explanation of the item (or of all items); no learning")
def _build(config: MostFrequentExplanationConfig, dataset) -> MostFrequentExplanation:
    return MostFrequentExplanation(dataset, config.per_item)
