import numpy as np
import pytest

from disentune.metrics.base import Metric
from disentune.metrics.precision_recall import (
    compute_precision_recall,
    inside_manifold,
    knn_radii,
    precision_recall,
)
from disentune.registry import METRICS


def modes(n_per_mode, centres, rng, scale=0.5):
    return np.concatenate([rng.normal(loc=c, scale=scale, size=(n_per_mode, len(c))) for c in centres])


def test_hand_worked_one_dimensional():
    # real {0, 1, 2, 10}, k = 1: radii 1, 1, 1, 8 (10's nearest is 2)
    # generated {0.5, 5, 19, 30}, k = 1: radii 4.5, 4.5, 11, 11
    # precision: 0.5 (0.5 from 0, radius 1) yes; 5 (5 from 10, radius 8) yes; 19 (9 from 10 > 8) no;
    #            30 no -> 2/4
    # recall: 0, 1, 2 lie within 4.5 of 0.5; 10 lies 9 from 19, radius 11 -> 4/4
    real = np.array([[0.0], [1.0], [2.0], [10.0]])
    gen = np.array([[0.5], [5.0], [19.0], [30.0]])
    np.testing.assert_allclose(knn_radii(real, 1), np.square([1, 1, 1, 8]))
    np.testing.assert_allclose(knn_radii(gen, 1), np.square([4.5, 4.5, 11, 11]))
    assert inside_manifold(gen, real, knn_radii(real, 1)).tolist() == [True, True, False, False]
    assert precision_recall(real, gen, k=1) == (0.5, 1.0)
    # k = 2 widens the real balls: radii 2, 1, 2, 9 (10's second nearest is 1); 19 is 9 from 10,
    # on the boundary of a closed ball -> inside; 30 is 20 from 10 -> outside: precision 3/4
    np.testing.assert_allclose(knn_radii(real, 2), np.square([2, 1, 2, 9]))
    assert precision_recall(real, gen, k=2)[0] == 0.75


def test_identical_sets_give_one():
    x = np.random.default_rng(0).normal(size=(500, 8))
    out = compute_precision_recall(x, x.copy())
    assert out["precision"] == 1.0 and out["recall"] == 1.0


def test_far_apart_sets_give_zero():
    rng = np.random.default_rng(1)
    out = compute_precision_recall(rng.normal(size=(400, 8)), rng.normal(loc=100.0, size=(400, 8)))
    assert out["precision"] == 0.0 and out["recall"] == 0.0


def test_half_the_modes_gives_full_precision_half_recall():
    rng = np.random.default_rng(2)
    centres = [np.array(c, dtype=float) * 20 for c in [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]]
    real = modes(500, centres, rng)
    generated = modes(1000, centres[:2], rng)
    everywhere = modes(500, centres, rng)
    precision, recall = precision_recall(real, generated, k=3)
    # a finite sample of the same distribution leaves a few tail points outside the k-NN balls
    p_all, r_all = precision_recall(real, everywhere, k=3)
    assert p_all > 0.93 and r_all > 0.93
    assert precision > 0.93 and abs(precision - p_all) < 0.03
    assert 0.45 < recall < 0.52 and abs(recall - r_all / 2) < 0.03
    # swapping the roles swaps the numbers
    assert precision_recall(generated, real, k=3) == (recall, precision)


def test_batching_does_not_change_the_result():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(300, 5)), rng.normal(loc=0.4, size=(257, 5))
    whole = precision_recall(x, y, k=3)
    assert 0 < whole[0] < 1 and 0 < whole[1] < 1
    assert precision_recall(x, y, k=3, max_elements=1000) == whole  # batches of 3 rows
    assert precision_recall(x, y, k=3, max_elements=1) == whole  # one row at a time
    np.testing.assert_allclose(knn_radii(x, 3, max_elements=700), knn_radii(x, 3))


def test_radii_match_brute_force():
    x = np.random.default_rng(4).normal(size=(60, 3))
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    expected = np.sort(d, axis=1)[:, 3] ** 2  # column 0 is the point itself
    np.testing.assert_allclose(knn_radii(x, 3), expected, rtol=1e-9)


def test_records_sizes_and_rejects_bad_input():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(100, 4)), rng.normal(size=(90, 4))
    out = compute_precision_recall(x, y, extractor="factornet-test:abc", num_points=50, k=5)
    assert (out["num_real"], out["num_generated"], out["k"]) == (50, 50, 5)
    assert out["extractor"] == "factornet-test:abc"
    with pytest.raises(ValueError, match="k must be"):
        precision_recall(x[:3], y, k=3)
    with pytest.raises(ValueError, match=r"\(n, f\)"):
        compute_precision_recall(x, np.zeros((10, 3)))


def test_registered_as_quality_metric():
    import disentune.metrics.precision_recall  # noqa: F401 - registers

    entry = METRICS.get("precision_recall")
    assert isinstance(entry, Metric) and entry.kind == "quality"
    assert entry.values == ("precision", "recall") and entry.compute is compute_precision_recall
    assert entry.sample_size() == 5000 and dict(entry.defaults) == {"num_points": 5000, "k": 3}


def plain_precision_recall(real: np.ndarray, generated: np.ndarray, k: int) -> tuple[float, float]:
    """Kynkaanniemi et al. 2019 (their Eq. 1-2) written out directly, sharing nothing with the module.

    A set's manifold is the union of closed balls around its samples, each of radius the distance
    to the sample's k-th nearest neighbour in the set (the sample itself, at distance 0, not
    counted). Precision: the share of generated samples inside the real manifold; recall: the
    share of real samples inside the generated manifold.
    """

    def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))

    def manifold(support: np.ndarray) -> np.ndarray:
        radii = []
        for i in range(len(support)):
            others = np.delete(distances(support[i : i + 1], support)[0], i)
            radii.append(np.sort(others)[k - 1])
        return np.array(radii)

    def share_inside(queries: np.ndarray, support: np.ndarray) -> float:
        radii = manifold(support)
        return float(np.mean([(distances(q[None], support)[0] <= radii).any() for q in queries]))

    return share_inside(generated, real), share_inside(real, generated)


@pytest.mark.parametrize("case", range(5))
def test_equals_a_plain_implementation_of_the_paper(case: int):
    rng = np.random.default_rng(100 + case)
    dim = [2, 8, 32, 64, 2048][case]
    n, m = [(120, 90), (200, 200), (150, 170), (60, 80), (16, 12)][case]
    real = rng.normal(size=(n, dim))
    generated = rng.normal(loc=0.2 * (case + 1) / np.sqrt(dim) * 3, scale=[1.0, 0.7, 1.3, 1.0, 1.0][case],
                           size=(m, dim))
    if case == 3:  # non-negative, like pool3 features after the ReLU
        real, generated = np.abs(real), np.abs(generated)
    expected = plain_precision_recall(real, generated, k=3)
    assert 0 < min(expected) and min(expected) < 1  # a case that can tell implementations apart
    assert precision_recall(real, generated, k=3) == expected
    assert precision_recall(real, generated, k=3, max_elements=997) == expected
    out = compute_precision_recall(real, generated)  # k = 3 by default
    assert (out["precision"], out["recall"]) == expected
