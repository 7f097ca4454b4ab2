"""The reference implementations the quality metrics are checked against, run in a subprocess.

``python reference_quality.py REQUEST.json`` builds random Inception-v3 weights with the reference
packages' own constructors, saves them, and writes what the references compute from them to the
``.npz`` the request names (see :func:`main`). Nothing here imports disentune: the test compares.

- pytorch-fid 0.3.0: ``fid_inception_v3()`` (random weights in its FID layout),
  ``fid_score.calculate_fid_given_paths`` (features of PNG folders through
  ``InceptionV3([3], resize_input=True, normalize_input=True)``, their mean and covariance, and
  ``calculate_frechet_distance``), with its ``FID_WEIGHTS_URL`` pointed at the saved file by a
  ``file://`` URL and ``TORCH_HOME`` in the test's temporary folder, so nothing is downloaded;
- torchvision 0.28.0: ``models.inception_v3`` (random weights in torchvision's layout, and its
  pool3 features with ``fc = Identity``);
- torch-fidelity 0.4.0: ``metric_kid.kid_features_to_metric`` and
  ``metric_prc.prc_features_to_metric`` on given features.

Why a subprocess and a folder of its own: all three import torchvision, and PyPI's torchvision
wheels are CUDA builds whose compiled ops (``torchvision/_C.so`` links CUDA's libtorch) do not load
beside the CPU build of torch the project installs; torchvision 0.28 then fails at import, in
``_meta_registrations``, with "operator torchvision::nms does not exist". `make env` installs the
three packages with ``--no-deps`` into ``<venv>/reference``, outside the venv's site-packages, so
no other test ever imports that torchvision. This script puts the folder first on ``sys.path`` and,
only when torchvision's compiled ops do not load, declares the schemas of the two operators whose
fake kernels ``_meta_registrations`` registers without checking (``nms``, ``qnms``: declared, with
no kernel, so calling them still fails). No torchvision operator is used here: Inception-v3 is
torch's own convolutions, pooling and batch norm.
"""

from __future__ import annotations

import glob
import json
import os
import sys


