"""Where a trial's Ray Train workers go: ``train.placement_strategy`` and
``train.resources_per_worker``, checked by the config and handed to Ray Train's ScalingConfig."""

from __future__ import annotations

import pytest
from disentune.config import TrainConfig, experiment_from_dict
from disentune.errors import ConfigError
from disentune.search.placement import worker_resources
from disentune.train.launch import scaling_config


def train(**keys) -> TrainConfig:
    return experiment_from_dict({"train": {"workers": 2, "gpus_per_worker": 0.5, **keys}}).train


def test_defaults_pack_the_workers_with_cpus_and_gpus_only():
    assert TrainConfig().placement_strategy == "PACK" and TrainConfig().resources_per_worker == {}
    config = scaling_config(train(), use_gpu=False)
    assert config.num_workers == 2 and config.placement_strategy == "PACK"
    assert config.resources_per_worker == {"CPU": 1.0}
    assert worker_resources(train(), use_gpu=True) == {"CPU": 1.0, "GPU": 0.5}


def test_spread_and_custom_resources_reach_the_scaling_config():
    config = scaling_config(train(placement_strategy="SPREAD", resources_per_worker={"spot": 1}), use_gpu=True)
    assert config.placement_strategy == "SPREAD"
    assert config.resources_per_worker == {"CPU": 1.0, "GPU": 0.5, "spot": 1.0}


@pytest.mark.parametrize("keys, message", [
    ({"placement_strategy": "ROUND_ROBIN"},
     "train.placement_strategy: 'ROUND_ROBIN' is not allowed; expected one of PACK, SPREAD, STRICT_PACK, STRICT_SPREAD"),
    ({"resources_per_worker": {"CPU": 2}}, "train.resources_per_worker.CPU: not a custom resource"),
    ({"resources_per_worker": {"spot": 0}}, "train.resources_per_worker.spot: 0 is not allowed"),
    ({"resources_per_worker": {"spot": "one"}}, "train.resources_per_worker.spot: 'one' is not allowed"),
    ({"resources_per_worker": ["spot"]}, "train.resources_per_worker: ['spot'] is not allowed"),
])
def test_bad_placement_keys_are_one_line_config_errors_naming_the_key(keys, message):
    with pytest.raises(ConfigError) as err:
        train(**keys)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
