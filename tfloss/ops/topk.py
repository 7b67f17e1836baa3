"""Top-k losses: the hard and the smooth top-k SVM of Berrada, Zisserman and Kumar.

Reference: L. Berrada, A. Zisserman, M. P. Kumar, "Smooth Loss Functions for
Deep Top-k Classification", ICLR 2018 (arXiv:1802.07595): the top-k SVM loss
``l_k``, its rewriting with k-subset averages, the smooth loss ``L_{k,tau}``
and its expression through elementary symmetric polynomials.

For scores ``s`` (n classes), label ``y``, margin ``alpha`` and ``k``, the
paper's rescaled hard top-k SVM loss (the form where every k-subset is scored
by its *mean* score, the one it smooths) is

    l_k(s, y) = max( max_{Y in C_k} [alpha 1(y not in Y) + mean_{j in Y} s_j]
                     - max_{Y in C_k, y in Y} mean_{j in Y} s_j , 0 )
              = max( alpha + (s_{\\y,[k]} - s_y) / k , 0 ),

with ``s_{\\y,[k]}`` the k-th largest score other than the label's. Replacing
both maxima by temperature-``tau`` log-sum-exps gives the smooth loss
``L_{k,tau}``; summing the k-subsets that contain ``y`` and those that do not
separately, with ``x_i = s_i / (k tau)`` over the classes ``i != y``,

    L_{k,tau}(s, y) = tau * softplus( alpha / tau + log e_k(exp x)
                                      - log e_{k-1}(exp x) - s_y / (k tau) ),

where ``e_j`` is the j-th elementary symmetric polynomial (the paper writes
the same quantity as a ratio of sums over subsets and evaluates ``e_j`` as
the coefficients of ``prod_i (1 + exp(x_i) t)``). For k = 1, alpha = 0,
tau = 1 this is exactly softmax cross-entropy; as tau -> 0 it tends to
``l_k``.

How ``log e_j`` is computed (all static-shape tensor code, XLA-friendly):

1. Centre at the label, ``x_i = (s_i - s_y) / (k tau)``, so the label term
   is exactly 0 and the loss keeps its relative accuracy for scores of
   scale 1e3 (the difference is formed before the division).
2. ``H``: the k - 1 largest ``x`` (label excluded), found by k - 1 rounds of
   max-and-mask (``tf.math.top_k`` becomes a full sort under XLA on CPU).
   ``L``: all other classes. For any split,
   ``e_j(all) = sum_m e_m(H) e_{j-m}(L)``.
3. ``e_m(H)`` in log space (only k - 1 values a row, so this is cheap).
4. ``e_j(L)`` in *linear* space after normalising ``L`` to sum to one
   (``b_i = exp(x_i - logsumexp_L x)``): then ``e_j(L) <= 1/j!`` cannot
   overflow, and every term that can matter against the dominant
   ``e_{k-1}(H) e_1(L)`` stays far above float32's underflow because every
   element of ``H`` is at least the largest of ``L``. The product of the
   polynomials ``(1 + b_i t)`` truncated at degree k is formed by a short
   sequential recursion across 16 column blocks (one fused pass) and then a
   divide-and-conquer tree over the columns (one tensor per degree, only the
   valid ``(i, j - i)`` terms; for k > 8 a stacked Toeplitz contraction),
   O(n k) work, no exp or log inside, and sums of positive terms only (no
   cancellation; Newton's identities are not used).
5. The shift ``logsumexp_L x`` is held constant for the gradient: the result
   does not depend on it, so the gradient is exact and autodiff runs through
   multiply-adds only.

Ties are harmless: a tied element lands in ``H`` or in ``L`` and the sum over
the split is the same symmetric function, value and gradient alike. The
label and absent terms use finite stand-ins, never -inf, so gradients stay
finite. No switch to the hard loss is made at small tau: the computation
above stays accurate there, and a switch would add a jump of up to
``tau * log C(n, k)`` where it fired.
"""

import tensorflow as tf

from tfloss.ops import _common

