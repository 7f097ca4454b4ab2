import itertools

import numpy as np
import pytest

from disentune.search.pareto import (
    analyse,
    dominates,
    hypervolume_2d,
    hypervolume_contributions,
    knee_index,
    non_domination_ranks,
    to_minimization,
)


def brute_ranks(points):
    points = [tuple(p) for p in points]
    ranks, remaining, rank = {}, set(range(len(points))), 0
    while remaining:
        front = {i for i in remaining
                 if not any(dominates(np.array(points[j]), np.array(points[i])) for j in remaining)}
        for i in front:
            ranks[i] = rank
        remaining -= front
        rank += 1
    return np.array([ranks[i] for i in range(len(points))])


def brute_hypervolume(points, ref):
    """Area of the union of boxes [p, ref], by coordinate compression."""
    pts = [p for p in points if p[0] < ref[0] and p[1] < ref[1]]
    if not pts:
        return 0.0
    xs = sorted({p[0] for p in pts} | {ref[0]})
    ys = sorted({p[1] for p in pts} | {ref[1]})
    area = 0.0
    for (x0, x1), (y0, y1) in itertools.product(zip(xs, xs[1:]), zip(ys, ys[1:])):
        if any(p[0] <= x0 and p[1] <= y0 for p in pts):
            area += (x1 - x0) * (y1 - y0)
    return area


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("directions", [("min", "min"), ("min", "max"), ("max", "max")])
def test_ranks_and_hypervolume_match_brute_force(seed, directions):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 25))
    values = rng.integers(0, 8, size=(n, 2)).astype(float)  # integer grid: ties and duplicates
    points = to_minimization(values, directions)
    np.testing.assert_array_equal(non_domination_ranks(points), brute_ranks(points))
    ref = points.max(axis=0) + rng.uniform(0.0, 2.0, size=2)
    assert np.isclose(hypervolume_2d(points, ref), brute_hypervolume(points.tolist(), ref))
    contrib = hypervolume_contributions(points, ref)
    total = brute_hypervolume(points.tolist(), ref)
    for i in range(n):
        without = [p for j, p in enumerate(points.tolist()) if j != i]
        assert np.isclose(contrib[i], total - brute_hypervolume(without, ref))


def test_reference_point_excludes_points_beyond_it():
    assert hypervolume_2d(np.array([[1.0, 1.0]]), [2.0, 3.0]) == 2.0
    assert hypervolume_2d(np.array([[2.5, 1.0]]), [2.0, 3.0]) == 0.0


def test_knee_of_a_convex_front():
    # an L-shaped front: the corner is the knee
    points = np.array([[0.0, 1.0], [0.1, 0.1], [1.0, 0.0], [0.5, 0.5], [0.05, 0.6]])
    ranks = non_domination_ranks(points)
    assert knee_index(points, ranks) == 1


def test_analyse_in_objective_directions():
    values = np.array([[10.0, 0.2], [20.0, 0.5], [15.0, 0.1], [30.0, 0.4]])  # fid min, mig max
    a = analyse(values, ("min", "max"))
    np.testing.assert_array_equal(a.ranks, [0, 0, 1, 1])
    assert a.reference[0] > values[:, 0].max() and a.reference[1] < values[:, 1].min()
    assert np.all(np.diff(a.history) >= 0) and np.isclose(a.history[-1], a.hypervolume)
    assert a.contributions[2] == 0 and a.contributions[3] == 0
