"""Separated Attribute Predictability (Kumar et al. 2018, Sec. 3), as defined in disentanglement_lib.

    SAP = mean_k (S[a_k, k] - S[b_k, k])

where ``S (d, K)`` scores how well latent ``i`` alone predicts factor ``k`` and ``a_k``, ``b_k`` are
the two best latents for factor ``k``. The reference study treats factors as discrete
(``continuous_factors=False``, 10,000 train and 5,000 test points): ``S[i, k]`` is the test accuracy
of ``sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")`` trained on latent ``i`` alone. With
``continuous_factors=True`` it is the squared correlation ``cov(z_i, v_k)^2 / (var z_i var v_k)``
on the train points (0 where ``var z_i <= 1e-12``).

The reference fits ``d * K`` one-feature LinearSVCs. On one feature each is a tiny convex problem,
so this module solves exactly the problem liblinear solves, for every (latent, factor, class) at
once. For a class ``c`` of ``m > 2`` classes (liblinear's one-vs-rest, intercept regularised because
it is a constant feature with ``intercept_scaling=1``)::

    min_{w,b} (w^2 + b^2)/2 + C n/(m n_c) sum_{y_i = c} max(0, 1 - (w x_i + b))^2
                            + C           sum_{y_i != c} max(0, 1 + (w x_i + b))^2

and the prediction is ``argmax_c (w_c x + b_c)`` (first maximum). With two classes there is one
problem, positives ``classes[1]``, each side weighted ``C n / (2 n_class)``, predicting
``classes[1]`` where ``w x + b > 0``. Each objective is strictly convex, continuously differentiable
and piecewise quadratic in ``(w, b)``; on sorted ``x`` its active (margin-violating) points form a
prefix or suffix of each class, so prefix sums give the objective, gradient and Hessian in
``O(log n)`` and a damped Newton method reaches the minimiser to rounding error. scikit-learn's
solver (trust-region Newton, ``tol=1e-4``) stops near the same minimiser, so predictions agree
except for test points within its tolerance of a decision boundary (checked against scikit-learn
in ``tests/unit/metrics/test_sap.py``). A factor with one class in the training set (where
LinearSVC refuses to fit) predicts that class.
"""

from __future__ import annotations

import numpy as np
import sklearn

from disentune.metrics.base import metric

_C = 0.01  # the reference's LinearSVC(C=0.01)


def top_two_gap(score_matrix: np.ndarray) -> float:
    """SAP from a score matrix ``(d, K)``: mean over factors of best minus second-best latent score.

    >>> top_two_gap(np.array([[0.75, 0.25], [0.5, 0.5], [0.25, 0.5]]))  # (0.25 + 0) / 2
    0.125
    """
    top = np.sort(np.asarray(score_matrix, dtype=np.float64), axis=0)
    return float(np.mean(top[-1] - top[-2]))


def _prefix(values: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(values)])


