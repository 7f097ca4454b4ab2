"""FactorVAE: ``lambda_tc`` weights a discriminator's estimate of TC(z) (see losses.py)."""

from disentune.models.base import Hyper, Variant
from disentune.models.factor_vae.module import FactorVAE
from disentune.models.factor_vae.step import FactorVAEStep
from disentune.registry import MODELS


def build(image_shape: tuple[int, int, int], hyper: Hyper) -> FactorVAE:
    return FactorVAE(image_shape, hyper.latent_dim)


VARIANT = MODELS.register("factor_vae")(
    Variant(name="factor_vae", build=build, make_step=FactorVAEStep,
            weight_bounds={"lambda_mi": (0.0, 1000.0), "lambda_tc": (0.0, 1000.0)})
)
