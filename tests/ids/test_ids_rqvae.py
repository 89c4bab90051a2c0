"""RQ-VAE: the rotation trick, training lowers the error, codebooks stay in use."""

from __future__ import annotations

import pytest
import torch
from ids_fixtures import clustered

from mfmrec.ids import RqvaeConfig, train_rqvae
from mfmrec.ids.rqvae import rotation_trick


def test_rotation_trick_outputs_the_code_and_rotates_the_gradient():
    gen = torch.Generator().manual_seed(0)
    r = torch.randn(5, 4, generator=gen, requires_grad=True)
    e = torch.randn(5, 4, generator=gen)
    out = rotation_trick(r, e)
    assert torch.allclose(out, e, atol=1e-5)
    g = torch.randn(5, 4, generator=gen)
    (out * g).sum().backward()
    # the gradient is g mapped by (lambda R)^T: same norm ratio |e|/|r|, not a plain copy
    ratio = r.grad.norm(dim=1) / g.norm(dim=1)
    assert torch.allclose(ratio, e.norm(dim=1) / r.detach().norm(dim=1), atol=1e-5)
    assert not torch.allclose(r.grad, g)


@pytest.fixture
def one_thread():
    """Tiny matmuls run faster on one thread than on two shared with other processes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_rqvae_lowers_the_error_uses_its_codebooks_and_is_deterministic(one_thread):
    x = clustered(600, 32, 16, seed=4, noise=0.1)
    cfg = RqvaeConfig(hidden=64, latent=8, epochs=60, batch_size=0, lr=1e-2)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    res = train_rqvae(x, levels=2, codebook=8, cfg=cfg, seed=1)
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is left alone
    assert res.codes.shape == (600, 2)
    assert res.final_mse < 0.6 * res.initial_mse  # 1.08 -> 0.41 when written
    assert res.losses[-1] < res.losses[0]
    for level in range(2):
        assert len(torch.unique(res.codes[:, level])) >= 4  # at least half of 8 codes

    short = RqvaeConfig(hidden=64, latent=8, epochs=4, batch_size=256, lr=1e-2)
    a, b = (train_rqvae(x, levels=2, codebook=8, cfg=short, seed=7) for _ in range(2))
    assert torch.equal(a.codes, b.codes) and a.losses == b.losses
    assert torch.equal(a.model.codebooks, b.model.codebooks)
