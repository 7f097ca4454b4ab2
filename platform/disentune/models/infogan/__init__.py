"""InfoGAN and InfoGAN-TC: ``lambda_mi`` weights the MI lower bound; InfoGAN-TC adds
``lambda_tc`` times the TC of Q's posterior over the codes (see losses.py)."""

import dataclasses

from disentune.models.base import Hyper, Variant
from disentune.models.infogan.module import InfoGAN
from disentune.models.infogan.step import InfoGANStep
from disentune.registry import MODELS


def build(image_shape: tuple[int, int, int], hyper: Hyper) -> InfoGAN:
    return InfoGAN(image_shape, hyper.latent_dim)


def _no_tc(model, hyper: Hyper) -> InfoGANStep:
    """Plain InfoGAN: the TC weight does not enter its objective."""
    return InfoGANStep(model, dataclasses.replace(hyper, lambda_tc=0.0))


INFOGAN = MODELS.register("infogan")(
    Variant(name="infogan", build=build, make_step=_no_tc, progress_term="mi_loss",
            adversarial=True,
            weight_bounds={"lambda_mi": (0.0, 1000.0), "lambda_tc": (0.0, 1000.0)})
)
INFOGAN_TC = MODELS.register("infogan_tc")(
    Variant(name="infogan_tc", build=build, make_step=InfoGANStep, progress_term="mi_loss",
            adversarial=True,
            weight_bounds={"lambda_mi": (0.0, 1000.0), "lambda_tc": (0.0, 1000.0)})
)
