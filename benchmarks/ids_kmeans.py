"""Which k-means for residual k-means semantic IDs: torch vs scikit-learn vs faiss.

Quantises ``--rows`` x ``--dim`` float32 rows drawn around ``--clusters`` random centres
into ``--levels`` residual levels of ``--codebook`` codes, with the same number of Lloyd
iterations for each implementation, twice each, and prints seconds (best of the two),
whether the two runs gave identical codes, the final reconstruction MSE and the ratio of
each time to the chosen one (the torch routine of ``mfmrec.ids.kmeans``)::

  python benchmarks/ids_kmeans.py            # 12,000 x 768, 3 x 256, 25 iterations

``faiss`` seeds with random rows (its only built-in seeding); ``faiss+pp`` runs faiss's
Lloyd iterations from the same k-means++ seeding as ``torch``, to compare like with like.
scikit-learn and faiss-cpu are optional: a missing one is reported and skipped.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from mfmrec.ids.kmeans import kmeans_pp, residual_kmeans

Quantiser = Callable[[np.ndarray], tuple[np.ndarray, float]]  # rows -> (codes (N, L), MSE)


def clustered(rows: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    pick = rng.integers(clusters, size=rows)
    return centres[pick] + 0.3 * rng.normal(size=(rows, dim)).astype(np.float32)


def with_torch(levels: int, k: int, iters: int, seed: int) -> Quantiser:
    def run(x: np.ndarray) -> np.ndarray:
        res = residual_kmeans(torch.from_numpy(x), levels, k, seed=seed, iters=iters)
        return res.codes.numpy(), res.level_mse[-1]
    return run


def with_sklearn(levels: int, k: int, iters: int, seed: int) -> Quantiser:
    from sklearn.cluster import KMeans

    def run(x: np.ndarray) -> np.ndarray:
        residual, codes = x.copy(), []
        for level in range(levels):
            km = KMeans(k, init="k-means++", n_init=1, max_iter=iters, tol=0.0,
                        random_state=seed + level).fit(residual)
            codes.append(km.labels_)
            residual = residual - km.cluster_centers_[km.labels_].astype(np.float32)
        return np.stack(codes, 1), float((residual**2).mean())
    return run


def with_faiss(levels: int, k: int, iters: int, seed: int, plus_plus: bool = False) -> Quantiser:
    """faiss.Kmeans seeds with k random rows; ``plus_plus`` seeds it with our k-means++."""
    import faiss

    def run(x: np.ndarray) -> np.ndarray:
        residual, codes = np.ascontiguousarray(x), []
        gen = torch.Generator().manual_seed(seed)
        for level in range(levels):
            km = faiss.Kmeans(x.shape[1], k, niter=iters, seed=seed + level, verbose=False,
                              max_points_per_centroid=1_000_000)
            init = None
            if plus_plus:
                rows = torch.from_numpy(residual)
                init = kmeans_pp(rows, k, gen, (rows * rows).sum(1, keepdim=True)).numpy()
            km.train(residual, init_centroids=init)
            _, labels = km.index.search(residual, 1)
            codes.append(labels[:, 0])
            residual = np.ascontiguousarray(residual - km.centroids[labels[:, 0]])
        return np.stack(codes, 1), float((residual**2).mean())
    return run


def with_faiss_pp(levels: int, k: int, iters: int, seed: int) -> Quantiser:
    return with_faiss(levels, k, iters, seed, plus_plus=True)


METHODS = {"torch": with_torch, "faiss": with_faiss, "faiss+pp": with_faiss_pp,
           "sklearn": with_sklearn}
CHOSEN = "torch"


def measure(make, x: np.ndarray, args) -> tuple[float, bool, float] | None:
    try:
        run = make(args.levels, args.codebook, args.iters, args.seed)
        times, outs = [], []
        for _ in range(2):
            start = time.perf_counter()
            outs.append(run(x))
            times.append(time.perf_counter() - start)
    except ImportError as exc:
        print(f"  skipped ({exc})")
        return None
    same = np.array_equal(outs[0][0], outs[1][0])
    return min(times), bool(same), outs[0][1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=12_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--clusters", type=int, default=300)
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--codebook", type=int, default=256)
    ap.add_argument("--iters", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default=",".join(METHODS),
                    help=f"comma-separated subset of {', '.join(METHODS)}")
    args = ap.parse_args()
    x = clustered(args.rows, args.dim, args.clusters, args.seed)
    print(f"{args.rows} x {args.dim} rows, {args.levels} levels x {args.codebook} codes, "
          f"{args.iters} iterations, torch threads {torch.get_num_threads()}")
    results = {}
    for name in args.methods.split(","):
        make = METHODS[name]
        print(f"{name} ...", flush=True)
        got = measure(make, x, args)
        if got is not None:
            results[name] = got
    base = results[CHOSEN][0] if CHOSEN in results else float("nan")
    print(f"{'method':<9} {'seconds':>8} {'ratio':>7} {'final MSE':>10}  deterministic")
    for name, (secs, same, mse) in results.items():
        print(f"{name:<9} {secs:8.2f} {secs / base:6.2f}x {mse:10.5f}  {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
