"""The registered detectors and benchmark families: what an anomaly config's names mean.

A detector is a :class:`DetectorSpec`: either a *feature* detector (``make(cfg)`` returns an object
with ``fit(normal (n, f))`` and ``score(features (m, f)) -> (m,)``, run in each of the config's
``latent_spaces``, or ``scan_spaces`` for subset scanning), or a *model* score (``score(model,
images, device) -> (n,)``, higher = more anomalous, no fitting). ``applies(variant)`` says which
families it can score. A benchmark family is a :class:`BenchmarkFamily`: a name, the argument it
takes after ``@`` (``local_defects@0.2``) or ``:`` (``file:URI``), and how it builds its split
(:mod:`disentune.anomaly.benchmarks`). Both registries take plugins (entry-point groups
``disentune.detectors`` for detectors), so config files name them and never import them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

from disentune.registry import BENCHMARKS, DETECTORS


@dataclass(frozen=True)
class DetectorSpec:
    """One registered detector (see the module docstring)."""

    name: str
    kind: Literal["features", "model"]
    make: Callable[[Any], Any] | None = None  # features: AnomalyConfig -> a fit/score detector
    score: Callable[..., Any] | None = None  # model: (model, images, device) -> (n,) scores
    spaces: Literal["latent", "scan"] = "latent"
    applies: Callable[[Any], bool] = lambda variant: True  # the registered Variant -> bool


@dataclass(frozen=True)
class BenchmarkFamily:
    """A family of benchmarks: ``name`` alone, or ``name@ARG`` / ``name:ARG`` (``separator``)."""

    name: str
    build: Callable[..., Any]  # (Context, rng, arg) -> benchmarks.Split
    separator: str = ""  # "", "@" or ":"
    accepts: Callable[[str], bool] = lambda arg: arg == ""
    needs_factors: bool = False  # reads the dataset's factor grid (refused on image collections)
    describe: str = ""


def _mahalanobis(cfg: Any) -> Any:
    from disentune.anomaly.detectors import Mahalanobis

    return Mahalanobis()


def _knn(cfg: Any) -> Any:
    from disentune.anomaly.detectors import KNN

    return KNN(k=cfg.knn_k)


def _subset_scan(cfg: Any) -> Any:
    from disentune.anomaly.detectors import SubsetScan

    return SubsetScan(statistic=cfg.scan_statistic, alpha_max=cfg.alpha_max, tails=cfg.tails)


def _model_score(name: str) -> Callable[..., Any]:
    def score(model: Any, images: Any, device: Any) -> Any:
        from disentune.anomaly import features

        return {"reconstruction": features.reconstruction_error, "neg_elbo": features.neg_elbo,
                "discriminator": features.discriminator_score}[name](model, images, device)

    return score


for _spec in (
    DetectorSpec("mahalanobis", "features", make=_mahalanobis),
    DetectorSpec("knn", "features", make=_knn),
    DetectorSpec("subset_scan", "features", make=_subset_scan, spaces="scan"),
    DetectorSpec("reconstruction", "model", score=_model_score("reconstruction")),
    # the negative ELBO needs a posterior (VAE families), the discriminator score a discriminator
    DetectorSpec("neg_elbo", "model", score=_model_score("neg_elbo"), applies=lambda v: not v.adversarial),
    DetectorSpec("discriminator", "model", score=_model_score("discriminator"), applies=lambda v: v.adversarial),
):
    DETECTORS.register(_spec.name)(_spec)


def _severity(arg: str) -> bool:
    try:
        return 0 < float(arg) <= 1
    except ValueError:
        return False


def _build(name: str) -> Callable[..., Any]:
    def build(ctx: Any, rng: Any, arg: str) -> Any:
        from disentune.anomaly import benchmarks

        return benchmarks.BUILDERS[name](ctx, rng, arg)

    return build


for _family in (
    BenchmarkFamily("heldout_shape", _build("heldout_shape"), needs_factors=True),
    BenchmarkFamily("heldout_combination", _build("heldout_combination"), needs_factors=True),
    BenchmarkFamily("local_defects", _build("local_defects"), "@", _severity, needs_factors=True,
                    describe="local_defects@SEVERITY (0-1]"),
    BenchmarkFamily("creative", _build("creative")),
    BenchmarkFamily("digits_oneclass", _build("digits_oneclass"), "@", lambda a: a.isdigit() and int(a) <= 9,
                    describe="digits_oneclass@DIGIT (0-9)"),
    BenchmarkFamily("file", _build("file"), ":", lambda a: bool(a), describe="file:URI"),
):
    BENCHMARKS.register(_family.name)(_family)