# A finite stand-in for log(0): far below any log e_j of finite float32
# scores over (k tau), yet far from overflow when a few are added together.
LOG_ZERO = -1e30


def check_k(k, num_classes=None):
    """``k`` must be an int >= 1 and, when the class count is known, < n."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k!r}.")
    if num_classes is not None and k >= num_classes:
        raise ValueError(
            f"k must be smaller than the number of classes: k = {k} but y_pred has "
            f"{num_classes} classes (a top-{k} loss needs at least {k + 1})."
        )
    return k


def _logaddexp(a, b):
    # The shift is held constant for the gradient (the result does not depend
    # on it), so tied inputs get equal shares; max/abs would give one all.
    big = tf.stop_gradient(tf.maximum(a, b))
    return big + tf.math.log(tf.exp(a - big) + tf.exp(b - big))


def _top_rounds(x, taken, rounds):
    """``rounds`` rounds of max-and-mask along the last axis of x (R, n).

    Each round takes the maximum of the entries not yet taken and marks the
    first position holding it (so tied values are taken one at a time).
    Returns the values taken (list of (R,), largest first) and the updated
    boolean mask of taken positions. The gradient of each value goes to its
    one position only (a select in the backward pass: cheaper under XLA than
    an argmax reduction and a gather, whose gradient is a scatter).
    """
    if rounds == 0:
        return [], taken
    n = x.shape[-1]
    positions = tf.range(n, dtype=tf.int32)
    lowest = tf.constant(x.dtype.min, x.dtype)
    rank = tf.fill(tf.shape(x), tf.constant(-1, tf.int32))
    values = []
    masked = tf.stop_gradient(x)
    for r in range(rounds):
        masked = tf.where(taken, lowest, masked)
        peak = tf.reduce_max(masked, axis=-1)
        first = tf.reduce_min(tf.where(tf.equal(masked, peak[:, None]), positions, n), axis=-1)
        hit = tf.equal(positions, first[:, None])
        rank = tf.where(hit, r, rank)
        taken = tf.logical_or(taken, hit)
        values.append(peak)
    return tf.unstack(_pick(x, tf.stack(values, axis=-1), rank), axis=-1), taken


def _pick(x, values, rank):
    """``values`` (R, m), the entries of x at ``rank == 0..m-1``, with that gradient."""

    @tf.custom_gradient
    def pick(x):
        def grad(upstream):
            out = tf.zeros_like(x)
            for r in range(values.shape[-1]):
                out = tf.where(tf.equal(rank, r), upstream[:, r : r + 1], out)
            return out

        return tf.identity(values), grad

    return pick(x)


# Elements per chunk of a row for the first, sequential stage of
# ``_linear_esp``: the row is cut into this many column blocks and the
# polynomial recursion runs across blocks, element-wise over the block width,
# which XLA fuses into a single pass over the row (the tree that follows works
# on rows this many times narrower).
CHUNKS = 16


def _linear_esp(b, k):
    """``[e_1(b), ..., e_k(b)]`` (each (R,)) of non-negative ``b`` (R, n).

    Stage 1: cut the row into ``CHUNKS`` column blocks and run the recursion
    ``e_j <- e_j + b_i e_{j-1}`` across the blocks (column c of the result
    holds the polynomial of the elements c, c + w, c + 2w, ...). Stage 2:
    divide and conquer over the columns: each node holds its polynomial
    prod (1 + b_i t) truncated at degree k, one tensor per degree (degree 0 is
    always 1 and not stored); a round multiplies the left half of the nodes
    by the right half, forming only the valid ``(i, j - i)`` products. Every
    step adds non-negative terms, so there is no cancellation.
    """
    n = b.shape[-1]
    chunks = min(CHUNKS, n)
    width = -(-n // chunks)
    if chunks * width != n:  # zeros are polynomials 1
        b = tf.pad(b, [[0, 0], [0, chunks * width - n]])
    # unstack (not slices) so the backward pass is one concatenation rather
    # than a zero-padded full-size tensor per block
    blocks = tf.unstack(tf.reshape(b, [-1, chunks, width]), axis=1)
    coeffs = [blocks[0]]
    for block in blocks[1:]:
        degree = min(len(coeffs) + 1, k)
        grown = []
        for j in range(degree, 0, -1):
            lower = block if j == 1 else block * coeffs[j - 2]
            grown.append(coeffs[j - 1] + lower if j <= len(coeffs) else lower)
        coeffs = grown[::-1]
    if k > STACKED_FROM_K:
        return _stacked_tree(coeffs, k)
    while coeffs[0].shape[-1] > 1:
        width = coeffs[0].shape[-1]
        if width % 2:  # a zero column is the polynomial 1
            coeffs = [tf.pad(c, [[0, 0], [0, 1]]) for c in coeffs]
            width += 1
        half = width // 2
        halves = [tf.unstack(tf.reshape(c, [-1, 2, half]), axis=1) for c in coeffs]
        left = [h[0] for h in halves]
        right = [h[1] for h in halves]
        degree = len(coeffs)
        merged = []
        for j in range(1, min(2 * degree, k) + 1):
            term = left[j - 1] + right[j - 1] if j <= degree else None
            for i in range(max(1, j - degree), min(j - 1, degree) + 1):
                product = left[i - 1] * right[j - i - 1]
                term = product if term is None else term + product
            merged.append(term)
        coeffs = merged
    out = [c[:, 0] for c in coeffs]
    return out + [tf.zeros_like(out[0])] * (k - len(out))


# From this k on, the tree rounds hold the degrees in one stacked tensor and
# multiply by a Toeplitz contraction (a few large ops a round) instead of
# forming the ~k^2/2 products one by one (thousands of small ops for k = 20).
STACKED_FROM_K = 8


def _stacked_tree(coeffs, k):
    """Stage 2 of ``_linear_esp`` for large k: degrees 0..k stacked as (k + 1, R, w)."""
    coeffs = coeffs + [tf.zeros_like(coeffs[0])] * (k - len(coeffs))
    poly = tf.stack([tf.ones_like(coeffs[0])] + coeffs, axis=0)
    # toeplitz[j, i] picks degree j - i (the appended zero slice where invalid)
    index = [[j - i if 0 <= j - i <= k else k + 1 for i in range(k + 1)] for j in range(k + 1)]
    while poly.shape[-1] > 1:
        width = poly.shape[-1]
        if width % 2:
            poly = tf.concat([poly, tf.concat([tf.ones_like(poly[:1, :, :1]), tf.zeros_like(poly[1:, :, :1])], 0)], -1)
            width += 1
        left, right = tf.unstack(tf.reshape(poly, [k + 1, -1, 2, width // 2]), axis=2)
        padded = tf.concat([right, tf.zeros_like(right[:1])], axis=0)
        toeplitz = tf.gather(padded, index)  # (k + 1, k + 1, R, w / 2)
        poly = tf.einsum("jirw,irw->jrw", toeplitz, left)
    return tf.unstack(poly[1:, :, 0], axis=0)


def _log_esp_h(h, template):
    """``r_m = log e_m(exp h) - (h_1 + ... + h_m)`` for m = 0..len(h), for the
    few values ``h`` sorted largest first (list of tensors like ``template``).

    Kept relative to the sum of the m largest (``0 <= r_m <= log C(len(h), m)``)
    so that the large parts cancel exactly between degrees k and k - 1 instead
    of leaving eps * |sum| of rounding. The recursion
    ``e_m <- e_m + exp(h_i) e_{m-1}`` becomes
    ``r_m <- logaddexp(r_m, h_i - h_m + r_{m-1})``.
    """
    logs = [tf.zeros_like(template)] + [tf.fill(tf.shape(template), tf.constant(LOG_ZERO, template.dtype))] * len(h)
    for i, value in enumerate(h, start=1):
        for m in range(i, 0, -1):
            logs[m] = _logaddexp(logs[m], value - h[m - 1] + logs[m - 1])
    return logs


def _safe_log(v):
    positive = v > 0
    return tf.where(positive, tf.math.log(tf.where(positive, v, tf.ones_like(v))), tf.constant(LOG_ZERO, v.dtype))


def _split_log_esp(x, exclude, k):
    """The pieces of ``log e_j(exp x)``, j <= k, over the entries of x (R, n)
    not in ``exclude``: ``log e_m(H)`` for the k - 1 largest (fewer if the row
    is short) and ``log e_j(L)`` for the rest. Returns ``(combine, prefix,
    shift)`` with ``log e_j = combine(j) + prefix(j) + j * shift``."""
    available = x.shape[-1] - 1 if x.shape[-1] is not None else k
    top, taken = _top_rounds(x, exclude, max(0, min(k - 1, available)))
    lowest = tf.constant(x.dtype.min, x.dtype)
    # logsumexp over L, computed from its maximum so the exponentials are <= 1;
    # held constant for the gradient (the result does not depend on it).
    peak = tf.stop_gradient(tf.reduce_max(tf.where(taken, lowest, x), axis=-1))
    # The inner select keeps the masked entries (which may lie far above the
    # peak) from overflowing, which would turn their zero gradient into NaN.
    # (Not min(x - peak, 0): XLA may round x - peak of the peak itself to a
    # hair above 0, and the min would then cut the peak's gradient.)
    safe = tf.where(taken, tf.zeros_like(x), x - peak[:, None])
    scaled = tf.where(taken, tf.zeros_like(x), tf.exp(safe))
    total = tf.stop_gradient(tf.reduce_sum(scaled, axis=-1))
    shift = peak + tf.math.log(total)
    normalised = scaled * (1.0 / total)[:, None]
    # Everything below is in units where L sums to one: log e_j = (result) +
    # j * shift. Adding j * shift only once, at the end, keeps the rounding
    # error at eps * |shift| instead of eps * k * |shift|.
    log_l = [tf.zeros_like(shift)] + [_safe_log(e) for e in _linear_esp(normalised, k)]
    top = [h - shift for h in top]
    log_h = _log_esp_h(top, shift)

    def combine(j):
        """``log e_j - j * shift - (sum of the min(j, |H|) largest of H)``."""
        last = min(j, len(top))
        terms = []
        for m in range(max(0, j - k), last + 1):
            gap = sum(top[m:last], tf.zeros_like(shift))  # the H values that term m leaves out
            terms.append(log_h[m] + log_l[j - m] - gap)
        if len(terms) == 1:
            return tf.maximum(terms[0], LOG_ZERO)
        return tf.maximum(tf.reduce_logsumexp(tf.stack(terms, axis=-1), axis=-1), LOG_ZERO)

    def prefix(j):
        return sum(top[: min(j, len(top))], tf.zeros_like(shift))

    return combine, prefix, shift


def log_elementary_symmetric(x, k):
    """``log e_j(exp(x))`` for j = 0..k along the last axis of ``x`` (..., n).

    Computed as described in this module's docstring (a linear-space tree on
    the normalised tail, log space for the k - 1 largest). Degrees above n
    give the finite stand-in ``LOG_ZERO``. Returns a tensor (..., k + 1) in
    ``x``'s dtype (half inputs computed in float32).
    """
    check_k(k)
    x, out_dtype = _common.to_compute(x)
    n = _static_classes(x)
    rows = tf.reshape(x, [-1, n])
    combine, prefix, shift = _split_log_esp(rows, tf.zeros_like(rows, dtype=tf.bool), k)
    result = tf.stack([tf.maximum(combine(j) + prefix(j) + j * shift, LOG_ZERO) for j in range(k + 1)], axis=-1)
    result = tf.reshape(result, tf.concat([tf.shape(x)[:-1], [k + 1]], 0))
    return tf.cast(result, out_dtype)


def _static_classes(x):
    n = x.shape[-1]
    if n is None:
        raise ValueError("y_pred must have a static number of classes (last axis) for a top-k loss.")
    return n


def _labels_and_rows(labels, scores):
    """Integer labels (R,) and score rows (R, n) from sparse (B,), (B, 1) or
    one-hot (B, n) labels; checks the label range in eager and graph mode."""
    labels = tf.convert_to_tensor(labels)
    n = _static_classes(scores)
    if labels.shape.rank == scores.shape.rank and labels.shape[-1] == n and n > 1:
        onehot = tf.cast(labels, scores.dtype)
        tf.debugging.Assert(
            tf.reduce_all(tf.logical_and(tf.equal(tf.reduce_sum(onehot, -1), 1.0), tf.equal(tf.reduce_max(onehot, -1), 1.0))),
            ["y_true: one-hot labels for a top-k loss must have exactly one 1 a row (soft or multi-hot "
             "targets are not supported; pass integer labels)."],
            name="check_one_hot",
        )
        labels = tf.argmax(onehot, axis=-1, output_type=tf.int32)
    else:
        labels = _common.sparse_labels(labels, scores)
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    safe, in_range = _common.check_label_range(labels, n)
    return safe, in_range, tf.reshape(scores, [-1, n])


def _prepare(labels, scores, k):
    scores, out_dtype = _common.to_compute(scores)
    check_k(k, _static_classes(scores))
    batch_shape = tf.shape(scores)[:-1]
    safe, in_range, rows = _labels_and_rows(labels, scores)
    label_score = tf.gather(rows, safe, axis=1, batch_dims=1)
    is_label = tf.equal(tf.range(rows.shape[-1], dtype=tf.int32), safe[:, None])
    return rows, label_score, is_label, in_range, batch_shape, out_dtype


def _finish(loss, in_range, batch_shape, out_dtype):
    loss = _common.nan_where_invalid(loss, in_range)
    return tf.cast(tf.reshape(loss, batch_shape), out_dtype)


def smooth_topk_svm(labels, scores, k=5, alpha=1.0, tau=1.0):
    """Smooth top-k SVM loss ``L_{k,tau}`` of Berrada et al. (ICLR 2018), one value per row.

    Args:
      labels: integer labels (B,) or (B, 1), or one-hot rows (B, n).
      scores: float scores (B, n), used as given (no softmax: ``from_logits``
        has no meaning here). Half-precision inputs are computed in float32.
      k: the k of top-k (static int, 1 <= k < n).
      alpha: margin (>= 0); tau: temperature (> 0).
    Returns:
      Loss per row (B,) in ``scores``' dtype. Out-of-range labels raise in
      eager and graph mode and give NaN under XLA.
    """
    _common.check_values(alpha, "alpha", low=0.0)
    _common.check_values(tau, "tau", low=0.0, low_inclusive=False)
    rows, label_score, is_label, in_range, batch_shape, out_dtype = _prepare(labels, scores, k)
    scale = 1.0 / (k * tau)
    x = (rows - label_score[:, None]) * tf.constant(scale, rows.dtype)
    combine, _, shift = _split_log_esp(x, is_label, k)
    # |H| = k - 1 here, so the sums of H left out of combine(k) and
    # combine(k - 1) are the same and cancel exactly.
    loss = tau * tf.nn.softplus(alpha / tau + shift + (combine(k) - combine(k - 1)))
    return _finish(loss, in_range, batch_shape, out_dtype)


def hard_topk_svm(labels, scores, k=5, alpha=1.0):
    """Hard top-k SVM loss ``max(alpha + (s_{\\y,[k]} - s_y) / k, 0)`` per row.

    The paper's rescaled form (k-subsets scored by their mean), the tau -> 0
    limit of ``smooth_topk_svm``; Lapin et al.'s unscaled top-k hinge is k
    times this with margin k * alpha. The k-th largest other score is found
    by k rounds of max-and-mask; its gradient goes to one element (ties are
    broken by the lowest index). Args as ``smooth_topk_svm``.
    """
    _common.check_values(alpha, "alpha", low=0.0)
    rows, label_score, is_label, in_range, batch_shape, out_dtype = _prepare(labels, scores, k)
    top, _ = _top_rounds(rows, is_label, k)
    loss = tf.nn.relu(alpha + (top[-1] - label_score) / k)
    return _finish(loss, in_range, batch_shape, out_dtype)
