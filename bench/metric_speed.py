"""Speed of the disentanglement metrics, and agreement with disentanglement_lib-style loops.

    python bench/metric_speed.py [--dci-points N] [--dci-only]

Synthetic data: 10,000 points (15,000 for the train/test metrics) of 5 uniform factors with
dSprites' sizes (3, 6, 40, 32, 32); the representation has 10 dimensions, 5 a noisy mix of the
factors and 5 pure noise. The interventional metrics encode with the same map in numpy. Besides
each metric's time, the script runs the reference library's per-pair loops for MIG
(``mutual_info_score`` per latent and factor), SAP (one ``LinearSVC`` per latent and factor) and
DCI (one ``GradientBoostingClassifier`` per factor) on the same data and prints the speed ratio
and the largest absolute difference of their values from ours. DCI gets a table of its own: our
default backend (the presorted trees of ``disentune.metrics.gbt``) against scikit-learn's
estimator in the reference loop, with the largest difference of the importance matrices and D, C,
I of each. ``--dci-points`` shrinks DCI's train set (test = half of it): scikit-learn takes about
five minutes at the default 10,000; ``--dci-only`` skips the other metrics.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Callable

import numpy as np
import scipy.stats
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import mutual_info_score
from sklearn.svm import LinearSVC

from disentune.metrics.beta_vae_score import compute_beta_vae_score
from disentune.metrics.dci import compute_dci
from disentune.metrics.explicitness import compute_explicitness
from disentune.metrics.factor_vae_score import compute_factor_vae_score
from disentune.metrics.mig import compute_mig
from disentune.metrics.modularity import compute_modularity
from disentune.metrics.sap import compute_sap

SIZES = np.array([3, 6, 40, 32, 32])
MIX = np.eye(5, 10) + 0.15 * np.eye(5, 10, k=1)  # each factor leaks a little into the next dim


def encode(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A noisy linear representation ``(n, 10)`` of factor classes ``(n, 5)``."""
    return (classes / SIZES) @ MIX + 0.05 * rng.normal(size=(len(classes), 10))


def timed(fn: Callable[[], dict], repeat: int = 1) -> tuple[float, dict]:
    best, out = float("inf"), {}
    for _ in range(repeat):
        began = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - began)
    return best, out


def wall_and_cpu(fn: Callable[[], dict]) -> tuple[float, float, dict]:
    """Wall and process CPU seconds of one call, and its result; CPU time is the fairer clock when
    other jobs share the cores."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


# ---- disentanglement_lib-style reference loops (arrays are (n, d) / (n, K) here) ----

def reference_mig(rep: np.ndarray, factors: np.ndarray, num_bins: int = 20) -> float:
    codes = np.zeros_like(rep)
    for i in range(rep.shape[1]):
        codes[:, i] = np.digitize(rep[:, i], np.histogram(rep[:, i], num_bins)[1][:-1])
    mi = np.array([[mutual_info_score(factors[:, k], codes[:, i]) for k in range(factors.shape[1])]
                   for i in range(rep.shape[1])])
    entropy = np.array([mutual_info_score(factors[:, k], factors[:, k]) for k in range(factors.shape[1])])
    top = np.sort(mi, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / entropy))


def reference_sap(x_train, y_train, x_test, y_test) -> float:
    scores = np.zeros((x_train.shape[1], y_train.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(x_train.shape[1]):
            for k in range(y_train.shape[1]):
                model = LinearSVC(C=0.01, class_weight="balanced").fit(x_train[:, i:i + 1], y_train[:, k])
                scores[i, k] = np.mean(model.predict(x_test[:, i:i + 1]) == y_test[:, k])
    top = np.sort(scores, axis=0)
    return float(np.mean(top[-1] - top[-2]))


def reference_dci(x_train, y_train, x_test, y_test, random_state: int | None = None) -> dict:
    """The reference's loop; it passes no random_state, which only breaks exact ties between
    features, so the bench passes ours to compare like with like. Returns D, C, I and the
    importance matrix ``(d, K)``."""
    importance = np.zeros((x_train.shape[1], y_train.shape[1]))
    test_acc = []
    for k in range(y_train.shape[1]):
        model = GradientBoostingClassifier(random_state=random_state)
        model.fit(x_train, y_train[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        test_acc.append(np.mean(model.predict(x_test) == y_test[:, k]))
    per_code = 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=importance.shape[1])
    per_factor = 1.0 - scipy.stats.entropy(importance + 1e-11, base=importance.shape[0])
    return {
        "dci_disentanglement": float(np.sum(per_code * importance.sum(axis=1) / importance.sum())),
        "dci_completeness": float(np.sum(per_factor * importance.sum(axis=0) / importance.sum())),
        "dci_informativeness": float(np.mean(test_acc)),
        "importance_matrix": importance,
    }


def dci_backends(rep: np.ndarray, factors: np.ndarray, dci_points: int) -> None:
    """Print DCI with our presorted trees against scikit-learn's estimator, on the same split."""
    n_train, n_test = dci_points, dci_points // 2
    x_tr, y_tr = rep[:n_train], factors[:n_train]
    x_te, y_te = rep[n_train:n_train + n_test], factors[n_train:n_train + n_test]
    compute_dci(rep[:60], factors[:60], rng=np.random.default_rng(4), num_train=40, num_test=20)
    # (the call above compiles the trees, or loads them from numba's cache: not timed)
    t, cpu, ours = wall_and_cpu(lambda: compute_dci(
        np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te]), rng=np.random.default_rng(4),
        num_train=n_train, num_test=n_test, backend="presorted"))
    t_ref, cpu_ref, ref = wall_and_cpu(
        lambda: reference_dci(x_tr, y_tr, x_te, y_te, ours["gbt_random_state"]))
    diff = np.abs(np.array(ours["importance_matrix"]) - ref["importance_matrix"]).max()
    print(f"\nDCI, {n_train:,} train + {n_test:,} test points, factors (3, 6, 40, 32, 32), "
          f"10 latents, random_state {ours['gbt_random_state']}")
    print(f"{'backend':<34}{'wall s':>8}{'CPU s':>8}{'D':>9}{'C':>9}{'I':>9}  max |importance - sklearn's|")
    for name, wall, cpu_s, values, shown in (
            ("presorted (disentune.metrics.gbt)", t, cpu, ours, f"{diff:.1e}"),
            ("sklearn (the reference loop)", t_ref, cpu_ref, ref, "-")):
        d, c, i = (values[f"dci_{k}"] for k in ("disentanglement", "completeness", "informativeness"))
        print(f"{name:<34}{wall:>8.1f}{cpu_s:>8.1f}{d:>9.4f}{c:>9.4f}{i:>9.4f}  {shown}")
    print(f"speed-up {t_ref / t:.1f}x wall, {cpu_ref / cpu:.1f}x CPU; |D, C, I differences| <= "
          f"{max(abs(ours[k] - ref[k]) for k in ref if k != 'importance_matrix'):.1e}")


