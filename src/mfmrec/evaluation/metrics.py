"""Ranking metrics as pure functions, for one held-out item per user.

Every metric starts from the **1-based rank** of the user's single held-out item; a rank
of ``0`` or ``inf`` means the item was not found (not in the recommended list, or
excluded), which counts as a miss at every cut-off:

* ``HR@k   = 1[rank <= k]``
* ``NDCG@k = 1 / log2(rank + 1)`` if ``rank <= k`` else ``0`` (one relevant item, so the
  ideal DCG is 1)

Means are taken over users. Two helpers turn model outputs into ranks:
:func:`rank_from_scores` for a (B, N) score matrix and :func:`rank_from_list` for a
(B, k) recommended list; :func:`list_validity` audits generated lists.

**Ties are broken pessimistically**: the target is placed *after* every other
(non-excluded) item with the same score, so a constant scorer gets the worst rank
instead of a lucky first place. NaN scores count as ``-inf``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

HR_KS = (1, 5, 10)
NDCG_KS = (5, 10)

ArrayLike = np.ndarray | torch.Tensor | Sequence


def _np(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _found(ranks: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(ranks as float, mask of found targets); 0, inf and NaN are misses."""
    r = _np(ranks).astype(np.float64).reshape(-1)
    return r, np.isfinite(r) & (r >= 1)


def hits_at(ranks: ArrayLike, k: int) -> np.ndarray:
    """(B,) 1.0 where the target is within the top ``k``, else 0.0."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    r, found = _found(ranks)
    return (found & (r <= k)).astype(np.float64)


def ndcg_at(ranks: ArrayLike, k: int) -> np.ndarray:
    """(B,) ``1/log2(rank+1)`` where the target is within the top ``k``, else 0.0."""
    r, _ = _found(ranks)
    hit = hits_at(r, k) > 0
    out = np.zeros_like(r)
    out[hit] = 1.0 / np.log2(r[hit] + 1.0)
    return out


def hit_rate(ranks: ArrayLike, k: int) -> float:
    """Mean HR@k over users (0.0 for no users)."""
    h = hits_at(ranks, k)
    return float(h.mean()) if h.size else 0.0


def ndcg(ranks: ArrayLike, k: int) -> float:
    """Mean NDCG@k over users (0.0 for no users)."""
    g = ndcg_at(ranks, k)
    return float(g.mean()) if g.size else 0.0


def metric_names(hr_ks: Sequence[int] = HR_KS, ndcg_ks: Sequence[int] = NDCG_KS) -> list[str]:
    """Column names in report order: ``HR@1, HR@5, NDCG@5, HR@10, NDCG@10``."""
    cuts = sorted(set(hr_ks) | set(ndcg_ks))
    names = []
    for k in cuts:
        if k in hr_ks:
            names.append(f"HR@{k}")
        if k in ndcg_ks:
            names.append(f"NDCG@{k}")
    return names


def ranking_metrics(
    ranks: ArrayLike, hr_ks: Sequence[int] = HR_KS, ndcg_ks: Sequence[int] = NDCG_KS
) -> dict[str, float]:
    """``{"HR@1": .., "HR@5": .., "NDCG@5": .., ...}`` averaged over users."""
    out = {}
    for name in metric_names(hr_ks, ndcg_ks):
        kind, k = name.split("@")
        out[name] = hit_rate(ranks, int(k)) if kind == "HR" else ndcg(ranks, int(k))
    return out


def history_mask(histories: Sequence[ArrayLike], num_items: int) -> torch.Tensor:
    """(B, N) bool mask, True at the items of each user's history."""
    mask = torch.zeros(len(histories), num_items, dtype=torch.bool)
    for row, hist in enumerate(histories):
        idx = torch.as_tensor(_np(hist), dtype=torch.long)
        if idx.numel():
            mask[row, idx] = True
    return mask


