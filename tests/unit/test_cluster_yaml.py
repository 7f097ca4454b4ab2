"""cluster.yaml validated by Ray's own cluster-launcher schema (no cloud calls)."""

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def config():
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_passes_rays_schema(config):
    validate_config(prepare_config(copy.deepcopy(config)))


def test_cluster_yaml_keeps_the_promises_of_the_readme(config):
    import ray

    assert config["docker"]["image"] == f"rayproject/ray:{ray.__version__}-py311-gpu"
    assert "ray-ml" not in config["docker"]["image"]
    workers = config["available_node_types"]["gpu_worker"]
    assert workers["min_workers"] == 0 and workers["node_config"]["InstanceType"].startswith(("g", "p"))
    assert config["head_node_type"] == "head"
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start  # reached through `ray dashboard` (SSH) only
    text = (ROOT / "cluster.yaml").read_text()
    for secret in ("aws_access_key_id", "aws_secret_access_key", "AKIA"):
        assert secret.lower() not in text.lower()
    assert all("IamInstanceProfile" in t["node_config"] for t in config["available_node_types"].values())
    assert any("pip install" in c and "/home/ray/disentune" in c for c in config["setup_commands"])


@pytest.mark.parametrize("typo", [("max_worker", 8), ("available_node_type", {}), ("setup_comands", [])])
def test_a_typo_in_a_key_is_caught(config, typo):
    key, value = typo
    config[key] = value
    with pytest.raises(jsonschema.ValidationError, match=key):
        validate_config(prepare_config(config))


def test_a_typo_inside_a_node_type_is_caught(config):
    config["available_node_types"]["gpu_worker"]["min_worker"] = 0
    with pytest.raises(jsonschema.ValidationError, match="min_worker"):
        validate_config(prepare_config(config))
