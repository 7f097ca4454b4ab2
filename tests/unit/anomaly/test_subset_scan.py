import itertools

import numpy as np
import pytest
from disentune.anomaly.ltss import best_along_axis, candidate_alphas
from disentune.anomaly.pvalues import empirical_pvalues
from disentune.anomaly.scan_statistics import STATISTICS, alpha_counts
from disentune.anomaly.subset_scan import scan_group, scan_samples, subset_score
from disentune.errors import ConfigError

NAMES = sorted(STATISTICS)


def all_subsets(size):
    return np.array(list(itertools.product([0.0, 1.0], repeat=size)))[1:]  # (2^size - 1, size)


def brute_axis(pmin, pmax, statistic, alphas):
    """max over every column subset S and alpha of F(alpha, sum_{i, j in S} n_alpha, n_rows |S|)."""
    counts = alpha_counts(alphas[:, None, None], pmin[None], pmax[None]).sum(axis=1)  # (A, E)
    masks = all_subsets(pmin.shape[1])
    scores = STATISTICS[statistic](counts @ masks.T, pmin.shape[0] * masks.sum(axis=1), alphas[:, None])
    return max(0.0, scores.max())


def brute_group(pmin, pmax, statistic, alphas):
    counts = alpha_counts(alphas[:, None, None], pmin[None], pmax[None])  # (A, n, J)
    rows, cols = all_subsets(pmin.shape[0]), all_subsets(pmin.shape[1])
    n_alpha = np.einsum("ri,aij,cj->arc", rows, counts, cols)
    size = rows.sum(axis=1)[:, None] * cols.sum(axis=1)[None]
    return max(0.0, STATISTICS[statistic](n_alpha, size, alphas[:, None, None]).max())


def draw(rng, n, num_nodes, ties):
    """p-value ranges of n test samples against a small background; integer values force ties."""
    if ties:
        background = rng.integers(0, 4, size=(int(rng.integers(3, 15)), num_nodes))
        test = rng.integers(0, 5, size=(n, num_nodes))
    else:
        background = rng.normal(size=(int(rng.integers(5, 40)), num_nodes))
        test = rng.normal(size=(n, num_nodes)) + rng.exponential(size=num_nodes) * (rng.random() < 0.5)
    convention = "fgss" if ties and rng.random() < 0.5 else "point"
    return empirical_pvalues(test, background, tails=int(rng.integers(1, 3)), convention=convention)


@pytest.mark.parametrize("statistic", NAMES)
@pytest.mark.parametrize("ties", [False, True])
def test_per_sample_scan_equals_brute_force(statistic, ties):
    rng = np.random.default_rng(10 + ties)
    for _ in range(40 if ties else 15):
        num_nodes = int(rng.integers(1, 13))
        pv = draw(rng, 3, num_nodes, ties)
        alpha_max = float(rng.choice([0.1, 0.3, 0.5, 0.9]))
        res = scan_samples(pv.pmin, pv.pmax, statistic=statistic, alpha_max=alpha_max)
        for i in range(3):
            lo, hi = pv.pmin[i : i + 1], pv.pmax[i : i + 1]
            grid = candidate_alphas(lo, hi, alpha_max)
            assert np.isclose(res.score[i], brute_axis(lo, hi, statistic, grid), rtol=1e-9, atol=1e-12)
            # the returned subset and alpha reproduce the score
            again, _ = subset_score(lo, hi, nodes=res.nodes[i], statistic=statistic, alpha_max=alpha_max, alphas=grid)
            assert np.isclose(again, res.score[i], rtol=1e-9, atol=1e-12)
            assert res.size[i] == res.nodes[i].sum() and 0 < res.alpha[i] <= alpha_max


