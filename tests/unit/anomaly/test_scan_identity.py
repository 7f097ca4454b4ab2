"""The vectorised per-sample scan returns exactly what today's row-by-row scan returns.

``reference_scan`` holds that code verbatim. Scores, alphas and node masks must be equal (not
close) on tied inputs (binary pixels, ReLU-like activations with dead units, small integers) and
untied ones, for every statistic, both tails, both p-value conventions and several ``alpha_max``;
on arbitrary ranges (the per-row ranked grid) as well as lattice p-values (the shared grid); and
against brute force over every node subset and grid level for small J.
"""

import itertools
import zlib

import numpy as np
import pytest
import torch
from disentune.anomaly.ltss import candidate_alphas
from disentune.anomaly.pvalues import Background, empirical_pvalues
from disentune.anomaly.scan_statistics import BOUNDS, NUMPY, STATISTICS, alpha_counts
from disentune.anomaly.subset_scan import _may_improve, _scan_pmax_rows, scan_samples, shared_levels, subset_score

from . import reference_scan as ref

NAMES = sorted(STATISTICS)


def activations(rng, kind, n, num_nodes):
    """``n`` samples of ``num_nodes`` features of one kind; anomalies are shifted in a few nodes."""
    if kind == "binary":  # sprites: each pixel on with its own rate, some never on
        rate = rng.random(num_nodes) ** 3 * (rng.random(num_nodes) < 0.8)
        return (rng.random((n, num_nodes)) < rate).astype(float)
    if kind == "relu":  # half the values at 0, some units dead, some samples larger
        x = rng.normal(size=(n, num_nodes)) + rng.normal(size=num_nodes) * 0.5
        x[:, rng.random(num_nodes) < 0.2] = -1.0
        return np.maximum(x * rng.choice([1.0, 1.0, 2.5], size=(n, 1)), 0.0)
    if kind == "integer":
        return rng.integers(0, 4, size=(n, num_nodes)).astype(float)
    return rng.normal(size=(n, num_nodes)) + 2.0 * (rng.random((n, num_nodes)) < 0.05)


def assert_identical(pmin, pmax, statistic, alpha_max):
    score, alpha, size, nodes = ref.scan_samples(pmin, pmax, statistic=statistic, alpha_max=alpha_max)
    new = scan_samples(pmin, pmax, statistic=statistic, alpha_max=alpha_max)
    np.testing.assert_array_equal(new.score, score)
    np.testing.assert_array_equal(new.alpha, alpha)
    np.testing.assert_array_equal(new.nodes, nodes)
    np.testing.assert_array_equal(new.size, size)


@pytest.mark.parametrize("kind", ["binary", "relu", "integer", "continuous"])
@pytest.mark.parametrize("tails", [1, 2])
def test_identical_to_the_reference_on_empirical_pvalues(kind, tails):
    rng = np.random.default_rng(zlib.crc32(f"{kind} {tails}".encode()))
    for trial in range(6):
        num_nodes = int(rng.integers(1, 60))
        x = activations(rng, kind, int(rng.integers(5, 80)) + 24, num_nodes)
        convention = ("point", "fgss")[trial % 2]
        pv = empirical_pvalues(x[24:], x[:24] if trial % 3 else x[:5], tails=tails, convention=convention)
        for statistic in NAMES:
            assert_identical(pv.pmin, pv.pmax, statistic, float(rng.choice([0.05, 0.2, 0.5, 0.9])))


def test_identical_on_activations_of_realistic_size():
    # 256 nodes, a background of 400: the shared grid, the pmax shortcut and the level bounds at work
    rng = np.random.default_rng(0)
    for kind in ("binary", "relu"):
        x = activations(rng, kind, 440, 256)
        x[400:410, :20] += 1.0  # ten anomalous samples
        for tails in (1, 2):
            pv = empirical_pvalues(x[400:], x[:400], tails=tails)
            assert shared_levels(pv.pmin, pv.pmax, 0.5) is not None
            for statistic in NAMES:
                assert_identical(pv.pmin, pv.pmax, statistic, 0.5)


