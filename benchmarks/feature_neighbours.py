"""Do item features put alike items together? Top-k cosine neighbours vs random pairs.

For every item with features (and with the property), take its ``k`` nearest other items
by cosine similarity and count how many share a checkable property; compare with the
share among uniformly random pairs of distinct items. A ratio well above 1 says the
features carry that property; about 1 says they do not.

Properties:
  attr:NAME     same value of items.parquet attribute NAME (e.g. attr:articleType)
  title-word    the titles share a word of 3+ letters that is not a stopword
  first-word    the titles start with the same word (a brand, often)
  co-user       some user interacted with both items

Usage (results in docs/benchmarks.md):
  python benchmarks/feature_neighbours.py DATA_DIR --features efficientnet-lite0 \
      --property attr:articleType --property attr:baseColour
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict

import numpy as np
import torch

from mfmrec.data import load_dataset
from mfmrec.features.store import load_features

STOPWORDS = {
    "a", "an", "and", "the", "for", "with", "of", "in", "on", "to", "by", "from", "at", "or",
    "as", "is", "it", "this", "that", "new", "set", "pack", "pcs", "piece", "size", "ounce",
    "ounces", "inch", "oz", "ml", "men", "women", "mens", "womens", "kit",
}


def top_k(matrix: torch.Tensor, k: int, block: int = 1024) -> np.ndarray:
    """(N, d) -> (N, k) indices of each row's nearest other rows by cosine."""
    x = torch.nn.functional.normalize(matrix.float(), dim=-1)
    out = []
    for start in range(0, len(x), block):
        sims = x[start: start + block] @ x.T  # (b, N)
        rows = torch.arange(start, min(start + block, len(x)))
        sims[rows - start, rows] = -float("inf")  # never your own neighbour
        out.append(sims.topk(k, dim=-1).indices)
    return torch.cat(out).numpy()


def words(title: str | None) -> set[str]:
    toks = re.findall(r"[a-z]{3,}", (title or "").lower())
    return {t for t in toks if t not in STOPWORDS}


def relation(ds, prop: str):
    """(eligible item mask, same(i, j) -> bool) for one property."""
    n = ds.num_items
    if prop.startswith("attr:"):
        key = prop[5:]
        values = [a.get(key) or None for a in ds.attributes]
        return np.asarray([v is not None for v in values]), lambda i, j: values[i] == values[j]
    if prop == "title-word":
        sets = [words(t) for t in ds.titles]
        return np.asarray([bool(s) for s in sets]), lambda i, j: bool(sets[i] & sets[j])
    if prop == "first-word":
        first = [(t or "").split()[0].lower() if (t or "").split() else None for t in ds.titles]
        return np.asarray([f is not None for f in first]), lambda i, j: first[i] == first[j]
    if prop == "co-user":
        users = defaultdict(set)
        for u, seq in enumerate(ds.sequences):
            for item in seq.tolist():
                users[item].add(u)
        return np.ones(n, dtype=bool), lambda i, j: bool(users[i] & users[j])
    raise SystemExit(f"unknown property {prop!r}")


def measure(ds, matrix, present, prop, k, pairs, rng) -> tuple[float, float]:
    ok, same = relation(ds, prop)
    keep = np.flatnonzero(ok & present)
    nbrs = top_k(matrix[keep], k)  # indices into keep
    hits = [same(keep[i], keep[j]) for i in range(len(keep)) for j in nbrs[i]]
    a = rng.integers(0, len(keep), pairs)
    b = (a + rng.integers(1, len(keep), pairs)) % len(keep)  # uniform over j != i
    rand = [same(keep[i], keep[j]) for i, j in zip(a, b, strict=True)]
    return float(np.mean(hits)), float(np.mean(rand))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir")
    ap.add_argument("--features", required=True, help="feature store name")
    ap.add_argument("--property", action="append", required=True, dest="props")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=200_000, help="random pairs sampled")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ds = load_dataset(args.data_dir)
    store = load_features(ds, args.features)
    present = ~store.missing.numpy()
    print(f"{ds.name}{' (SIMULATED users)' if ds.simulated else ''}: features "
          f"{args.features} {tuple(store.matrix.shape)}, {int(store.missing.sum())} missing")
    print(f"{'property':<20} {'top-' + str(args.k) + ' share':>12} {'random':>8} {'ratio':>7}")
    for prop in args.props:
        rng = np.random.default_rng(args.seed)
        nn_share, rand_share = measure(ds, store.matrix, present, prop, args.k, args.pairs, rng)
        ratio = nn_share / rand_share if rand_share else float("inf")
        print(f"{prop:<20} {nn_share:>12.3f} {rand_share:>8.3f} {ratio:>7.1f}")


if __name__ == "__main__":
    main()
