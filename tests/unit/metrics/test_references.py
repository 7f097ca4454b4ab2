"""FID, KID and precision/recall against the reference code itself: pytorch-fid, torchvision, torch-fidelity.

One subprocess (``reference_quality.py``; it explains why it is one) builds random Inception-v3
weights with pytorch-fid's ``fid_inception_v3()`` and torchvision's ``inception_v3``, saves them,
and computes pytorch-fid's features and FID of two folders of PNGs, torchvision's pool3 features
of the same images, and torch-fidelity's KID and precision/recall of given features. Here the
same files go through :func:`disentune.metrics.inception.load_inception` and the metric cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from disentune.metrics.fid import compute_fid
from disentune.metrics.inception import InceptionExtractor, InceptionV3, load_inception
from disentune.metrics.kid import compute_kid
from disentune.metrics.precision_recall import compute_precision_recall

# `make env` installs torchvision==0.28.0 pytorch-fid==0.3.0 torch-fidelity==0.4.0 here (--no-deps)
SITE = Path(os.environ.get("DISENTUNE_REFERENCE_SITE", Path(sys.prefix) / "reference"))
VERSIONS = ("0.28.0", "0.3.0", "0.4.0")  # torchvision, pytorch-fid, torch-fidelity
N = 8  # images per folder: Inception-v3 at 299 px on a CPU core is about a second an image
KID = [  # torch-fidelity's subsets are drawn from np.random.RandomState(seed), as ours are below
    {"x": "fid:0", "y": "fid:1", "subsets": 10, "subset_size": 6, "seed": 3},
    {"x": "gauss_x", "y": "gauss_y", "subsets": 20, "subset_size": 100, "seed": 11},
]
PRC = [
    {"real": "gauss_x", "generated": "gauss_y", "k": 3},
    {"real": "gauss_y", "generated": "gauss_x", "k": 3},
    {"real": "modes_real", "generated": "modes_half", "k": 3},
]


def _images(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two different sets of odd-sized images: colour noise, and smooth grayscale ramps with noise."""
    colour = (rng.random((N, 29, 37, 3)) * 255).astype(np.uint8)
    ramp = np.linspace(0, 1, 37)[None, None, :] * rng.random((N, 1, 1)) + 0.3 * rng.random((N, 29, 37))
    gray = (np.clip(ramp, 0, 1) * 255).astype(np.uint8)
    return colour, gray


