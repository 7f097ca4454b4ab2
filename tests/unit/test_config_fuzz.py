"""Property-based: no search space, however malformed, gets past the config with anything but a
one-line ConfigError, and none starts Ray."""

import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from disentune.config import SEARCHABLE, experiment_from_dict, load_experiment
from disentune.errors import ConfigError

KEYS = ["name", "seed", "data", "train", "evaluation", "anomaly", "search", "space", "dataset",
        "resolution", "train_size", "exclude", "epochs", "workers", "cpus_per_worker", "use_gpu",
        "launcher", "time_limit_s", "sampler", "num_samples", "max_concurrent_trials", "fid_samples",
        "mig_samples", "suite", "run_suite", "metric_params", "inception_weights", "inception_kind", "run", "detectors",
        "path", "objectives", "replicates", "placement_timeout_s", "placement_strategy", "resources_per_worker",
        "spot", "tracking", "mlflow", "tensorboard",
        "wandb", "project", "mode", "scheduler", "min_images", "reduction_factor", "brackets",
        "benchmarks", "latent_spaces", "scan_spaces", "scan_statistic", "contamination", "knn_k",
        "uniform", "loguniform", "int", "choice", "shape", "pos_x", *SEARCHABLE, "bogus"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["tpe", "nsga2", "gp", "beta_tcvae", "nosuch_variant", "heart", "auto", "", "x" * 70,
                     "in_trial", "grid", "mig", "nosuch_metric", "knn", "nosuch_detector", "creative",
                     "file:/no/such.npz", "activation:nosuch", "berk_jones", "after_sweep", "../../etc", "SPREAD", "CPU"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)), max_leaves=12)
spaces = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)


@pytest.fixture(autouse=True)
def no_ray(monkeypatch):
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("the config started Ray")

    monkeypatch.setattr(ray, "init", refuse)


def _check(raw):
    try:
        experiment_from_dict(raw)
    except ConfigError as err:
        message = str(err)
        assert message and "\n" not in message and "Traceback" not in message


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spaces)
def test_malformed_mappings_only_ever_raise_one_line_config_errors(raw):
    _check(raw)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(SEARCHABLE)), st.sampled_from(["uniform", "loguniform", "int", "choice"]),
       st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5)), max_size=3))
def test_ranges_of_every_kind(name, kind, bounds):
    _check({"space": {name: {kind: bounds}}})
    finite = all(isinstance(b, int) or math.isfinite(b) for b in bounds)
    if kind in ("uniform", "loguniform") and len(bounds) == 2 and finite and bounds[0] >= bounds[1]:
        with pytest.raises(ConfigError):
            experiment_from_dict({"space": {name: {kind: bounds}}})


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("{}[]:,-'\" \n\tabc0123456789.#&*!|>%@`")), max_size=80))
def test_arbitrary_yaml_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("yaml") / "space.yaml"
    path.write_text(text)
    try:
        load_experiment(path)
    except ConfigError as err:
        assert "\n" not in str(err) and str(err).startswith(str(path))


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "space.yaml"
    path.write_bytes(data)
    try:
        load_experiment(path)
    except ConfigError as err:
        assert "\n" not in str(err) and str(err).startswith(str(path))


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment(path)
    assert yaml.safe_load("a: 1") == {"a": 1}
