"""The in-memory form every importer produces before the common writer takes over."""

from __future__ import annotations

from dataclasses import dataclass, field

REVIEW_COLUMNS = (
    "user", "item", "rating", "summary", "text", "explanation", "feature", "reviewer_name", "time"
)


@dataclass
class RawDataset:
    """Users, items, time-ordered sequences and optional reviews, before splitting.

    Items and users are identified by their internal index (position in the lists);
    ``sequences[u]`` holds the internal item indices of user ``u`` in time order.
    """

    name: str
    user_ids: list[str]
    item_ids: list[str]
    sequences: list[list[int]]
    user_names: list[str | None] | None = None
    item_titles: list[str | None] | None = None
    item_images: list[str | None] | None = None
    item_attributes: list[dict | None] | None = None
    timestamps: list[list[int]] | None = None
    reviews: dict[str, list] | None = None  # columns of REVIEW_COLUMNS
    provenance: dict = field(default_factory=dict)
    simulated: bool = False
    extra_meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.sequences) != len(self.user_ids):
            raise ValueError("one sequence per user expected")
        for name in ("user_names",):
            col = getattr(self, name)
            if col is not None and len(col) != len(self.user_ids):
                raise ValueError(f"{name} must have one entry per user")
        for name in ("item_titles", "item_images", "item_attributes"):
            col = getattr(self, name)
            if col is not None and len(col) != len(self.item_ids):
                raise ValueError(f"{name} must have one entry per item")
        if self.reviews is not None:
            missing = [c for c in REVIEW_COLUMNS if c not in self.reviews]
            if missing:
                raise ValueError(f"reviews lack columns {missing}")