@pytest.mark.parametrize("statistic", NAMES)
def test_point_scan_is_exact_over_every_real_alpha(statistic):
    # brute force over all node subsets and a dense alpha grid never beats the scan
    rng = np.random.default_rng(3)
    for _ in range(10):
        pv = draw(rng, 2, 10, ties=False)
        res = scan_samples(pv.pmax, statistic=statistic)
        dense = np.unique(np.concatenate([np.linspace(1e-4, 0.5, 150), pv.pmax.ravel()]))
        dense = dense[dense <= 0.5]
        for i in range(2):
            best = brute_axis(pv.pmax[i : i + 1], pv.pmax[i : i + 1], statistic, dense)
            assert np.isclose(res.score[i], best, rtol=1e-9, atol=1e-12)
            if res.score[i] > 0:  # the best subset is exactly the nodes with p <= alpha
                np.testing.assert_array_equal(res.nodes[i], pv.pmax[i] <= res.alpha[i])


def test_per_sample_hand_example():
    # p = 0.01, 0.02, 0.3, 0.8; BJ(k, k, p_(k)) = k log(1/p_(k)): 4.61, 7.82, 3.61 -> best k = 2
    res = scan_samples(np.array([[0.3, 0.01, 0.8, 0.02]]))
    assert np.isclose(res.score[0], 2 * np.log(50))
    assert res.alpha[0] == 0.02 and res.size[0] == 2
    np.testing.assert_array_equal(res.nodes[0], [False, True, False, True])
    # nothing at or below alpha_max: empty subset, score 0
    empty = scan_samples(np.array([[0.6, 0.9]]), statistic="higher_criticism")
    assert empty.score[0] == 0.0 and empty.size[0] == 0 and empty.alpha[0] == 0.5


def test_per_sample_scan_ranks_planted_anomalies_and_finds_their_nodes():
    rng = np.random.default_rng(4)
    background, test = rng.normal(size=(1000, 500)), rng.normal(size=(40, 500))
    planted = rng.choice(500, 25, replace=False)
    test[:20, planted] += 3.0
    pv = empirical_pvalues(test, background)
    res = scan_samples(pv.pmin, pv.pmax, alpha_max=0.05)
    assert res.score[:20].min() > res.score[20:].max()
    found = res.nodes[:20][:, planted].mean()
    assert found > 0.8  # the planted nodes are in the anomalous samples' subsets


