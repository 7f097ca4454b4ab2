"""Benchmark splits: anomalies exactly where the protocol puts them, nothing else."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from disentune.anomaly.benchmarks import (
    Context,
    benchmark_names,
    check_benchmark,
    corrupt,
    creative_codes,
    make_split,
    read_user_file,
)
from disentune.data.ground_truth import Region, excluded_mask
from disentune.errors import UserError

HEART = Region({"shape": ("heart",)})
CORNER = Region({"shape": ("square",), "pos_x": (0.5, 1.0), "pos_y": (0.5, 1.0)})


def _ctx(data, regions=(), **kw):
    return Context(data, tuple(regions), num_fit=kw.pop("num_fit", 200), num_test=kw.pop("num_test", 100), **kw)


_GRID_HASHES: dict[int, tuple[object, np.ndarray, np.ndarray]] = {}


def _hashes(x: np.ndarray) -> np.ndarray:
    weights = np.random.default_rng(0).integers(1, 2**31, size=x[0].size)
    return np.rint(x.reshape(len(x), -1) * 255).astype(np.int64) @ weights


def _matches(data, images):
    """For each image, the flat grid indices that render exactly it (empty where none). A grid can
    render one image at several points (dSprites at 32 px: neighbouring positions of a small
    sprite, the symmetric orientations of a square), so an image names a set of points."""
    if id(data) not in _GRID_HASHES:  # the session's datasets live as long as the tests
        grid = np.concatenate([_hashes(data.images_at(np.arange(i, min(i + 65536, data.num_images))))
                               for i in range(0, data.num_images, 65536)])
        order = np.argsort(grid, kind="stable")
        _GRID_HASHES[id(data)] = (data, order, grid[order])
    _, order, sorted_grid = _GRID_HASHES[id(data)]
    wanted = _hashes(images)
    lo, hi = np.searchsorted(sorted_grid, wanted, "left"), np.searchsorted(sorted_grid, wanted, "right")
    found = []
    for image, a, b in zip(images, lo, hi):
        candidates = order[a:b]
        if len(candidates):
            same = np.abs(data.images_at(candidates) - image).reshape(len(candidates), -1).max(axis=1) < 0.5 / 255
            candidates = candidates[same]
        found.append(candidates)
    return found


def _index_of(data, images):
    """One grid index of each image that renders exactly it (-1 where none)."""
    return np.array([m[0] if len(m) else -1 for m in _matches(data, images)])


def _in_region(data, regions, images):
    """Per image: whether some grid point rendering it lies in ``regions`` (``any``) and whether
    every one does (``all``); an image with no grid point is in neither."""
    mask = excluded_mask(data, regions)
    matches = _matches(data, images)
    return (np.array([bool(mask[m].any()) for m in matches]),
            np.array([len(m) > 0 and bool(mask[m].all()) for m in matches]))


def test_heldout_shape_anomalies_are_exactly_the_held_out_shape(dsprites32):
    split = make_split("heldout_shape", _ctx(dsprites32, [HEART]), np.random.default_rng(0))
    assert split.n_normal == 100 and split.n_anomalous == 100 and len(split.fit) == 200
    shape = dsprites32.factor_names.index("shape")
    heart = dsprites32.factors[shape].labels.index("heart")
    rng = np.random.default_rng(1)
    pick = rng.choice(len(split.test), 40, replace=False)
    idx = _index_of(dsprites32, split.test[pick])
    assert (idx >= 0).all()
    classes = dsprites32.classes_of(idx)
    np.testing.assert_array_equal(classes[:, shape] == heart, split.labels[pick] == 1)
    fit_classes = dsprites32.classes_of(_index_of(dsprites32, split.fit[:40]))
    assert (fit_classes[:, shape] != heart).all()


def test_heldout_combination_uses_only_multi_factor_regions(dsprites32):
    split = make_split("heldout_combination", _ctx(dsprites32, [HEART, CORNER]), np.random.default_rng(0))
    anomalous = split.labels == 1
    some, every = _in_region(dsprites32, [CORNER], split.test)
    assert some[anomalous].all()  # each anomaly can come from the corner
    assert not every[~anomalous].any()  # no normal can only come from it
    heart_any, _ = _in_region(dsprites32, [HEART], split.test[~anomalous])
    assert not heart_any.any()


def test_heldout_without_a_matching_region_is_a_clear_error(dsprites32):
    with pytest.raises(UserError, match="heldout_shape: the run's data.exclude has no matching region"):
        make_split("heldout_shape", _ctx(dsprites32, [CORNER]), np.random.default_rng(0))
    assert "heldout_shape" not in benchmark_names([CORNER])
    assert benchmark_names([HEART, CORNER])[:2] == ("heldout_shape", "heldout_combination")


def test_local_defects_change_only_the_anomalies(dsprites32):
    split = make_split("local_defects@0.1", _ctx(dsprites32), np.random.default_rng(0))
    idx = _index_of(dsprites32, split.test)
    assert (idx[split.labels == 0] >= 0).all()  # normals are untouched grid images
    assert (idx[split.labels == 1] == -1).mean() > 0.9  # defects leave the grid
    images = dsprites32.images_at(np.arange(50))
    assert (corrupt(images, 0.2, np.random.default_rng(0)) != images).any(axis=(1, 2, 3)).mean() > 0.9


def test_creative_codes_leave_the_typical_region():
    ranges = np.array([[-2.0, 2.0]] * 6)
    typical, creative = creative_codes(ranges, 500, np.random.default_rng(0))
    assert ((typical >= -2) & (typical <= 2)).all()
    outside = (np.abs(creative) > 2.0 * 1.5 - 1e-9).any(axis=1)
    assert outside.all() and (np.abs(creative) <= 6.0 + 1e-9).all()


def test_creative_split_decodes_codes(dsprites32):
    seen = []

    def decode(codes):
        seen.append(codes)
        return np.clip(codes[:, :1, None, None] * np.ones((1, 1, 32, 32)), 0, 1).astype(np.float32)

    split = make_split("creative", _ctx(dsprites32, decode=decode, code_ranges=np.array([[-1.0, 1.0]] * 3)),
                       np.random.default_rng(0))
    assert split.test.shape == (200, 1, 32, 32) and split.n_anomalous == 100 and len(seen) == 2


def test_digits_one_class_covers_every_digit(dsprites32):
    split = make_split("digits_oneclass@3", _ctx(dsprites32), np.random.default_rng(0))
    assert split.fit.shape[1:] == (1, 32, 32) and 0 <= split.fit.min() and split.fit.max() <= 1
    assert split.n_normal in (91, 92) and split.n_anomalous == 1797 - 183
    assert len(benchmark_names()) == 3 + 1 + 10


def test_user_files_npz_and_parquet(tmp_path, dsprites32):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 16, 16)).astype(np.uint8)
    labels = (np.arange(30) >= 20).astype(np.int64)
    np.savez(tmp_path / "d.npz", images=images, label=labels)
    got, lab = read_user_file(str(tmp_path / "d.npz"))
    assert got.max() <= 1.0 and (lab == labels).all()
    pq.write_table(pa.table({"image": [im.reshape(-1).tolist() for im in images], "height": [16] * 30,
                             "width": [16] * 30, "label": labels}), tmp_path / "d.parquet")
    split = make_split(f"file:{tmp_path / 'd.parquet'}", _ctx(dsprites32), rng)
    assert split.n_normal == 10 and split.n_anomalous == 10 and split.test.shape[1:] == (1, 32, 32)


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    (b"not a zip", "not a readable anomaly data file"),
    ("nolabel", "missing 'label'"),
    ("badlabel", "label must be 0"),
])
def test_bad_user_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "x.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "nolabel":
        np.savez(path, images=np.zeros((4, 8, 8)))
    elif content == "badlabel":
        np.savez(path, images=np.zeros((4, 8, 8)), label=np.array([0, 1, 2, 0]))
    with pytest.raises(UserError, match=message) as info:
        read_user_file(str(path))
    assert "\n" not in str(info.value)


def test_benchmark_names_are_checked():
    assert check_benchmark("local_defects@0.3") == "local_defects@0.3"
    for bad in ("local_defects@2", "digits_oneclass@12", "nonsense", "file:"):
        with pytest.raises(UserError, match="unknown benchmark"):
            check_benchmark(bad)


def test_heldout_shape_takes_any_single_factor_region_of_other_datasets(disentune_cache):
    from disentune.data.shapes3d_procedural import Shapes3DProcedural

    data = Shapes3DProcedural(resolution=16)
    data.render()
    cold_floor = Region({"floor_hue": (0.0, 0.15)})  # Shapes3D's floor hues 0.0 and 0.1
    assert benchmark_names([cold_floor])[:1] == ("heldout_shape",)
    split = make_split("heldout_shape", _ctx(data, [cold_floor], num_fit=100, num_test=60),
                       np.random.default_rng(0))
    assert split.n_anomalous == 60 and split.n_normal == 60
    some, every = _in_region(data, [cold_floor], split.test)
    assert (_index_of(data, split.test) >= 0).all()
    np.testing.assert_array_equal(some, split.labels == 1)
    np.testing.assert_array_equal(every, split.labels == 1)
    assert not _in_region(data, [cold_floor], split.fit)[0].any()