def _import_torchvision(site: str):
    sys.path.insert(0, site)
    import torch

    libraries = glob.glob(os.path.join(site, "torchvision", "_C*.so"))
    try:
        for path in libraries:
            torch.ops.load_library(path)
        loaded = bool(libraries)
    except OSError:
        loaded = False
    if not loaded:
        for op in ("nms", "qnms"):
            torch.library.define(f"torchvision::{op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision

    assert os.path.dirname(os.path.dirname(torchvision.__file__)) == site, torchvision.__file__
    return torchvision


def _randomise(net, seed: int) -> None:
    """He-initialised convolutions and batch norms with random statistics and affine parameters.

    PyTorch's default initialisation shrinks pool3 features to ~1e-7 through the 94 layers; He
    initialisation keeps them of order 1, and random batch-norm parameters make every tensor count.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.8 + 0.4 * torch.rand(c, generator=gen))
                m.weight.copy_(0.8 + 0.4 * torch.rand(c, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
            elif isinstance(m, torch.nn.Linear):
                m.weight.copy_(0.01 * torch.randn(m.weight.shape, generator=gen))


def main(request_path: str) -> None:
    """Run the request: a JSON object with

    ``site`` (the folder holding torchvision, pytorch_fid, torch_fidelity), ``seed``,
    ``fid_weights`` / ``torchvision_weights`` (paths to write), ``folders`` (two folders of PNGs),
    ``batch_size``, ``inputs`` (an ``.npz`` of feature sets), ``kid`` (a list of ``{x, y,
    subsets, subset_size, seed}``: array names in ``inputs``, or ``"fid:0"`` / ``"fid:1"`` for
    pytorch-fid's features of the two folders), ``prc`` (a list of ``{real, generated, k}``) and
    ``out`` (the ``.npz`` to write).
    """
    with open(request_path) as f:
        req = json.load(f)
    torchvision = _import_torchvision(req["site"])
    import numpy as np
    import torch
    import pytorch_fid.fid_score as fid_score
    import pytorch_fid.inception as fid_inception
    from torch_fidelity.metric_kid import kid_features_to_metric
    from torch_fidelity.metric_prc import prc_features_to_metric

    import pytorch_fid
    import torch_fidelity

    torch.manual_seed(req["seed"])
    out: dict[str, np.ndarray] = {"versions": np.array([
        torchvision.__version__, pytorch_fid.__version__, torch_fidelity.__version__, torch.__version__,
    ])}

    # pytorch-fid's own FID network, random weights saved in its layout (the loader is handed a
    # fresh torchvision state dict of the right shapes, so nothing is fetched)
    real_loader = fid_inception.load_state_dict_from_url
    fid_inception.load_state_dict_from_url = lambda url, progress=True: fid_inception._inception_v3(
        num_classes=1008, aux_logits=False, weights=None
    ).state_dict()
    net = fid_inception.fid_inception_v3()
    fid_inception.load_state_dict_from_url = real_loader
    _randomise(net, req["seed"])
    torch.save(net.state_dict(), req["fid_weights"])

    # calculate_fid_given_paths loads that file through torch.hub from a file:// URL
    fid_inception.FID_WEIGHTS_URL = "file://" + os.path.abspath(req["fid_weights"])
    recorded = []
    real_get_activations = fid_score.get_activations

    def get_activations(*args, **kwargs):
        recorded.append(real_get_activations(*args, **kwargs))
        return recorded[-1]

    fid_score.get_activations = get_activations
    fid = fid_score.calculate_fid_given_paths(req["folders"], req["batch_size"], "cpu", 2048, num_workers=0)
    out["fid"] = np.array(float(fid))
    out["fid_features_0"], out["fid_features_1"] = recorded
    files = [sorted(os.listdir(folder)) for folder in req["folders"]]
    out["fid_files_0"], out["fid_files_1"] = (np.array(f) for f in files)

    # torchvision's Inception-v3 in its own layout (auxiliary head and 1000 classes included)
    tv = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    _randomise(tv, req["seed"] + 1)
    torch.save(tv.state_dict(), req["torchvision_weights"])
    tv.fc = torch.nn.Identity()
    tv.eval()
    from PIL import Image

    with torch.no_grad():
        for i, folder in enumerate(req["folders"]):
            images = np.stack([np.asarray(Image.open(os.path.join(folder, f)).convert("RGB")) for f in files[i]])
            x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
            x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            out[f"torchvision_features_{i}"] = tv(2.0 * x - 1.0).double().numpy()

    inputs = dict(np.load(req["inputs"]))
    inputs["fid:0"], inputs["fid:1"] = out["fid_features_0"], out["fid_features_1"]
    for i, kid in enumerate(req["kid"]):
        value = kid_features_to_metric(
            torch.from_numpy(inputs[kid["x"]]), torch.from_numpy(inputs[kid["y"]]),
            kid_subsets=kid["subsets"], kid_subset_size=kid["subset_size"], rng_seed=kid["seed"], verbose=False,
        )
        out[f"kid_{i}"] = np.array([value["kernel_inception_distance_mean"], value["kernel_inception_distance_std"]])
    for i, prc in enumerate(req["prc"]):
        # torch-fidelity's convention: features_1 is the generated set, features_2 the real one
        value = prc_features_to_metric(
            torch.from_numpy(inputs[prc["generated"]]), torch.from_numpy(inputs[prc["real"]]),
            prc_neighborhood=prc["k"], prc_batch_size=10000, save_cpu_ram=False, verbose=False,
        )
        out[f"prc_{i}"] = np.array([value["precision"], value["recall"]])
    np.savez(req["out"], **out)


if __name__ == "__main__":
    main(sys.argv[1])
