"""Pareto analytics for k objectives, checked against brute force (no sampling anywhere)."""

import itertools

import numpy as np
import pytest

from disentune.pareto import (
    ParetoAnalysis,
    analyse,
    default_reference,
    dominates,
    hypervolume,
    hypervolume_contributions,
    hypervolume_history,
    knee_index,
    non_domination_ranks,
    to_minimization,
)


def brute_ranks(points):
    """O(n^2) peeling: rank r is what nothing left dominates once ranks < r are removed."""
    points = np.asarray(points, dtype=float)
    ranks, remaining, rank = {}, set(range(len(points))), 0
    while remaining:
        front = {i for i in remaining if not any(dominates(points[j], points[i]) for j in remaining)}
        for i in front:
            ranks[i] = rank
        remaining -= front
        rank += 1
    return np.array([ranks[i] for i in range(len(points))], dtype=np.int64)


def brute_hypervolume(points, ref):
    """Exact volume of the union of the boxes [p, ref] in k dimensions, by coordinate compression:
    the distinct coordinates cut space into cells, and a cell is dominated when some point is <=
    its lower corner."""
    ref = np.asarray(ref, dtype=float)
    pts = np.array([p for p in np.asarray(points, dtype=float).reshape(-1, len(ref)) if np.all(p < ref)])
    if len(pts) == 0:
        return 0.0
    axes = [np.unique(np.append(pts[:, d], ref[d])) for d in range(len(ref))]
    lows = np.array(list(itertools.product(*(a[:-1] for a in axes))))
    sizes = np.array(list(itertools.product(*(np.diff(a) for a in axes)))).prod(axis=1)
    covered = np.any(np.all(pts[None, :, :] <= lows[:, None, :], axis=2), axis=1)
    return float(sizes[covered].sum())


def inclusion_exclusion_hypervolume(points, ref):
    """The same union volume by inclusion-exclusion over all subsets (small n only)."""
    ref = np.asarray(ref, dtype=float)
    pts = [np.asarray(p, dtype=float) for p in points]
    total = 0.0
    for size in range(1, len(pts) + 1):
        for subset in itertools.combinations(pts, size):
            corner = np.max(subset, axis=0)
            total += (-1) ** (size + 1) * float(np.prod(np.clip(ref - corner, 0.0, None)))
    return total


def random_points(rng, n, k, integer):
    if integer:  # a small integer grid: ties, duplicates, weak domination
        return rng.integers(0, 5, size=(n, k)).astype(float)
    return rng.normal(size=(n, k)) * rng.uniform(0.1, 100.0, size=k)


DIRECTIONS_2 = [("min", "min"), ("min", "max"), ("max", "max")]
DIRECTIONS_3 = [("min", "min", "min"), ("min", "max", "max"), ("max", "min", "max")]


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("directions", DIRECTIONS_2 + DIRECTIONS_3)
def test_ranks_and_hypervolume_match_brute_force(seed, directions):
    rng = np.random.default_rng(seed)
    k = len(directions)
    n = int(rng.integers(1, 25 if k == 2 else 13))
    values = random_points(rng, n, k, integer=seed % 2 == 0)
    points = to_minimization(values, directions)
    np.testing.assert_array_equal(non_domination_ranks(points), brute_ranks(points))
    ref = points.max(axis=0) + rng.uniform(0.0, 2.0, size=k)
    ref[0] -= (seed % 3 == 0) * np.ptp(points[:, 0]) / 2  # some points beyond the reference
    total = brute_hypervolume(points, ref)
    assert np.isclose(hypervolume(points, ref), total, rtol=1e-12, atol=1e-12)
    contrib = hypervolume_contributions(points, ref)
    for i in range(n):
        without = np.delete(points, i, axis=0)
        assert np.isclose(contrib[i], total - brute_hypervolume(without, ref), rtol=1e-9, atol=1e-9 * max(total, 1))
    assert np.all(contrib[non_domination_ranks(points) > 0] == 0)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("k", [3, 4])
def test_hypervolume_equals_inclusion_exclusion(seed, k):
    rng = np.random.default_rng(100 + seed)
    points = rng.uniform(0.0, 1.0, size=(int(rng.integers(1, 8)), k))
    ref = rng.uniform(0.6, 1.2, size=k)  # some points beyond it in some objective
    expected = inclusion_exclusion_hypervolume(points, ref)
    assert np.isclose(hypervolume(points, ref), expected, rtol=1e-12, atol=1e-15)
    assert np.isclose(brute_hypervolume(points, ref), expected, rtol=1e-12, atol=1e-15)


