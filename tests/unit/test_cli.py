"""The command line as a user meets it: real subprocesses, exit statuses and one-line errors."""

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from disentune.reports.storage import read_table, write_table

from .reports.synthetic import synthetic_curves, synthetic_trials

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "disentune", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def one_line_error(proc, pattern):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and re.match(r"disentune: error: " + pattern, lines[0]), lines


@pytest.fixture()
def run(tmp_path):
    run = tmp_path / "runA"
    trials = synthetic_trials(30)
    write_table(trials, str(run / "trials.parquet"))
    write_table(synthetic_curves(trials), str(run / "curves.parquet"))
    return run


def test_help_lists_the_commands():
    proc = cli("--help")
    assert proc.returncode == 0
    for command in ("sweep", "report", "data"):
        assert command in proc.stdout


def test_report_build_and_missing_run(run, tmp_path):
    proc = cli("report", "build", run)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(run / "index.html") and (run / "index.html").exists()
    one_line_error(cli("report", "build", tmp_path / "nope"), r".*nope: not a disentune run")


def test_report_compare_uses_one_reference_point(run, tmp_path):
    other = tmp_path / "runB"
    write_table(synthetic_trials(30, seed=1), str(other / "trials.parquet"))
    proc = cli("report", "compare", run, other, "--out", tmp_path / "cmp")
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "cmp" / "index.html").read_text()
    assert "Common reference point" in page and "runA" in page and "runB" in page
    assert (tmp_path / "cmp" / "compare.png").read_bytes().startswith(b"\x89PNG")