def main(dci_points: int, dci_only: bool) -> None:
    rng = np.random.default_rng(0)
    factors = rng.integers(0, SIZES, size=(15_000, 5))
    rep = encode(factors, rng)
    rep[:, 5:] = rng.normal(size=(15_000, 5))  # five noise dimensions
    if dci_only:
        dci_backends(rep, factors, dci_points)
        return
    noise = np.random.default_rng(1)

    def represent(classes: np.ndarray) -> np.ndarray:
        out = encode(classes, noise)
        out[:, 5:] = noise.normal(size=(len(classes), 5))
        return out

    rows = []  # (metric, seconds, values, reference seconds, max |diff|)
    t, mig = timed(lambda: compute_mig(rep[:10_000], factors[:10_000]), repeat=3)
    t_ref, ref = timed(lambda: {"mig": reference_mig(rep[:10_000], factors[:10_000])})
    rows.append(("mig", t, {"mig": mig["mig"]}, t_ref, abs(mig["mig"] - ref["mig"])))

    t, sap = timed(lambda: compute_sap(rep, factors), repeat=3)
    split = (rep[:10_000], factors[:10_000], rep[10_000:], factors[10_000:])
    t_ref, ref = timed(lambda: {"sap": reference_sap(*split)})
    rows.append(("sap", t, {"sap": sap["sap"]}, t_ref, abs(sap["sap"] - ref["sap"])))

    t, mod = timed(lambda: compute_modularity(rep[:10_000], factors[:10_000]), repeat=3)
    rows.append(("modularity", t, {"modularity": mod["modularity"]}, None, None))

    t, exp = timed(lambda: compute_explicitness(rep, factors))
    rows.append(("explicitness", t, {"explicitness": exp["explicitness"]}, None, None))

    t, fvae = timed(lambda: compute_factor_vae_score(represent, SIZES, rng=np.random.default_rng(2)))
    rows.append(("factor_vae_score", t, {"factor_vae_score": fvae["factor_vae_score"]}, None, None))

    t, bvae = timed(lambda: compute_beta_vae_score(represent, SIZES, rng=np.random.default_rng(3)))
    rows.append(("beta_vae_score", t, {"beta_vae_score": bvae["beta_vae_score"]}, None, None))

    print("10,000 points (train/test metrics 10,000 + 5,000) x 10 latents x 5 factors (3, 6, 40, 32, 32)")
    print(f"{'metric':<28}{'ours s':>9}{'ref loop s':>12}{'speed-up':>10}{'max |diff|':>12}  values")
    for name, t, values, t_ref, diff in rows:
        ref_cols = (f"{t_ref:>12.3f}{t_ref / t:>9.1f}x{diff:>12.2e}" if t_ref is not None
                    else f"{'-':>12}{'-':>10}{'-':>12}")
        shown = ", ".join(f"{k}={v:.4f}" for k, v in values.items())
        print(f"{name:<28}{t:>9.3f}{ref_cols}  {shown}")
    print(f"{'all our metrics but DCI':<28}{sum(r[1] for r in rows):>9.1f}")
    dci_backends(rep, factors, dci_points)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dci-points", type=int, default=10_000, help="DCI train points (test: half)")
    parser.add_argument("--dci-only", action="store_true", help="only the DCI table")
    args = parser.parse_args()
    main(args.dci_points, args.dci_only)
