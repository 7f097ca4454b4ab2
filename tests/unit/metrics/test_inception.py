import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from disentune.errors import UserError
from disentune.metrics.fid import compute_fid
from disentune.metrics.inception import (
    FEATURES,
    InceptionV3,
    _pool3,
    load_inception,
    preprocess,
    weights_kind,
)

# sha256 of "name:(shape)" lines of torchvision 0.28's inception_v3(aux_logits=False).state_dict()
# less fc.*, in order: the released weights' layout, which InceptionV3 must keep to load them
TORCHVISION_LAYOUT = "dc97bc0d178d65d8b91c14535f272bf408c99f6c6be919ae1ec0aa9556145409"


def _random_state(classes: int) -> dict[str, torch.Tensor]:
    """A randomly initialised Inception-v3 state dict with a ``classes``-way ``fc`` (~87 MB saved).

    He-initialised convolutions keep pool3 features of order 1 through the 94 layers (PyTorch's
    default shrinks them to ~1e-7 and torchvision's init_weights grows them to ~1e11).
    """
    torch.manual_seed(0)
    net = InceptionV3()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    state = net.state_dict()
    state["fc.weight"], state["fc.bias"] = torch.zeros(classes, FEATURES), torch.zeros(classes)
    return state


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights with torchvision's 1000-class classifier."""
    path = tmp_path_factory.mktemp("inception") / "inception.pt"
    torch.save(_random_state(1000), path)
    return path


@pytest.fixture(scope="module")
def fid_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same random tensors with pytorch-fid's 1008-class classifier and no batch counters."""
    state = {k: v for k, v in _random_state(1008).items() if not k.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("inception") / "pt_inception.pth"
    torch.save(state, path)
    return path


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 32, 32)).astype(np.float32)


@pytest.mark.parametrize("kind", ["torchvision", "pytorch-fid"])
def test_layout_is_torchvisions(kind: str):
    # pytorch-fid's FID blocks subclass torchvision's and change only their forward: same tensors
    state = InceptionV3(kind).state_dict()
    layout = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in state.items())
    assert hashlib.sha256(layout.encode()).hexdigest() == TORCHVISION_LAYOUT
    assert len(state) == 564 and sum(v.numel() for v in state.values()) == 21_820_094


def test_pool_branches_of_the_two_kinds():
    # torchvision averages the zero padding in, TensorFlow's FID graph leaves it out, Mixed_7c max-pools
    x = torch.ones(1, 1, 4, 4)
    assert _pool3(x, "avg")[0, 0, 0, 0].item() == pytest.approx(4 / 9)  # a corner sees 4 of 9
    assert torch.equal(_pool3(x, "avg-valid"), x) and torch.equal(_pool3(-x, "max"), -x)
    torchvision, fid = InceptionV3("torchvision"), InceptionV3("pytorch-fid")
    blocks = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7b"]
    assert all(getattr(torchvision, b).pool == "avg" for b in blocks + ["Mixed_7c"])
    assert all(getattr(fid, b).pool == "avg-valid" for b in blocks) and fid.Mixed_7c.pool == "max"
    with pytest.raises(ValueError, match="kind must be one of"):
        InceptionV3("tensorflow")


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


def test_name_carries_the_kind_and_the_file_hash(random_weights: Path, fid_weights: Path):
    digest = hashlib.sha256(random_weights.read_bytes()).hexdigest()[:12]
    assert load_inception(str(random_weights)).name == f"inception-v3-torchvision:{digest}"
    digest = hashlib.sha256(fid_weights.read_bytes()).hexdigest()[:12]
    assert load_inception(str(fid_weights)).name == f"inception-v3-pytorch-fid:{digest}"


def test_kind_read_off_the_classifier_or_given(tmp_path: Path, random_weights: Path, fid_weights: Path):
    tv, fid = torch.load(random_weights, weights_only=True), torch.load(fid_weights, weights_only=True)
    assert (weights_kind(tv), weights_kind(fid)) == ("torchvision", "pytorch-fid")
    assert weights_kind({"fc.weight": torch.zeros(10, FEATURES)}) == "torchvision"  # fine-tuned
    assert load_inception(str(fid_weights), kind="pytorch-fid").net.kind == "pytorch-fid"
    # the same tensors through the two kinds of blocks: different features
    x = images(2, 3)
    fid_features = load_inception(str(fid_weights))(x)
    tv_features = load_inception(str(random_weights))(x)
    assert np.abs(tv_features - fid_features).max() > 1e-2 * np.abs(fid_features).max()

    headless = tmp_path / "headless.pt"
    torch.save({k: v for k, v in fid.items() if not k.startswith("fc.")}, headless)
    with pytest.raises(UserError, match="no fc.weight to tell") as err:
        load_inception(str(headless))
    assert str(headless) in str(err.value) and "\n" not in str(err.value)
    given = load_inception(str(headless), kind="pytorch-fid")
    assert given.name.startswith("inception-v3-pytorch-fid:")
    np.testing.assert_allclose(given(x), fid_features, rtol=1e-6)
    assert load_inception(str(headless), kind="torchvision").name.startswith("inception-v3-torchvision:")

    with pytest.raises(UserError, match="given as torchvision, but their fc.weight .* says pytorch-fid"):
        load_inception(str(fid_weights), kind="torchvision")
    with pytest.raises(UserError, match="given as pytorch-fid, but their fc.weight .* says torchvision"):
        load_inception(str(random_weights), kind="pytorch-fid")
    with pytest.raises(UserError, match="expected one of auto, pytorch-fid, torchvision"):
        load_inception(str(random_weights), kind="tf")


def test_batch_counters_may_be_absent(random_weights: Path, fid_weights: Path):
    # fid_weights has no num_batches_tracked; eval-mode batch norm never reads them
    assert not any(k.endswith("num_batches_tracked") for k in torch.load(fid_weights, weights_only=True))
    net = load_inception(str(fid_weights)).net
    assert all(int(v) == 0 for k, v in net.state_dict().items() if k.endswith("num_batches_tracked"))


def test_accepts_a_wrapped_state_dict_with_aux_logits_and_classifier(tmp_path: Path, random_weights: Path):
    state = torch.load(random_weights, weights_only=True)
    plain = load_inception(str(random_weights))(images(2, 2))
    # torchvision's released file carries the auxiliary head and the 1000-class classifier
    state["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    state["AuxLogits.conv0.conv.weight"] = torch.zeros(128, 768, 1, 1)
    path = tmp_path / "wrapped.pt"
    torch.save({"state_dict": state, "epoch": 3}, path)
    extractor = load_inception(str(path))
    assert extractor.name.startswith("inception-v3-torchvision:")
    assert extractor.name != load_inception(str(random_weights)).name
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
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 512)}, other)
    # 564 tensors less the 94 batch counters, which may be absent
    with pytest.raises(UserError, match=r"not Inception-v3 weights \(torchvision\): 470 missing tensors") as err:
        load_inception(str(other))
    assert str(other) in str(err.value) and "1 unexpected tensors (e.g. conv1.weight)" in str(err.value)
    assert "\n" not in str(err.value)

    shapes = tmp_path / "wrong-shape.pt"
    state = _random_state(1008)
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