def rank_from_scores(
    scores: ArrayLike, targets: ArrayLike, exclude: ArrayLike | None = None
) -> np.ndarray:
    """1-based rank of ``targets[b]`` among the columns of ``scores[b]``.

    ``scores`` is (B, N) (higher is better) and ``targets`` (B,) column indices.
    ``exclude`` is an optional (B, N) bool mask of items removed from the ranking (e.g.
    the user's history); the target itself is never excluded, so a repeat purchase can
    still be found. Ties rank the target last among equals (pessimistic).
    Returns (B,) int64 ranks in ``1..N``.
    """
    s = scores if isinstance(scores, torch.Tensor) else torch.as_tensor(np.asarray(scores))
    if not s.is_floating_point():
        s = s.double()
    s = s.masked_fill(torch.isnan(s), float("-inf"))  # (B, N)
    t = torch.as_tensor(_np(targets), dtype=torch.long, device=s.device).reshape(-1)  # (B,)
    if s.dim() != 2 or s.shape[0] != t.shape[0]:
        raise ValueError(f"scores must be (B, N) with B = len(targets), got {tuple(s.shape)}")
    if t.numel() and (t.min() < 0 or t.max() >= s.shape[1]):
        raise ValueError("target index outside the score matrix")
    rows = torch.arange(s.shape[0], device=s.device)
    target_score = s[rows, t].unsqueeze(1)  # (B, 1)
    others = torch.ones_like(s, dtype=torch.bool)
    others[rows, t] = False
    if exclude is not None:
        ex = (exclude if isinstance(exclude, torch.Tensor)
              else torch.as_tensor(np.asarray(exclude))).to(s.device, torch.bool)  # (B, N)
        others &= ~ex
    ahead = (s >= target_score) & others  # ">=": ties go ahead of the target
    return (ahead.sum(dim=1) + 1).cpu().numpy().astype(np.int64)


def rank_from_list(recommended: ArrayLike, targets: ArrayLike) -> np.ndarray:
    """1-based position of ``targets[b]`` in the ranked list ``recommended[b]``.

    ``recommended`` is (B, k) in rank order (e.g. beam order); the first occurrence
    counts. Returns (B,) int64 ranks, ``0`` where the target is not in the list (a miss).
    """
    rec = _np(recommended).astype(np.int64)
    t = _np(targets).astype(np.int64).reshape(-1)
    if rec.ndim != 2 or rec.shape[0] != t.shape[0]:
        raise ValueError(f"recommended must be (B, k) with B = len(targets), got {rec.shape}")
    match = rec == t[:, None]  # (B, k)
    first = match.argmax(axis=1) + 1
    return np.where(match.any(axis=1), first, 0).astype(np.int64)


def list_validity(
    recommended: ArrayLike, num_items: int, allowed: ArrayLike | None = None
) -> dict[str, float | int]:
    """Audit generated lists: ids outside ``0..num_items-1`` (or outside the row of
    ``allowed``, e.g. the user's candidates) are *invalid*; a repeat of an id already
    listed earlier in the same row is a *duplicate*. ``valid_share`` is the share of
    slots that are neither (1.0 for a trie-constrained decoder)."""
    rec = _np(recommended).astype(np.int64)
    if rec.ndim != 2:
        raise ValueError(f"recommended must be (B, k), got shape {rec.shape}")
    invalid = (rec < 0) | (rec >= num_items)
    if allowed is not None:
        allow = _np(allowed).astype(np.int64)  # (B, C)
        inside = (rec[:, :, None] == allow[:, None, :]).any(axis=2)  # (B, k)
        invalid |= ~inside
    dup = np.zeros_like(invalid)
    for row in range(rec.shape[0]):
        seen: set[int] = set()
        for col, item in enumerate(rec[row].tolist()):
            if invalid[row, col]:
                continue
            dup[row, col] = item in seen
            seen.add(item)
    slots = int(rec.size)
    n_invalid, n_dup = int(invalid.sum()), int(dup.sum())
    return {
        "slots": slots, "invalid": n_invalid, "duplicates": n_dup,
        "valid_share": (slots - n_invalid - n_dup) / slots if slots else 1.0,
    }


def paired_bootstrap(a: ArrayLike, b: ArrayLike, metric: str, rounds: int = 2000,
                     seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean over users of metric(a) - metric(b), paired by user,
    and its 95% percentile bootstrap interval (users resampled ``rounds`` times).

    ``a`` and ``b`` are the per-user ranks of two models on the same users, in the same
    order; ``metric`` is ``HR@k`` or ``NDCG@k``.
    """
    kind, _, k = metric.partition("@")
    if kind not in ("HR", "NDCG") or not k.isdigit():
        raise ValueError(f"metric must be HR@k or NDCG@k, got {metric!r}")
    a, b = _np(a), _np(b)
    if a.shape != b.shape or not a.size:
        raise ValueError(f"paired ranks need equal non-empty shapes, got {a.shape}, {b.shape}")
    fn = hits_at if kind == "HR" else ndcg_at
    diff = fn(a, int(k)) - fn(b, int(k))  # (U,)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (rounds, len(diff)))].mean(1)  # (rounds,)
    return (float(diff.mean()), float(np.quantile(means, 0.025)),
            float(np.quantile(means, 0.975)))
