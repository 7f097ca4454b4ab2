"""DIP-VAE-I and DIP-VAE-II (Kumar et al. 2018): the ELBO plus a penalty that drives a covariance
of the aggregate posterior to the identity (see losses.py).

    L = ELBO + lambda_od * sum_{i != j} Cov_ij^2 + lambda_d * sum_i (Cov_ii - 1)^2

Swept weight: ``lambda_tc`` is the paper's ``lambda_od`` (the study sweeps it in
{1, 2, 5, 10, 20, 50}); ``lambda_d = 10 * lambda_od`` for DIP-I (Cov of the posterior means) and
``lambda_d = lambda_od`` for DIP-II (Cov of q(z)), disentanglement_lib's ``lambda_d_factor``.
``lambda_mi`` does not enter. Both weights at 0 give the plain ELBO.
"""

from functools import partial

from disentune.models.base import Hyper, Variant
from disentune.models.dip_vae.losses import DipType, dip_vae_loss
from disentune.models.vae import ConvVAE, VAEStep
from disentune.registry import MODELS

# disentanglement_lib / Locatello et al. 2019: lambda_d = lambda_d_factor * lambda_od
LAMBDA_D_FACTOR: dict[DipType, float] = {"i": 10.0, "ii": 1.0}


def build(image_shape: tuple[int, int, int], hyper: Hyper) -> ConvVAE:
    return ConvVAE(image_shape, hyper.latent_dim)


def _variant(dip_type: DipType) -> Variant:
    loss = partial(dip_vae_loss, dip_type=dip_type, lambda_d_factor=LAMBDA_D_FACTOR[dip_type])
    return Variant(name=f"dip_vae_{dip_type}", build=build, make_step=partial(VAEStep, loss=loss),
                   weight_bounds={"lambda_mi": (0.0, 1000.0), "lambda_tc": (0.0, 1000.0)})


DIP_VAE_I = MODELS.register("dip_vae_i")(_variant("i"))
DIP_VAE_II = MODELS.register("dip_vae_ii")(_variant("ii"))
