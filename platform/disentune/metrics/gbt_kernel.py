"""The compiled kernels of :mod:`disentune.metrics.gbt`: one tree of scikit-learn's gradient
boosting grown on presorted features, the log-loss gradients, the Newton leaf values, the stage
loop and prediction.

Each function names the scikit-learn 1.9.1 routine it reproduces (``sklearn/tree/_splitter.pyx``,
``_partitioner.pyx``, ``_criterion.pyx``, ``_tree.pyx``, ``sklearn/_loss/_loss.pyx.tp``,
``sklearn/ensemble/_gb.py``) and keeps its floating-point order. All compiled code lives in this
one file: numba's on-disk cache is invalidated per source file and would not notice an edited
callee in another one.
"""

from __future__ import annotations

import numba
import numpy as np

RAND_R_MAX = 2147483647  # sklearn.tree._utils: the splitter's seed is randint(0, RAND_R_MAX)
_FEATURE_THRESHOLD = np.float32(1e-7)  # sklearn.tree._partitioner (float32 arithmetic)
_EPSILON = float(np.finfo(np.float64).eps)  # sklearn.tree._tree: impurity / improvement tolerance
LEAF = -1  # the child of a leaf, as sklearn.tree._tree.TREE_LEAF
_SCREEN = 1.0 - 1e-12  # a candidate's proxy is computed only if it can reach the best so far

_jit = numba.njit(cache=True, nogil=True)


# ---- small exact replicas -----------------------------------------------------------------

@_jit
def _rand_int(state: np.ndarray, low: int, high: int) -> int:
    """``sklearn.tree._utils.rand_int``: xorshift32 ``our_rand_r`` in ``[low, high)``."""
    s = state[0]
    if s == 0:
        s = 1
    s ^= (s << 13) & 0xFFFFFFFF
    s ^= s >> 17
    s ^= (s << 5) & 0xFFFFFFFF
    state[0] = s
    return low + (s % (RAND_R_MAX + 1)) % (high - low)


