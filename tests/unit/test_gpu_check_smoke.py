"""bench/gpu_check.sh, the GPU check of issue #18: its --smoke mode runs every step on the CPU at
toy sizes inside its 110 s budget, prints a summary row for every variant and mode, pack size,
trial and preparation, and writes JSON holding the same rows; a step whose time is up is cut,
reported as such, and its worker processes are gone."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

STATUSES = {"ok", "cut", "skipped"}  # "error" is never expected on the CPU


def _table(stdout: str) -> list[list[str]]:
    assert "== summary ==" in stdout, stdout[-2000:]
    lines = stdout.split("== summary ==", 1)[1].splitlines()
    rows = [line for line in lines if line.startswith("| ")]
    assert rows[0] == "| step | name | setting | result | status |"
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in rows[1:]]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[subprocess.CompletedProcess, float, dict]:
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    began = time.monotonic()
    proc = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--smoke", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    took = time.monotonic() - began
    (out.parent / "stdout.txt").write_text(proc.stdout)  # kept in pytest's temporary folder
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, took, json.loads(out.read_text())


def test_smoke_prints_every_row_within_its_budget(smoke):
    from disentune.registry import MODELS

    proc, took, doc = smoke
    first = proc.stdout.splitlines()[0]
    assert first.startswith("python ") and f"torch {doc['env']['torch']}" in first  # versions come first
    assert took < doc["budget_s"] + 10, f"{took:.0f} s for a {doc['budget_s']:.0f} s budget"
    table = _table(proc.stdout)
    keys = [(r[0], r[1], r[2].split(",")[0]) for r in table]
    for variant in MODELS.names():
        for mode in ("fp32", "bf16", "bf16+compile"):
            assert keys.count(("throughput", variant, mode)) == 1, (variant, mode)
    assert [r[1] for r in table if r[0] == "packing"] == ["1 packed trial", "2 packed trials"]
    assert [r[1] for r in table if r[0] == "trial"] == [
        "beta_tcvae reference", "infogan lambda_mi=0", "infogan lambda_mi=1"]
    assert [r[1] for r in table if r[0] == "prepare"] == ["dsprites 16 px", "factornet (FID features)"]
    for row in table:
        status = row[4].split(":")[0]
        assert status in STATUSES, row
        if status == "cut":
            assert ": " in row[4], row  # says why
        if status == "ok" and row[0] == "throughput":
            assert row[3].endswith("img/s") or "img/s (compiled" in row[3], row
        if status == "ok" and row[0] == "trial":
            assert row[3].startswith("MIG ") and "FID " in row[3], row


def test_smoke_json_holds_the_rows(smoke):
    proc, _, doc = smoke
    table = _table(proc.stdout)
    assert doc["smoke"] is True and doc["env"]["device"] == "cpu"
    assert [(r["step"], r["name"], r["status"]) for r in doc["rows"]] == [(r[0], r[1], r[4].split(":")[0])
                                                                         for r in table]
    assert set(doc["steps"]) >= {"prepare", "throughput", "packing", "trials", "total"}
    assert doc["elapsed_s"] <= doc["budget_s"] + 5
    for row in doc["rows"]:
        if row["step"] == "throughput" and row["status"] == "ok":
            assert row["images_per_s"] > 0 and row["steps"] >= 2
        if row["step"] == "trial" and row["status"] == "ok":
            assert 0.0 <= row["mig"] <= 1.0 and row["images_seen"] > 0 and row["plan"]["epochs"] >= 1


def test_a_step_past_its_time_is_cut_and_its_workers_killed(tmp_path):
    import gpu_check
    import gpu_check_steps
    from gpu_check_pool import Fleet

    args = argparse.Namespace(smoke=True, out=str(tmp_path / "x.json"), device="cpu")
    cfg = json.loads(json.dumps(gpu_check.SMOKE))
    cfg["allot"]["packing"] = 2.0  # far less than its workers need to import torch
    ck = gpu_check.Check(cfg, args, time.time())
    fleet = Fleet({"OMP_NUM_THREADS": "1"})
    try:
        group = fleet.group(2)
        began = time.time()
        gpu_check_steps.packing(ck, group)
        assert time.time() - began < 8
        assert [(r["name"], r["status"]) for r in ck.rows] == [("1 packed trial", "cut"), ("2 packed trials", "cut")]
        assert all(r["note"] for r in ck.rows)
        assert not any(w.proc.is_alive() for w in group.workers)  # killed, not reused
        assert len(fleet.idle) == 2 and not set(fleet.idle) & set(group.workers)  # replaced by fresh ones
    finally:
        fleet.close()


def test_trial_budgets_are_whole_epochs_of_the_grid_or_equal_subsets():
    from gpu_check_workers import plan_epochs

    grid = 737_280
    assert plan_epochs(300_000 * 64, grid, 256) == (26, 0)  # the reference budget: 26 whole epochs
    epochs, size = plan_epochs(1_100_000, grid, 256)  # 1.5 epochs: two equal subsets, none wasted
    assert epochs == 2 and 0 < size < grid and 1_100_000 - 512 <= epochs * size <= 1_100_000
    assert plan_epochs(5_000_000, grid, 256)[0] == 7  # 6 whole epochs would leave 11 % unused
    assert plan_epochs(600, grid, 256) == (2, 256) and plan_epochs(300, grid, 256) == (1, 256)
    assert plan_epochs(255, grid, 256) == (0, 0)  # not one batch: no trial


def test_a_trial_cut_by_its_deadline_reports_its_last_evaluation(tmp_path):
    import gpu_check
    import gpu_check_steps

    args = argparse.Namespace(smoke=True, out=str(tmp_path / "x.json"), device="cpu", precision="auto",
                              target_images=8192, ref_lr=None, ref_batch=None)
    ck = gpu_check.Check(json.loads(json.dumps(gpu_check.SMOKE)), args, time.time())
    job = gpu_check_steps.trial_jobs(ck, time.time() + 60, "factornet.pt")[0]
    plan = {"precision": "bf16", "epochs": 4, "images": 4096}
    midway = {"epoch": 2, "images_seen": 2048, "mig": 0.31, "fid": 12.5}
    stopped = {"epoch": 3, "images_seen": 3072, "mig": float("nan"), "stopped": "time limit: ... passed"}
    gpu_check_steps.trial_row(ck, job, {"plan": plan, "progress": [midway, stopped], "end": ("dead", -9)})
    done = {"epoch": 4, "images_seen": 4096, "mig": 0.42, "fid": 10.0}
    gpu_check_steps.trial_row(ck, job, {"plan": plan, "progress": [midway, done], "end": ("done", {})})
    gpu_check_steps.trial_row(ck, job, {"plan": plan, "progress": [], "end": ("error", "Traceback\nValueError: x")})
    cut, ok, error = ck.rows
    assert cut["status"] == "cut" and cut["mig"] == 0.31 and cut["images_seen"] == 2048
    assert "MIG from epoch 2 of 4" in cut["note"] and cut["result"].startswith("MIG 0.310, FID 12.5")
    assert ok["status"] == "ok" and ok["mig"] == 0.42 and "the largest budget that fits: 4,096" in ok["note"]
    assert error["status"] == "error" and error["note"] == "ValueError: x"
