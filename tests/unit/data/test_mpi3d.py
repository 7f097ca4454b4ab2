"""MPI3D at its real length: the older toy layout's 460,800 images (5.7 GB of pixels, deflated
to 25 MB of mostly zeros) stream through the npz member and convert at 16 px in about 15 s
(7 s to write the file, 8 s to convert; the file has no labels, so only the real length
exercises the layout detection)."""

from __future__ import annotations

import numpy as np

from disentune.registry import DATASETS

from .published import MPI3D_OLD, reference_resize, write_mpi3d_zeros


def test_mpi3d_older_layout_is_told_from_the_length_and_streams_at_full_size(cache, rng, tmp_path):
    path = tmp_path / "mpi3d_toy.npz"
    marked = np.array([0, 1, 40 * 40 - 1, 123_457, 230_400, MPI3D_OLD - 1])
    marked_images = write_mpi3d_zeros(path, rng, marked)
    assert path.stat().st_size < 64 * 2**20  # deflated: the member is never held whole
    data = DATASETS.get("mpi3d")(resolution=16, path=str(path))
    assert data.factor_names == ("object_color", "object_shape", "object_size", "camera_height",
                                 "background_color", "horizontal_axis", "vertical_axis")
    np.testing.assert_array_equal(data.factor_sizes, [4, 4, 2, 3, 3, 40, 40])
    assert data.num_images == MPI3D_OLD and data.image_shape == (3, 16, 16)
    np.testing.assert_array_equal(data.images_at(marked, np.uint8), reference_resize(marked_images, 16))
    others = np.setdiff1d(np.random.default_rng(1).integers(0, MPI3D_OLD, 2000), marked)
    assert not data.images_at(others, np.uint8).any()
    np.testing.assert_array_equal(data.classes_of(marked[-1:]), [[3, 3, 1, 2, 2, 39, 39]])
    assert data.entry.path.stat().st_size >= MPI3D_OLD * 3 * 16 * 16