def _features(rng: np.random.Generator) -> dict[str, np.ndarray]:
    centres = np.eye(4, 16) * 12.0
    return {
        "gauss_x": rng.normal(size=(300, 64)),
        "gauss_y": rng.normal(loc=0.15, scale=1.1, size=(250, 64)),
        "modes_real": np.concatenate([rng.normal(c, 1.0, size=(60, 16)) for c in centres]),
        "modes_half": np.concatenate([rng.normal(c, 1.0, size=(90, 16)) for c in centres[:2]]),
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not (SITE / "pytorch_fid").is_dir():
        pytest.fail(f"{SITE}: no reference packages; `make env` installs them there", pytrace=False)
    root = tmp_path_factory.mktemp("reference")
    rng = np.random.default_rng(0)
    colour, gray = _images(rng)
    folders = [root / "colour", root / "gray"]
    for folder, images, mode in zip(folders, (colour, gray), ("RGB", "L")):
        folder.mkdir()
        for i, image in enumerate(images):
            Image.fromarray(image, mode).save(folder / f"{i:02d}.png")
    features = _features(rng)
    np.savez(root / "inputs.npz", **features)
    request = {
        "site": str(SITE), "seed": 0, "batch_size": 5,  # batches of 5 and 3
        "fid_weights": str(root / "pt_inception-2015-12-05-6726825d.pth"),
        "torchvision_weights": str(root / "inception_v3_google.pth"),
        "folders": [str(f) for f in folders], "inputs": str(root / "inputs.npz"),
        "kid": KID, "prc": PRC, "out": str(root / "out.npz"),
    }
    (root / "request.json").write_text(json.dumps(request))
    env = {**os.environ, "TORCH_HOME": str(root / "torch-home")}
    script = Path(__file__).with_name("reference_quality.py")
    done = subprocess.run([sys.executable, str(script), str(root / "request.json")], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = dict(np.load(root / "out.npz"))
    return {"out": out, "request": request, "colour": colour, "gray": gray, "features": features,
            "hub": root / "torch-home"}


def _relative(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


def _ours(reference: dict, weights: str) -> tuple[InceptionExtractor, np.ndarray, np.ndarray]:
    extractor = load_inception(reference["request"][weights])
    colour = reference["colour"].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    gray = reference["gray"][:, None].astype(np.float32) / 255.0  # one channel: repeated to three
    return extractor, extractor(colour), extractor(gray)


def test_reference_versions_and_nothing_fetched(reference: dict):
    out = reference["out"]
    assert [v.split("+")[0] for v in out["versions"][:3]] == list(VERSIONS)
    # pytorch-fid read its weights through torch.hub from the file:// URL, into the test's TORCH_HOME
    cached = reference["hub"] / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    assert cached.read_bytes() == Path(reference["request"]["fid_weights"]).read_bytes()
    assert list(out["fid_files_0"]) == [f"{i:02d}.png" for i in range(N)]


def test_features_and_fid_equal_pytorch_fids(reference: dict):
    out = reference["out"]
    extractor, colour, gray = _ours(reference, "fid_weights")
    digest = hashlib.sha256(Path(reference["request"]["fid_weights"]).read_bytes()).hexdigest()[:12]
    assert extractor.name == f"inception-v3-pytorch-fid:{digest}"
    ref_colour, ref_gray = out["fid_features_0"], out["fid_features_1"]
    assert ref_colour.shape == (N, 2048) and 0.01 < ref_colour.mean() < 100  # features of order 1
    assert _relative(colour, ref_colour) < 1e-4 and _relative(gray, ref_gray) < 1e-4
    np.testing.assert_allclose(colour, ref_colour, rtol=1e-4, atol=1e-5 * np.abs(ref_colour).max())
    fid = compute_fid(colour, gray, extractor=extractor.name)
    assert float(out["fid"]) > 1.0 and fid["fid"] == pytest.approx(float(out["fid"]), rel=1e-4)
    assert fid["extractor"] == extractor.name


def test_torchvision_blocks_give_other_features_on_the_fid_weights(reference: dict):
    # the FID blocks are what makes the number pytorch-fid's: torchvision's pooling on the same
    # tensors moves the features well beyond the tolerance above
    state = torch.load(reference["request"]["fid_weights"], weights_only=True)
    net = InceptionV3("torchvision")
    net.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")})
    colour = reference["colour"].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    other = InceptionExtractor(net, "inception-v3-torchvision:x")(colour)
    assert _relative(other, reference["out"]["fid_features_0"]) > 1e-2


def test_features_equal_torchvisions(reference: dict):
    out = reference["out"]
    extractor, colour, gray = _ours(reference, "torchvision_weights")
    assert extractor.name.startswith("inception-v3-torchvision:")
    assert 0.01 < out["torchvision_features_0"].mean() < 100
    assert _relative(colour, out["torchvision_features_0"]) < 1e-4
    assert _relative(gray, out["torchvision_features_1"]) < 1e-4


@pytest.mark.parametrize("case", range(len(KID)))
def test_kid_equals_torch_fidelitys(reference: dict, case: int):
    spec, out = KID[case], reference["out"]
    sets = {**reference["features"], "fid:0": out["fid_features_0"], "fid:1": out["fid_features_1"]}
    ours = compute_kid(sets[spec["x"]], sets[spec["y"]], rng=np.random.RandomState(spec["seed"]),
                       num_subsets=spec["subsets"], subset_size=spec["subset_size"])
    mean, std = out[f"kid_{case}"]
    assert abs(mean) > 1e-6 and std > 0
    assert ours["kid"] == pytest.approx(mean, rel=1e-9) and ours["kid_std"] == pytest.approx(std, rel=1e-9)
    assert (ours["num_subsets"], ours["subset_size"]) == (spec["subsets"], spec["subset_size"])


@pytest.mark.parametrize("case", range(len(PRC)))
def test_precision_recall_equal_torch_fidelitys(reference: dict, case: int):
    spec = PRC[case]
    sets = reference["features"]
    ours = compute_precision_recall(sets[spec["real"]], sets[spec["generated"]], k=spec["k"])
    precision, recall = reference["out"][f"prc_{case}"]  # float32 fractions
    # the same counts: 1e-6 is far below one sample's share (1 / 360 at most)
    assert ours["precision"] == pytest.approx(precision, abs=1e-6)
    assert ours["recall"] == pytest.approx(recall, abs=1e-6)
    assert 0 < min(precision, recall) and min(precision, recall) < 1