@_jit
def _pairwise_sum(a: np.ndarray, lo: int, n: int) -> float:
    """``np.sum(a[lo:lo + n])`` bit for bit: NumPy's pairwise summation (blocks of 8, 128)."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    if n <= 128:
        r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
        r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
        i = 8
        while i < n - (n % 8):
            r0 += a[lo + i]
            r1 += a[lo + i + 1]
            r2 += a[lo + i + 2]
            r3 += a[lo + i + 3]
            r4 += a[lo + i + 4]
            r5 += a[lo + i + 5]
            r6 += a[lo + i + 6]
            r7 += a[lo + i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[lo + i]
            i += 1
        return res
    half = n // 2
    half -= half % 8
    return _pairwise_sum(a, lo, half) + _pairwise_sum(a, lo + half, n - half)


@_jit
def _negative_gradient(raw: np.ndarray, y: np.ndarray, out: np.ndarray, prob: np.ndarray) -> None:
    """Negative log-loss gradient ``out (T, n)`` at raw predictions ``raw (n, T)``.

    ``T == 1``: ``HalfBinomialLoss`` (``y - expit(raw)``); else ``HalfMultinomialLoss``
    (``[y == k] - softmax(raw)_k``), as the Cython loss of ``sklearn._loss`` computes them.
    """
    n, n_trees = raw.shape
    for i in range(n):
        if n_trees == 1:
            r, yi = raw[i, 0], float(y[i])
            if r > -37.0:
                e = np.exp(-r)
                out[0, i] = -(((1.0 - yi) - yi * e) / (1.0 + e))
            else:
                out[0, i] = -(np.exp(r) - yi)
            continue
        top = raw[i, 0]
        for k in range(1, n_trees):
            if top < raw[i, k]:
                top = raw[i, k]
        total = 0.0
        for k in range(n_trees):
            prob[k] = np.exp(raw[i, k] - top)
            total += prob[k]
        for k in range(n_trees):
            prob[k] /= total
            out[k, i] = -(prob[k] - (1.0 if y[i] == k else 0.0))


# ---- one regression tree ------------------------------------------------------------------

@_jit
def _scan_feature(f, start, end, weight, sum_total, y, idx, val, rev, best_proxy, best_pos,
                  best_threshold):
    """Best split of node ``[start, end)`` on feature ``f`` given the incumbent best.

    ``idx / val (d, n)`` hold the node's samples and float32 values in sorted order. Mirrors
    ``node_split_best``'s scan with ``MSE.proxy_impurity_improvement`` and
    ``RegressionCriterion.update``: a jump over more than half of what is left is summed
    backwards from the node total, as scikit-learn does.
    """
    improved = False
    reverse_ready = False
    last = start
    running = y[idx[f, start]]
    previous = val[f, start]
    for p in range(start + 1, end):
        value = val[f, p]
        if value > previous + _FEATURE_THRESHOLD:
            if p - last <= end - p:
                left_sum = running
            else:
                if not reverse_ready:
                    acc = sum_total
                    for q in range(end - 1, start - 1, -1):
                        acc -= y[idx[f, q]]
                        rev[q] = acc
                    reverse_ready = True
                left_sum = rev[p]
                running = left_sum
            last = p
            left_weight = float(p - start)
            right_weight = weight - left_weight
            right_sum = sum_total - left_sum
            sq_left, sq_right = left_sum * left_sum, right_sum * right_sum
            # division-free screen, 1e-12 wider than rounding: the exact proxy decides
            if (sq_left * right_weight + sq_right * left_weight
                    >= best_proxy * (left_weight * right_weight) * _SCREEN):
                proxy = sq_left / left_weight + sq_right / right_weight
                if proxy > best_proxy:
                    best_proxy = proxy
                    best_pos = p
                    best_threshold = np.float64(previous) / 2.0 + np.float64(value) / 2.0
                    improved = True
        running += y[idx[f, p]]
        previous = value
    return improved, best_proxy, best_pos, best_threshold


@_jit
def _node_sums(y, samples, start, end):
    """``RegressionCriterion.init``: weight, sum and sum of squares of ``y`` over the node's
    samples, in scikit-learn's order ``samples[start:end]``."""
    w, total, sq_total = 0.0, 0.0, 0.0
    for p in range(start, end):
        yi = y[samples[p]]
        total += yi
        sq_total += yi * yi
        w += 1.0
    return w, total, sq_total


@_jit
def _best_split(state, features, constant_features, n_known, start, end, w, sum_total, y, idx,
                val, rev):
    """``node_split_best``'s search: features in the order of the Fisher-Yates draws, known and
    newly found constant features set aside, the first strictly best ``(position, feature,
    threshold)``; also returns the feature sorted last and the node's constant-feature count."""
    d = features.shape[0]
    f_i, n_visited, n_found, n_drawn, n_total = d, 0, 0, 0, n_known
    best_proxy, best_pos, best_feature, best_threshold = -np.inf, end, -1, 0.0
    last_sorted = -1
    while f_i > n_total and (n_visited < d or n_visited <= n_found + n_drawn):
        n_visited += 1
        f_j = _rand_int(state, n_drawn, f_i - n_found)
        if f_j < n_known:
            features[n_drawn], features[f_j] = features[f_j], features[n_drawn]
            n_drawn += 1
            continue
        f_j += n_found
        f = features[f_j]
        last_sorted = f
        if val[f, end - 1] <= val[f, start] + _FEATURE_THRESHOLD:
            features[f_j], features[n_total] = features[n_total], features[f_j]
            n_found += 1
            n_total += 1
            continue
        f_i -= 1
        features[f_i], features[f_j] = features[f_j], features[f_i]
        improved, best_proxy, best_pos, best_threshold = _scan_feature(
            f, start, end, w, sum_total, y, idx, val, rev, best_proxy, best_pos, best_threshold)
        if improved:
            best_feature = f
    # the invariant for the constant features of sibling and child nodes
    features[:n_known] = constant_features[:n_known]
    constant_features[n_known:n_known + n_found] = features[n_known:n_known + n_found]
    return best_pos, best_feature, best_threshold, last_sorted, n_total


