"""Feature spaces and model scores of every registered variant, on a few images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from disentune.anomaly.features import activation_layers, default_layer, features, model_scores
from disentune.anomaly.runner import applies
from disentune.models.base import Hyper
from disentune.registry import MODELS

DEVICE = torch.device("cpu")


def _model(variant: str):
    torch.manual_seed(0)
    hyper = Hyper(latent_dim=4, lambda_mi=0.5, lambda_tc=1.0, lr=1e-3, dataset_size=100)
    return MODELS.get(variant).build((1, 32, 32), hyper).eval()


@pytest.mark.parametrize("variant", MODELS.names())
def test_spaces_and_scores_of_every_variant(variant):
    model = _model(variant)
    images = np.random.default_rng(0).random((6, 1, 32, 32)).astype(np.float32)
    assert features(model, images, "latent", DEVICE).shape == (6, model.representation_dim)
    assert features(model, images, "pixel", DEVICE).shape == (6, 32 * 32)
    layer = default_layer(model)
    assert layer in activation_layers(model)
    act = features(model, images, f"activation:{layer}", DEVICE)
    assert act.shape[0] == 6 and act.shape[1] > model.representation_dim and np.isfinite(act).all()
    # the runner plans exactly the model scores the model supports
    scores = model_scores(model)
    assert {name for name in ("neg_elbo", "discriminator") if applies(name, variant)} == set(scores) - {"reconstruction"}
    for name, score in scores.items():
        values = score(model, images, DEVICE)
        assert values.shape == (6,) and np.isfinite(values).all(), name


def test_unknown_spaces_and_layers_are_refused():
    model = _model("beta_vae")
    images = np.zeros((2, 1, 32, 32), dtype=np.float32)
    with pytest.raises(ValueError, match="unknown feature space"):
        features(model, images, "frequency", DEVICE)
    with pytest.raises(ValueError, match="no such layer"):
        features(model, images, "activation:encoder.nowhere", DEVICE)
