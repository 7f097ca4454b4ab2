"""The README's Python example, run exactly as written (from a fresh folder)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    section = README.read_text().split("## From Python", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert blocks, "the README lost its Python example"
    return blocks[0]


def test_the_readme_python_example_runs_as_written(tmp_path, dsprites32):
    script = tmp_path / "example.py"
    script.write_text(readme_example())
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=900, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = tmp_path / "reports" / "from-python"
    assert proc.stdout.strip().splitlines()[-1] == str(run / "index.html")
    for name in ("trials.parquet", "pareto.parquet", "evaluations.parquet", "anomaly_metrics.parquet", "index.html"):
        assert (run / name).exists(), name

    import disentune

    opened = disentune.open_run(str(run))
    assert len(opened.trials) == 2 and (opened.trials["status"] == "ok").all()
    assert set(opened.evaluations["metric"]) == {"mig", "sap"}
    assert set(opened.anomaly["detector"]) == {"knn"}
    assert len(opened.front) >= 1 and opened.front["fid"].is_monotonic_increasing
