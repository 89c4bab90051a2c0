"""What the service shows of a dataset: users, items, histories, photos, review context.

Users and items are addressed by their external ids, as ``mfmrec recommend --user`` does.
Every lookup that can fail raises :class:`NotFound` or :class:`BadInput` naming the field;
the app turns them into 404 and 422 responses before any model runs.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import numpy as np

IMAGES_DIR = "images"  # the dataset's own photo folder (mfmrec data images writes there)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})


class NotFound(LookupError):
    """An id that names nothing (HTTP 404); ``field`` is the request field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class BadInput(ValueError):
    """A value outside what the field accepts (HTTP 422); ``field`` is the request field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class Catalog:
    """Read-only views of one loaded :class:`~mfmrec.data.Dataset` for the API."""

    def __init__(self, dataset):
        self.ds = dataset
        self.images_root = (Path(dataset.root) / IMAGES_DIR).resolve()
        self._paths = dataset.image_paths()
        self._review_rows = self._index_reviews()
        self._search = [f"{uid}\n{name or ''}".lower()
                        for uid, name in zip(dataset.user_ids, dataset.user_names, strict=True)]

    # ---- lookups -----------------------------------------------------------------------
    def user(self, uid: str, field: str = "user_id") -> int:
        u = self.ds.user_index.get(uid)
        if u is None:
            raise NotFound(field, f"{field}: unknown user id {uid!r}")
        return u

    def item(self, iid: str, field: str = "item_id") -> int:
        i = self.ds.item_index.get(iid)
        if i is None:
            raise NotFound(field, f"{field}: unknown item id {iid!r}")
        return i

    def history_items(self, ids: list[str]) -> np.ndarray:
        """Posted external item ids -> internal indices; unknown ones are a 422 on
        ``history[N]`` (the body is wrong, not the URL)."""
        out = []
        for n, iid in enumerate(ids):
            i = self.ds.item_index.get(iid)
            if i is None:
                raise BadInput(f"history[{n}]", f"history[{n}]: unknown item id {iid!r}")
            out.append(i)
        return np.asarray(out, dtype=np.int64)

    def search_users(self, q: str, limit: int, offset: int) -> tuple[int, list[int]]:
        """(matches, one page of user indices) whose id or name contains ``q``."""
        needle = q.strip().lower()
        hits = [u for u, text in enumerate(self._search) if needle in text]
        return len(hits), hits[offset:offset + limit]

    # ---- JSON views --------------------------------------------------------------------
    def user_json(self, u: int) -> dict:
        return {"id": self.ds.user_ids[u], "name": self.ds.user_names[u],
                "history_length": len(self.ds.sequences[u])}

    def item_json(self, i: int, detail: bool = False) -> dict:
        iid = self.ds.item_ids[i]
        out = {"id": iid, "number": int(self.ds.numbers[i]), "title": self.ds.titles[i],
               "image_url": (f"/api/items/{quote(iid, safe='')}/image"
                             if self.image_path(i) is not None else None)}
        if detail:
            out["attributes"] = self.ds.attributes[i]
        return out

    @property
    def has_images(self) -> bool:
        return any(p is not None for p in self._paths)

    # ---- photos ------------------------------------------------------------------------
    def image_path(self, i: int) -> Path | None:
        """The item's photo, only when it is a regular image file inside the dataset's own
        ``images/`` folder once every ``..`` and symlink is resolved; else None."""
        raw = self._paths[i]
        if raw is None:
            return None
        try:
            path = Path(raw).resolve(strict=True)
        except (OSError, RuntimeError):  # missing file, symlink loop
            return None
        if not path.is_relative_to(self.images_root) or not path.is_file():
            return None
        return path if path.suffix.lower() in IMAGE_SUFFIXES else None

    # ---- explanation requests ----------------------------------------------------------
    def _index_reviews(self) -> dict[tuple[int, int], int]:
        reviews = self.ds.reviews
        if reviews is None:
            return {}
        users = reviews.column("user").to_pylist()
        items = reviews.column("item").to_pylist()
        return {(int(a), int(b)): row for row, (a, b) in enumerate(zip(users, items,
                                                                      strict=True))}

    def explanation_request(self, u: int, i: int) -> dict:
        """The ``explain`` request of (user, item): rating, summary and feature from the
        user's review of the item when there is one, else empty fields."""
        request = {"user": u, "item": i, "rating": None, "summary": None, "feature": None,
                   "reviewer_name": self.ds.user_names[u]}
        row = self._review_rows.get((u, i))
        if row is not None:
            review = self.ds.reviews.slice(row, 1).to_pylist()[0]
            for key in ("rating", "summary", "feature", "reviewer_name"):
                request[key] = review.get(key, request[key])
        return request
