"""`train.compile: true` trains through torch.compile (inductor on CPU here) to the same kind of
result as eager mode, and its checkpoints load into an uncompiled model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from disentune.checkpoints import load_model
from disentune.train.loop import run_training
from disentune.train.session import LocalSession

from ..unit.train.test_checkpoint_and_loop import spec  # noqa: F401 (the fixture)

pytestmark = pytest.mark.integration


def test_compiled_training_matches_eager(spec, tmp_path):  # noqa: F811 (the fixture)
    exp = spec.experiment
    one_epoch = dataclasses.replace(exp.train, epochs=1)
    results = {}
    for compiled in (False, True):
        train = dataclasses.replace(one_epoch, compile=compiled)
        session = LocalSession(tmp_path / str(compiled))
        run_training(dataclasses.replace(spec, experiment=dataclasses.replace(exp, train=train)), session)
        results[compiled] = session.reports[-1]
    eager, compiled = results[False][0], results[True][0]
    assert np.isfinite(compiled["loss_total"])
    np.testing.assert_allclose(compiled["loss_total"], eager["loss_total"], rtol=1e-3)
    model, _ = load_model(results[True][1])  # plain state-dict keys, no compile wrapper
    assert model.latent_dim == 4
