"""A full disk: a sweep's run folder, and separately ``DISENTUNE_CACHE``, on a small tmpfs.

The result is one line naming the path and the space needed (exit status 2), or the failed trial
with that reason; tables already written stay readable and nothing half-written is left: no
``*.part`` file, no truncated checkpoint. Real filesystems: tmpfs mounts (the tests run as root).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

pytestmark = pytest.mark.integration

NO_SPACE = r"no space left on the device: [\d.]+ (B|KiB|MiB|GiB) needed, [\d.]+ (B|KiB|MiB|GiB) free"


@pytest.fixture
def small_disk(tmp_path):
    """``make(size)``: a fresh tmpfs of ``size`` (e.g. "8m") mounted under tmp_path; all unmounted
    afterwards."""
    mounts = []

    def make(size: str) -> Path:
        path = tmp_path / f"disk{len(mounts)}"
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True,
                       capture_output=True, timeout=30)
        mounts.append(path)
        return path

    try:
        yield make
    finally:
        for path in reversed(mounts):
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30, check=False)


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.name.endswith(".part"))


def fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` until only about ``leave`` bytes are free."""
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    (disk / "ballast").write_bytes(b"\0" * max(0, free - leave))


def test_writers_on_a_full_disk_fail_in_one_line_and_keep_what_was_written(small_disk):
    from disentune.checkpoints import save_checkpoint
    from disentune.data.cache import write_json_atomic
    from disentune.data.procedural import save_atomically
    from disentune.errors import UserError
    from disentune.reports import schema
    from disentune.reports.storage import read_table, write_table

    disk = small_disk("1m")
    small = pa.Table.from_pylist([{"run_id": "r", "trial_id": "t", "trial_number": 0, "epoch": 1,
                                   "metric": "loss", "value": 1.0}], schema=schema.CURVES)
    write_table(small, str(disk / "curves.parquet"))
    fill(disk, 64 * 1024)
    big = pa.Table.from_pylist([{"run_id": "r", "trial_id": f"t{i}", "trial_number": i, "epoch": i,
                                 "metric": f"m{i}", "value": float(i)} for i in range(20_000)], schema=schema.CURVES)
    import numpy as np
    import torch

    writes = {
        "curves.parquet": lambda: write_table(big, str(disk / "curves.parquet")),  # replaces a table
        "entry.json": lambda: write_json_atomic(disk / "entry.json", {"x": "y" * 200_000}),
        "render.npy": lambda: save_atomically(disk / "render.npy", lambda: np.zeros((400, 1024), np.uint8)),
        "ckpt/state.pt": lambda: save_checkpoint(disk / "ckpt", {"w": torch.zeros(100_000)}),
    }
    for name, write in writes.items():
        with pytest.raises(UserError) as err:
            write()
        line = str(err.value)
        assert "\n" not in line and re.fullmatch(re.escape(str(disk / name)) + ": " + NO_SPACE, line), line
    assert read_table(str(disk / "curves.parquet")).equals(small)  # the old table, whole
    assert leftovers(disk) == [] and not (disk / "ckpt" / "state.pt").exists()


def test_a_cache_on_a_full_disk_stops_the_sweep_in_one_line_before_anything_is_written(small_disk, tmp_path):
    cache = small_disk("8m")
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({
        "name": "fullcache", "seed": 1, "data": {"resolution": 32, "train_size": 192},
        "train": {"epochs": 1}, "evaluation": {"fid_samples": 64, "mig_samples": 300, "run_suite": "never"},
        "search": {"num_samples": 2}, "space": {"lambda_tc": {"uniform": [0.0, 4.0]}, "batch_size": 32},
    }))
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "disentune", "sweep", str(space), "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "DISENTUNE_CACHE": str(cache)}, check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    # the render of dSprites (90 MiB at 32 px) is refused when its file is allocated: without
    # that, writing its memory map on a full tmpfs killed the process with SIGBUS
    assert proc.stderr.strip() == (f"disentune: error: {cache}/dsprites-r32-v1.npy: no space left on the device: "
                                   "90.0 MiB needed, 8.0 MiB free"), proc.stderr[-3000:]
    assert list(cache.iterdir()) == [] and not out.exists()


def test_a_run_folder_on_a_full_disk_fails_the_trial_with_the_reason_and_leaves_no_half_checkpoint(
        small_disk, tmp_path, dsprites32):
    from disentune.checkpoints import load_state
    from disentune.reports.storage import read_table

    disk = small_disk("8m")  # a checkpoint of this model is 7.2 MiB: the first one cannot fit
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({
        "name": "fullrun", "seed": 3, "data": {"resolution": 32, "train_size": 192},
        # Ray Train's worker session guards its checkpoints (train/session.py); max_failures 0:
        # a full disk stays full, so a restart would fail the same way
        "train": {"epochs": 2, "launcher": "ray_train", "max_failures": 0},
        "evaluation": {"fid_samples": 64, "mig_samples": 300, "run_suite": "never"}, "anomaly": {"run": "never"},
        "search": {"num_samples": 1}, "space": {"lambda_tc": {"uniform": [0.0, 4.0]}, "batch_size": 32, "latent_dim": 3},
    }))
    out = disk / "run"
    proc = subprocess.run([sys.executable, "-m", "disentune", "sweep", str(space), "--out", str(out)],
                          capture_output=True, text=True, timeout=600, check=False)
    lines = proc.stderr.strip().splitlines()
    if proc.returncode == 2:  # the run's own tables or figures did not fit: one line naming the path
        assert re.fullmatch(rf"disentune: error: {re.escape(str(disk))}/\S+: {NO_SPACE}", lines[-1]), lines[-1]
    else:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = read_table(str(out / "trials.parquet")).to_pandas()
    assert len(trials) == 1 and trials["status"].iloc[0] == "failed", trials[["status", "error"]]
    error = trials["error"].iloc[0]
    assert re.search(rf"{re.escape(str(out))}/tune/train/train-\w+: {NO_SPACE}", error), error
    for table in out.glob("*.parquet"):  # every table written reads back whole
        read_table(str(table))
    assert leftovers(disk) == []
    for state in out.rglob("state.pt"):  # no half-copied checkpoint in Ray's storage
        load_state(state.parent)
