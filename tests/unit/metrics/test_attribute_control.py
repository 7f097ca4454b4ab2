import numpy as np
import pytest
import torch

from disentune.metrics.attribute_control import (
    compute_attribute_control,
    control_gaps,
    control_matrix,
    control_score,
    factor_predictor,
    sweep_codes,
    sweep_std,
)
from disentune.metrics.base import Metric
from disentune.metrics.factor_net import FactorNet
from disentune.registry import METRICS

RANGES = np.array([[-1.0, 1.0], [-2.0, 2.0], [0.0, 1.0]])


def unit(codes: np.ndarray) -> np.ndarray:
    """Each code mapped linearly from its range onto [0, 1]: ``(n, c)``."""
    return (codes - RANGES[:, 0]) / (RANGES[:, 1] - RANGES[:, 0])


def as_images(factor_values: np.ndarray) -> np.ndarray:
    """Synthetic 'images' ``(n, 1, 1, K)`` that carry the factor values; read back by ``read``."""
    return factor_values[:, None, None, :].astype(np.float32)


def read(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float64)


class Counting:
    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, codes):
        assert codes.dtype == np.float32
        self.calls.append(len(codes))
        return self.fn(codes)


def score(decode, ranges=RANGES, seed=0, **kw):
    return compute_attribute_control(decode, ranges, read, rng=np.random.default_rng(seed), **kw)


def test_hand_worked_matrix():
    # codes x factors; reference sigma = 0.2
    m = np.array([[0.3, 0.1, 0.0], [0.05, 0.0, 0.1], [0.0, 0.0, 0.0]])
    # (0, 0): rivals: column max 0.05, row max 0.1 -> margin 0.2, g = 2/3, s = min(1, 1.5) = 1
    # (1, 2): rivals: column max 0, row max 0.05 -> margin 0.05, g = 1/2, s = 0.1 / 0.2 = 1/2
    # factor 1: its largest entry (0, 1) = 0.1 is beaten by 0.3 in its row -> 0
    # attribute control = (2/3 + 0 + 1/4) / 3 = 11/36
    expected_gaps = np.array([[2 / 3, 0, 0], [0, 0, 0.5], [0, 0, 0]])
    np.testing.assert_allclose(control_gaps(m), expected_gaps)
    value, per_factor = control_score(m, reference=0.2)
    np.testing.assert_allclose(per_factor, [2 / 3, 0.0, 0.25])
    assert value == pytest.approx(11 / 36)


