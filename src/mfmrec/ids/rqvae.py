"""RQ-VAE: an MLP autoencoder whose latent is quantised by ``L`` residual codebooks.

``z = enc(x)``; level ``l`` picks the code nearest the residual ``r_l`` (``r_0 = z``,
``r_{l+1} = r_l - e_l``) and the decoder reconstructs ``x`` from ``sum_l e_l``. Loss, as
squared distances per item averaged over items (not per element: the rows are unit-norm,
so a per-element mean would shrink the reconstruction term by the input dimension):
``|x - dec(sum e)|^2 + sum_l (|sg(r_l) - e_l|^2 + beta |r_l - sg(e_l)|^2)``.

Gradients cross the quantiser with the rotation trick (Fifty et al. 2024, "Restructuring
Vector Quantization with the Rotation Trick") instead of the plain straight-through copy:
the output is ``sg(lambda R) r`` where ``R`` rotates ``r/|r|`` onto ``e/|e|`` and
``lambda = |e| / |r|``; its value is ``e``, and the gradient reaching ``r`` is the
decoder's gradient rotated and rescaled the same way, so it carries the angle between a
latent and its code. ``R = I - 2 w w^T + 2 q u^T`` (``u = r/|r|``, ``q = e/|e|``,
``w = (u + q)/|u + q|``) is applied as two dot products, never as a (d, d) matrix.

Codebooks start from residual k-means on all initial latents; a code no item used during
an epoch is re-initialised to a random residual of that epoch's last batch. Everything
random is seeded inside ``torch.random.fork_rng``, so a build is deterministic on the CPU
and leaves the global RNG as it found it.

Cost, measured: 12,000 x 768 rows with the defaults (200 epochs of 512-row batches,
hidden 256, latent 32, 3 x 256 codes) took 135 s on one thread of the 2-core dev machine
and 361 s on two threads while other jobs shared the cores (the batches are small, so
OpenMP threads mostly wait for each other); the codes were identical both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mfmrec.ids.config import RqvaeConfig
from mfmrec.ids.kmeans import residual_kmeans, sq_distances

EPS = 1e-8
Progress = Callable[[int, int, float], None]  # (epoch done, epochs, mean loss)


def sq_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a, b (B, d) -> mean over rows of the squared distance |a - b|^2."""
    return (a - b).pow(2).sum(-1).mean()


