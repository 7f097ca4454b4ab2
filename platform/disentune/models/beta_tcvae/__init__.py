"""beta-TCVAE: ``lambda_tc`` weights TC(z), ``lambda_mi`` the index-code MI (see losses.py)."""

from disentune.models.base import Hyper, Variant
from disentune.models.beta_tcvae.module import ConvVAE
from disentune.models.beta_tcvae.step import BetaTCVAEStep
from disentune.registry import MODELS


def build(image_shape: tuple[int, int, int], hyper: Hyper) -> ConvVAE:
    return ConvVAE(image_shape, hyper.latent_dim)


VARIANT = MODELS.register("beta_tcvae")(
    Variant(
        name="beta_tcvae",
        build=build,
        make_step=BetaTCVAEStep,
        weight_bounds={"lambda_mi": (0.0, 1.0), "lambda_tc": (0.0, 1000.0)},
    )
)
