import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from disentune.errors import UserError
from disentune.metrics.fid import compute_fid
from disentune.metrics.inception import FEATURES, InceptionV3, load_inception, preprocess

# sha256 of "name:(shape)" lines of torchvision 0.28's inception_v3(aux_logits=False).state_dict()
# less fc.*, in order: the released weights' layout, which InceptionV3 must keep to load them
TORCHVISION_LAYOUT = "dc97bc0d178d65d8b91c14535f272bf408c99f6c6be919ae1ec0aa9556145409"


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised Inception-v3 saved as a plain state dict (~87 MB).

    He-initialised convolutions keep pool3 features of order 1 through the 94 layers (PyTorch's
    default shrinks them to ~1e-7 and torchvision's init_weights grows them to ~1e11).
    """
    torch.manual_seed(0)
    net = InceptionV3()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("inception") / "inception.pt"
    torch.save(net.state_dict(), path)
    return path


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 32, 32)).astype(np.float32)


def test_layout_is_torchvisions():
    state = InceptionV3().state_dict()
    layout = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in state.items())
    assert hashlib.sha256(layout.encode()).hexdigest() == TORCHVISION_LAYOUT
    assert len(state) == 564 and sum(v.numel() for v in state.values()) == 21_820_094


def test_features_and_fid_of_identical_sets(random_weights: Path):
    extractor = load_inception(str(random_weights))
    x = images(3, 0)
    feats = extractor(x, batch_size=2)  # two batches
    assert feats.shape == (3, FEATURES) and feats.dtype == np.float64
    assert np.isfinite(feats).all() and 1e-3 < feats.mean() < 1e3
    assert (feats >= 0).all()  # pool3 follows a ReLU
    # deterministic (eval mode: running batch-norm statistics) and per image
    np.testing.assert_allclose(extractor(x[:1]), feats[:1], rtol=1e-4, atol=1e-6 * feats.max())
    assert not np.allclose(feats[0], feats[1])
    fid = compute_fid(feats, feats, extractor=extractor.name)
    assert fid["fid"] < 1e-6 and fid["extractor"] == extractor.name
    other = extractor(images(3, 1) * 0.5)  # darker images
    assert compute_fid(feats, other)["fid"] > 1.0


def test_name_carries_the_file_hash(random_weights: Path):
    digest = hashlib.sha256(random_weights.read_bytes()).hexdigest()[:12]
    assert load_inception(str(random_weights)).name == f"inception-v3:{digest}"


def test_accepts_a_wrapped_state_dict_with_aux_logits_and_classifier(tmp_path: Path, random_weights: Path):
    state = torch.load(random_weights, weights_only=True)
    plain = load_inception(str(random_weights))(images(2, 2))
    # torchvision's released file carries the auxiliary head and the 1000-class classifier
    state["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    state["AuxLogits.conv0.conv.weight"] = torch.zeros(128, 768, 1, 1)
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)
    path = tmp_path / "wrapped.pt"
    torch.save({"state_dict": state, "epoch": 3}, path)
    extractor = load_inception(str(path))
    assert extractor.name.startswith("inception-v3:") and extractor.name != load_inception(str(random_weights)).name
    np.testing.assert_allclose(extractor(images(2, 2)), plain, rtol=1e-5)


def test_preprocessing_range_size_and_channels():
    x = torch.tensor([0.0, 1.0]).repeat(2, 1, 16, 8)  # (2, 1, 16, 16): columns alternate 0 and 1
    out = preprocess(x)
    assert out.shape == (2, 3, 299, 299)
    # bilinear resizing may land a rounding step inside the range (SIMD paths differ)
    assert abs(out.min().item() + 1.0) < 1e-6 and abs(out.max().item() - 1.0) < 1e-6
    assert torch.equal(out[:, 0], out[:, 2])  # grayscale repeated
    assert torch.equal(preprocess(torch.full((1, 3, 299, 299), 0.25)), torch.full((1, 3, 299, 299), -0.5))
    with pytest.raises(ValueError, match="1 or 3"):
        preprocess(torch.zeros(1, 2, 8, 8))


def test_missing_file(tmp_path: Path):
    path = tmp_path / "nope.pt"
    with pytest.raises(UserError, match="no such file") as err:
        load_inception(str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_corrupt_file(tmp_path: Path):
    path = tmp_path / "corrupt.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(UserError, match="not a readable PyTorch weights file") as err:
        load_inception(str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_wrong_state_dicts(tmp_path: Path):
    other = tmp_path / "resnet-like.pt"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, other)
    with pytest.raises(UserError, match="564 missing tensors") as err:
        load_inception(str(other))
    assert str(other) in str(err.value) and "1 unexpected tensors (e.g. conv1.weight)" in str(err.value)
    assert "\n" not in str(err.value)

    shapes = tmp_path / "wrong-shape.pt"
    state = InceptionV3().state_dict()
    state["Conv2d_1a_3x3.conv.weight"] = torch.zeros(32, 1, 3, 3)  # a 1-channel stem
    torch.save(state, shapes)
    with pytest.raises(UserError, match=r"wrong shape \(e.g. Conv2d_1a_3x3.conv.weight: \(32, 1, 3, 3\)"):
        load_inception(str(shapes))

    not_tensors = tmp_path / "list.pt"
    torch.save([1, 2, 3], not_tensors)
    with pytest.raises(UserError, match="not an Inception-v3 state dict") as err:
        load_inception(str(not_tensors))
    assert str(not_tensors) in str(err.value)


def test_loads_from_a_remote_uri(random_weights: Path):
    # any fsspec URI goes through disentune.reports.storage like s3:// does; memory:// needs no server
    import fsspec

    uri = "memory://weights/inception.pt"
    fsspec.filesystem("memory").pipe_file("/weights/inception.pt", random_weights.read_bytes())
    try:
        remote = load_inception(uri)
        assert remote.name == load_inception(str(random_weights)).name
        with pytest.raises(UserError, match="memory://weights/other.pt: no such file"):
            load_inception("memory://weights/other.pt")
    finally:
        fsspec.filesystem("memory").rm("/weights", recursive=True)