def test_a_hand_made_three_objective_front():
    # boxes to ref (4, 4, 4): a 3*3*1 = 9, b 1*1*3 = 3, c 4*1*2 = 8; pairwise overlaps
    # a&b [(3,3,3), ref] = 1, a&c [(1,3,3), ref] = 3, b&c [(3,3,2), ref] = 2, a&b&c = 1
    points = np.array([[1.0, 1.0, 3.0], [3.0, 3.0, 1.0], [0.0, 3.0, 2.0]])
    ref = [4.0, 4.0, 4.0]
    assert hypervolume(points, ref) == pytest.approx(9 + 3 + 8 - 1 - 3 - 2 + 1)
    # without a: 3 + 8 - 2 = 9; without b: 9 + 8 - 3 = 14; without c: 9 + 3 - 1 = 11
    np.testing.assert_allclose(hypervolume_contributions(points, ref), [15 - 9, 15 - 14, 15 - 11])
    np.testing.assert_allclose(hypervolume_history(points, ref), [9, 11, 15])
    np.testing.assert_array_equal(non_domination_ranks(points), [0, 0, 0])


def test_contribution_counts_the_points_a_front_point_alone_dominates():
    # removing (1, 1) brings (2, 2) back: the exact contribution is 4 - 1, not 4
    np.testing.assert_allclose(hypervolume_contributions(np.array([[1.0, 1.0], [2.0, 2.0]]), [3.0, 3.0]), [3.0, 0.0])
    # (2.5, 2.5) is dominated by three front points and never comes back; (1.5, 1.5) only by
    # (1, 1): total 6, without (1, 1) 5 + the 0.25 that (1.5, 1.5) adds back
    points = np.array([[0.0, 2.0], [2.0, 0.0], [2.5, 2.5], [1.0, 1.0], [1.5, 1.5]])
    np.testing.assert_allclose(hypervolume_contributions(points, [3.0, 3.0]), [1.0, 1.0, 0.0, 0.75, 0.0])
    # three objectives: (1, 1, 1) alone dominates (2, 2, 2)
    np.testing.assert_allclose(hypervolume_contributions(np.array([[1.0, 1, 1], [2, 2, 2]]), [3, 3, 3]), [7.0, 0.0])