def test_report_view_serves_on_loopback(run):
    cli("report", "build", run)
    proc = subprocess.Popen([sys.executable, "-m", "disentune", "report", "view", str(run), "--port", "0"],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/index\.html", line).group(0)
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200 and b"<table id=\"trials\"" in response.read()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sweep_refuses_a_location_holding_another_run(run):
    before = (run / "trials.parquet").read_bytes()
    one_line_error(cli("sweep", ROOT / "search_spaces" / "quickstart.yaml", "--out", run),
                   r".*runA: already holds a run's results; choose another --out or pass --force")
    assert (run / "trials.parquet").read_bytes() == before
    assert read_table(str(run / "trials.parquet")).num_rows == 30


def test_sweep_refuses_an_output_that_is_a_file(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    one_line_error(cli("sweep", ROOT / "search_spaces" / "quickstart.yaml", "--out", target),
                   r".*file\.txt: exists and is not a directory")
    assert target.read_text() == "keep me"


def test_bad_numbers_on_the_command_line():
    proc = cli("sweep", ROOT / "search_spaces" / "quickstart.yaml", "--samples", "0")
    assert proc.returncode == 2 and "not a positive integer" in proc.stderr


def test_bad_input_on_every_command_is_one_line_and_loses_nothing(run, tmp_path, dsprites32):
    """Each entry point refuses bad input with exit status 2 and one line; every file of the
    existing run stays byte for byte as it was, and a damaged table is reported, not replaced."""
    binary = tmp_path / "space.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    inverted = tmp_path / "inverted.yaml"
    inverted.write_text("name: x\nspace: {lambda_tc: {uniform: [3, 1]}}\n")
    excluded = tmp_path / "excluded.yaml"  # even with --force, bad data never removes the old run
    excluded.write_text("name: x\ndata: {resolution: 32, exclude: [{shape: [square, ellipse, heart]}]}\n"
                        "space: {lambda_tc: {uniform: [0, 4]}}\n")
    fixed = tmp_path / "fixed.yaml"  # Tune's searcher would fail with a traceback on an empty space
    fixed.write_text("name: x\ndata: {resolution: 32}\nspace: {lambda_tc: 2.0}\n")
    small = tmp_path / "small.yaml"
    small.write_text("name: x\ndata: {resolution: 32, train_size: 20}\nspace: {batch_size: {choice: [16, 64]}}\n")
    huge = tmp_path / "huge.yaml"  # refused before Ray starts, whatever this machine's CPU count
    huge.write_text("name: x\ndata: {resolution: 32}\ntrain: {workers: 2, cpus_per_worker: 1000}\n"
                    "space: {lambda_tc: {uniform: [0, 4]}}\n")
    spaces = {  # the search section's own refusals
        "zero_replicates": "search: {replicates: 0}",
        "unknown_objective": "search: {objectives: [{fid: min}, {nosuch: max}]}",
        "four_objectives": "search: {objectives: [{fid: min}, {mig: max}, {sap: max}, {kid: min}]}",
        "factor_objective": "data: {dataset: images, path: IMAGES, resolution: 32}\n"
                            "search: {replicates: 2, objectives: [{mig: max}, {fid: min}]}",
    }
    images = tmp_path / "images"  # an image collection: no factors
    images.mkdir()
    from PIL import Image

    for i in range(4):
        Image.fromarray(np.full((20, 20, 3), 40 * i, dtype=np.uint8)).save(images / f"{i}.png")
    from disentune.data.importer import import_dataset

    import_dataset("images", str(images), 32)  # converted now: the refusal is the command's only line
    for name, text in spaces.items():
        (tmp_path / f"{name}.yaml").write_text(f"name: x\n{text.replace('IMAGES', str(images))}\n"
                                               "space: {lambda_tc: {uniform: [0, 4]}}\n")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "trials.parquet").write_bytes((run / "trials.parquet").read_bytes()[:2000])
    cases = [
        (("sweep", binary, "--out", run), r".*space\.yaml: not a text file \(byte 0 is not UTF-8\)"),
        (("sweep", inverted, "--out", run), r".*inverted\.yaml: space\.lambda_tc\.uniform: inverted range"),
        (("sweep", excluded, "--out", run, "--force"), r"data\.exclude leaves no training images"),
        (("sweep", small, "--out", run, "--force"), r"data: 20 training images .* fewer than one batch of 64"),
        (("sweep", fixed, "--out", run, "--force"), r"space: every parameter is fixed, so there is nothing to search"),
        (("sweep", tmp_path / "zero_replicates.yaml", "--out", run, "--force"),
         r".*search\.replicates: 0 is not allowed; expected an integer in \[1, 100\]"),
        (("sweep", tmp_path / "unknown_objective.yaml", "--out", run, "--force"),
         r".*search\.objectives\[1\]: 'nosuch' is not an objective; choose a metric value \("),
        (("sweep", tmp_path / "four_objectives.yaml", "--out", run, "--force"),
         r".*search\.objectives: 4 objectives; give 2 or 3"),
        (("sweep", tmp_path / "factor_objective.yaml", "--out", run, "--force"),
         r"search\.objectives\[0\]: mig needs ground-truth factors, which images .* has none of"),
        (("sweep", huge, "--out", run, "--force"),
         r"train: a trial needs 2 workers x \(1000 CPU\); the cluster has \d+ CPU and \d+ GPU on 1 node"),
        (("sweep", ROOT / "search_spaces" / "quickstart.yaml", "--out", run, "--resume"),
         r".*runA: no sweep to resume there"),
        (("evaluate", run, "--metrics", "mig,nosuch"), r"--metrics: unknown metric 'nosuch'; choose from "),
        (("evaluate", run), r".*runA: not a disentune run"),
        (("anomaly", run, "--detectors", "nosuch"), r"--detectors: unknown detector 'nosuch'"),
        (("anomaly", run, "--benchmarks", "local_defects@7"), r".*local_defects@7"),
        (("report", "build", damaged), r".*damaged/trials\.parquet: not a readable Parquet file"),
    ]
    before = {p: p.read_bytes() for p in [*run.rglob("*"), *damaged.rglob("*")] if p.is_file()}
    for args, pattern in cases:
        one_line_error(cli(*args), pattern)
    after = {p: p.read_bytes() for p in [*run.rglob("*"), *damaged.rglob("*")] if p.is_file()}
    assert after == before
    assert read_table(str(run / "trials.parquet")).num_rows == 30


def test_a_truncated_dataset_file_is_one_line_and_leaves_no_run_and_no_cache_entry(tmp_path, monkeypatch):
    """As a user meets it: a sweep over a published file cut short by a failed copy."""
    from .data.published import leftovers, write_shapes3d

    cache = tmp_path / "cache"
    monkeypatch.setenv("DISENTUNE_CACHE", str(cache))
    cut = tmp_path / "3dshapes.h5"
    write_shapes3d(cut, np.random.default_rng(0))
    cut.write_bytes(cut.read_bytes()[: int(cut.stat().st_size * 0.3)])
    space = tmp_path / "space.yaml"
    space.write_text(f"name: cut\ndata: {{dataset: shapes3d, path: '{cut}', resolution: 16}}\n"
                     "search: {num_samples: 1}\nspace: {lambda_tc: {uniform: [0.0, 4.0]}}\n")
    out = tmp_path / "run"
    proc = cli("sweep", space, "--out", out)
    one_line_error(proc, re.escape(str(cut)) + r": .*truncated or corrupt")
    assert not out.exists()
    assert leftovers(cache / "imported") == []


def test_data_import_render_and_list_show_what_the_cache_holds(tmp_path, monkeypatch):
    from .data.published import write_shapes3d

    monkeypatch.setenv("DISENTUNE_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "3dshapes.h5"
    write_shapes3d(source, np.random.default_rng(0))
    empty = cli("data", "list")
    assert empty.returncode == 0 and "nothing imported yet" in empty.stdout
    imported = cli("data", "import", "shapes3d", source, "--resolution", "16")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("shapes3d 16x16: 144 images")
    rendered = cli("data", "render", "shapes3d_procedural", "--resolution", "16")
    assert rendered.returncode == 0, rendered.stderr
    rows = {tuple(line.split()[:3]): line for line in cli("data", "list").stdout.splitlines()[1:]}
    assert rows[("shapes3d", "16", "144")].endswith(str(source))
    assert rows[("shapes3d_procedural", "16", "480,000")].endswith("rendered")