@pytest.mark.parametrize("statistic", NAMES)
def test_each_ascent_step_is_exact(statistic):
    # best node subset given samples (and samples given nodes), both paths: blocks and sorting
    rng = np.random.default_rng(5)
    for trial in range(12):
        pv = draw(rng, 5, 7, ties=trial % 2 == 1)
        grid = candidate_alphas(pv.pmin, pv.pmax, 0.5)
        for rows in (np.array([0]), np.array([1, 3]), np.arange(5)):
            lo, hi = pv.pmin[rows], pv.pmax[rows]
            step = best_along_axis(lo, hi, grid, STATISTICS[statistic])
            assert np.isclose(step.score, brute_axis(lo, hi, statistic, grid), rtol=1e-9, atol=1e-12)
            got, _ = subset_score(lo, hi, nodes=step.mask, statistic=statistic, alphas=grid)
            assert np.isclose(got, step.score, rtol=1e-9, atol=1e-12)
        for cols in (np.array([0, 2, 5]), np.arange(7)):  # fewer, then more fixed rows than elements
            lo_t, hi_t = pv.pmin[:, cols].T, pv.pmax[:, cols].T
            step = best_along_axis(lo_t, hi_t, grid, STATISTICS[statistic])
            assert np.isclose(step.score, brute_axis(lo_t, hi_t, statistic, grid), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("statistic", NAMES)
def test_group_scan_reaches_brute_force_optimum_on_tiny_cases(statistic):
    # iterative ascent is a local optimum: never above the brute-force optimum, and with 10
    # restarts it reaches it in most draws
    rng = np.random.default_rng(6)
    hits = 0
    for trial in range(20):
        pv = draw(rng, 4, 6, ties=trial % 2 == 1)
        grid = candidate_alphas(pv.pmin, pv.pmax, 0.5)
        best = brute_group(pv.pmin, pv.pmax, statistic, grid)
        res = scan_group(pv.pmin, pv.pmax, statistic=statistic, restarts=10, rng=trial)
        assert res.score <= best + 1e-9
        hits += np.isclose(res.score, best, rtol=1e-9)
        got, alpha = subset_score(
            pv.pmin, pv.pmax, samples=res.samples, nodes=res.nodes, statistic=statistic, alphas=grid
        )
        assert np.isclose(got, res.score, rtol=1e-9, atol=1e-12) and (res.score == 0 or alpha == res.alpha)
    assert hits >= 17


@pytest.mark.parametrize("statistic", NAMES)
def test_group_scan_of_one_sample_is_the_per_sample_scan(statistic):
    rng = np.random.default_rng(7)
    for trial in range(6):
        pv = draw(rng, 1, 30, ties=trial % 2 == 1)
        single = scan_samples(pv.pmin, pv.pmax, statistic=statistic)
        group = scan_group(pv.pmin, pv.pmax, statistic=statistic, restarts=1)
        assert np.isclose(group.score, single.score[0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("statistic", NAMES)
def test_group_score_dominates_single_samples_on_its_nodes(statistic):
    # at convergence the sample subset is optimal given the node subset, so no single sample
    # restricted to the group's nodes scores more than the group
    rng = np.random.default_rng(8)
    pv = draw(rng, 30, 40, ties=False)
    res = scan_group(pv.pmin, pv.pmax, statistic=statistic, restarts=3, rng=1)
    grid = candidate_alphas(pv.pmin, pv.pmax, 0.5)
    assert res.score > 0 and res.samples.any() and res.nodes.any()
    for i in range(30):
        one, _ = subset_score(pv.pmin, pv.pmax, samples=[i], nodes=res.nodes, statistic=statistic, alphas=grid)
        assert one <= res.score + 1e-9
    assert res.score == max(res.restart_scores) and len(res.restart_scores) == 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_group_scan_recovers_a_planted_group(seed):
    rng = np.random.default_rng(seed)
    n, num_nodes = 60, 300
    background, test = rng.normal(size=(500, num_nodes)), rng.normal(size=(n, num_nodes))
    rows, cols = rng.choice(n, 15, replace=False), rng.choice(num_nodes, 12, replace=False)
    test[np.ix_(rows, cols)] += 2.5
    pv = empirical_pvalues(test, background)
    res = scan_group(pv.pmin, pv.pmax, statistic="berk_jones", restarts=10, rng=seed)
    for found, truth in ((res.nodes, cols), (res.samples, rows)):
        hits = found[truth].sum()
        assert hits / found.sum() > 0.8 and hits / len(truth) > 0.8  # precision and recall


def test_group_scan_is_deterministic_given_the_seed_and_thinned_alphas_stay_below_exact():
    pv = draw(np.random.default_rng(9), 20, 50, ties=True)
    a = scan_group(pv.pmin, pv.pmax, restarts=5, rng=np.random.default_rng(3))
    b = scan_group(pv.pmin, pv.pmax, restarts=5, rng=np.random.default_rng(3))
    assert a.score == b.score and np.array_equal(a.nodes, b.nodes) and np.array_equal(a.samples, b.samples)
    assert len(candidate_alphas(pv.pmin, pv.pmax, 0.5, max_alphas=3)) <= 4


def test_bad_arguments():
    p = np.full((2, 3), 0.5)
    with pytest.raises(ConfigError, match="alpha_max"):
        scan_samples(p, alpha_max=1.0)
    with pytest.raises(ConfigError, match="restarts"):
        scan_group(p, restarts=0)
    with pytest.raises(ValueError, match="pmin <= pmax"):
        scan_samples(p, p - 0.1)
    with pytest.raises(ValueError, match=r"non-empty \(n, J\)"):
        scan_samples(np.full(3, 0.5))
