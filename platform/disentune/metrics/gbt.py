"""scikit-learn's default ``GradientBoostingClassifier``, grown exactly but on presorted features.

DCI (Eastwood & Williams 2018, "A Framework for the Quantitative Evaluation of Disentangled
Representations"), as disentanglement_lib computes it, reads its importance matrix off one
``sklearn.ensemble.GradientBoostingClassifier()`` per factor: K-class logistic gradient boosting
(Friedman 2001, "Greedy Function Approximation", Algorithm 6) of depth-3 regression trees,
100 stages, learning rate 0.1. scikit-learn re-sorts the samples of every node on every feature;
this module sorts each feature once and keeps, per tree, the samples of each node in sorted order
(a stable partition after every split), so a node's exact best split is one pass of running sums
per feature. Everything else follows scikit-learn 1.9.1 step by step, including its floating-point
order where it is determined by the data:

- init: log class priors (``DummyClassifier(strategy="prior")``, clipped, symmetric multinomial
  logit; logit for 2 classes), exactly as ``_init_raw_predictions``;
- each stage: negative gradients of the multinomial (binomial for 2 classes, one tree a stage)
  log-loss as ``sklearn._loss`` computes them (libm ``exp``, max-shifted softmax);
- each tree (``DecisionTreeRegressor(criterion="squared_error")``, which 1.9.1 uses whatever
  ``criterion`` says; friedman_mse ranks splits identically): features drawn in the order of the
  splitter's Fisher-Yates draws with its xorshift generator seeded by ``random_state.randint``,
  known and newly found constant features skipped as ``node_split_best`` does, candidate positions
  between sorted values more than ``FEATURE_THRESHOLD`` (float32 1e-7) apart, the proxy
  ``S_L^2 / n_L + S_R^2 / n_R`` with scikit-learn's forward / reverse running sums, the first
  strictly best split kept, thresholds at the midpoint of the float32 values, children impurities
  and improvements as ``MSE.children_impurity`` and ``impurity_improvement``, nodes in depth-first
  order;
- leaves: one Newton step, ``(K - 1) / K * sum(r) / sum(p (1 - p))`` over the leaf's samples
  (``sum(r) / sum(p (1 - p))`` for 2 classes), with NumPy's pairwise summation;
- importances: each tree's weighted impurity decrease per feature over its root weight, the mean
  over trees with more than one node, normalised (``feature_importances_``).

The compiled loops are in :mod:`disentune.metrics.gbt_kernel`; this module holds the estimator.
Exact ties between features are broken by the same draws as scikit-learn's for the same integer
``random_state``. What can still differ is the last bit of a sum over samples whose float32 values
of the feature sorted last in a node are equal (within 1e-7): scikit-learn's introsort leaves such
samples in an order that only replaying all its sorts would reproduce. That matters only where two
candidate splits tie in exact arithmetic, e.g. two latents that cut a small node into the same two
sets: the trees then predict the same, but the importance is credited to the other latent, as
scikit-learn's own choice there hangs on its sort order. On continuous latents (10,000 points,
5 dSprites-sized factors) the importances agree to 1e-17; on latents rounded to a few values the
credit of a few such nodes moved by up to 2e-4 after 100 stages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.special
import scipy.stats
from sklearn.utils import check_random_state

from disentune.metrics.gbt_kernel import LEAF, RAND_R_MAX, boost, predict_stages


# ---- the estimator ------------------------------------------------------------------------

def _as_float32(x: np.ndarray) -> np.ndarray:
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    if x32.ndim != 2 or not np.isfinite(x32).all():
        raise ValueError(f"boosted trees need a finite 2-d float32 array, got shape {x32.shape}")
    return x32


def _init_raw(prior: np.ndarray, m: int) -> np.ndarray:
    """``_init_raw_predictions`` of the prior ``DummyClassifier``: ``(m, T)`` raw predictions."""
    eps = np.finfo(np.float64).eps
    proba = np.clip(np.ones((m, 1)) * prior, eps, 1 - eps, dtype=np.float64)
    if len(prior) == 2:
        return np.ascontiguousarray(scipy.special.logit(proba[:, 1]).reshape(-1, 1))
    return np.ascontiguousarray(np.log(proba / scipy.stats.gmean(proba, axis=1)[:, None]))


@dataclass(frozen=True)
class BoostedTrees:
    """A fitted ensemble: ``classes (C,)``, prior ``(C,)``, nodes ``(S, T, M)`` (``T = 1`` for two
    classes, else ``C``), node counts ``(S, T)`` and unnormalised tree importances ``(S, T, d)``."""

    classes: np.ndarray
    prior: np.ndarray
    learning_rate: float
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    node_count: np.ndarray
    tree_importance: np.ndarray

    @property
    def feature_importances(self) -> np.ndarray:
        """``feature_importances_ (d,)``: mean over trees with a split, normalised to sum 1."""
        relevant = self.tree_importance[self.node_count > 1]
        if len(relevant) == 0:
            return np.zeros(self.tree_importance.shape[-1])
        mean = np.mean(relevant, axis=0, dtype=np.float64)
        return mean / np.sum(mean)

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Raw predictions ``(m, T)`` of ``x (m, d)``."""
        x32 = _as_float32(x)
        raw = _init_raw(self.prior, len(x32))
        predict_stages(x32, self.feature, self.threshold, self.left, self.right, self.value,
                        self.learning_rate, raw)
        return raw

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Classes ``(m,)`` of ``x (m, d)``: argmax of the raw predictions (sign for 2 classes)."""
        return self.predict_raw(self.decision_function(x))

    def predict_raw(self, raw: np.ndarray) -> np.ndarray:
        """Classes ``(m,)`` of raw predictions ``(m, T)``."""
        encoded = (raw[:, 0] >= 0).astype(int) if raw.shape[1] == 1 else np.argmax(raw, axis=1)
        return self.classes[encoded]


def fit_boosted_trees(
    x: np.ndarray,
    y: np.ndarray,
    *,
    random_state: int | np.random.RandomState | None,
    n_estimators: int = 100,
    learning_rate: float = 0.1,
    max_depth: int = 3,
) -> tuple[BoostedTrees, np.ndarray]:
    """Fit ``GradientBoostingClassifier(n_estimators, learning_rate, max_depth, random_state)``
    (all else at its defaults) on ``x (n, d)``, labels ``y (n,)``.

    Returns the model and its raw predictions on ``x`` itself ``(n, T)`` (what ``decision_function
    (x)`` gives, without walking the trees again).
    """
    if n_estimators < 1 or max_depth < 1:
        raise ValueError(f"boosted trees need n_estimators >= 1 and max_depth >= 1, got "
                         f"{n_estimators} and {max_depth}")
    x32 = _as_float32(x)
    classes, encoded = np.unique(np.asarray(y), return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"boosted trees need at least 2 classes, got {len(classes)}")
    if len(x32) != len(encoded):
        raise ValueError(f"x has {len(x32)} rows but y has {len(encoded)}")
    rng = check_random_state(random_state)
    n_trees = 1 if len(classes) == 2 else len(classes)
    seeds = np.array([[rng.randint(0, RAND_R_MAX) for _ in range(n_trees)]
                      for _ in range(n_estimators)], dtype=np.int64).reshape(n_estimators, n_trees)
    counts = np.bincount(encoded, weights=np.ones(len(encoded)))
    prior = counts / counts.sum()
    raw = _init_raw(prior, len(x32))
    order = np.ascontiguousarray(np.argsort(x32, axis=0, kind="stable").T.astype(np.int32))
    sorted_values = np.ascontiguousarray(np.take_along_axis(x32, order.T, axis=0).T)
    shape = (n_estimators, n_trees, 2 ** (max_depth + 1) - 1)
    nodes = {"feature": np.full(shape, LEAF, dtype=np.int64),
             "threshold": np.full(shape, -2.0),
             "left": np.full(shape, LEAF, dtype=np.int64),
             "right": np.full(shape, LEAF, dtype=np.int64),
             "value": np.zeros(shape)}
    impurity, weight = np.zeros(shape), np.zeros(shape)
    node_count = np.zeros(shape[:2], dtype=np.int64)
    tree_importance = np.zeros((*shape[:2], x32.shape[1]))
    boost(order, sorted_values, encoded.astype(np.int64), len(classes), raw, seeds,
           float(learning_rate), int(max_depth), nodes["feature"], nodes["threshold"],
           nodes["left"], nodes["right"], nodes["value"], impurity, weight, node_count,
           tree_importance)
    model = BoostedTrees(classes=classes, prior=prior, learning_rate=float(learning_rate),
                         node_count=node_count, tree_importance=tree_importance, **nodes)
    return model, raw