@_jit
def _split_children(y, samples, go_left, idx, start, pos, end, feature, last_sorted, w,
                    sum_total, sq_total, impurity, root_weight):
    """Split node ``[start, end)`` at ``pos`` of ``feature``'s order: mark the sides, lay the
    samples out as ``partition_samples_final`` leaves them, and return the children's impurities
    and the improvement (``MSE.children_impurity``, ``impurity_improvement``)."""
    # x <= threshold exactly for the first pos - start samples in the feature's order (the
    # midpoint of two float32 values lies strictly between them)
    for p in range(start, pos):
        go_left[idx[feature, p]] = 1
    for p in range(pos, end):
        go_left[idx[feature, p]] = 0
    # the samples sit as the last sort left them, then are swapped from both ends
    for p in range(start, end):
        samples[p] = idx[last_sorted, p]
    lo, hi = start, end
    while lo < hi:
        if go_left[samples[lo]]:
            lo += 1
        else:
            hi -= 1
            samples[lo], samples[hi] = samples[hi], samples[lo]
    # criterion.reset(); criterion.update(pos): forward, or backward from the node total
    if pos - start <= end - pos:
        left_sum = 0.0
        for p in range(start, pos):
            left_sum += y[samples[p]]
    else:
        left_sum = sum_total
        for p in range(end - 1, pos - 1, -1):
            left_sum -= y[samples[p]]
    sq_left = 0.0
    for p in range(start, pos):
        yi = y[samples[p]]
        sq_left += yi * yi
    w_left = float(pos - start)
    w_right = w - w_left
    right_sum = sum_total - left_sum
    impurity_left = sq_left / w_left - (left_sum / w_left) ** 2
    impurity_right = (sq_total - sq_left) / w_right - (right_sum / w_right) ** 2
    improvement = (w / root_weight) * (impurity - (w_right / w * impurity_right)
                                       - (w_left / w * impurity_left))
    return impurity_left, impurity_right, improvement


@_jit
def _partition_layouts(src_idx, src_val, dst_idx, dst_val, go_left, start, pos, end):
    """Stable partition of every feature's sorted segment ``[start, end)`` into the children's
    ``[start, pos)`` and ``[pos, end)``; branch-free, as a sample's side is as good as random."""
    for f in range(src_idx.shape[0]):
        lo, hi = start, pos
        for p in range(start, end):
            s = src_idx[f, p]
            side = np.int64(go_left[s])
            at = hi + (lo - hi) * side
            dst_idx[f, at], dst_val[f, at] = s, src_val[f, p]
            lo += side
            hi += 1 - side


