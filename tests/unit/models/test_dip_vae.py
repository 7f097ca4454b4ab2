import math

import numpy as np
import pytest
import torch

from disentune.models.base import Hyper
from disentune.models.dip_vae import DIP_VAE_I, DIP_VAE_II
from disentune.models.dip_vae.losses import covariance_of_means, dip_penalties, posterior_covariance
from disentune.models.vae import bernoulli_nll, gaussian_kl

VARIANTS = {"i": DIP_VAE_I, "ii": DIP_VAE_II}


def _hyper(**kw):
    return Hyper(**{"latent_dim": 3, "lambda_mi": 0.0, "lambda_tc": 0.0, "lr": 1e-3,
                    "dataset_size": 100, **kw})


def _posterior(seed=0, n=7, d=3):
    g = torch.Generator().manual_seed(seed)
    mixing = torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, -0.3], [0.2, 0.0, 2.0]])
    mu = torch.randn(n, d, generator=g) @ mixing + 0.7
    return mu, 0.4 * torch.randn(n, d, generator=g)


def _numpy_penalties(cov):
    off = sum(cov[i, j] ** 2 for i in range(len(cov)) for j in range(len(cov)) if i != j)
    return off, sum((cov[i, i] - 1) ** 2 for i in range(len(cov)))


def test_covariances_equal_numpy():
    mu, logvar = _posterior()
    cov_mu = np.cov(mu.double().numpy(), rowvar=False, bias=True)
    np.testing.assert_allclose(covariance_of_means(mu).numpy(), cov_mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(posterior_covariance(mu, logvar, "i").numpy(), cov_mu, rtol=1e-5, atol=1e-6)
    # DIP-II: Cov[z] = Cov[mu] + E[diag(exp(logvar))]
    cov_z = cov_mu + np.diag(np.exp(logvar.double().numpy()).mean(axis=0))
    np.testing.assert_allclose(posterior_covariance(mu, logvar, "ii").numpy(), cov_z, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="'iii'"):
        posterior_covariance(mu, logvar, "iii")


def test_penalties_vanish_at_the_identity_and_equal_the_hand_sums():
    hadamard = torch.tensor([[1.0, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]])
    off, diag = dip_penalties(covariance_of_means(hadamard[:, 1:]))  # zero mean, Cov = I
    assert off.item() == 0.0 and diag.item() == 0.0
    cov = torch.tensor([[2.0, 0.5, -1.0], [0.5, 0.25, 0.0], [-1.0, 0.0, 1.0]])
    off, diag = dip_penalties(cov)
    assert (off.item(), diag.item()) == pytest.approx((2 * (0.25 + 1.0), 1.0 + 0.5625))


@pytest.mark.parametrize("dip_type, factor", [("i", 10.0), ("ii", 1.0)])
def test_registered_loss_is_the_elbo_plus_the_weighted_penalties(dip_type, factor):
    variant = VARIANTS[dip_type]
    g = torch.Generator().manual_seed(3)
    x = (torch.rand(7, 1, 4, 4, generator=g) > 0.5).float()
    logits = torch.randn(7, 1, 4, 4, generator=g)
    mu, logvar = _posterior(seed=4)
    cov = np.cov(mu.double().numpy(), rowvar=False, bias=True)
    if dip_type == "ii":
        cov = cov + np.diag(np.exp(logvar.double().numpy()).mean(axis=0))
    off, diag = _numpy_penalties(cov)
    elbo = (bernoulli_nll(x, logits) + gaussian_kl(mu, logvar)).item()
    step = variant.make_step(variant.build((1, 32, 32), _hyper()), _hyper())
    terms = step.loss(x, logits, mu, logvar, mu, _hyper(lambda_tc=5.0))
    assert terms["cov_off_diagonal"].item() == pytest.approx(off, rel=1e-5)
    assert terms["cov_diagonal"].item() == pytest.approx(diag, rel=1e-5)
    # L = recon + KL + lambda_od * off + lambda_d * diag,  lambda_d = factor * lambda_od
    assert terms["total"].item() == pytest.approx(elbo + 5.0 * off + factor * 5.0 * diag, rel=1e-5)
    plain = step.loss(x, logits, mu, logvar, mu, _hyper())
    assert plain["total"].item() == pytest.approx(elbo, rel=1e-6)


@pytest.fixture()
def batch(dsprites32):
    idx = np.random.default_rng(0).integers(0, dsprites32.num_images, 64)
    return torch.from_numpy(dsprites32.images_at(idx))


@pytest.mark.parametrize("dip_type", ["i", "ii"])
def test_training_reduces_the_loss_and_the_penalty_on_a_fixed_batch(dip_type, batch):
    variant = VARIANTS[dip_type]
    torch.manual_seed(0)
    hyper = _hyper(latent_dim=6, lambda_tc=10.0)
    model = variant.build((1, 32, 32), hyper)
    step = variant.make_step(model, hyper)
    gen = torch.Generator().manual_seed(0)
    terms = [step(batch, gen) for _ in range(30)]
    assert all(math.isfinite(v) for t in terms for v in t.values())
    assert terms[-1]["total"] < 0.8 * terms[0]["total"]
    penalty = [t["cov_off_diagonal"] + t["cov_diagonal"] for t in terms]
    assert penalty[-1] < penalty[0]
