"""Published files and folders on a real S3 API (moto's server on 127.0.0.1): streamed into the
node's cache once, converted, the staged copy deleted; the ETag is remembered so an unchanged
object is not downloaded again; a missing object is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from disentune.data import cars3d_mat, shapes3d_h5, smallnorb_mat  # noqa: F401 - register the readers
from disentune.errors import UserError
from disentune.registry import DATASETS

from ..unit.data.published import leftovers, reference_resize, write_shapes3d, write_smallnorb
from .test_s3 import s3_server  # noqa: F401 - the moto server fixture

pytestmark = pytest.mark.integration


@pytest.fixture
def bucket(s3_server):  # noqa: F811
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    if "published" not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket="published")
    return client


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("DISENTUNE_CACHE", str(root))
    return root / "imported"


def test_a_file_on_s3_is_staged_once_converted_and_remembered_by_etag(bucket, cache, tmp_path):
    local = tmp_path / "3dshapes.h5"
    written = write_shapes3d(local, np.random.default_rng(0))
    bucket.upload_file(str(local), "published", "shapes/3dshapes.h5")
    uri = "s3://published/shapes/3dshapes.h5"
    data = DATASETS.get("shapes3d")(resolution=16, path=uri)
    np.testing.assert_array_equal(data.images_at(np.arange(data.num_images), np.uint8),
                                  reference_resize(written["images"], 16))
    assert data.entry.source == uri and leftovers(cache) == sorted(
        [data.entry.path.name, data.entry.path.with_suffix(".json").name])  # nothing staged is left
    etag = bucket.head_object(Bucket="published", Key="shapes/3dshapes.h5")["ETag"].strip('"')
    memo = [json.loads(p.read_text()) for p in (cache / "hashes").glob("*.json")]
    assert [(m["uri"], m["version"]) for m in memo] == [(uri, etag)]
    again = DATASETS.get("shapes3d")(resolution=16, path=uri)  # found by (uri, size, ETag)
    assert again.entry.path == data.entry.path
    assert len((cache / "conversions.log").read_text().splitlines()) == 1

    changed = tmp_path / "changed.h5"
    write_shapes3d(changed, np.random.default_rng(1))
    bucket.upload_file(str(changed), "published", "shapes/3dshapes.h5")  # a new ETag
    fresh = DATASETS.get("shapes3d")(resolution=16, path=uri)
    assert fresh.entry.sha256 != data.entry.sha256
    assert len((cache / "conversions.log").read_text().splitlines()) == 2


def test_a_folder_on_s3_converts_like_the_local_folder(bucket, cache, tmp_path):
    folder = tmp_path / "norb"
    write_smallnorb(folder, np.random.default_rng(2))
    for f in sorted(folder.iterdir()):
        bucket.upload_file(str(f), "published", f"norb/{f.name}")
    remote = DATASETS.get("smallnorb")(resolution=32, path="s3://published/norb")
    local = DATASETS.get("smallnorb")(resolution=32, path=str(folder))
    assert remote.entry.sha256 == local.entry.sha256 and remote.entry.path == local.entry.path
    assert remote.nuisance_size == 4 and remote.num_images == 96
    np.testing.assert_array_equal(remote.images_at(np.arange(96), np.uint8), local.images_at(np.arange(96), np.uint8))


def test_a_missing_s3_file_is_one_line(bucket, cache):
    for uri, why in (("s3://published/nothing/3dshapes.h5", "no such file or folder"),
                     ("s3://no-such-bucket-here/3dshapes.h5", "the bucket no-such-bucket-here does not exist")):
        with pytest.raises(UserError) as err:
            DATASETS.get("shapes3d")(resolution=16, path=uri)
        assert str(err.value) == f"{uri}: {why}"
    with pytest.raises(UserError, match="^s3://published/none: no such file or folder$"):
        DATASETS.get("cars3d")(resolution=16, path="s3://published/none")
    assert leftovers(cache) == []