@pytest.mark.parametrize("seed", range(15))
@pytest.mark.parametrize("k", [2, 3])
def test_history_equals_recomputation(seed, k):
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(1, 60))
    points = random_points(rng, n, k, integer=seed % 3 == 0)
    if seed % 4 == 1:  # later points dominate earlier ones: the front shrinks and moves
        points = points[np.argsort(-points.sum(axis=1))]
    ref = points.max(axis=0) - (seed % 2) * 0.3 * np.ptp(points, axis=0) + 0.5
    history = hypervolume_history(points, ref)
    expected = np.array([hypervolume(points[: j + 1], ref) for j in range(n)])
    np.testing.assert_allclose(history, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(history[-1], brute_hypervolume(points, ref), rtol=1e-9, atol=1e-12)
    assert np.all(np.diff(history) >= 0)


def test_long_two_objective_history_matches():
    rng = np.random.default_rng(7)
    x = np.sort(rng.uniform(0, 1, 400))
    points = np.column_stack([x, 1 - x ** 0.5])[rng.permutation(400)]  # every point on the front
    points = np.concatenate([points, points[:50] + 0.01])  # and some dominated later on
    ref = [1.2, 1.2]
    history = hypervolume_history(points, ref)
    np.testing.assert_allclose(history, [hypervolume(points[: j + 1], ref) for j in range(len(points))], rtol=1e-12)
    assert np.all(history[400:] == history[399])


def test_reference_point_excludes_points_beyond_it():
    assert hypervolume(np.array([[1.0, 1.0]]), [2.0, 3.0]) == 2.0
    assert hypervolume(np.array([[2.5, 1.0]]), [2.0, 3.0]) == 0.0
    assert hypervolume(np.array([[2.0, 1.0]]), [2.0, 3.0]) == 0.0  # on the boundary: no volume
    assert hypervolume(np.array([[1.0, 1.0, 5.0], [1.0, 1.0, 1.0]]), [2.0, 3.0, 2.0]) == 2.0


def test_points_worse_than_the_reference_add_nothing():
    points = np.array([[5.0, 5.0, 5.0], [1.0, 6.0, 1.0], [3.0, 3.0, 3.0]])
    ref = [3.0, 4.0, 4.0]
    assert hypervolume(points, ref) == 0.0
    np.testing.assert_array_equal(hypervolume_contributions(points, ref), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(hypervolume_history(points, ref), [0.0, 0.0, 0.0])
    a = analyse(points, ("min", "min", "min"), ref)
    assert a.hypervolume == 0.0 and np.all(a.history == 0) and np.all(a.contributions == 0)
    np.testing.assert_array_equal(a.ranks, [1, 0, 0])


@pytest.mark.parametrize("k", [2, 3])
def test_one_point(k):
    values = np.arange(1.0, k + 1)[None, :]
    a = analyse(values, ("min",) * k)
    ref = values[0] + 0.1 * np.maximum(np.abs(values[0]), 1.0)  # zero range: margin of |value|
    np.testing.assert_allclose(a.reference, ref)
    volume = float(np.prod(ref - values[0]))
    assert a.knee == 0 and a.ranks.tolist() == [0]
    assert a.hypervolume == pytest.approx(volume)
    np.testing.assert_allclose(a.contributions, [volume])
    np.testing.assert_allclose(a.history, [volume])


@pytest.mark.parametrize("k", [2, 3])
def test_duplicates(k):
    points = np.array([[1.0] * k, [1.0] * k, [2.0] * k])
    ref = [3.0] * k
    np.testing.assert_array_equal(non_domination_ranks(points), [0, 0, 1])
    assert hypervolume(points, ref) == pytest.approx(2.0 ** k)
    np.testing.assert_array_equal(hypervolume_contributions(points, ref), [0.0, 0.0, 0.0])  # each twin covers it
    np.testing.assert_allclose(hypervolume_history(points, ref), [2.0 ** k] * 3)
    assert knee_index(points, non_domination_ranks(points)) == 0


def test_empty_inputs():
    assert non_domination_ranks(np.zeros((0, 3))).shape == (0,)
    assert hypervolume(np.zeros((0, 2)), [1.0, 1.0]) == 0.0
    assert hypervolume_contributions(np.zeros((0, 3)), [1.0, 1.0, 1.0]).shape == (0,)
    assert hypervolume_history(np.zeros((0, 2)), [1.0, 1.0]).shape == (0,)
    assert knee_index(np.zeros((0, 2)), np.zeros(0, dtype=int)) is None
    a = analyse(np.zeros((0, 3)), ("min", "max", "min"), reference=[1.0, 0.0, 1.0])
    assert a.knee is None and a.hypervolume == 0.0 and a.history.shape == (0,)
    with pytest.raises(ValueError, match="at least one point"):
        analyse(np.zeros((0, 2)), ("min", "max"))


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="'min' or 'max'"):
        to_minimization(np.ones((2, 2)), ("min", "up"))
    with pytest.raises(ValueError, match="one column per direction"):
        to_minimization(np.ones((2, 3)), ("min", "max"))
    with pytest.raises(ValueError, match="finite"):
        hypervolume(np.array([[1.0, np.nan]]), [2.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        hypervolume(np.array([[1.0, 1.0]]), [2.0, np.inf])
    with pytest.raises(ValueError, match="3 objectives, expected 2"):
        hypervolume(np.ones((2, 3)), [2.0, 2.0])
    with pytest.raises(ValueError, match="at least 2 objectives"):
        non_domination_ranks(np.ones((3, 1)))


def test_default_reference_is_the_nadir_pushed_out():
    points = np.array([[0.0, 10.0, -1.0], [2.0, 30.0, -1.0], [1.0, 20.0, -1.0]])
    np.testing.assert_allclose(default_reference(points, margin=0.5), [3.0, 40.0, -0.5])
    np.testing.assert_allclose(default_reference(points), [2.2, 32.0, -0.9])


def test_knee_of_a_convex_front():
    # an L-shaped front: the corner is the knee
    points = np.array([[0.0, 1.0], [0.1, 0.1], [1.0, 0.0], [0.5, 0.5], [0.05, 0.6]])
    ranks = non_domination_ranks(points)
    assert knee_index(points, ranks) == 1


def test_knee_two_objective_fallback_and_rule():
    two = np.array([[0.0, 1.0], [0.9, 0.0]])  # two front points: the smaller normalised sum
    assert knee_index(two, non_domination_ranks(two)) == 0
    # the farthest from the line through the extremes (0, 1) and (1, 0) in normalised space
    points = np.array([[0.0, 10.0], [4.0, 4.0], [10.0, 0.0], [2.0, 7.0], [3.0, 9.0]])
    assert knee_index(points, non_domination_ranks(points)) == 1


# a front already normalised (each objective spans [0, 1]) with extremes e1 = (0, 1, 0.4),
# e2 = (1, 0, 1), e3 = (0.5, 1, 0): their plane is 0.4 x + 0.7 y + 0.5 z = 0.9 (normal e2-e1 x e3-e1),
# so distances are |0.9 - 0.4 x - 0.7 y - 0.5 z| / |(0.4, 0.7, 0.5)|: (0.3, 0.2, 0.3) -> 0.49,
# (0.1, 0.3, 0.35) -> 0.475, (0.7, 0.05, 0.8) -> 0.185. The knee is (0.3, 0.2, 0.3), although
# (0.1, 0.3, 0.35) has the smaller sum (0.75 < 0.8), so this front tells the plane rule from the fallback.
FRONT_3D = np.array([
    [0.1, 0.3, 0.35],
    [0.0, 1.0, 0.4],
    [0.7, 0.05, 0.8],
    [0.9, 0.9, 0.9],  # dominated by the knee
    [1.0, 0.0, 1.0],
    [0.3, 0.2, 0.3],  # the knee
    [0.5, 1.0, 0.0],
])


def test_knee_on_a_hand_made_three_objective_front():
    ranks = non_domination_ranks(FRONT_3D)
    assert ranks[3] == 1 and np.all(np.delete(ranks, 3) == 0)
    assert knee_index(FRONT_3D, ranks) == 5
    assert np.argmin(np.where(ranks == 0, FRONT_3D.sum(axis=1), np.inf)) == 0  # not the min-sum point
    # invariant under a positive affine map of each objective (normalisation over the front)
    scaled = FRONT_3D * np.array([10.0, 0.5, 300.0]) + np.array([-4.0, 2.0, 7.0])
    assert knee_index(scaled, non_domination_ranks(scaled)) == 5
    # and in the objectives' own directions
    directions = ("max", "min", "max")
    assert analyse(to_minimization(scaled, directions), directions).knee == 5


def test_knee_three_objective_fallbacks():
    # at most k front points: the smallest sum of normalised objectives
    few = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.4, 0.4, 0.0], [2.0, 2.0, 2.0]])
    assert knee_index(few, non_domination_ranks(few)) == 2
    # (0, 0, 1) is best in objectives 1 and 2: the extremes span no plane -> smallest sum
    degenerate = np.array([[1.0, 1.0, 0.0], [0.5, 0.2, 0.5], [0.0, 0.0, 1.0], [0.2, 0.6, 0.4]])
    assert np.all(non_domination_ranks(degenerate) == 0)
    assert knee_index(degenerate, non_domination_ranks(degenerate)) == 2


