"""Residual k-means: level ``l`` clusters what levels ``< l`` left unexplained.

Each level runs seeded k-means++ seeding then Lloyd iterations on the residuals
``r_l = x - sum_{j<l} c_j[code_j]``; the codes of an item are its nearest centre per level.

Which k-means: measured with ``benchmarks/ids_kmeans.py`` (12,000 x 768 float32 rows
around 300 random centres, 3 levels x 256 codes, at most 25 Lloyd iterations per level,
best of two runs, on the 2-core dev machine shared with other jobs; torch 2.13,
scikit-learn 1.9.1, faiss-cpu 1.15.1):

    method      seconds  ratio  final MSE  deterministic
    torch         13.2   1.00x   0.0837    yes  (this module)
    faiss          9.4   0.71x   0.0830    yes  (seeds with k random rows, no k-means++)
    faiss+pp      12.7   0.97x   0.0836    yes  (faiss Lloyd from this module's k-means++)
    sklearn   20-242    1.6-18x  0.0829    yes  (n_init=1, k-means++, fixed random_state)

faiss is faster only because it skips k-means++ seeding; from the same seeding it is as
fast as torch (0.97x), so it would be a new compiled dependency for nothing. scikit-learn
(only present transitively) was slower in all three runs, badly so under load (its
k-means++ is greedy, 2 + log(k) candidate rows per centre). So this module is plain torch:
seeded from an explicit ``torch.Generator``, bit-identical on re-run. k-means++ costs one
matrix-vector product per centre (``|x|^2 - 2 x.c + |c|^2`` with the row norms computed
once; the first version, with an (N, D) temporary per centre, took 42 s); centre sums use
``index_add_``, which is deterministic on the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ResidualKMeans:
    """The result of :func:`residual_kmeans` on ``N`` rows of dimension ``D``."""

    codes: torch.Tensor  # (N, L) int64
    codebooks: torch.Tensor  # (L, K, D) float32
    level_mse: list[float]  # MSE of x against the sum of codes of levels <= l, per l

    def reconstruct(self, levels: int | None = None) -> torch.Tensor:
        """The sum of the chosen centres of the first ``levels`` levels: (N, D)."""
        return reconstruct(self.codes, self.codebooks, levels)


def reconstruct(codes: torch.Tensor, codebooks: torch.Tensor,
                levels: int | None = None) -> torch.Tensor:
    """codes (N, L), codebooks (L, K, D) -> (N, D) sum of the first ``levels`` centres."""
    levels = codes.shape[1] if levels is None else levels
    out = torch.zeros(codes.shape[0], codebooks.shape[-1], dtype=codebooks.dtype)
    for level in range(levels):
        out += codebooks[level][codes[:, level]]
    return out


def sq_distances(x: torch.Tensor, centres: torch.Tensor,
                 x_sq: torch.Tensor | None = None) -> torch.Tensor:
    """x (N, D), centres (K, D) -> (N, K) squared Euclidean distances (>= 0).

    ``x_sq`` (N, 1): the rows' squared norms when the caller already has them.
    """
    x_sq = (x * x).sum(1, keepdim=True) if x_sq is None else x_sq
    d = torch.addmm(x_sq + (centres * centres).sum(1), x, centres.T, alpha=-2.0)
    return d.clamp_min_(0.0)


def kmeans_pp(x: torch.Tensor, k: int, gen: torch.Generator,
              x_sq: torch.Tensor) -> torch.Tensor:
    """k-means++ seeding: each new centre drawn with probability ~ D(x)^2. -> (k, D).

    One matrix-vector product per centre (|x|^2 - 2 x.c + |c|^2), never an (N, D) temporary.
    """
    n = x.shape[0]
    sq = x_sq[:, 0]  # (N,)
    picks = [int(torch.randint(n, (1,), generator=gen))]
    closest = (sq - 2.0 * (x @ x[picks[0]]) + sq[picks[0]]).clamp_min_(0.0)  # (N,)
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # every row is already a centre: fill with copies (they stay unused)
            pick = int(torch.randint(n, (1,), generator=gen))
        else:
            pick = int(torch.multinomial(closest / total, 1, generator=gen))
        picks.append(pick)
        dist = (sq - 2.0 * (x @ x[pick]) + sq[pick]).clamp_min_(0.0)
        closest = torch.minimum(closest, dist)
    return x[picks].clone()


def lloyd(x: torch.Tensor, centres: torch.Tensor, iters: int,
          x_sq: torch.Tensor) -> torch.Tensor:
    """Lloyd iterations from ``centres`` (K, D); stops early once no row changes centre."""
    k = centres.shape[0]
    assign = None
    for _ in range(iters):
        new = sq_distances(x, centres, x_sq).argmin(1)  # (N,)
        if assign is not None and torch.equal(new, assign):
            break
        assign = new
        sums = torch.zeros_like(centres).index_add_(0, assign, x)  # (K, D)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)  # (K,)
        filled = counts > 0
        # an empty cluster keeps its centre (it may win rows back next iteration)
        centres = torch.where(filled[:, None], sums / counts.clamp_min(1)[:, None], centres)
    return centres


def kmeans(x: torch.Tensor, k: int, gen: torch.Generator,
           iters: int = 25) -> tuple[torch.Tensor, torch.Tensor]:
    """x (N, D) -> (centres (k, D), codes (N,) int64), seeded by ``gen``."""
    if k > x.shape[0]:
        raise ValueError(f"k-means with {k} centres needs at least {k} rows, got {x.shape[0]}")
    x_sq = (x * x).sum(1, keepdim=True)  # (N, 1)
    centres = lloyd(x, kmeans_pp(x, k, gen, x_sq), iters, x_sq)
    return centres, sq_distances(x, centres, x_sq).argmin(1)


def residual_kmeans(x: torch.Tensor, levels: int, codebook: int, seed: int = 0,
                    iters: int = 25) -> ResidualKMeans:
    """Quantise rows ``x`` (N, D) into ``levels`` codes of ``codebook`` values each."""
    x = x.detach().to(torch.float32)
    gen = torch.Generator().manual_seed(seed)
    residual = x.clone()
    codes, books, mse = [], [], []
    for _ in range(levels):
        centres, assign = kmeans(residual, codebook, gen, iters)
        residual = residual - centres[assign]
        codes.append(assign)
        books.append(centres)
        mse.append(float(residual.pow(2).mean()))
    return ResidualKMeans(codes=torch.stack(codes, 1), codebooks=torch.stack(books),
                          level_mse=mse)
