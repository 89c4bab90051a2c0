"""Is a set of semantic IDs any good? Codebook use, collisions, reconstruction.

* usage (per level): the fraction of the ``K`` codes that at least one item uses;
* perplexity (per level): ``exp(entropy)`` of the code-use distribution, the number of
  equally used codes it amounts to (``K`` at best, 1 when every item shares one code);
* collision rate: the fraction of items whose full ``L``-tuple another item also has
  (before the disambiguation code tells them apart);
* longest disambiguation: the largest group of items sharing an ``L``-tuple, minus 1
  (the largest disambiguation code);
* reconstruction MSE: mean squared error between the input rows and what the codes
  reconstruct (rkmeans: the sum of the chosen centres; rqvae: the decoder of that sum);
* build time, in seconds (kept out of ``ids/NAME.json`` so that file is reproducible).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch


def disambiguate(codes: torch.Tensor) -> torch.Tensor:
    """codes (N, L) -> (N,) int64: 0, 1, 2, ... in item order within each group of items
    that share an ``L``-tuple, 0 for an item whose tuple is unique (as TIGER does)."""
    seen: dict[tuple[int, ...], int] = {}
    out = []
    for row in map(tuple, codes.tolist()):
        out.append(seen.get(row, 0))
        seen[row] = out[-1] + 1
    return torch.tensor(out, dtype=torch.int64)


def group_sizes(codes: torch.Tensor) -> torch.Tensor:
    """codes (N, L) -> (N,) how many items share each item's ``L``-tuple (1 = unique)."""
    _, inverse, counts = torch.unique(codes, dim=0, return_inverse=True, return_counts=True)
    return counts[inverse]


def perplexity(level_codes: torch.Tensor, codebook: int) -> float:
    """exp(entropy) of how often each of ``codebook`` codes is used by (N,) codes."""
    p = torch.bincount(level_codes, minlength=codebook).double() / level_codes.numel()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


@dataclass(frozen=True)
class HealthReport:
    """The health of one set of semantic IDs (see the module docstring)."""

    levels: int
    codebook: int
    usage: list[float]  # per level, fraction of codes used
    perplexity: list[float]  # per level
    collision_rate: float
    longest_disambiguation: int
    reconstruction_mse: float
    build_seconds: float | None = None

    def stable_dict(self) -> dict:
        """Every field but the build time, rounded: the same inputs give the same dict."""
        out = asdict(self)
        del out["build_seconds"]
        out["usage"] = [round(u, 6) for u in self.usage]
        out["perplexity"] = [round(p, 4) for p in self.perplexity]
        out["collision_rate"] = round(self.collision_rate, 6)
        out["reconstruction_mse"] = float(f"{self.reconstruction_mse:.6g}")
        return out

    @classmethod
    def from_dict(cls, data: dict, build_seconds: float | None = None) -> HealthReport:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        fields["build_seconds"] = build_seconds
        return cls(**fields)


def health_report(codes: torch.Tensor, codebook: int, inputs: torch.Tensor,
                  reconstruction: torch.Tensor,
                  build_seconds: float | None = None) -> HealthReport:
    """codes (N, L) int64; inputs and reconstruction (N, D)."""
    levels = codes.shape[1]
    usage = [len(torch.unique(codes[:, level])) / codebook for level in range(levels)]
    perp = [perplexity(codes[:, level], codebook) for level in range(levels)]
    sizes = group_sizes(codes)  # (N,)
    mse = float((inputs.float() - reconstruction.float()).pow(2).mean())
    return HealthReport(levels=levels, codebook=codebook, usage=usage, perplexity=perp,
                        collision_rate=float((sizes > 1).double().mean()),
                        longest_disambiguation=int(sizes.max()) - 1,
                        reconstruction_mse=mse, build_seconds=build_seconds)


def health_line(report: HealthReport | dict) -> str:
    """One line: ``3 x 256 codes: usage 100%/98%/91%, perplexity ...``.

    ``report`` may also be the ``health`` mapping stored in ``ids/NAME.json``.
    """
    if isinstance(report, dict):
        report = HealthReport.from_dict(report, report.get("build_seconds"))
    usage = "/".join(f"{u:.0%}" for u in report.usage)
    perp = "/".join(f"{p:.1f}" for p in report.perplexity)
    timing = (f", built in {report.build_seconds:.1f} s"
              if report.build_seconds is not None and math.isfinite(report.build_seconds)
              else "")
    return (f"{report.levels} x {report.codebook} codes: usage {usage}, perplexity {perp}, "
            f"collisions {report.collision_rate:.2%} (longest disambiguation "
            f"{report.longest_disambiguation}), reconstruction MSE "
            f"{report.reconstruction_mse:.4g}{timing}")
