"""Plugins that break: each is one line naming the plugin and its entry point, and none can take
a built-in name. Real distributions on the path (dist-info folders, as pip writes them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def fake_plugin(site: Path, dist: str, entry_points: str, modules: dict[str, str]) -> None:
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    for name, text in modules.items():
        (site / f"{name}.py").write_text(text)


def cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "disentune", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(site)})


@pytest.mark.parametrize(("dist", "entry_points", "modules", "problem"), [
    ("broken-import", "[disentune.models]\nmy_vae = no_such_module_here:VARIANT\n", {},
     r"failed to import \(ModuleNotFoundError: No module named 'no_such_module_here'\)"),
    ("broken-interface", "[disentune.metrics]\nmy_metric = bad_metric:METRIC\n", {"bad_metric": "METRIC = 42\n"},
     r"bad_metric:METRIC is a int, not a disentune.metrics.base.Metric"),
    ("squatter", "[disentune.models]\nbeta_vae = squat:VARIANT\n", {"squat": "VARIANT = None\n"},
     r"the name 'beta_vae' is already the variant of built-in; a plugin cannot replace it"),
])
def test_a_broken_plugin_is_one_line_naming_it_and_stops_every_command(tmp_path, dist, entry_points, modules, problem):
    import re

    site = tmp_path / "site"
    fake_plugin(site, dist, entry_points, modules)
    listed = cli(site, "plugins")
    assert listed.returncode == 2 and "beta_tcvae" in listed.stdout  # the rest is still listed
    where = rf"disentune: error: plugin {dist} 0\.1 \(entry point disentune\.\w+: \w+ = [\w.:]+\): "
    assert re.fullmatch(where + problem + r".*", listed.stderr.strip()), listed.stderr
    space = tmp_path / "space.yaml"
    space.write_text("name: x\nspace: {lambda_tc: {uniform: [0, 4]}}\n")
    refused = cli(site, "sweep", str(space), "--out", str(tmp_path / "out"))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert re.fullmatch(where + problem + r".*", refused.stderr.strip())
    assert not (tmp_path / "out").exists()
