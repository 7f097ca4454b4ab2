"""Traversals start from an encoded real image, order rows by KL, mark collapsed latents, and
come as a PNG and an animated GIF."""

from __future__ import annotations

import io

import numpy as np
import torch

from disentune.models.vae import ConvVAE
from disentune.reports.traversals import latent_activity, traversal_data, traversal_gif


def _model() -> ConvVAE:
    torch.manual_seed(0)
    model = ConvVAE((1, 32, 32), latent_dim=4).eval()
    with torch.no_grad():  # latent 2's mean ignores the image and its variance is the prior's: KL 0
        head = model.encoder.head[-1]
        head.weight[[0, 1, 3]] *= 200.0  # the others' means spread over the data: KL well above 0
        head.weight[2].zero_()
        head.bias[2] = 0.0
        head.weight[4 + 2].zero_()
        head.bias[4 + 2] = 0.0
    return model


def test_rows_follow_the_kl_and_a_dead_latent_is_marked_collapsed(dsprites32):
    model = _model()
    images = dsprites32.images_at(np.arange(0, 737280, 7373)[:100])
    kl, name = latent_activity(model, images)
    data = traversal_data(model, images, "t")
    assert name == "KL" and list(data.order) == list(np.argsort(-kl, kind="stable"))
    assert np.all(np.diff(data.activity) <= 0) and data.order[-1] == 2 and data.activity[-1] < 1e-9
    assert list(data.collapsed) == [False, False, False, True]
    assert data.row_labels[-1].endswith("collapsed") and data.row_labels[0].startswith(f"z{data.order[0]} KL ")
    # the base is the first image's code: at the column nearest the base value a row decodes it
    base = model.encode(torch.from_numpy(images[:1]))[0].numpy()
    row = list(data.order).index(2)  # the dead latent's base value is 0, a column of the range
    column = int(np.argmin(np.abs(data.values - base[2])))
    codes = torch.from_numpy(base[None].astype(np.float32)).clone()
    codes[0, 2] = float(data.values[column])
    np.testing.assert_allclose(data.images[row, column], model.decode(codes)[0].numpy(), atol=1e-6)


def test_the_gif_plays_there_and_back_over_every_row():
    from PIL import Image

    model = _model()
    images = np.random.default_rng(0).random((20, 1, 32, 32)).astype(np.float32)
    data = traversal_data(model, images, "t", values=np.linspace(-2, 2, 5))
    gif = Image.open(io.BytesIO(traversal_gif(data, scale=1)))
    assert gif.format == "GIF" and gif.n_frames == 2 * 5 - 2
    assert gif.size == (32 + 4, 4 * (32 + 2) + 2)
