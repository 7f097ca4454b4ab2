import math

import torch

from disentune.models.base import Hyper
from disentune.models.factor_vae.losses import discriminator_loss, factor_vae_loss, permute_dims, tc_estimate
from disentune.models.factor_vae.module import TCDiscriminator
from disentune.models.info_stylegan.module import StyleGenerator
from disentune.models.infogan.losses import generator_loss, info_lower_bound
from disentune.models.infogan.module import InfoGAN
from disentune.models.vae import bernoulli_nll, gaussian_kl


def test_info_lower_bound_is_at_most_the_code_entropy_and_reached_by_the_true_codes():
    g = torch.Generator().manual_seed(0)
    cat = torch.randint(0, 3, (256,), generator=g)
    cont = torch.rand(256, 4, generator=g) * 2 - 1
    logvar = torch.zeros(256, 4)
    for _ in range(20):  # any Q: the categorical bound stays below H(c) = log 3
        q_cat = torch.randn(256, 3, generator=g) * 3
        assert info_lower_bound(q_cat, torch.zeros(256, 4), logvar, cat, cont)["mi_cat"] <= math.log(3)
    exact = torch.nn.functional.one_hot(cat, 3).float() * 50.0  # Q given the true code
    bound = info_lower_bound(exact, cont, logvar - 8, cat, cont)
    assert abs(bound["mi_cat"].item() - math.log(3)) < 1e-6
    # continuous codes: the bound grows as Q's mean gets to the true codes
    far = info_lower_bound(exact, torch.zeros_like(cont), logvar, cat, cont)["mi_cont"]
    near = info_lower_bound(exact, cont + 0.01, logvar - 4, cat, cont)["mi_cont"]
    assert near > far



def test_q_has_unit_variance_and_loads_checkpoints_that_had_a_learned_one():
    torch.manual_seed(0)
    model = InfoGAN((1, 32, 32), latent_dim=4).eval()
    x = torch.rand(8, 1, 32, 32)
    _, _, q_mu, q_logvar = model.discriminator(x)
    assert torch.equal(q_logvar, torch.zeros_like(q_mu))
    # a checkpoint written before the unit variance: the head also had 4 log-variance rows
    state = model.state_dict()
    for name, extra in (("weight", torch.randn(4, 256)), ("bias", torch.randn(4))):
        state[f"discriminator.q_head.{name}"] = torch.cat([state[f"discriminator.q_head.{name}"], extra])
    restored = InfoGAN((1, 32, 32), latent_dim=4).eval()
    restored.load_state_dict(state)
    assert torch.equal(restored.encode(x), model.encode(x))


def _train_tc_discriminator(z, steps=300, seed=0):
    torch.manual_seed(seed)
    disc = TCDiscriminator(z.shape[1], hidden=64, layers=2)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        loss = discriminator_loss(disc(z), disc(permute_dims(z, g)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return tc_estimate(disc(z)).item()


def test_factor_vae_discriminator_tc_is_near_zero_for_factorised_codes_and_positive_for_correlated():
    g = torch.Generator().manual_seed(1)
    factorised = torch.randn(1024, 3, generator=g)
    shared = torch.randn(1024, 1, generator=g)
    correlated = torch.cat([shared, shared + 0.1 * torch.randn(1024, 2, generator=g)], dim=1)
    assert abs(_train_tc_discriminator(factorised)) < 0.3
    assert _train_tc_discriminator(correlated) > 1.0


def test_permute_dims_keeps_each_marginal():
    z = torch.arange(20.0).reshape(10, 2)
    p = permute_dims(z, torch.Generator().manual_seed(0))
    for j in range(2):
        assert sorted(p[:, j].tolist()) == sorted(z[:, j].tolist())


def _hyper(**kw):
    return Hyper(**{"latent_dim": 3, "lambda_mi": 0.0, "lambda_tc": 0.0, "lr": 1e-3, "dataset_size": 100, **kw})


def test_zero_weights_reduce_to_the_base_objectives():
    g = torch.Generator().manual_seed(2)
    x = (torch.rand(8, 1, 32, 32, generator=g) > 0.5).float()
    logits, mu, logvar = torch.randn(8, 1, 32, 32, generator=g), torch.randn(8, 3, generator=g), torch.zeros(8, 3)
    elbo = bernoulli_nll(x, logits) + gaussian_kl(mu, logvar)
    from disentune.models.beta_vae import beta_vae_loss

    assert torch.isclose(beta_vae_loss(x, logits, mu, logvar, mu, _hyper())["total"], elbo)
    joint = torch.randn(8, generator=g)
    assert torch.isclose(factor_vae_loss(x, logits, mu, logvar, joint, _hyper())["total"], elbo)
    fake = torch.randn(8, generator=g)
    info = {"mi": torch.tensor(0.7)}
    plain = generator_loss(fake, info, torch.tensor(0.3), lambda_mi=0.0, lambda_tc=0.0)
    assert torch.isclose(plain["gen_total"], plain["gen"])
    weighted = generator_loss(fake, info, torch.tensor(0.3), lambda_mi=2.0, lambda_tc=5.0)
    assert torch.isclose(weighted["gen_total"], plain["gen"] - 1.4 + 1.5)


def test_scale_tied_codes_only_reach_their_own_scales():
    torch.manual_seed(0)
    gen = StyleGenerator((1, 32, 32), 4, scale_tied_codes=True)
    masks = gen.code_masks
    assert masks.shape == (4, 7)  # scales 4, 8, 16, 32; 4 continuous + 3 categorical
    assert (masks[:, :4].sum(dim=0) == 1).all()  # each continuous code at exactly one scale
    assert masks[0, 4:].all() and not masks[1:, 4:].any()  # the categorical code is coarse
    free = StyleGenerator((1, 32, 32), 4, scale_tied_codes=False)
    assert free.code_masks.all()
    noise, codes = torch.zeros(2, 16), torch.zeros(2, 7)
    assert gen(noise, codes).shape == (2, 1, 32, 32)


def test_modulated_convolution_equals_the_per_sample_weight_form():
    from disentune.models.info_stylegan.module import ModulatedConv2d

    torch.manual_seed(0)
    conv = ModulatedConv2d(5, 4, 3, w_dim=7)
    x, w = torch.randn(3, 5, 8, 8), torch.randn(3, 7)
    style = conv.affine(w)
    expected = []
    for i in range(3):  # StyleGAN2 eqs. 1-3 with an explicit weight per sample
        weight = conv.scale * conv.weight * style[i][None, :, None, None]
        weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        expected.append(torch.nn.functional.conv2d(x[i : i + 1], weight, padding=1))
    torch.testing.assert_close(conv(x, w), torch.cat(expected), rtol=1e-4, atol=1e-5)