class _LatentProblems:
    """All one-vs-rest problems of one latent ``x (n,)`` against factors ``(n, K)``, in sorted order.

    Each factor's samples are stored grouped by class and sorted by ``x`` within a class; problem
    ``p``'s positives start at ``seg_start[p]`` and cost ``cp[p]``, its negatives cost ``cn[p]``.
    """

    def __init__(self, x: np.ndarray, factors: np.ndarray, c: float) -> None:
        n = len(x)
        self.n = n
        order = np.argsort(x, kind="stable")
        self.xs = x[order]
        self.all_cum = np.stack([np.arange(n + 1.0), _prefix(self.xs), _prefix(self.xs**2)])
        positions, segment_ids, seg_start, cp, cn = [], [], [], [], []
        self.factor_classes: list[np.ndarray] = []
        self.factor_problems: list[np.ndarray] = []  # problem indices of each factor
        num_segments = 0
        for k in range(factors.shape[1]):
            labels = factors[order, k]
            classes, counts = np.unique(labels, return_counts=True)
            m = len(classes)
            positions.append(np.argsort(labels, kind="stable"))  # by class, x ascending within
            segment_ids.append(np.repeat(num_segments + np.arange(m), counts))
            starts = k * n + np.concatenate([[0], np.cumsum(counts)[:-1]])
            weight = c * n / (m * counts)  # class_weight="balanced" times C
            if m == 1:
                chosen, pos_cost, neg_cost = [], [], []
            elif m == 2:
                chosen, pos_cost, neg_cost = [1], [weight[1]], [weight[0]]
            else:
                chosen, pos_cost, neg_cost = list(range(m)), list(weight), [c] * m
            self.factor_problems.append(np.arange(len(cp), len(cp) + len(chosen)))
            self.factor_classes.append(classes)
            seg_start += [starts[j] for j in chosen]
            cp += pos_cost
            cn += neg_cost
            num_segments += m
        grouped = np.concatenate(positions)  # sorted index of each entry, class segments in a row
        segment = np.concatenate(segment_ids)
        self.seg_start = np.asarray(seg_start, dtype=np.int64)
        self.cp = np.asarray(cp, dtype=np.float64)
        self.cn = np.asarray(cn, dtype=np.float64)
        # increasing keys: a count "entries of segment s with sorted index < t" is one searchsorted
        self.keys = segment * (n + 1) + grouped
        self.seg_key = segment[self.seg_start] * (n + 1)
        xg = self.xs[grouped]
        self.pos_cum = np.stack([np.arange(len(xg) + 1.0), _prefix(xg), _prefix(xg**2)])

    def _positives_below(self, t: np.ndarray) -> np.ndarray:
        """Stats ``(3, P)`` (count, sum x, sum x^2) of each problem's positives at sorted index < t."""
        upto = np.searchsorted(self.keys, self.seg_key + t) - self.seg_start
        return self.pos_cum[:, self.seg_start + upto] - self.pos_cum[:, self.seg_start]

    def _stats(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stats of positives and of negatives whose sorted index lies in ``[lo, hi)``."""
        everyone = self.all_cum[:, hi] - self.all_cum[:, lo]
        positives = self._positives_below(hi) - self._positives_below(lo)
        return positives, everyone - positives

    def _active_range(self, w: np.ndarray, b: np.ndarray, sign: float) -> tuple[np.ndarray, np.ndarray]:
        """Sorted-index range of the points of side ``sign`` with ``sign (w x + b) < 1``."""
        n = self.n
        with np.errstate(divide="ignore", invalid="ignore"):
            tau = (sign - b) / w  # sign * (w x + b) = 1 at x = tau
        left = np.searchsorted(self.xs, np.where(w != 0, tau, 0.0), side="left")
        right = np.searchsorted(self.xs, np.where(w != 0, tau, 0.0), side="right")
        below = (w * sign) > 0  # violated below tau (positives with w > 0, negatives with w < 0)
        lo = np.where(below, 0, right)
        hi = np.where(below, left, n)
        flat = w == 0
        everything = sign * b < 1
        lo = np.where(flat, 0, lo)
        hi = np.where(flat, np.where(everything, n, 0), hi)
        return lo, hi

    def evaluate(self, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Objective ``(P,)``, gradient ``(2, P)`` and Hessian ``(3, P)`` (hww, hwb, hbb)."""
        f = 0.5 * (w * w + b * b)
        grad = np.stack([w.copy(), b.copy()])
        hess = np.stack([np.ones_like(w), np.zeros_like(w), np.ones_like(w)])
        pos_lo, pos_hi = self._active_range(w, b, 1.0)
        neg_lo, neg_hi = self._active_range(w, b, -1.0)
        positives = self._stats(pos_lo, pos_hi)[0]
        negatives = self._stats(neg_lo, neg_hi)[1]
        for sign, cost, (count, s1, s2) in ((1.0, self.cp, positives), (-1.0, self.cn, negatives)):
            u, v = 1.0 - sign * b, sign * w  # loss term (u - v x)^2 per active point
            f = f + cost * (count * u * u - 2 * u * v * s1 + v * v * s2)
            grad[0] += -2 * cost * sign * (u * s1 - v * s2)
            grad[1] += -2 * cost * sign * (u * count - v * s1)
            hess += 2 * cost * np.stack([s2, s1, count])
        return f, grad, hess

    def solve(self, max_iter: int = 100, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
        """Minimisers ``w (P,)``, ``b (P,)``: Newton's method with Armijo backtracking.

        A problem stops when its gradient norm falls to ``rtol`` times the initial one (liblinear
        stops at 1e-4), or after a full Newton step once the decrease it predicts is below what
        the objective resolves in floating point (the step is then too small for backtracking).
        """
        w = np.zeros(len(self.cp))
        b = np.zeros(len(self.cp))
        f, grad, hess = self.evaluate(w, b)
        tolerance = rtol * np.hypot(grad[0], grad[1])
        done = np.zeros(len(w), dtype=bool)
        for _ in range(max_iter):
            done |= np.hypot(grad[0], grad[1]) <= tolerance
            if done.all():
                break
            det = hess[0] * hess[2] - hess[1] ** 2
            dw = -(hess[2] * grad[0] - hess[1] * grad[1]) / det
            db = -(hess[0] * grad[1] - hess[1] * grad[0]) / det
            slope = grad[0] * dw + grad[1] * db  # minus the squared Newton decrement
            last = ~done & (-slope <= 1e-14 * (1.0 + np.abs(f)))
            step = np.where(done, 0.0, 1.0)
            for _ in range(40):
                f_new, grad_new, hess_new = self.evaluate(w + step * dw, b + step * db)
                bad = (step > 0) & ~last & (f_new > f + 1e-4 * step * slope)
                if not bad.any():
                    break
                step = np.where(bad, step / 2, step)
            if bad.any():  # no decrease left at rounding level: those problems are solved
                done |= bad
                step = np.where(bad, 0.0, step)
                f_new, grad_new, hess_new = self.evaluate(w + step * dw, b + step * db)
            done |= last
            w, b = w + step * dw, b + step * db
            f, grad, hess = f_new, grad_new, hess_new
        return w, b


def fit_svc_1d(
    x: np.ndarray, factors: np.ndarray, c: float = _C
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``LinearSVC(C=c, class_weight="balanced")`` on one feature ``x (n,)`` for each factor ``(n, K)``.

    Returns per factor ``(classes (m,), coef (p,), intercept (p,))`` with ``p = m`` for ``m > 2``
    classes, ``p = 1`` for two (positives ``classes[1]``) and ``p = 0`` for one, as scikit-learn's
    ``classes_``, ``coef_[:, 0]`` and ``intercept_``.
    """
    problems = _LatentProblems(np.asarray(x, dtype=np.float64), np.asarray(factors), c)
    w, b = problems.solve()
    fitted = zip(problems.factor_classes, problems.factor_problems)
    return [(classes, w[idx], b[idx]) for classes, idx in fitted]


def predict_svc_1d(x: np.ndarray, classes: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """LinearSVC's prediction ``(n,)`` on one feature ``x (n,)`` from :func:`fit_svc_1d`'s output."""
    if len(coef) == 0:
        return np.full(len(x), classes[0])
    decision = x[:, None] * coef[None, :] + intercept[None, :]
    if len(classes) == 2:
        return classes[(decision[:, 0] > 0).astype(np.int64)]
    return classes[np.argmax(decision, axis=1)]


def score_matrix(
    train_rep: np.ndarray,
    train_factors: np.ndarray,
    test_rep: np.ndarray,
    test_factors: np.ndarray,
    continuous_factors: bool = False,
) -> np.ndarray:
    """SAP's score matrix ``(d, K)`` from train ``(n, d), (n, K)`` and test ``(m, d), (m, K)`` sets."""
    train_rep = np.asarray(train_rep, dtype=np.float64)
    if continuous_factors:
        z = train_rep - train_rep.mean(axis=0)
        v = train_factors - train_factors.mean(axis=0)
        dof = len(z) - 1
        cov = z.T @ v / dof
        var_z, var_v = (z * z).sum(axis=0) / dof, (v * v).sum(axis=0) / dof
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = cov**2 / (var_z[:, None] * var_v[None, :])
        return np.where(var_z[:, None] > 1e-12, scores, 0.0)
    test_rep = np.asarray(test_rep, dtype=np.float64)
    scores = np.empty((train_rep.shape[1], train_factors.shape[1]))
    for i in range(train_rep.shape[1]):
        for k, fitted in enumerate(fit_svc_1d(train_rep[:, i], train_factors)):
            scores[i, k] = np.mean(predict_svc_1d(test_rep[:, i], *fitted) == test_factors[:, k])
    return scores


@metric(
    "sap",
    kind="representation",
    values=("sap",),
    defaults={"num_train": 10_000, "num_test": 5_000, "continuous_factors": False},
    points=lambda p: p["num_train"] + p["num_test"],
)
def compute_sap(
    representation: np.ndarray,
    factors: np.ndarray,
    *,
    rng: np.random.Generator | None = None,
    num_train: int = 10_000,
    num_test: int = 5_000,
    continuous_factors: bool = False,
) -> dict:
    """SAP of ``representation (n, d)`` against factor classes ``factors (n, K)``.

    The first ``num_train`` rows train, the next ``num_test`` test. Deterministic given its inputs
    (``rng`` is accepted for the common metric signature).
    """
    representation, factors = np.asarray(representation), np.asarray(factors)
    if representation.shape[1] < 2:
        raise ValueError("SAP needs a representation with at least 2 dimensions")
    if len(representation) < num_train + num_test:
        raise ValueError(
            f"SAP needs num_train + num_test = {num_train + num_test} points, got {len(representation)}")
    end = num_train + num_test
    scores = score_matrix(representation[:num_train], factors[:num_train],
                          representation[num_train:end], factors[num_train:end], continuous_factors)
    return {
        "sap": top_two_gap(scores),
        "sap_score_matrix": scores.tolist(),
        "num_train": int(num_train),
        "num_test": int(num_test),
        "continuous_factors": bool(continuous_factors),
        "svc_C": _C,
        "sklearn_version": sklearn.__version__,
    }
