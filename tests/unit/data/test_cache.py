"""The shared conversion cache: one conversion per node however many processes ask, remembered
content hashes, the listing the CLI prints, and entries that travel to workers without pixels."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from disentune.data.cache import CacheEntry, list_cache
from disentune.data.importer import import_dataset
from disentune.errors import UserError
from disentune.registry import DATASETS

from .published import write_shapes3d

IMPORTER = """
import json, os, sys, time
from pathlib import Path
go = Path(sys.argv[2])
from disentune.data import image_collection          # registers 'images'
from disentune.data.importer import import_dataset
Path(sys.argv[3]).touch()  # imported: ready
while not go.exists():
    time.sleep(0.01)
began = time.perf_counter()
entry = import_dataset("images", sys.argv[1], 32)
print(json.dumps({"pid": os.getpid(), "path": str(entry.path), "seconds": time.perf_counter() - began}))
"""


def test_two_processes_importing_the_same_file_convert_it_once(cache, tmp_path):
    path = tmp_path / "zeros.npz"  # 240 MiB of pixels (deflated to 0.2 MiB): about a second
    np.savez_compressed(path, images=np.zeros((20_000, 64, 64, 3), np.uint8))
    go, ready = tmp_path / "go", [tmp_path / f"ready{i}" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", IMPORTER, str(path), str(go), str(r)],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
             for r in ready]
    deadline = time.time() + 60
    while not all(r.exists() for r in ready) and time.time() < deadline:
        time.sleep(0.01)
    go.touch()  # both start importing at once
    results = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    log = [json.loads(line) for line in (cache / "conversions.log").read_text().splitlines()]
    assert len(log) == 1, log  # one conversion ...
    assert results[0]["path"] == results[1]["path"] == str(list_cache()[0].path)
    waiter = next(r for r in results if r["pid"] != log[0]["pid"])
    assert waiter["seconds"] >= 0.9 * log[0]["seconds"]  # ... and the other waited for it


def test_a_remembered_hash_is_not_recomputed_until_size_or_mtime_change(cache, rng, tmp_path):
    path = tmp_path / "3dshapes.h5"
    write_shapes3d(path, rng)
    first = DATASETS.get("shapes3d")(resolution=16, path=str(path)).entry
    stat = path.stat()
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))  # same size, other bytes ...
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ... and the same mtime
    again = DATASETS.get("shapes3d")(resolution=16, path=str(path)).entry
    assert again.sha256 == first.sha256 and again.path == first.path  # not rehashed
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    path.write_bytes(original)  # restore the content: the new mtime makes it hash again
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert DATASETS.get("shapes3d")(resolution=16, path=str(path)).entry.sha256 == first.sha256
    assert len((cache / "conversions.log").read_text().splitlines()) == 1


def test_import_dataset_and_list_cache(cache, rng, tmp_path):
    path = tmp_path / "3dshapes.h5"
    write_shapes3d(path, rng)
    entries = [import_dataset("shapes3d", str(path), r) for r in (32, 16)]
    assert all(isinstance(e, CacheEntry) for e in entries)
    listed = list_cache()
    assert [(e.dataset, e.resolution, e.images) for e in listed] == [("shapes3d", 16, 144), ("shapes3d", 32, 144)]
    assert listed[1].bytes >= 144 * 3 * 32 * 32 and listed[0].sha256 == listed[1].sha256 == entries[0].sha256
    sidecar = json.loads(listed[1].path.with_suffix(".json").read_text())
    assert sidecar["source"] == str(path) and sidecar["images"] == 144 and sidecar["resolution"] == 32
    assert [f["name"] for f in sidecar["factors"]][:2] == ["floor_hue", "wall_hue"]
    assert sidecar["bytes"] == listed[1].path.stat().st_size
    with pytest.raises(UserError, match="procedurally"):
        import_dataset("dsprites", None, 32)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="resolution must be an integer in"):
        import_dataset("shapes3d", str(path), 2)


def test_a_pickled_dataset_ships_no_pixels_and_reconverts_where_the_cache_lacks_it(cache, rng, tmp_path):
    path = tmp_path / "3dshapes.h5"
    write_shapes3d(path, rng)
    data = DATASETS.get("shapes3d")(resolution=32, path=str(path))
    pixels = data.images_at(np.arange(10), np.uint8)
    blob = pickle.dumps(data)
    assert len(blob) < 20_000  # the entry, not the 442 KiB of pixels
    for p in (data.entry.path, data.entry.path.with_suffix(".json")):
        p.unlink()  # another node: this entry is not in its cache
    worker = pickle.loads(blob)
    np.testing.assert_array_equal(worker.images_at(np.arange(10), np.uint8), pixels)
    assert Path(worker.entry.path).exists()


def test_a_folder_is_found_again_by_its_listing_alone(cache, rng, tmp_path):
    from .published import write_cars3d

    folder = tmp_path / "cars"
    write_cars3d(folder, rng, objects=2)
    first = DATASETS.get("cars3d")(resolution=8, path=str(folder)).entry
    memos = [(p, json.loads(p.read_text())) for p in (cache / "hashes").glob("*.json")]
    listing = [p for p, m in memos if m["uri"].endswith("/")]
    assert len(memos) == 3 and len(listing) == 1
    for p, _ in memos:
        if p not in listing:
            p.unlink()  # only the listing's memo is left: the entry is found without hashing a file
    again = DATASETS.get("cars3d")(resolution=8, path=str(folder)).entry
    assert again.path == first.path and sorted((cache / "hashes").glob("*.json")) == listing