def test_core_edge_cases():
    assert control_score(np.zeros((3, 2)), 0.3)[0] == 0.0  # nothing moves
    assert control_score(np.full((3, 3), 0.3), 0.3)[0] == 0.0  # everything moves everything
    assert control_score(np.array([[0.3, 0.3, 0.3], [0, 0, 0]]), 0.3)[0] == 0.0  # one code, all factors
    assert control_score(0.3 * np.eye(3), 0.3)[0] == 1.0
    assert control_score(0.15 * np.eye(3), 0.3)[0] == pytest.approx(0.5)  # half strength
    assert control_score(np.array([[0.3]]), 0.3)[0] == 1.0  # a single code and factor
    # a tie between two codes for one factor leaves that factor no margin
    tie = np.array([[0.3, 0.0], [0.3, 0.0], [0.0, 0.3]])
    np.testing.assert_allclose(control_score(tie, 0.3)[1], [0.0, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        control_score(np.array([[-0.1]]), 0.3)


def test_control_matrix_and_sweeps():
    bases = np.array([[0.5, 1.0, 0.2], [-0.5, 0.0, 0.9]])
    codes = sweep_codes(bases, RANGES, 1, 3)
    np.testing.assert_allclose(codes, [[0.5, -2, 0.2], [0.5, 0, 0.2], [0.5, 2, 0.2],
                                       [-0.5, -2, 0.9], [-0.5, 0, 0.9], [-0.5, 2, 0.9]])
    # (codes 1, bases 2, steps 3, factors 2): std of [0, 1, 2] is sqrt(2/3), of a constant 0;
    # factor 0 averages sqrt(2/3) and 0 over the two bases
    preds = np.array([[[[0, 5], [1, 5], [2, 5]], [[0, 5], [0, 5], [0, 5]]]], dtype=float)
    np.testing.assert_allclose(control_matrix(preds), [[np.sqrt(2 / 3) / 2, 0.0]])
    assert sweep_std(10) == pytest.approx(np.linspace(0, 1, 10).std())
    assert sweep_std(2) == pytest.approx(0.5)


def test_code_j_controls_factor_j_scores_one_and_decodes_once_per_code():
    decode = Counting(lambda codes: as_images(unit(codes)))
    out = score(decode, num_bases=8, num_steps=10)
    assert out["attribute_control"] == pytest.approx(1.0)
    assert decode.calls == [80, 80, 80]  # all sweeps of one code in one batch
    np.testing.assert_allclose(out["control_matrix"], sweep_std(10) * np.eye(3), atol=1e-7)
    assert (out["num_bases"], out["num_steps"], out["num_codes"]) == (8, 10, 3)


def test_noisy_prediction_still_scores_near_one():
    rng = np.random.default_rng(1)
    out = score(lambda codes: as_images(unit(codes) + rng.normal(scale=0.01, size=codes.shape)), num_bases=16)
    assert 0.9 < out["attribute_control"] < 1.0


def test_decoder_that_ignores_codes_scores_zero():
    out = score(lambda codes: as_images(np.full((len(codes), 3), 0.4)), num_bases=8)
    assert out["attribute_control"] == 0.0 and np.all(np.array(out["control_matrix"]) == 0)


def test_every_code_moving_every_factor_equally_scores_near_zero():
    def decode(codes):
        mixed = unit(codes).mean(axis=1, keepdims=True)
        return as_images(np.repeat(mixed, 3, axis=1))

    out = score(decode, num_bases=8)
    assert out["attribute_control"] < 0.05
    # and a code that moves every factor while the others do nothing
    out = score(lambda codes: as_images(np.repeat(unit(codes)[:, :1], 3, axis=1)), num_bases=8)
    assert out["attribute_control"] == 0.0


def test_two_factors_on_one_code_score_only_the_separate_one():
    # code 0 moves factors 0 and 1 equally, code 2 moves factor 2: only factor 2 counts -> 1/3
    def decode(codes):
        u = unit(codes)
        return as_images(np.stack([u[:, 0], u[:, 0], u[:, 2]], axis=1))

    assert score(decode, num_bases=8)["attribute_control"] == pytest.approx(1 / 3)


def test_permuting_codes_keeps_the_score():
    perm = np.array([2, 0, 1])  # code perm[j] of the permuted generator is code j of the original

    def entangled(u):
        # partial control: factor 0 <- 0.8 code 0 + 0.2 code 1, factor 1 <- code 1 (half range),
        # factor 2 <- code 2 and 0.3 code 0
        return as_images(np.stack([0.8 * u[:, 0] + 0.2 * u[:, 1], 0.5 * u[:, 1], 0.7 * u[:, 2] + 0.3 * u[:, 0]], 1))

    original = score(lambda codes: entangled(unit(codes)), num_bases=16)
    permuted_ranges = np.empty_like(RANGES)
    permuted_ranges[perm] = RANGES

    def permuted(codes):
        restored = codes[:, perm]  # back to the original order
        return entangled(unit(restored))

    out = score(permuted, ranges=permuted_ranges, num_bases=16)
    assert 0.2 < original["attribute_control"] < 0.9
    assert out["attribute_control"] == pytest.approx(original["attribute_control"], abs=1e-9)
    np.testing.assert_allclose(np.array(out["control_matrix"])[perm], original["control_matrix"], atol=1e-9)


def test_factor_predictor_reads_expected_normalised_values():
    torch.manual_seed(0)
    net = FactorNet((1, 32, 32), [3, 5, 1])
    with torch.no_grad():
        net.heads.weight.zero_()
        # factor 0 certain of class 2, factor 1 uniform over 5 classes, factor 2 has one value
        net.heads.bias.copy_(torch.tensor([0.0, 0.0, 50.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
    images = np.random.default_rng(0).random((7, 1, 32, 32)).astype(np.float32)
    predict = factor_predictor(net, batch_size=3)
    out = predict(images)
    assert out.shape == (7, 3)
    np.testing.assert_allclose(out, np.tile([1.0, 0.5, 0.0], (7, 1)), atol=1e-12)
    # value grids: class 2 of [0.5, 0.6, 1.0] is 1.0 -> 1; an uneven grid for factor 1 shifts its mean
    grids = [[0.5, 0.6, 1.0], [0.0, 0.0, 0.0, 0.0, 4.0], [7.0]]
    np.testing.assert_allclose(factor_predictor(net, grids)(images[:2]), [[1.0, 0.2, 0.0]] * 2, atol=1e-12)
    with pytest.raises(ValueError, match="2 values for a head of 3"):
        factor_predictor(net, [[0, 1], [0, 1, 2, 3, 4], [0]])


def test_registered_as_control_metric():
    import disentune.metrics.attribute_control  # noqa: F401 - registers

    entry = METRICS.get("attribute_control")
    assert isinstance(entry, Metric) and entry.kind == "control"
    assert entry.values == ("attribute_control",) and entry.compute is compute_attribute_control
    assert dict(entry.defaults) == {"num_bases": 64, "num_steps": 10} and entry.sample_size() == 0
