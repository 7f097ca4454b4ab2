import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from disentune.config import experiment_from_dict, load_experiment
from disentune.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_loads():
    exp = load_experiment(ROOT / "search_spaces" / "quickstart.yaml")
    assert exp.name == "quickstart" and exp.data.resolution == 32
    assert set(exp.searched()) == {"lambda_mi", "lambda_tc"}
    assert exp.param("seed").values == (exp.seed,)


BAD = {
    "unknown top-level key": ({"nme": "x"}, r"^nme: unknown key; allowed keys: name, seed"),
    "unknown section key": ({"train": {"epoch": 3}}, r"^train\.epoch: unknown key"),
    "unknown space key": ({"space": {"beta": 4}}, r"^space\.beta: unknown key"),
    "wrong type": ({"train": {"epochs": "three"}}, r"^train\.epochs: 'three' is not allowed; expected an integer"),
    "wrong type in range": ({"space": {"lambda_tc": {"uniform": [0, "x"]}}}, r"^space\.lambda_tc\.uniform\[1\]: 'x'"),
    "empty range": ({"space": {"lambda_tc": {"uniform": [2.0, 2.0]}}}, r"^space\.lambda_tc\.uniform: empty range"),
    "inverted range": ({"space": {"lambda_tc": {"uniform": [5.0, 1.0]}}}, r"^space\.lambda_tc\.uniform: inverted range"),
    "non-positive loguniform": ({"space": {"lambda_tc": {"loguniform": [0.0, 10.0]}}}, r"^space\.lambda_tc\.loguniform: loguniform bounds must be > 0"),
    "non-positive learning rate": ({"space": {"lr": {"loguniform": [0.0, 0.1]}}}, r"^space\.lr\.loguniform\[0\]: 0\.0 is not allowed; expected a finite number in \(0\.0"),
    "negative weight": ({"space": {"lambda_tc": -1}}, r"^space\.lambda_tc: -1 is not allowed"),
    "unknown variant": ({"space": {"variant": {"choice": ["beta_tcvae", "vqvae"]}}}, r"^space\.variant\.choice\[1\]: 'vqvae'"),
    "unknown sampler": ({"search": {"sampler": "cmaes"}}, r"^search\.sampler: 'cmaes' is not allowed; expected one of tpe"),
    "variant bound": ({"space": {"lambda_mi": {"uniform": [0.0, 2.0]}}}, r"^space\.lambda_mi: .* leaves \[0\.0, 1\.0\]"),
    "int for float": ({"space": {"lambda_tc": {"int": [0, 4]}}}, r"cannot be searched with int"),
    "not a mapping": ([1, 2], r"^search space: \[1, 2\] is not allowed"),
    "in_trial with workers": ({"train": {"launcher": "in_trial", "workers": 2}}, r"^train\.launcher: in_trial runs one worker"),
    "batch not divisible": ({"train": {"workers": 3}, "space": {"batch_size": 64}}, r"^space\.batch_size: \[64\] must be .* multiples of train\.workers \(3\)"),
    "grid over a range": ({"search": {"sampler": "grid"}, "space": {"lambda_tc": {"uniform": [0.0, 1.0]}}}, r"^search\.sampler: grid needs every searched parameter to be a choice; lambda_tc is a range"),
    "non-finite": ({"space": {"lambda_tc": {"uniform": [0.0, float("inf")]}}}, r"is not allowed; expected a finite number"),
    "unknown suite metric": ({"evaluation": {"suite": ["mig", "nosuch"]}}, r"^evaluation\.suite\[1\]: 'nosuch' is not allowed; expected one of .*dci"),
    "repeated suite metric": ({"evaluation": {"suite": ["mig", "mig"]}}, r"^evaluation\.suite: .* without repeated names"),
    "unknown metric parameter": ({"evaluation": {"metric_params": {"dci": {"num_trian": 5}}}}, r"^evaluation\.metric_params\.dci\.num_trian: unknown parameter; allowed: num_train, num_test"),
    "bad metric size": ({"evaluation": {"metric_params": {"mig": {"num_points": 0}}}}, r"^evaluation\.metric_params\.mig\.num_points: 0 is not allowed"),
    "unknown run_suite": ({"evaluation": {"run_suite": "after_trial"}}, r"^evaluation\.run_suite: 'after_trial' is not allowed; expected one of after_sweep, never"),
    "unknown detector": ({"anomaly": {"detectors": ["oracle"]}}, r"^anomaly\.detectors: \['oracle'\] is not allowed"),
    "unknown benchmark": ({"anomaly": {"benchmarks": ["local_defects@3"]}}, r"^anomaly\.benchmarks\[0\]: unknown benchmark 'local_defects@3'"),
    "unknown scan space": ({"anomaly": {"scan_spaces": ["fourier"]}}, r"^anomaly\.scan_spaces: \['fourier'\] is not allowed"),
    "contamination above half": ({"anomaly": {"contamination": 0.9}}, r"^anomaly\.contamination: 0\.9 is not allowed"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_spaces_name_the_key(case):
    raw, pattern = BAD[case]
    with pytest.raises(ConfigError, match=pattern) as err:
        experiment_from_dict(raw)
    assert "\n" not in str(err.value)


def test_launcher_auto_picks_in_trial_only_for_one_worker():
    assert experiment_from_dict({}).train.in_trial
    assert not experiment_from_dict({"train": {"workers": 2}}).train.in_trial
    assert not experiment_from_dict({"train": {"launcher": "ray_train"}}).train.in_trial


def test_malformed_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("space: {lambda_tc: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML at line"):
        load_experiment(bad)
    with pytest.raises(ConfigError, match="cannot read search space"):
        load_experiment(tmp_path / "missing.yaml")


CLI_CASES = {
    "unknown key": "name: x\nspace: {lambda_tc: 1, gamma: 2}\n",
    "wrong type": "name: x\ntrain: {epochs: [3]}\n",
    "empty range": "name: x\nspace: {lambda_mi: {uniform: [0.5, 0.5]}}\n",
    "inverted range": "name: x\nspace: {lambda_tc: {uniform: [3, 1]}}\n",
    "non-positive loguniform": "name: x\nspace: {lr: {loguniform: [-1.0e-3, 1.0e-2]}}\n",
}


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_refuses_bad_space_before_ray_starts(case, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(CLI_CASES[case])
    code = textwrap.dedent(f"""
        import sys
        from disentune.cli import main
        rc = main(["sweep", {str(space)!r}, "--out", {str(tmp_path / 'out')!r}])
        print("ray imported" if "ray" in sys.modules else "ray not imported")
        sys.exit(rc)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("disentune: error: ") and "space.yaml" in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout.strip() == "ray not imported"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("space", sorted((ROOT / "search_spaces").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_search_space_loads(space):
    exp = load_experiment(space)
    assert exp.name == space.stem
