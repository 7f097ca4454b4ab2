import math

import numpy as np
import pytest
import torch

from disentune.models.base import Hyper
from disentune.models.beta_tcvae.losses import beta_tcvae_loss
from disentune.models.mws import kl_decomposition
from disentune.registry import MODELS
from disentune.checkpoints import load_model, save_checkpoint


def _posterior_batch(mu, std=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    logvar = torch.full_like(mu, 2 * math.log(std))
    z = mu + std * torch.randn(mu.shape, generator=g)
    return z, mu, logvar


def test_tc_near_zero_for_factorised_and_positive_for_correlated():
    # aggregate posterior N(0, I): centres N(0, 0.25 I) blurred by posteriors of variance 0.75
    g = torch.Generator().manual_seed(0)
    independent = 0.5 * torch.randn(1024, 4, generator=g)
    tc_indep = kl_decomposition(*_posterior_batch(independent, std=0.75**0.5), dataset_size=1024)["tc"]
    # strongly correlated: all four dimensions copy one variable, posteriors narrow
    shared = (0.95 * torch.randn(1024, 1, generator=g)).expand(1024, 4).clone()
    tc_corr = kl_decomposition(*_posterior_batch(shared, std=0.3), dataset_size=1024)["tc"]
    # closed form for that Gaussian, C = 0.09 I + 0.9025 11^T: 0.5 (sum log C_dd - log det C)
    cov = 0.09 * np.eye(4) + 0.9025 * np.ones((4, 4))
    exact = 0.5 * (np.log(np.diag(cov)).sum() - np.linalg.slogdet(cov)[1])
    assert abs(tc_indep.item()) < 0.1
    assert tc_corr.item() > 0.5 * exact > 1.0


def test_terms_sum_to_the_aggregate_kl_estimate_and_weights_act_as_documented():
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(64, 1, 32, 32, generator=g) > 0.5).float()
    logits = torch.randn(64, 1, 32, 32, generator=g)
    z, mu, logvar = _posterior_batch(torch.randn(64, 6, generator=g), std=0.5)
    plain = beta_tcvae_loss(x, logits, mu, logvar, z, _hyper(lambda_mi=0.0, lambda_tc=0.0))
    # both weights 0: the plain ELBO with MWS estimates of the KL
    assert torch.isclose(plain["total"], plain["recon"] + plain["mi"] + plain["tc"] + plain["dwkl"])
    weighted = beta_tcvae_loss(x, logits, mu, logvar, z, _hyper(lambda_mi=0.3, lambda_tc=4.0))
    expected = plain["total"] - 0.3 * plain["mi"] + 4.0 * plain["tc"]
    assert torch.isclose(weighted["total"], expected, rtol=1e-5)


def _hyper(**kw):
    return Hyper(**{"latent_dim": 6, "lambda_mi": 0.5, "lambda_tc": 2.0, "lr": 1e-3, "dataset_size": 1000, **kw})


@pytest.fixture()
def batch(dsprites32):
    idx = np.random.default_rng(0).integers(0, dsprites32.num_images, 64)
    return torch.from_numpy(dsprites32.images_at(idx))


def test_registry_holds_the_whole_zoo():
    assert set(MODELS.names()) == {"beta_vae", "beta_tcvae", "factor_vae", "infogan", "infogan_tc", "info_stylegan",
                                   "annealed_vae", "dip_vae_i", "dip_vae_ii"}


@pytest.mark.parametrize("variant", MODELS.names())
def test_every_variant_trains_encodes_samples_and_round_trips(variant, batch, tmp_path):
    torch.manual_seed(0)
    v = MODELS.get(variant)
    hyper = _hyper(lambda_tc=0.5)
    model = v.build((1, 32, 32), hyper)
    step = v.make_step(model, hyper)
    before = [p.detach().clone() for p in model.parameters()]
    gen = torch.Generator().manual_seed(0)
    first = step(batch, gen)
    assert all(math.isfinite(value) for value in first.values())
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()) if a.numel() > 1)
    for _ in range(25):
        last = step(batch, gen)
    assert last[v.progress_term] < first[v.progress_term]
    d = model.representation_dim
    assert d == (6 if "vae" in variant else 6 + 3)
    assert model.encode(batch).shape == (64, d)
    samples = model.sample(8, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (8, 1, 32, 32) and 0 <= samples.min() and samples.max() <= 1
    assert model.decode(torch.zeros(2, d)).shape == (2, 1, 32, 32)
    save_checkpoint(tmp_path, {"model": model.state_dict(), "meta": {
        "variant": variant, "image_shape": [1, 32, 32], "hyper": hyper.__dict__}})
    restored, meta = load_model(tmp_path)
    assert meta["variant"] == variant
    torch.testing.assert_close(restored.encode(batch), model.encode(batch), rtol=0, atol=0)


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("variant", MODELS.names())
def test_architecture_scales_with_image_size(variant, resolution):
    model = MODELS.get(variant).build((1, resolution, resolution), _hyper())
    x = torch.zeros(2, 1, resolution, resolution)
    assert model.encode(x).shape == (2, model.representation_dim)
    assert model.sample(2).shape == x.shape
