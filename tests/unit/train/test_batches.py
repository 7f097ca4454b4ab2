"""A worker's training images: resident when small, decoded per batch from the shared cache when
large, with the same batches (and so the same trial) either way."""

import numpy as np
import torch

from disentune.config import experiment_from_dict
from disentune.metrics.factor_net import ensure_factor_net
from disentune.train import batches
from disentune.train.batches import TrainingImages
from disentune.train.loop import TrialSpec, run_training
from disentune.train.session import LocalSession


def test_resident_and_streamed_batches_are_identical(dsprites32, monkeypatch):
    index = np.random.default_rng(0).choice(dsprites32.num_images, size=500, replace=False)
    resident = TrainingImages(dsprites32, index, torch.device("cpu"))
    monkeypatch.setitem(batches.RESIDENT_MAX_BYTES, "cpu", 500 * 32 * 32 - 1)
    streamed = TrainingImages(dsprites32, index, torch.device("cpu"))
    assert resident.resident and not streamed.resident and len(streamed) == 500
    rows = torch.randperm(500, generator=torch.Generator().manual_seed(1))[:64]
    a, b = resident.batch(rows), streamed.batch(rows)
    assert a.dtype == b.dtype == torch.float32 and a.shape == (64, 1, 32, 32)
    assert torch.equal(a, b)
    assert torch.equal(b, torch.from_numpy(dsprites32.images_at(index[rows.numpy()])))


def test_a_large_training_set_is_never_held_whole_by_a_worker(dsprites32):
    everything = np.arange(dsprites32.num_images)  # the whole grid: 720 MiB decoded at 32 px
    images = TrainingImages(dsprites32, everything, torch.device("cpu"))
    assert not images.resident and images._images is None
    assert images.batch(torch.tensor([0, 737279])).shape == (2, 1, 32, 32)


def test_a_streamed_trial_matches_a_resident_one(dsprites32, tmp_path, monkeypatch):
    exp = experiment_from_dict({"name": "stream", "seed": 4, "data": {"resolution": 32, "train_size": 192},
                                "train": {"epochs": 1}, "evaluation": {"fid_samples": 64, "mig_samples": 300}})
    params = {"variant": "beta_tcvae", "lambda_mi": 0.2, "lambda_tc": 1.0, "lr": 1e-3,
              "latent_dim": 3, "batch_size": 32, "seed": 4}
    spec = TrialSpec(experiment=exp, params=params,
                     extractor_path=str(ensure_factor_net(dsprites32, "dsprites", 32, seed=0)))
    resident = LocalSession(tmp_path / "resident")
    run_training(spec, resident)
    monkeypatch.setitem(batches.RESIDENT_MAX_BYTES, "cpu", 0)
    streamed = LocalSession(tmp_path / "streamed")
    run_training(spec, streamed)
    keys = ("loss_total", "fid", "mig")
    assert [resident.reports[-1][0][k] for k in keys] == [streamed.reports[-1][0][k] for k in keys]
