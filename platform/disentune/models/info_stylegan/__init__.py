"""info-StyleGAN, the flagship: InfoGAN-TC's objective (``lambda_mi`` on the MI lower bound,
``lambda_tc`` on the TC of Q's posterior) on a style-based multiscale generator. It shares the
InfoGAN discriminator, losses and training step; only the generator differs (see module.py)."""

from disentune.models.base import Hyper, Variant
from disentune.models.info_stylegan.module import build_info_stylegan
from disentune.models.infogan.step import InfoGANStep
from disentune.registry import MODELS


def build(image_shape: tuple[int, int, int], hyper: Hyper):
    return build_info_stylegan(image_shape, hyper.latent_dim, hyper.scale_tied_codes)


VARIANT = MODELS.register("info_stylegan")(
    Variant(name="info_stylegan", build=build, make_step=InfoGANStep, progress_term="mi_loss",
            adversarial=True,
            weight_bounds={"lambda_mi": (0.0, 1000.0), "lambda_tc": (0.0, 1000.0)})
)
