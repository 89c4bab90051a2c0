"""What each task is evaluated on: the split's users, candidates and reviews.

``UserSplit`` is the public shape every protocol iterates: the users with a target in
the split, their histories and targets. ``select_users`` keeps all, the first N, or an
explicit index array; ``candidate_split`` pairs them with the 100 stored candidates;
``explanation_requests`` and ``rating_requests`` read the split's reviews.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from mfmrec.errors import ConfigError, MfmrecError

REQUEST_FIELDS = ("user", "item", "rating", "summary", "feature", "reviewer_name")


@dataclass
class UserSplit:
    """Users with a target in a split (restricted to the selected users)."""

    users: np.ndarray  # (U,) int64
    histories: list[np.ndarray]  # U arrays of item indices, time order
    targets: np.ndarray  # (U,) int64

    def batches(self, size: int) -> Iterator[tuple[slice, torch.Tensor, list[torch.Tensor]]]:
        """``(rows, users (B,), histories)`` in chunks of ``size`` users."""
        for lo in range(0, len(self.users), size):
            sl = slice(lo, lo + size)
            yield (sl, torch.as_tensor(self.users[sl]),
                   [torch.as_tensor(h, dtype=torch.long) for h in self.histories[sl]])


def select_users(dataset, split: str, users=None) -> UserSplit:
    """The split's target users: all (None), the first N, or an explicit index array."""
    all_users, hists, targets = dataset.targets(split)
    if users is None:
        keep = np.ones(len(all_users), dtype=bool)
    elif isinstance(users, (int, np.integer)):
        if users < 1:
            raise ConfigError(f"users: expected N >= 1, got {users}")
        keep = np.arange(len(all_users)) < users
    else:
        chosen = np.asarray(users, dtype=np.int64).reshape(-1)
        bad = chosen[(chosen < 0) | (chosen >= dataset.num_users)]
        if bad.size:
            raise MfmrecError(f"users: unknown user index {int(bad[0])} "
                              f"(dataset has {dataset.num_users} users)")
        keep = np.isin(all_users, chosen)
    idx = np.flatnonzero(keep)
    return UserSplit(all_users[idx], [hists[i] for i in idx], targets[idx])


def candidate_split(dataset, data: UserSplit, split: str) -> tuple[UserSplit, np.ndarray]:
    """The stored candidate rows of ``data``'s users: (their split, items (R, C)); each
    target is the row's positive."""
    cands = dataset.candidates(split)
    hist_of = dict(zip(data.users.tolist(), data.histories, strict=True))
    rows = np.flatnonzero(np.isin(cands.users, data.users))
    users, items, pos = cands.users[rows], cands.items[rows], cands.positives[rows]
    return UserSplit(users, [hist_of[int(u)] for u in users], pos), items


def _review_columns(dataset, split: str, names) -> dict[str, list]:
    table = dataset.reviews_of(split)
    return {c: table.column(c).to_pylist() for c in names}


def explanation_requests(dataset, split: str, users: np.ndarray | None = None):
    """(requests, references, skipped) of the split's reviews that have a reference."""
    cols = _review_columns(dataset, split, (*REQUEST_FIELDS, "explanation"))
    wanted = None if users is None else set(users.tolist())
    requests, refs, skipped = [], [], 0
    for i, ref in enumerate(cols["explanation"]):
        if wanted is not None and cols["user"][i] not in wanted:
            continue
        if not ref or not ref.strip():
            skipped += 1
            continue
        requests.append({c: cols[c][i] for c in REQUEST_FIELDS})
        refs.append(ref)
    return requests, refs, skipped


def rating_requests(dataset, split: str, users: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(users, items, ratings)`` of the split's reviews that carry a star rating."""
    cols = _review_columns(dataset, split, ("user", "item", "rating"))
    wanted = None if users is None else set(users.tolist())
    keep = [i for i, r in enumerate(cols["rating"]) if r is not None
            and (wanted is None or cols["user"][i] in wanted)]
    pick = lambda c: np.asarray([cols[c][i] for i in keep])  # noqa: E731
    return (pick("user").astype(np.int64), pick("item").astype(np.int64),
            pick("rating").astype(np.float64))