def test_identical_on_arbitrary_ranges_and_coarse_lattices():
    # not empirical p-values: per-row ranked grids (too many distinct endpoints to share), exact
    # zeros, full ranges [0, 1], ties between endpoints
    rng = np.random.default_rng(1)
    grids = set()
    for trial in range(40):
        rows, num_nodes = int(rng.integers(1, 12)), int(rng.integers(1, 30))
        lo = rng.random((rows, num_nodes)) ** rng.uniform(0.3, 3.0)
        width = rng.random((rows, num_nodes)) * (rng.random((rows, num_nodes)) < rng.random())
        if trial % 3 == 0:
            lo, width = np.round(lo * 7) / 7, np.round(width * 7) / 7
        if trial % 5 == 0:
            lo[:, : num_nodes // 2] = 0.0
        hi = np.minimum(lo + width, 1.0)
        if trial % 7 == 0:
            lo[:, -1], hi[:, -1] = 0.0, 1.0
        if trial % 4 == 1:  # two endpoints 1e-9 apart: levels found by binary search, not buckets
            lo, hi = np.round(lo * 20) / 20, np.round(hi * 20) / 20
            lo[0, 0], hi[0, 0] = 0.1, 0.1 + 1e-9
        alpha_max = float(rng.choice([0.05, 0.3, 0.5, 0.95]))
        levels = shared_levels(lo, hi, alpha_max)
        grids.add("rows halved" if levels is None else "searched" if levels.first is None else "bucketed")
        for statistic in NAMES:
            assert_identical(lo, hi, statistic, alpha_max)
    assert grids == {"rows halved", "searched", "bucketed"}  # every way of finding the levels


@pytest.mark.parametrize("statistic", NAMES)
def test_rows_go_the_exact_way_only_when_a_fractional_count_can_help(statistic):
    rng = np.random.default_rng(2)
    x = activations(rng, "relu", 330, 64)
    pv = empirical_pvalues(x[300:], x[:300])
    lo, hi = pv.pmin.copy(), pv.pmax.copy()
    # rows 0-4: ranges from near 0 to just above alpha_max in 20 nodes: never counted as ones, but
    # counting about 0.9 each at alpha_max
    lo[:5, :20], hi[:5, :20] = 1 / 301, 165 / 301
    score, alpha, _, ordered, lowest = _scan_pmax_rows(lo, hi, STATISTICS[statistic], 0.5, NUMPY)
    routed = _may_improve(lo, hi, ordered, lowest, score, alpha, STATISTICS[statistic], 0.5, NUMPY)
    assert routed[:5].all()
    reference = ref.scan_samples(lo, hi, statistic=statistic)
    assert (reference[0][:5] > score[:5]).sum() >= 4  # the pmax scan alone would be wrong there
    # ReLU ties at 0 ([~0.5, 1]) never count above alpha: those rows keep the pmax scan
    assert not routed[5:].any()
    np.testing.assert_array_equal(reference[0][5:], score[5:])
    assert_identical(lo, hi, statistic, 0.5)


def brute_force(lo, hi, statistic, alpha_max):
    """The max of F over every node subset and every level of the row's grid (at least 0)."""
    grid = candidate_alphas(lo, hi, alpha_max)
    masks = np.array(list(itertools.product([0.0, 1.0], repeat=len(lo))))
    counts = alpha_counts(grid[:, None], lo[None], hi[None])  # (A, J)
    scores = STATISTICS[statistic](counts @ masks.T, masks.sum(axis=1)[None], grid[:, None])
    return max(0.0, float(scores.max()))


@pytest.mark.parametrize("statistic", NAMES)
def test_equals_brute_force_for_small_node_counts(statistic):
    rng = np.random.default_rng(3)
    for trial, kind in zip(range(24), itertools.cycle(["binary", "relu", "integer", "continuous"])):
        num_nodes = int(rng.integers(1, 11))
        x = activations(rng, kind, 14, num_nodes)
        pv = empirical_pvalues(x[10:], x[:10], tails=1 + trial % 2, convention=("point", "fgss")[trial % 3 == 0])
        alpha_max = float(rng.choice([0.2, 0.5, 0.9]))
        res = scan_samples(pv.pmin, pv.pmax, statistic=statistic, alpha_max=alpha_max)
        for i in range(4):
            lo, hi = pv.pmin[i], pv.pmax[i]
            assert np.isclose(res.score[i], brute_force(lo, hi, statistic, alpha_max), rtol=1e-9, atol=1e-12)
            again, _ = subset_score(lo[None], hi[None], nodes=res.nodes[i], statistic=statistic,
                                    alpha_max=alpha_max, alphas=candidate_alphas(lo, hi, alpha_max))
            assert np.isclose(again, res.score[i], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("statistic", NAMES)
def test_bounds_hold_over_every_subset_size(statistic):
    # BOUNDS[statistic](c1, h, S, S, Q, alpha) >= F(c1 + w_1 + ... + w_k, c1 + k) for every k, over
    # the counts sorted in descending order, helpful (w > alpha) or not
    rng = np.random.default_rng(4)
    stat, bound = STATISTICS[statistic], BOUNDS[statistic]
    for _ in range(300):
        alpha = float(rng.uniform(0.01, 0.95))
        ones = int(rng.integers(0, 30))
        w = np.sort(rng.random(int(rng.integers(0, 40))) ** rng.uniform(0.2, 3.0))[::-1]
        sizes = np.arange(len(w) + 1)
        exact = stat(ones + np.concatenate([[0.0], np.cumsum(w)]), ones + sizes, alpha).max()
        helpful = w[w > alpha]
        s, q = helpful.sum(), ((helpful - alpha) ** 2).sum()
        assert exact <= bound(ones, len(helpful), s, s, q, alpha) * (1 + 1e-12) + 1e-12


@pytest.mark.parametrize("kind", ["binary", "relu"])
def test_torch_on_cpu_gives_the_numpy_results(kind):
    rng = np.random.default_rng(5)
    x = activations(rng, kind, 260, 48)
    x[200:210, :8] += 1.0
    for tails, convention in ((1, "point"), (2, "fgss")):
        pv = empirical_pvalues(x[200:], x[:200], tails=tails, convention=convention)
        background = Background.from_activations(x[:200], device="cpu")
        assert isinstance(background.sorted_by_node, torch.Tensor)
        pt = empirical_pvalues(x[200:], background, tails=tails, convention=convention)
        np.testing.assert_array_equal(pt.pmin.numpy(), pv.pmin)  # counts, hence p-values: identical
        np.testing.assert_array_equal(pt.pmax.numpy(), pv.pmax)
        for statistic in NAMES:
            expected = scan_samples(pv.pmin, pv.pmax, statistic=statistic)
            for got in (scan_samples(pt.pmin, pt.pmax, statistic=statistic),
                        scan_samples(pv.pmin, pv.pmax, statistic=statistic, device="cpu")):
                np.testing.assert_allclose(got.score, expected.score, rtol=1e-12, atol=1e-12)
                np.testing.assert_array_equal(got.alpha, expected.alpha)
                np.testing.assert_array_equal(got.nodes, expected.nodes)
                assert isinstance(got.score, np.ndarray)
