import numpy as np
import pytest
from disentune.anomaly.pvalues import Background, empirical_pvalues, tail_counts
from disentune.errors import ConfigError


def direct(test, background, tails, convention):
    """p-value ranges by explicit counting, one test value at a time."""
    n = len(background)
    shift = 1 if convention == "point" else 0
    pmin, pmax = np.empty(test.shape), np.empty(test.shape)
    for i in range(test.shape[0]):
        for j in range(test.shape[1]):
            x, b = test[i, j], background[:, j]
            up = ((b > x).sum() + shift, (b >= x).sum() + 1)
            low = ((b < x).sum() + shift, (b <= x).sum() + 1)
            if tails == 1:
                pmin[i, j], pmax[i, j] = up[0] / (n + 1), up[1] / (n + 1)
            else:
                pmin[i, j] = min(1.0, 2 * min(up[0], low[0]) / (n + 1))
                pmax[i, j] = min(1.0, 2 * min(up[1], low[1]) / (n + 1))
    return pmin, pmax


@pytest.mark.parametrize("tails", [1, 2])
@pytest.mark.parametrize("convention", ["point", "fgss"])
def test_matches_direct_count_with_ties(tails, convention):
    rng = np.random.default_rng(0)
    background = rng.integers(0, 6, size=(40, 7))  # integer values: many ties
    test = rng.integers(-1, 8, size=(25, 7))  # includes values outside the background range
    pv = empirical_pvalues(test, background, tails=tails, convention=convention)
    pmin, pmax = direct(test, background, tails, convention)
    np.testing.assert_allclose(pv.pmin, pmin, rtol=0, atol=1e-15)
    np.testing.assert_allclose(pv.pmax, pmax, rtol=0, atol=1e-15)
    assert not pv.is_point and np.all(pv.pmin <= pv.pmax)


def test_hand_worked_example():
    # background 1, 2, 2, 3 (n = 4); x = 2 ties two values: #{b >= 2} = 3, #{b > 2} = 1
    background = np.array([[1.0], [2.0], [2.0], [3.0]])
    pv = empirical_pvalues(np.array([[2.0], [5.0], [0.0]]), background)
    np.testing.assert_allclose(pv.pmax[:, 0], [4 / 5, 1 / 5, 5 / 5])
    np.testing.assert_allclose(pv.pmin[:, 0], [2 / 5, 1 / 5, 5 / 5])
    fgss = empirical_pvalues(np.array([[2.0], [5.0]]), background, convention="fgss")
    np.testing.assert_allclose(fgss.pmin[:, 0], [1 / 5, 0.0])
    two = empirical_pvalues(np.array([[2.0], [0.0]]), background, tails=2)
    # x = 2: upper [2/5, 4/5], lower [#{b<2}+1, #{b<=2}+1]/5 = [2/5, 4/5] -> doubled, clipped
    np.testing.assert_allclose(two.pmin[:, 0], [4 / 5, 2 / 5])
    np.testing.assert_allclose(two.pmax[:, 0], [1.0, 2 / 5])


def test_continuous_values_give_point_pvalues_and_presorted_background_agrees():
    rng = np.random.default_rng(1)
    background, test = rng.normal(size=(300, 20)), rng.normal(size=(50, 20))
    pv = empirical_pvalues(test, background)
    assert pv.is_point and pv.pmin is pv.pmax
    expected = ((background[None] >= test[:, None]).sum(axis=1) + 1) / 301
    np.testing.assert_array_equal(pv.pmax, expected)
    again = empirical_pvalues(test, Background.from_activations(background))
    np.testing.assert_array_equal(again.pmax, pv.pmax)
    less, less_equal = tail_counts(test, background)
    assert less_equal is less


def test_null_pvalues_are_valid():
    # background and test from one distribution: P(p <= alpha) <= alpha (up to sampling noise)
    rng = np.random.default_rng(2)
    pv = empirical_pvalues(rng.normal(size=(2000, 50)), rng.normal(size=(999, 50)))
    for alpha in (0.01, 0.05, 0.2, 0.5):
        assert abs((pv.pmax <= alpha).mean() - alpha) < 0.01
    assert pv.pmax.min() >= 1 / 1000 and pv.pmax.max() <= 1.0


def test_bad_arguments():
    x = np.zeros((3, 2))
    with pytest.raises(ConfigError, match="tails"):
        empirical_pvalues(x, x, tails=3)
    with pytest.raises(ConfigError, match="convention"):
        empirical_pvalues(x, x, convention="exact")
    with pytest.raises(ValueError, match=r"\(m, 2\)"):
        empirical_pvalues(np.zeros((3, 5)), x)
    with pytest.raises(ValueError, match="NaN"):
        empirical_pvalues(np.full((1, 2), np.nan), x)


@pytest.mark.parametrize("kind", ["relu", "binary", "continuous"])
def test_counts_are_the_row_by_row_reference_counts(kind):
    # the sorted-query search (and, on a torch background, the batched one) against today's loop
    from . import reference_scan

    rng = np.random.default_rng(3)
    background, test = rng.normal(size=(300, 64)), rng.normal(size=(120, 64))
    if kind == "relu":
        background, test = np.maximum(background, 0.0), np.maximum(test, 0.0)
    elif kind == "binary":
        background, test = (background > 1.0).astype(float), (test > 0.5).astype(float)
    test[:5] = background[:5]  # every test value of these rows ties the background
    expected = reference_scan.tail_counts(test, Background.from_activations(background))
    for device in (None, "cpu"):
        less, less_equal = tail_counts(test, Background.from_activations(background, device=device))
        np.testing.assert_array_equal(np.asarray(less), expected[0])
        np.testing.assert_array_equal(np.asarray(less_equal), expected[1])
        assert (less is less_equal) == (kind == "continuous" and expected[0] is expected[1])
    for tails, convention in ((1, "point"), (2, "fgss")):
        want = reference_scan.empirical_pvalues(test, Background.from_activations(background), tails=tails,
                                                convention=convention)
        for device in (None, "cpu"):
            got = empirical_pvalues(test, Background.from_activations(background, device=device), tails=tails,
                                    convention=convention)
            np.testing.assert_array_equal(np.asarray(got.pmin), want[0])
            np.testing.assert_array_equal(np.asarray(got.pmax), want[1])


def test_a_torch_background_checks_its_input_too():
    with pytest.raises(ValueError, match="NaN"):
        Background.from_activations(np.full((3, 2), np.nan), device="cpu")
    background = Background.from_activations(np.zeros((3, 2)), device="cpu")
    with pytest.raises(ValueError, match=r"\(m, 2\)"):
        empirical_pvalues(np.zeros((3, 5)), background)
    with pytest.raises(ConfigError, match="device"):
        Background.from_activations(np.zeros((3, 2)), device="tpu:7")