def brute_knee_3d(points, ranks):
    front = np.flatnonzero(ranks == 0)
    f = points[front]
    norm = (f - f.min(axis=0)) / np.ptp(f, axis=0)
    e = [norm[np.argmin(norm[:, i])] for i in range(3)]
    normal = np.cross(e[1] - e[0], e[2] - e[0])
    return int(front[np.argmax(np.abs((norm - e[0]) @ normal) / np.linalg.norm(normal))])


@pytest.mark.parametrize("seed", range(10))
def test_knee_on_random_three_objective_fronts(seed):
    rng = np.random.default_rng(300 + seed)
    points = rng.uniform(0, 1, size=(40, 3))
    points[:, 2] = 1.5 - points[:, 0] - points[:, 1] + rng.normal(0, 0.2, 40)  # a noisy planar front
    ranks = non_domination_ranks(points)
    assert (ranks == 0).sum() > 3
    assert knee_index(points, ranks) == brute_knee_3d(points, ranks)


@pytest.mark.parametrize("directions", [("min", "max"), ("max", "min", "max")])
def test_analyse_equals_the_minimisation_problem(directions):
    rng = np.random.default_rng(5)
    values = rng.uniform(0, 10, size=(30, len(directions)))
    a = analyse(values, directions)
    b = analyse(to_minimization(values, directions), ("min",) * len(directions))
    assert isinstance(a, ParetoAnalysis)
    np.testing.assert_array_equal(a.ranks, b.ranks)
    np.testing.assert_array_equal(a.contributions, b.contributions)
    np.testing.assert_array_equal(a.history, b.history)
    assert a.knee == b.knee and a.hypervolume == b.hypervolume
    np.testing.assert_allclose(to_minimization(a.reference, directions), b.reference)
    worse = np.where(np.array(directions) == "min", a.reference > values.max(axis=0), a.reference < values.min(axis=0))
    assert worse.all()
    # an explicit reference, in the objectives' own directions, is used as given
    c = analyse(values, directions, reference=a.reference.tolist())
    np.testing.assert_allclose(c.reference, a.reference)
    assert c.hypervolume == pytest.approx(a.hypervolume)


def test_analyse_in_objective_directions():
    values = np.array([[10.0, 0.2], [20.0, 0.5], [15.0, 0.1], [30.0, 0.4]])  # fid min, mig max
    a = analyse(values, ("min", "max"))
    np.testing.assert_array_equal(a.ranks, [0, 0, 1, 1])
    assert a.reference[0] > values[:, 0].max() and a.reference[1] < values[:, 1].min()
    assert np.all(np.diff(a.history) >= 0) and np.isclose(a.history[-1], a.hypervolume)
    assert a.contributions[2] == 0 and a.contributions[3] == 0
    # reference (fid 32, mig 0.06): boxes 22 * 0.14 and 12 * 0.44, overlap 12 * 0.14
    np.testing.assert_allclose(a.reference, [32.0, 0.06])
    assert a.hypervolume == pytest.approx(22 * 0.14 + 12 * 0.44 - 12 * 0.14)
