"""The one loader of prepared dataset directories; everything downstream uses it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mfmrec.data.splits import TEST, TRAIN, leave_one_out_position
from mfmrec.errors import DataError

REQUIRED = ("dataset.json", "users.parquet", "items.parquet", "interactions.parquet",
            "splits/sequential.parquet", "negatives/candidates.parquet")


@dataclass(frozen=True)
class Candidates:
    """The stored direct-recommendation candidates of one split."""

    users: np.ndarray  # (U,) int64
    positives: np.ndarray  # (U,) int64
    items: np.ndarray  # (U, C) int64, shuffled, contains the positive once


class Dataset:
    """A prepared dataset directory, read lazily.

    Items and users are addressed by internal index (``0..N-1``); ``numbers`` gives the
    number that stands for each item inside prompts (the dataset's item indexing).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: dataset directory not found")
        for rel in REQUIRED:
            if not (self.root / rel).is_file():
                raise DataError(f"{self.root / rel}: missing; not a prepared mfmrec dataset "
                                "(create one with `mfmrec data import ...`)")
        try:
            self.meta: dict = json.loads((self.root / "dataset.json").read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{self.root / 'dataset.json'}: invalid JSON ({exc})") from None

    def _table(self, rel: str) -> pa.Table:
        try:
            return pq.read_table(self.root / rel)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{self.root / rel}: unreadable parquet ({exc})") from None

    # ---- users and items -------------------------------------------------------------
    @cached_property
    def users(self) -> pa.Table:
        return self._table("users.parquet")

    @cached_property
    def items(self) -> pa.Table:
        return self._table("items.parquet")

    @property
    def name(self) -> str:
        return self.meta.get("name", self.root.name)

    @property
    def simulated(self) -> bool:
        return bool(self.meta.get("simulated", False))

    @property
    def num_users(self) -> int:
        return self.users.num_rows

    @property
    def num_items(self) -> int:
        return self.items.num_rows

    @cached_property
    def user_ids(self) -> list[str]:
        return self.users.column("user_id").to_pylist()

    @cached_property
    def user_names(self) -> list[str | None]:
        return self.users.column("name").to_pylist()

    @cached_property
    def item_ids(self) -> list[str]:
        return self.items.column("item_id").to_pylist()

    @cached_property
    def titles(self) -> list[str | None]:
        return self.items.column("title").to_pylist()

    @cached_property
    def numbers(self) -> np.ndarray:
        """(N,) int64: the prompt number of each item."""
        return self.items.column("number").to_numpy().astype(np.int64)

    @cached_property
    def item_of_number(self) -> dict[int, int]:
        return {int(n): i for i, n in enumerate(self.numbers)}

    @cached_property
    def attributes(self) -> list[dict]:
        return [json.loads(a) if a else {} for a in self.items.column("attributes").to_pylist()]

    def image_paths(self) -> list[Path | None]:
        """Absolute image path per item (relative paths resolve against the dataset)."""
        out = []
        for p in self.items.column("image").to_pylist():
            out.append(None if not p else (self.root / p if not Path(p).is_absolute()
                                           else Path(p)))
        return out

    @cached_property
    def user_index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.user_ids)}

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {x: i for i, x in enumerate(self.item_ids)}

    # ---- interactions and splits -----------------------------------------------------
    @cached_property
    def interactions(self) -> pa.Table:
        return self._table("interactions.parquet")

    @cached_property
    def _seq_split(self) -> np.ndarray:
        return np.asarray(self._table("splits/sequential.parquet").column("split").to_pylist())

    @cached_property
    def sequences(self) -> list[np.ndarray]:
        """Per user, all interacted items in time order (int64)."""
        users = self.interactions.column("user").to_numpy()
        items = self.interactions.column("item").to_numpy().astype(np.int64)
        bounds = np.searchsorted(users, np.arange(self.num_users + 1))
        return [items[bounds[u]: bounds[u + 1]] for u in range(self.num_users)]

    @cached_property
    def train_sequences(self) -> list[np.ndarray]:
        """Per user, the training part of the sequence (everything but valid/test)."""
        users = self.interactions.column("user").to_numpy()
        mask = self._seq_split == TRAIN
        items = self.interactions.column("item").to_numpy().astype(np.int64)
        bounds = np.searchsorted(users, np.arange(self.num_users + 1))
        return [items[bounds[u]: bounds[u + 1]][mask[bounds[u]: bounds[u + 1]]]
                for u in range(self.num_users)]

    def targets(self, split: str) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Users with a ``split`` target, their histories before it, and the targets.

        For ``valid`` the history is the training part; for ``test`` it also includes the
        validation item (the P5/VIP5 protocol).
        """
        users, hists, targets = [], [], []
        for u, seq in enumerate(self.sequences):
            cut = leave_one_out_position(len(seq), split)
            if cut is None:
                continue
            users.append(u)
            hists.append(seq[:cut])
            targets.append(seq[cut])
        return np.asarray(users, np.int64), hists, np.asarray(targets, np.int64)

    def candidates(self, split: str = TEST) -> Candidates:
        """The frozen 100 candidates (99 negatives + positive) of each user for ``split``."""
        t = self._table("negatives/candidates.parquet")
        mask = np.asarray(t.column("split").to_pylist()) == split
        cands = t.column("candidates").to_pylist()
        rows = np.flatnonzero(mask)
        return Candidates(
            users=t.column("user").to_numpy()[rows].astype(np.int64),
            positives=t.column("positive").to_numpy()[rows].astype(np.int64),
            items=np.asarray([cands[r] for r in rows], dtype=np.int64).reshape(
                len(rows), -1 if len(rows) else int(self.meta.get("num_negatives", 99)) + 1),
        )

    # ---- reviews ---------------------------------------------------------------------
    @property
    def has_reviews(self) -> bool:
        return (self.root / "reviews.parquet").is_file()

    @cached_property
    def reviews(self) -> pa.Table | None:
        return self._table("reviews.parquet") if self.has_reviews else None

    @cached_property
    def review_split(self) -> np.ndarray | None:
        if not self.has_reviews:
            return None
        return np.asarray(self._table("splits/reviews.parquet").column("split").to_pylist())

    def reviews_of(self, split: str) -> pa.Table | None:
        """The reviews of one split (``train``/``valid``/``test``)."""
        if self.reviews is None:
            return None
        return self.reviews.filter(pa.array(self.review_split == split))

    # ---- statistics ------------------------------------------------------------------
    def stats(self) -> dict:
        return dict(self.meta.get("statistics", {}))

    def features_path(self, encoder: str) -> Path:
        return self.root / "features" / f"{encoder}.safetensors"


def load_dataset(root: str | Path) -> Dataset:
    """Open a prepared dataset directory."""
    return Dataset(root)
