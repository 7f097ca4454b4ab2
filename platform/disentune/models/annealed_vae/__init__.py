"""AnnealedVAE (Burgess et al. 2018): the ELBO plus ``lambda_tc`` times |KL - C|, the capacity C
annealed linearly from 0 to ``c_max`` nats over ``anneal_steps`` optimisation steps, then held.

    L = E_q[-log p(x|z)] + KL(q(z|x) || p(z)) + lambda_tc * |KL(q(z|x) || p(z)) - C(t)|

Swept weight: ``lambda_tc`` is the paper's gamma (the study fixes gamma = 1000 and sweeps
``c_max`` in {5, 10, 25, 50, 75, 100}); ``lambda_mi`` does not enter. Both weights at 0 give the
plain ELBO. Why the ELBO's KL stays in the objective: see losses.py.
"""

from disentune.models.annealed_vae.step import AnnealedVAEStep
from disentune.models.base import Hyper, Variant
from disentune.models.vae import ConvVAE
from disentune.registry import MODELS


def build(image_shape: tuple[int, int, int], hyper: Hyper) -> ConvVAE:
    return ConvVAE(image_shape, hyper.latent_dim)


VARIANT = MODELS.register("annealed_vae")(
    Variant(name="annealed_vae", build=build, make_step=AnnealedVAEStep,
            weight_bounds={"lambda_mi": (0.0, 1000.0), "lambda_tc": (0.0, 1000.0)})
)
