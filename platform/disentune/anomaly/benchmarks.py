"""Anomaly benchmarks whose anomalies are defined exactly (by factors, corruptions or codes).

Every benchmark returns a :class:`Split`: normal images to fit a detector on (``fit``), and test
images with labels (1 = anomalous). Images are float32 ``(n, C, R, R)`` in [0, 1] at the model's
resolution. The protocol of each is stated in :attr:`Split.protocol` and stored with the results.

- ``heldout_shape`` / ``heldout_combination``: the run's ``data.exclude`` regions, which training
  never saw, are the anomalies; normals come from the rest of the grid. ``heldout_shape`` uses the
  regions that name one factor, by the dataset's own factor names (one-class style: a whole shape
  of dSprites or Shapes3D, a SmallNORB category, a Cars3D object is new); ``heldout_combination``
  the regions that name several factors (every factor value was seen on its own, the combination
  never). The benchmark is therefore part of the experiment config, not an afterthought.
- ``local_defects@S``: normal test images against other normal images with a small corruption of
  severity ``S`` (fraction of the image side or of the pixels): a filled or cleared square patch,
  salt-and-pepper noise, or a missing part (the sprite's pixels cleared inside a square).
- ``creative``: images the model decodes from typical codes (uniform inside its traversal range)
  against images decoded from codes outside it (half of the dimensions pushed to 1.5 to 3 times the
  range's edge), after the creativity experiment of Cintas et al. (2022).
- ``digits_oneclass@D``: scikit-learn's shipped 8x8 digits upsampled to the model's resolution;
  digit ``D`` is normal (half of its images fit the detector), every other digit is anomalous.
- ``file:URI``: a user's ``.npz`` (arrays ``images`` and ``label``) or Parquet file (columns
  ``image`` as nested lists or flat lists with ``height``/``width``, and ``label``); normals
  (label 0) are split in half between fitting and testing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from disentune.data.ground_truth import GroundTruthData, Region, excluded_mask
from disentune.errors import UserError

DEFECT_SEVERITIES = (0.05, 0.1, 0.2)


@dataclass(frozen=True)
class Split:
    benchmark: str
    fit: np.ndarray  # (n_fit, C, R, R) normal images
    test: np.ndarray  # (n_test, C, R, R)
    labels: np.ndarray  # (n_test,) 1 = anomalous
    protocol: str

    @property
    def n_normal(self) -> int:
        return int((self.labels == 0).sum())

    @property
    def n_anomalous(self) -> int:
        return int((self.labels == 1).sum())


@dataclass(frozen=True)
class Context:
    """What a benchmark may read: the dataset, the run's excluded regions, the model's decoder."""

    data: GroundTruthData
    regions: tuple[Region, ...]
    decode: Callable[[np.ndarray], np.ndarray] | None = None  # codes (n, d) -> images
    code_ranges: np.ndarray | None = None  # (d, 2)
    num_fit: int = 2000
    num_test: int = 1000  # per class (normal, anomalous)


def _draw(pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(pool, size=min(n, pool.size), replace=False))


def _heldout(ctx: Context, rng: np.random.Generator, *, combination: bool) -> Split:
    name = "heldout_combination" if combination else "heldout_shape"
    # heldout_shape: regions naming one factor (dSprites' or Shapes3D's shape, SmallNORB's
    # category, Cars3D's object, ...); heldout_combination: regions naming several
    regions = [r for r in ctx.regions if (len(r.bounds) > 1) == combination]
    if not regions:
        example = "[{shape: [heart], pos_x: [0.5, 1.0]}]" if combination else "[{shape: [heart]}]"
        raise UserError(f"{name}: the run's data.exclude has no matching region; train with "
                        f"data.exclude: {example} to hold it out")
    inside = excluded_mask(ctx.data, regions)
    trained = ~excluded_mask(ctx.data, ctx.regions)
    normal = _draw(np.flatnonzero(trained), ctx.num_fit + ctx.num_test, rng)
    rng.shuffle(normal)
    fit, normal_test = normal[: ctx.num_fit], normal[ctx.num_fit:]
    anomalous = _draw(np.flatnonzero(inside), ctx.num_test, rng)
    test = np.concatenate([normal_test, anomalous])
    described = "; ".join(", ".join(f"{k}={list(v)}" for k, v in r.bounds.items()) for r in regions)
    return Split(name, ctx.data.images_at(np.sort(fit)), ctx.data.images_at(test),
                 np.r_[np.zeros(len(normal_test)), np.ones(len(anomalous))].astype(np.int8),
                 f"anomalies: images in the held-out region(s) {described}, never trained on; "
                 "normals: images outside every excluded region")


def corrupt(images: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Each image gets one of three defects, each of which changes it:

    - a square patch (side ``severity * R``) filled where it lies mostly on background, cleared
      where it lies mostly on the sprite;
    - salt-and-pepper noise: a fraction ``severity`` of the pixels flipped;
    - a missing part: the sprite's pixels cleared inside a square centred on one of them.
    """
    out = images.copy()
    n, _, r, _ = images.shape
    side = max(1, int(round(severity * r)))
    kinds = rng.integers(0, 3, n)
    for i in range(n):
        if kinds[i] == 2:
            ys, xs = np.nonzero(images[i].max(axis=0) > 0.5)
            at = rng.integers(0, len(ys)) if len(ys) else None
            cy, cx = (ys[at], xs[at]) if at is not None else (r // 2, r // 2)
            y0, x0 = np.clip([cy - side // 2, cx - side // 2], 0, r - side)
            out[i, :, y0 : y0 + side, x0 : x0 + side] = 0.0
        elif kinds[i] == 1:
            hit = rng.random((r, r)) < severity
            hit[rng.integers(0, r), rng.integers(0, r)] = True
            out[i][:, hit] = 1.0 - out[i][:, hit]
        else:
            y0, x0 = rng.integers(0, r - side + 1, 2)
            patch = out[i, :, y0 : y0 + side, x0 : x0 + side]
            patch[...] = 1.0 if patch.mean() < 0.5 else 0.0
    return out


def _local_defects(ctx: Context, rng: np.random.Generator, severity: float) -> Split:
    trained = np.flatnonzero(~excluded_mask(ctx.data, ctx.regions))
    idx = rng.choice(trained, size=min(ctx.num_fit + 2 * ctx.num_test, trained.size), replace=False)
    fit, normal, defect = np.split(idx, [ctx.num_fit, ctx.num_fit + ctx.num_test])
    broken = corrupt(ctx.data.images_at(np.sort(defect)), severity, rng)
    test = np.concatenate([ctx.data.images_at(np.sort(normal)), broken])
    return Split(f"local_defects@{severity:g}", ctx.data.images_at(np.sort(fit)), test,
                 np.r_[np.zeros(len(normal)), np.ones(len(broken))].astype(np.int8),
                 f"anomalies: trained-region images with one defect (patch, salt-and-pepper noise or "
                 f"a missing part) of severity {severity:g}; normals: other trained-region images")


def creative_codes(ranges: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(typical, creative)`` codes ``(n, d)``: inside the ranges, and with half of the
    dimensions pushed to 1.5-3x the range's edge (random sign)."""
    low, high = ranges[:, 0], ranges[:, 1]
    typical = rng.uniform(low, high, size=(n, len(ranges)))
    creative = rng.uniform(low, high, size=(n, len(ranges)))
    pushed = rng.random((n, len(ranges))) < 0.5
    pushed[np.arange(n), rng.integers(0, len(ranges), n)] = True  # at least one per code
    edge = np.where(rng.random((n, len(ranges))) < 0.5, low, high)
    creative[pushed] = (edge * rng.uniform(1.5, 3.0, size=(n, len(ranges))))[pushed]
    return typical.astype(np.float32), creative.astype(np.float32)


def _creative(ctx: Context, rng: np.random.Generator) -> Split:
    if ctx.decode is None or ctx.code_ranges is None:
        raise UserError("creative: needs a model that decodes codes")
    fit_codes, _ = creative_codes(ctx.code_ranges, ctx.num_fit, rng)
    typical, creative = creative_codes(ctx.code_ranges, ctx.num_test, rng)
    test = ctx.decode(np.concatenate([typical, creative]))
    return Split("creative", ctx.decode(fit_codes), test,
                 np.r_[np.zeros(len(typical)), np.ones(len(creative))].astype(np.int8),
                 "anomalies: the model's decodings of codes outside its traversal range (half the "
                 "dimensions at 1.5-3x the edge); normals: decodings of codes inside it")


def resize(images: np.ndarray, resolution: int, channels: int) -> np.ndarray:
    """Bilinear resize of ``(n, c, h, w)`` or ``(n, h, w)`` images to ``(n, channels, R, R)``."""
    import torch
    import torch.nn.functional as F

    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim == 3:
        x = x[:, None]
    if x.shape[-1] != resolution or x.shape[-2] != resolution:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    if x.shape[1] != channels:
        x = x.mean(dim=1, keepdim=True).expand(-1, channels, -1, -1)
    return x.clamp(0, 1).contiguous().numpy()


def _one_class(images: np.ndarray, labels: np.ndarray, name: str, ctx: Context,
               rng: np.random.Generator, protocol: str) -> Split:
    channels, resolution, _ = ctx.data.image_shape
    normal = rng.permutation(np.flatnonzero(labels == 0))
    anomalous = np.flatnonzero(labels == 1)
    if len(normal) < 4 or len(anomalous) < 1:
        raise UserError(f"{name}: needs at least 4 normal (label 0) and 1 anomalous (label 1) images")
    fit, normal_test = normal[: len(normal) // 2], normal[len(normal) // 2:]
    test = np.concatenate([normal_test, anomalous])
    return Split(name, resize(images[fit], resolution, channels), resize(images[test], resolution, channels),
                 np.r_[np.zeros(len(normal_test)), np.ones(len(anomalous))].astype(np.int8), protocol)


def _digits(ctx: Context, rng: np.random.Generator, digit: int) -> Split:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    return _one_class(images, (digits.target != digit).astype(np.int8), f"digits_oneclass@{digit}", ctx, rng,
                      f"scikit-learn's 8x8 digits upsampled; digit {digit} normal (half fit, half test), "
                      "all other digits anomalous")


def read_user_file(uri: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(n, [C,] H, W)`` in [0, 1] and labels ``(n,)`` from a user's ``.npz`` or Parquet."""
    from disentune.storage import read_bytes

    raw = read_bytes(uri)
    try:
        if uri.endswith(".npz"):
            with np.load(io.BytesIO(raw), allow_pickle=False) as f:
                missing = [k for k in ("images", "label") if k not in f.files]
                if missing:
                    raise KeyError(missing[0])
                images, labels = np.asarray(f["images"]), np.asarray(f["label"])
        elif uri.endswith(".parquet"):
            import pyarrow.parquet as pq

            table = pq.read_table(io.BytesIO(raw)).to_pydict()
            labels = np.asarray(table["label"])
            images = np.stack([np.asarray(v, dtype=np.float32) for v in table["image"]])
            if images.ndim == 2:
                h, w = int(table["height"][0]), int(table["width"][0])
                images = images.reshape(len(images), h, w)
        else:
            raise UserError(f"{uri}: anomaly data must be a .npz or .parquet file")
    except UserError:
        raise
    except KeyError as err:
        raise UserError(f"{uri}: missing {str(err.args[0])!r} (needs images/image and label)") from None
    except Exception as err:  # noqa: BLE001 - any unreadable file is one line
        raise UserError(f"{uri}: not a readable anomaly data file ({type(err).__name__})") from None
    if images.ndim not in (3, 4) or len(images) != len(labels):
        raise UserError(f"{uri}: images must be (n, H, W) or (n, C, H, W) with one label each")
    if not set(np.unique(labels).tolist()) <= {0, 1}:
        raise UserError(f"{uri}: label must be 0 (normal) or 1 (anomalous)")
    images = images.astype(np.float32)
    if images.max() > 1.0:
        images = images / 255.0
    if not np.isfinite(images).all():
        raise UserError(f"{uri}: images contain NaN or infinite values")
    return images, labels.astype(np.int8)


def _user(ctx: Context, rng: np.random.Generator, uri: str) -> Split:
    images, labels = read_user_file(uri)
    return _one_class(images, labels, f"file:{uri}", ctx, rng,
                      f"user data {uri}: label 0 normal (half fit, half test), label 1 anomalous")


def benchmark_names(regions: Sequence[Region] = ()) -> tuple[str, ...]:
    """The built-in benchmarks (``heldout_*`` only where the run excluded a matching region)."""
    names = []
    if any(len(r.bounds) == 1 for r in regions):
        names.append("heldout_shape")
    if any(len(r.bounds) > 1 for r in regions):
        names.append("heldout_combination")
    names += [f"local_defects@{s:g}" for s in DEFECT_SEVERITIES]
    names.append("creative")
    names += [f"digits_oneclass@{d}" for d in range(10)]
    return tuple(names)


def check_benchmark(name: str) -> str:
    """Validate a benchmark name (``--benchmarks``) against the registered families; a one-line
    ConfigError names the choices."""
    from disentune.registry import benchmark_family

    benchmark_family(name)
    return name


# how each registered family (anomaly/catalog.py) builds its split: (ctx, rng, argument) -> Split
BUILDERS = {
    "heldout_shape": lambda ctx, rng, arg: _heldout(ctx, rng, combination=False),
    "heldout_combination": lambda ctx, rng, arg: _heldout(ctx, rng, combination=True),
    "local_defects": lambda ctx, rng, arg: _local_defects(ctx, rng, float(arg)),
    "creative": lambda ctx, rng, arg: _creative(ctx, rng),
    "digits_oneclass": lambda ctx, rng, arg: _digits(ctx, rng, int(arg)),
    "file": lambda ctx, rng, arg: _user(ctx, rng, arg),
}


def make_split(name: str, ctx: Context, rng: np.random.Generator) -> Split:
    """Build benchmark ``name`` (see the module docstring) from ``ctx`` with ``rng``."""
    from disentune.registry import benchmark_family

    family, arg = benchmark_family(name)
    return family.build(ctx, rng, arg)
