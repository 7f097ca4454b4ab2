import io
import math

import numpy as np
import pytest
import torch

from disentune.models.annealed_vae import VARIANT
from disentune.models.annealed_vae.losses import annealed_capacity, annealed_vae_loss
from disentune.models.annealed_vae.step import AnnealedVAEStep
from disentune.models.base import Hyper


def _hyper(**kw):
    return Hyper(**{"latent_dim": 4, "lambda_mi": 0.0, "lambda_tc": 0.0, "lr": 1e-3,
                    "dataset_size": 100, **kw})


def test_capacity_rises_linearly_from_zero_to_c_max_then_holds():
    assert annealed_capacity(0, 25.0, 100) == 0.0
    assert annealed_capacity(1, 25.0, 100) == 0.25
    assert annealed_capacity(50, 25.0, 100) == 12.5
    assert annealed_capacity(100, 25.0, 100) == 25.0
    assert annealed_capacity(101, 25.0, 100) == annealed_capacity(10**6, 25.0, 100) == 25.0
    with pytest.raises(ValueError, match="anneal_steps"):
        annealed_capacity(0, 25.0, 0)


def _batch(seed=0, n=5, d=4):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 1, 4, 4, generator=g) > 0.5).float()
    logits = torch.randn(n, 1, 4, 4, generator=g)
    mu, logvar = torch.randn(n, d, generator=g), 0.5 * torch.randn(n, d, generator=g)
    return x, logits, mu, logvar


def _numpy_recon_kl(x, logits, mu, logvar):
    x, l, m, v = (t.double().numpy() for t in (x, logits, mu, logvar))
    p = 1 / (1 + np.exp(-l))
    recon = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(len(x), -1).sum(axis=1).mean()
    kl = (0.5 * (m**2 + np.exp(v) - 1 - v)).sum(axis=1).mean()
    return recon, kl


@pytest.mark.parametrize("c", [0.0, 1.5, 40.0])  # C below, near and above the batch's KL
def test_loss_terms_equal_the_hand_computation(c):
    x, logits, mu, logvar = _batch()
    recon, kl = _numpy_recon_kl(x, logits, mu, logvar)
    terms = annealed_vae_loss(x, logits, mu, logvar, mu, _hyper(lambda_tc=7.0), capacity=c)
    assert terms["recon"].item() == pytest.approx(recon, rel=1e-5)
    assert terms["kl"].item() == pytest.approx(kl, rel=1e-5)
    assert terms["kl_gap"].item() == pytest.approx(abs(kl - c), rel=1e-5, abs=1e-5)
    assert terms["capacity"].item() == c
    # L = recon + KL + gamma * |KL - C|
    assert terms["total"].item() == pytest.approx(recon + kl + 7.0 * abs(kl - c), rel=1e-5)


def test_zero_weight_is_the_plain_elbo_at_any_capacity():
    x, logits, mu, logvar = _batch(seed=1)
    recon, kl = _numpy_recon_kl(x, logits, mu, logvar)
    for c in (0.0, 25.0):
        total = annealed_vae_loss(x, logits, mu, logvar, mu, _hyper(), capacity=c)["total"]
        assert total.item() == pytest.approx(recon + kl, rel=1e-5)
    model = VARIANT.build((1, 32, 32), _hyper())
    with pytest.raises(ValueError, match="anneal_steps must be at least 1, got 0"):
        VARIANT.make_step(model, _hyper(anneal_steps=0))


def _train(step, x, steps, gen):
    return [step(x, gen) for _ in range(steps)]


def test_resumed_step_continues_the_schedule_exactly():
    hyper = _hyper(lambda_tc=3.0, c_max=5.0, anneal_steps=6)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(8, 1, 32, 32, generator=g) > 0.5).float()

    torch.manual_seed(0)
    straight = VARIANT.build((1, 32, 32), hyper)
    straight_step = VARIANT.make_step(straight, hyper)
    straight_terms = _train(straight_step, x, 8, torch.Generator().manual_seed(1))
    assert [t["capacity"] for t in straight_terms] == pytest.approx([0, 5 / 6, 10 / 6, 2.5, 20 / 6, 25 / 6, 5, 5])

    torch.manual_seed(0)
    first = VARIANT.build((1, 32, 32), hyper)
    first_step = VARIANT.make_step(first, hyper)
    noise = torch.Generator().manual_seed(1)
    head = _train(first_step, x, 4, noise)
    buffer = io.BytesIO()  # through bytes, as a checkpoint goes: tensors and plain values only
    torch.save({"model": first.state_dict(), "step": first_step.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["step"]["steps"] == 4

    torch.manual_seed(123)  # different initial weights: everything must come from the state
    resumed = VARIANT.build((1, 32, 32), hyper)
    resumed.load_state_dict(state["model"])
    resumed_step = VARIANT.make_step(resumed, hyper)
    assert resumed_step.capacity == 0.0
    resumed_step.load_state_dict(state["step"])
    assert isinstance(resumed_step, AnnealedVAEStep) and resumed_step.capacity == pytest.approx(10 / 3)
    tail = _train(resumed_step, x, 4, noise)
    assert head + tail == straight_terms
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


@pytest.fixture()
def batch(dsprites32):
    idx = np.random.default_rng(0).integers(0, dsprites32.num_images, 64)
    return torch.from_numpy(dsprites32.images_at(idx))


def test_training_at_the_study_gamma_reduces_the_loss_on_a_fixed_batch(batch):
    torch.manual_seed(0)
    hyper = _hyper(latent_dim=6, lambda_tc=1000.0, c_max=25.0, anneal_steps=100_000)
    model = VARIANT.build((1, 32, 32), hyper)
    step = VARIANT.make_step(model, hyper)
    terms = _train(step, batch, 30, torch.Generator().manual_seed(0))
    assert all(math.isfinite(v) for t in terms for v in t.values())
    assert terms[-1]["total"] < 0.8 * terms[0]["total"]
    assert terms[-1]["recon"] < terms[0]["recon"]
    assert terms[-1]["capacity"] == pytest.approx(29 * 25 / 100_000)
