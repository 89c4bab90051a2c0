"""Residual k-means, the disambiguation code and the health report."""

from __future__ import annotations

import math

import torch
from ids_fixtures import clustered

from mfmrec.ids import disambiguate, health_line, health_report, residual_kmeans
from mfmrec.ids.kmeans import kmeans_pp, reconstruct


def test_residual_kmeans_is_deterministic_and_each_level_lowers_the_error():
    x = clustered(300, 12, 10, seed=3, noise=0.3)
    a = residual_kmeans(x, levels=3, codebook=8, seed=5)
    b = residual_kmeans(x, levels=3, codebook=8, seed=5)
    assert torch.equal(a.codes, b.codes) and torch.equal(a.codebooks, b.codebooks)
    assert a.codes.shape == (300, 3) and a.codebooks.shape == (3, 8, 12)
    assert not torch.equal(a.codes, residual_kmeans(x, 3, 8, seed=6).codes)

    errors = [float(x.pow(2).mean())] + a.level_mse
    assert all(later < earlier for earlier, later in zip(errors, errors[1:], strict=False))
    for level in range(1, 4):  # level_mse is the error of the sum of the first centres
        mse = float((x - a.reconstruct(level)).pow(2).mean())
        assert math.isclose(mse, a.level_mse[level - 1], rel_tol=1e-4)


def test_kmeans_pp_picks_distinct_rows_and_handles_duplicates():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [5.0, 5.0]])
    gen = torch.Generator().manual_seed(0)
    centres = kmeans_pp(x, 2, gen, (x * x).sum(1, keepdim=True))
    assert {tuple(c) for c in centres.tolist()} == {(0.0, 0.0), (5.0, 5.0)}
    centres = kmeans_pp(x, 3, gen, (x * x).sum(1, keepdim=True))  # only 2 distinct rows
    assert centres.shape == (3, 2)


def test_forced_collisions_are_counted_and_disambiguated():
    x = torch.randn(20, 6, generator=torch.Generator().manual_seed(0))  # distinct rows
    x[5] = x[2]  # duplicate rows get identical codes at every level
    x[9] = x[2]
    x[13] = x[11]
    km = residual_kmeans(x, levels=2, codebook=20, seed=0)
    codes = km.codes
    assert torch.equal(codes[2], codes[5]) and torch.equal(codes[2], codes[9])
    assert torch.equal(codes[11], codes[13])

    dedup = disambiguate(codes)
    assert dedup[[2, 5, 9]].tolist() == [0, 1, 2] and dedup[[11, 13]].tolist() == [0, 1]
    full = torch.cat([codes, dedup[:, None]], 1)
    assert len({tuple(r) for r in full.tolist()}) == 20  # every L+1 tuple distinct

    assert dedup.sum() == 1 + 2 + 1  # 17 distinct rows, 20 codes: only the forced collisions
    report = health_report(codes, 20, x, km.reconstruct(), build_seconds=0.25)
    assert report.collision_rate == 5 / 20 and report.longest_disambiguation == 2
    assert report.reconstruction_mse < 1e-10
    line = health_line(report)
    assert "2 x 20 codes" in line and "collisions 25.00% (longest disambiguation 2)" in line


def test_health_numbers_on_hand_made_codes():
    codes = torch.tensor([[0, 1], [0, 1], [1, 2], [3, 2]])
    x = torch.zeros(4, 2)
    report = health_report(codes, 4, x, torch.ones(4, 2))
    assert report.usage == [0.75, 0.5]
    assert math.isclose(report.perplexity[0], math.exp(-(0.5 * math.log(0.5)
                                                        + 2 * 0.25 * math.log(0.25))))
    assert report.collision_rate == 0.5 and report.longest_disambiguation == 1
    assert report.reconstruction_mse == 1.0
    assert reconstruct(codes, torch.zeros(2, 4, 3)).shape == (4, 3)


def test_health_line_reads_the_stored_mapping():
    report = health_report(torch.tensor([[0], [1]]), 2, torch.zeros(2, 1), torch.zeros(2, 1))
    assert health_line(report.stable_dict()) == health_line(report)