@_jit
def _grow_tree(order, sorted_values, y, seed, max_depth, buf_idx, buf_val, samples, go_left,
               rev, leaf_of, feature, threshold, left, right, impurity, weight):
    """Grow one ``DecisionTreeRegressor`` (best splitter, squared error) on targets ``y (n,)``.

    ``order / sorted_values (d, n)``: each feature's presorted samples and float32 values;
    ``buf_idx / buf_val (2, d, n)``: the nodes' sorted layouts below the root (depth ``t`` in
    buffer ``(t - 1) % 2``). Writes the nodes in scikit-learn's depth-first order into
    ``feature, threshold, left, right, impurity, weight (M,)`` and each sample's leaf into
    ``leaf_of (n,)``; returns the node count.
    """
    d, n = order.shape
    state = np.array([seed], dtype=np.int64)
    features = np.arange(d)
    constant_features = np.zeros(d, dtype=np.int64)
    samples[:] = np.arange(n)
    # the stack of DepthFirstTreeBuilder: (start, end, depth, parent, is_left, impurity,
    # n_constant_features); at most two entries per level
    cap = 2 * max_depth + 2
    st_int = np.zeros((cap, 6), dtype=np.int64)
    st_impurity = np.zeros(cap)
    st_int[0, :] = (0, n, 0, -1, 0, 0)
    st_impurity[0] = np.inf
    top, node_count, root_weight = 1, 0, float(n)
    while top > 0:
        top -= 1
        start, end, depth, parent, is_left, n_known = st_int[top]
        node_impurity = st_impurity[top]
        w, sum_total, sq_total = _node_sums(y, samples, start, end)
        if node_count == 0:
            node_impurity = sq_total / w - (sum_total / w) ** 2
        is_leaf = depth >= max_depth or end - start < 2 or node_impurity <= _EPSILON
        if depth == 0:
            src_idx, src_val = order, sorted_values
        else:
            src_idx, src_val = buf_idx[(depth - 1) % 2], buf_val[(depth - 1) % 2]
        pos, best_feature, best_threshold, n_total = end, -1, 0.0, n_known
        impurity_left, impurity_right = 0.0, 0.0
        if not is_leaf:
            pos, best_feature, best_threshold, last_sorted, n_total = _best_split(
                state, features, constant_features, n_known, start, end, w, sum_total, y,
                src_idx, src_val, rev)
            improvement = -np.inf
            if pos < end:
                impurity_left, impurity_right, improvement = _split_children(
                    y, samples, go_left, src_idx, start, pos, end, best_feature, last_sorted, w,
                    sum_total, sq_total, node_impurity, root_weight)
            is_leaf = pos >= end or improvement + _EPSILON < 0.0
        node = node_count
        node_count += 1
        if parent >= 0:
            if is_left:
                left[parent] = node
            else:
                right[parent] = node
        impurity[node], weight[node] = node_impurity, w
        left[node], right[node] = LEAF, LEAF
        if is_leaf:
            feature[node], threshold[node] = LEAF, -2.0
            for p in range(start, end):
                leaf_of[samples[p]] = node
            continue
        feature[node], threshold[node] = best_feature, best_threshold
        if depth + 1 < max_depth:
            _partition_layouts(src_idx, src_val, buf_idx[depth % 2], buf_val[depth % 2], go_left,
                               start, pos, end)
        # push the right child, then the left one (popped first)
        st_int[top, :] = (pos, end, depth + 1, node, 0, n_total)
        st_impurity[top] = impurity_right
        st_int[top + 1, :] = (start, pos, depth + 1, node, 1, n_total)
        st_impurity[top + 1] = impurity_left
        top += 2
    return node_count


@_jit
def _tree_importance(node_count, feature, left, right, impurity, weight, out):
    """``Tree.compute_feature_importances(normalize=False)`` into ``out (d,)``."""
    out[:] = 0.0
    for node in range(node_count):
        if left[node] != LEAF:
            a, b = left[node], right[node]
            out[feature[node]] += (weight[node] * impurity[node] - weight[a] * impurity[a]
                                   - weight[b] * impurity[b])
    out /= weight[0]