def rotation_trick(r: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """r, e (B, d) -> (B, d) equal to ``e`` in value, differentiable in ``r`` through
    the detached rotation + rescale that maps ``r`` onto ``e``."""
    r_norm = r.norm(dim=-1, keepdim=True).clamp_min(EPS)  # (B, 1)
    e_norm = e.norm(dim=-1, keepdim=True)  # (B, 1)
    u = (r / r_norm).detach()
    q = (e / e_norm.clamp_min(EPS)).detach()
    w = F.normalize(u + q, dim=-1, eps=EPS).detach()
    scale = (e_norm / r_norm).detach()
    rotated = r - 2 * w * (w * r).sum(-1, keepdim=True) + 2 * q * (u * r).sum(-1, keepdim=True)
    return scale * rotated


class RQVAE(nn.Module):
    def __init__(self, in_dim: int, cfg: RqvaeConfig, levels: int, codebook: int):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(in_dim, cfg.hidden), nn.ReLU(),
                                     nn.Linear(cfg.hidden, cfg.latent))
        self.decoder = nn.Sequential(nn.Linear(cfg.latent, cfg.hidden), nn.ReLU(),
                                     nn.Linear(cfg.hidden, in_dim))
        self.codebooks = nn.Parameter(torch.zeros(levels, codebook, cfg.latent))  # (L, K, d)
        self.beta = cfg.beta

    @property
    def levels(self) -> int:
        return self.codebooks.shape[0]

    def quantise(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                  list[torch.Tensor]]:
        """z (B, d) -> codes (B, L), quantised sum (B, d), VQ loss, residuals [(B, d)]."""
        residual, total = z, torch.zeros_like(z)
        codes, residuals, vq = [], [], z.new_zeros(())
        for level in range(self.levels):
            book = self.codebooks[level]  # (K, d)
            idx = sq_distances(residual.detach(), book.detach()).argmin(1)  # (B,)
            e = book[idx]  # (B, d)
            vq = vq + sq_error(e, residual.detach()) + self.beta * sq_error(residual, e.detach())
            total = total + rotation_trick(residual, e)
            residuals.append(residual.detach())
            codes.append(idx)
            residual = residual - e.detach()
        return torch.stack(codes, 1), total, vq, residuals

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """x (B, D) -> (loss, codes (B, L), residuals per level)."""
        codes, quantised, vq, residuals = self.quantise(self.encoder(x))
        loss = sq_error(self.decoder(quantised), x) + vq
        return loss, codes, residuals

    @torch.no_grad()
    def codes_and_reconstruction(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, D) -> codes (N, L), decoder(sum of the chosen codes) (N, D)."""
        codes, _, _, _ = self.quantise(self.encoder(x))
        summed = sum(self.codebooks[level][codes[:, level]] for level in range(self.levels))
        return codes, self.decoder(summed)


@dataclass(frozen=True)
class RqvaeResult:
    codes: torch.Tensor  # (N, L) int64
    reconstruction: torch.Tensor  # (N, D) decoder(sum of codes)
    initial_mse: float  # reconstruction MSE after the k-means codebook init, before training
    final_mse: float
    losses: list[float]  # mean training loss per epoch
    model: RQVAE


@torch.no_grad()
def init_codebooks(model: RQVAE, x: torch.Tensor, seed: int, iters: int) -> None:
    """Residual k-means on the latents of all items sets every codebook."""
    z = model.encoder(x)  # (N, d)
    km = residual_kmeans(z, model.levels, model.codebooks.shape[1], seed=seed, iters=iters)
    model.codebooks.copy_(km.codebooks)


@torch.no_grad()
def reset_dead(model: RQVAE, used: torch.Tensor, residuals: list[torch.Tensor],
               gen: torch.Generator) -> int:
    """Codes unused this epoch (``used`` (L, K) bool) become random last-batch residuals."""
    reset = 0
    for level in range(model.levels):
        dead = (~used[level]).nonzero().flatten()
        if len(dead):
            rows = torch.randint(residuals[level].shape[0], (len(dead),), generator=gen)
            model.codebooks[level, dead] = residuals[level][rows]
            reset += len(dead)
    return reset


def train_epoch(model: RQVAE, opt: torch.optim.Optimizer, x: torch.Tensor, batch: int,
                gen: torch.Generator, reset: bool) -> float:
    """One shuffled pass; returns the mean loss."""
    used = torch.zeros(model.codebooks.shape[:2], dtype=torch.bool)  # (L, K)
    order = torch.randperm(x.shape[0], generator=gen)
    total, steps, residuals = 0.0, 0, []
    for start in range(0, x.shape[0], batch):
        loss, codes, residuals = model(x[order[start:start + batch]])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for level in range(model.levels):
            used[level, codes[:, level]] = True
        total, steps = total + float(loss.detach()), steps + 1
    if reset:
        reset_dead(model, used, residuals, gen)
    return total / max(steps, 1)


def train_rqvae(x: torch.Tensor, levels: int, codebook: int, cfg: RqvaeConfig,
                seed: int = 0, kmeans_iters: int = 25,
                progress: Progress | None = None) -> RqvaeResult:
    """Train an RQ-VAE on rows ``x`` (N, D) and return every item's codes."""
    x = x.detach().to("cpu", torch.float32)
    batch = cfg.batch_size or x.shape[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RQVAE(x.shape[1], cfg, levels, codebook)
        gen = torch.Generator().manual_seed(seed)
        init_codebooks(model, x, seed, kmeans_iters)
        _, recon = model.codes_and_reconstruction(x)
        initial = float(F.mse_loss(recon, x))
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        losses = []
        for epoch in range(cfg.epochs):
            losses.append(train_epoch(model, opt, x, batch, gen, cfg.reset_dead))
            if progress is not None:
                progress(epoch + 1, cfg.epochs, losses[-1])
        model.eval()
        codes, recon = model.codes_and_reconstruction(x)
    return RqvaeResult(codes=codes, reconstruction=recon, initial_mse=initial,
                       final_mse=float(F.mse_loss(recon, x)), losses=losses, model=model)
