"""beta-TCVAE: ``lambda_tc`` weights TC(z), ``lambda_mi`` the index-code MI (see losses.py)."""

from functools import partial

from disentune.models.base import Hyper, Variant
from disentune.models.beta_tcvae.losses import beta_tcvae_loss
from disentune.models.vae import ConvVAE, VAEStep
from disentune.registry import MODELS


def build(image_shape: tuple[int, int, int], hyper: Hyper) -> ConvVAE:
    return ConvVAE(image_shape, hyper.latent_dim)


VARIANT = MODELS.register("beta_tcvae")(
    Variant(
        name="beta_tcvae",
        build=build,
        make_step=partial(VAEStep, loss=beta_tcvae_loss),
        weight_bounds={"lambda_mi": (0.0, 1.0), "lambda_tc": (0.0, 1000.0)},
    )
)