@_jit
def _newton_leaves(node_count, left, leaf_of, y, target, neg_grad, multiclass, n_classes, value,
                   gathered_g, gathered_h, offsets):
    """``_update_terminal_regions``: each leaf's value is one Newton step of the log-loss.

    ``(K - 1) / K * mean(r) / mean(p (1 - p))`` over the leaf's samples (index order, NumPy's
    pairwise sums), ``p = [y == target] - r``; no ``(K - 1) / K`` factor for the binomial loss.
    """
    n = leaf_of.shape[0]
    offsets[:] = 0
    for i in range(n):
        offsets[leaf_of[i] + 1] += 1
    for node in range(node_count):
        offsets[node + 1] += offsets[node]
    fill = offsets[:node_count].copy()
    for i in range(n):
        leaf = leaf_of[i]
        r = neg_grad[i]
        prob = (1.0 if y[i] == target else 0.0) - r
        gathered_g[fill[leaf]] = r
        gathered_h[fill[leaf]] = prob * (1.0 - prob)
        fill[leaf] += 1
    for node in range(node_count):
        if left[node] != LEAF:
            continue
        lo, count = offsets[node], offsets[node + 1] - offsets[node]
        numerator = _pairwise_sum(gathered_g, lo, count) / float(count)
        if multiclass:
            numerator *= (n_classes - 1) / n_classes
        denominator = _pairwise_sum(gathered_h, lo, count) / float(count)
        value[node] = 0.0 if abs(denominator) < 1e-150 else numerator / denominator


@_jit
def boost(order, sorted_values, y, n_classes, raw, seeds, learning_rate, max_depth, feature,
           threshold, left, right, value, impurity, weight, node_count, importance):
    """All stages of the boosting (Friedman 2001, Alg. 6) on the presorted latents ``order /
    sorted_values (d, n)`` and labels ``y (n,)``.

    ``raw (n, T)`` starts at the init and ends at the training raw predictions; ``seeds (S, T)``
    are the trees' splitter seeds. Writes nodes ``(S, T, M)``, counts ``(S, T)`` and unnormalised
    per-tree importances ``(S, T, d)``.
    """
    d, n = order.shape
    n_stages, n_trees = seeds.shape
    neg_grad = np.empty((n_trees, n))
    prob = np.empty(n_trees)
    buf_idx = np.empty((2, d, n), dtype=order.dtype)
    buf_val = np.empty((2, d, n), dtype=sorted_values.dtype)
    samples = np.empty(n, dtype=np.int64)
    go_left = np.empty(n, dtype=np.uint8)
    rev = np.empty(n)
    leaf_of = np.empty(n, dtype=np.int64)
    gathered_g = np.empty(n)
    gathered_h = np.empty(n)
    offsets = np.empty(feature.shape[2] + 1, dtype=np.int64)
    multiclass = n_trees > 1
    for stage in range(n_stages):
        _negative_gradient(raw, y, neg_grad, prob)
        for k in range(n_trees):
            target = k if multiclass else 1
            count = _grow_tree(order, sorted_values, neg_grad[k], seeds[stage, k], max_depth,
                               buf_idx, buf_val, samples, go_left, rev, leaf_of,
                               feature[stage, k], threshold[stage, k], left[stage, k],
                               right[stage, k], impurity[stage, k], weight[stage, k])
            node_count[stage, k] = count
            _tree_importance(count, feature[stage, k], left[stage, k], right[stage, k],
                             impurity[stage, k], weight[stage, k], importance[stage, k])
            _newton_leaves(count, left[stage, k], leaf_of, y, target, neg_grad[k], multiclass,
                           n_classes, value[stage, k], gathered_g, gathered_h, offsets)
            step = learning_rate * value[stage, k]
            for i in range(n):
                raw[i, k] += step[leaf_of[i]]


@_jit
def predict_stages(x, feature, threshold, left, right, value, learning_rate, raw):
    """``predict_stages``: add every tree's scaled leaf value to ``raw (m, T)``, stage by stage."""
    n_stages, n_trees = feature.shape[:2]
    for stage in range(n_stages):
        for k in range(n_trees):
            step = learning_rate * value[stage, k]
            f, t = feature[stage, k], threshold[stage, k]
            lt, rt = left[stage, k], right[stage, k]
            for i in range(x.shape[0]):
                node = 0
                while lt[node] != LEAF:
                    node = lt[node] if np.float64(x[i, f[node]]) <= t[node] else rt[node]
                raw[i, k] += step[node]
