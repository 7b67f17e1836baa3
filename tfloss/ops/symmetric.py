"""Log elementary symmetric polynomials ``log e_j(exp x)``, j <= k, with a
hand-written gradient: the engine of the smooth top-k SVM (``tfloss.ops.topk``).

Reference: L. Berrada, A. Zisserman, M. P. Kumar, "Smooth Loss Functions for
Deep Top-k Classification", ICLR 2018 (arXiv:1802.07595), which evaluates
``e_j`` as the coefficients of ``prod_i (1 + exp(x_i) t)`` and suggests the
custom gradient used here.

How ``log e_j`` is computed (all static-shape tensor code, XLA-friendly):

1. ``H``: the k - 1 largest ``x`` (label excluded); ``L``: all other
   classes. For any split, ``e_j(all) = sum_m e_m(H) e_{j-m}(L)``. The k
   largest are found without reading whole rows k times: one pass takes the
   maximum of each column block, the k blocks with the largest maxima hold
   the k largest entries, and rounds of max-and-mask run over those blocks
   only (``tf.math.top_k`` becomes a full sort under XLA on CPU).
2. ``e_m(H)`` in log space (only k - 1 values a row). This per-row part, and
   the combination of step 3's result with it, runs in float64: it is small,
   and float32 rounding of logs as large as ``log C(n, k)`` would otherwise
   dominate the loss's error.
3. ``e_j(L)`` in *linear* space after normalising ``L`` to sum to one
   (``b_i = exp(x_i - logsumexp_L x)``): then ``e_j(L) <= 1/j!`` cannot
   overflow, and every term that can matter against the dominant
   ``e_{k-1}(H) e_1(L)`` stays far above float32's underflow because every
   element of ``H`` is at least the largest of ``L``. The product of the
   polynomials ``(1 + b_i t)`` truncated at degree k is formed slab by slab
   (a while loop; in each slab a short sequential recursion across 16 column
   blocks, one fused pass), the slabs' polynomials multiplied together, and
   finally the slab's lanes by a small divide-and-conquer tree: about
   n k (1 + k / 32) multiply-adds a row, linear in n, from a graph whose size
   does not grow with n, no exp or log inside, and sums of positive
   terms only (no cancellation; Newton's identities are not used).
4. The gradient is written by hand (``_through_split``): autodiff gives the
   loss's gradient with respect to H's values and to ``log e_r(L)``
   (per-row quantities), and one element-wise sweep turns the latter into
   per-class gradients through the subset-inclusion probabilities
   ``pi_r(i) = d log e_r(L) / d x_i``, by the recursion
   ``pi_r(i) = (e_{r-1} / e_r) b_i (1 - pi_{r-1}(i))``. This is the
   custom gradient ``d log e_j / d x_i = exp(x_i) e_{j-1}(x without i) / e_j``
   the paper suggests, applied to the tail only, where it is accurate.
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


def _largest(v, count):
    """The ``count`` largest entries of ``v`` (R, n), largest first, and their
    positions: values (R, count) and int32 positions (R, count).

    ``count`` rounds of max-and-mask; each round takes the first position
    holding the maximum, so tied values are taken one at a time. No gradient
    (callers supply their own).
    """
    n = v.shape[-1]
    columns = tf.range(n, dtype=tf.int32)
    lowest = tf.constant(v.dtype.min, v.dtype)
    values, positions = [], []
    for _ in range(count):
        peak = tf.reduce_max(v, axis=-1)
        first = tf.reduce_min(tf.where(tf.equal(v, peak[:, None]), columns, n - 1), axis=-1)
        v = tf.where(tf.equal(columns, first[:, None]), lowest, v)
        values.append(peak)
        positions.append(first)
    return tf.stack(values, axis=-1), tf.stack(positions, axis=-1)


def _block_size(n, count):
    """Width of the column blocks ``_top`` screens a row of n with (None: no
    blocks). About sqrt(n / count) balances the rounds over the block maxima
    (n / size values) against those over the candidates (count * size).
    A width that divides n is preferred, within a factor of two: padding the
    row is a full copy, which under XLA on CPU costs several times the
    block reduction itself at n = 1e5."""
    size = int(round((n / count) ** 0.5))
    if size < 4:
        return None
    divisors = [s for s in range(-(-size // 2), 2 * size + 1) if n % s == 0]
    return min(divisors, key=lambda s: max(s / size, size / s)) if divisors else size


def _top(v, count, exclude):
    """``_largest`` of ``v``'s entries outside ``exclude`` (both (R, n)), with
    the rounds run on a short list of candidates. No gradient.

    Whole rows are read once, for the maximum of each column block; the
    ``count`` largest entries lie in the ``count`` blocks with the largest
    maxima (a block outside them has ``count`` blocks, each holding an entry at
    least as large, above it). The rounds then run over those blocks' entries
    only: under XLA on CPU each round over a full row costs about as much as
    a softmax, and ``tf.math.top_k`` becomes a full sort.
    """
    n = v.shape[-1]
    v = tf.where(exclude, tf.constant(v.dtype.min, v.dtype), tf.stop_gradient(v))
    size = _block_size(n, count)
    if size is None:
        return _largest(v, count)
    groups = -(-n // size)
    if groups * size != n:
        v = tf.pad(v, [[0, 0], [0, groups * size - n]], constant_values=v.dtype.min)
    blocks = tf.reshape(v, [-1, groups, size])
    _, chosen = _largest(tf.reduce_max(blocks, axis=-1), count)
    candidates = tf.reshape(tf.gather(blocks, chosen, axis=1, batch_dims=1), [-1, count * size])
    values, local = _largest(candidates, count)
    block = tf.gather(chosen, local // size, axis=1, batch_dims=1)
    return values, block * size + local % size


def _one_of(positions, n):
    """Boolean (R, n): the columns listed in ``positions`` (R, m)."""
    columns = tf.range(n, dtype=tf.int32)
    hit = tf.zeros([tf.shape(positions)[0], n], tf.bool)
    for m in range(positions.shape[-1]):
        hit = hit | tf.equal(columns, positions[:, m : m + 1])
    return hit


# How ``_linear_esp`` walks a row. A slab of CHUNKS * w columns is cut into
# CHUNKS blocks of w, and the degree-one recursion runs across the blocks,
# element-wise over w lanes: unrolled, XLA fuses it into one pass. Slabs are
# taken by a while loop, so the graph stays the same size for any n, and each
# slab's polynomial is multiplied into the running product instead of feeding
# the recursion on: float32 error grows with the length of a sequential chain
# (one chain through all n / w elements of a lane lost up to 1e-5 of e_j at
# n = 1e5; restarting at every slab keeps it near 1e-6). The lane width grows
# with n so that there are at most MAX_SLABS slabs, and is at least MIN_WIDTH:
# narrow lanes leave the closing tree (``_tree``, (k + 1)^2 w numbers a row)
# cheap, wide ones keep the chain of slab products short.
CHUNKS = 16
MAX_SLABS = 64
MIN_WIDTH = 8


def _chunk_recursion(slab, k, width):
    """``[e_1, ..., e_k]`` (each (R, width)) of each lane of ``slab`` (R,
    chunks * width), lane c holding the elements c, c + width, c + 2 width, ..."""
    blocks = tf.unstack(tf.reshape(slab, [-1, slab.shape[-1] // width, width]), axis=1)
    coeffs = [blocks[0]]
    for block in blocks[1:]:
        degree = min(len(coeffs) + 1, k)
        grown = []
        for j in range(degree, 0, -1):
            lower = block if j == 1 else block * coeffs[j - 2]
            grown.append(coeffs[j - 1] + lower if j <= len(coeffs) else lower)
        coeffs = grown[::-1]
    return coeffs + [tf.zeros_like(coeffs[0])] * (k - len(coeffs))


def _times(a, c, k):
    """The product of two polynomials ``1 + a_1 t + ... + a_k t^k`` and
    ``1 + c_1 t + ...`` (lists of k coefficients), truncated at degree k."""
    out = []
    for j in range(1, k + 1):
        term = a[j - 1] + c[j - 1]
        for i in range(1, j):
            term = term + a[i - 1] * c[j - i - 1]
        out.append(term)
    return out


def _linear_esp(b, k):
    """``[e_1(b), ..., e_k(b)]`` (each (R,)) of non-negative ``b`` (R, n).

    The polynomial ``prod (1 + b_i t)`` truncated at degree k, one tensor per
    degree (degree 0 is always 1 and not stored): slabs of the row through
    ``_chunk_recursion``, multiplied together (``_times``) by a while loop,
    then the w lanes multiplied together by ``_tree``. Every step adds
    non-negative terms, so there is no cancellation. Forward only: the
    gradient is ``_through_split``'s.
    """
    n = b.shape[-1]
    if n <= CHUNKS * MIN_WIDTH:  # one slab, no loop
        chunks = min(CHUNKS, n)
        width = -(-n // chunks)
        if chunks * width != n:  # zeros are polynomials 1
            b = tf.pad(b, [[0, 0], [0, chunks * width - n]])
        return _tree(_chunk_recursion(b, k, width), k)
    width = max(MIN_WIDTH, -(-n // (CHUNKS * MAX_SLABS)))
    slab = CHUNKS * width
    full, rest = divmod(n, slab)
    # the loop starts from the partial slab at the end, padded (a small copy),
    # or else from the first slab
    first = tf.pad(b[:, full * slab :], [[0, 0], [0, slab - rest]]) if rest else b[:, :slab]
    coeffs = _chunk_recursion(first, k, width)
    start = 0 if rest else 1
    if full > start:
        rows = tf.shape(b)[0]

        def step(s, *coeffs):
            piece = tf.slice(b, [0, s * slab], [rows, slab])
            return (s + 1,) + tuple(_times(list(coeffs), _chunk_recursion(piece, k, width), k))

        state = tf.while_loop(lambda s, *_: s < full, step, (tf.constant(start),) + tuple(coeffs))
        coeffs = list(state[1:])
    return _tree(coeffs, k)


def _tree(coeffs, k):
    """Multiply the w polynomials held in ``coeffs`` (k tensors (R, w), one a
    degree) together: ``[e_1, ..., e_k]`` (each (R,)). Divide and conquer with
    the degrees 0..k stacked as (k + 1, R, w); a round multiplies the left
    half of the lanes by the right half by a Toeplitz contraction (a few large
    ops a round, rather than the ~k^2 / 2 products one by one)."""
    poly = tf.stack([tf.ones_like(coeffs[0])] + coeffs, axis=0)
    # toeplitz[j, i] picks degree j - i (the appended zero slice where invalid)
    index = [[j - i if 0 <= j - i <= k else k + 1 for i in range(k + 1)] for j in range(k + 1)]
    while poly.shape[-1] > 1:
        width = poly.shape[-1]
        if width % 2:  # the polynomial 1 as an extra lane
            poly = tf.concat([poly, tf.concat([tf.ones_like(poly[:1, :, :1]), tf.zeros_like(poly[1:, :, :1])], 0)], -1)
            width += 1
        left, right = tf.unstack(tf.reshape(poly, [k + 1, -1, 2, width // 2]), axis=2)
        padded = tf.concat([right, tf.zeros_like(right[:1])], axis=0)
        toeplitz = tf.gather(padded, index)  # (k + 1, k + 1, R, w / 2)
        poly = tf.einsum("jirw,irw->jrw", toeplitz, left)
    return tf.unstack(poly[1:, :, 0], axis=0)


def _log_esp_h(h):
    """``r_m = log e_m(exp h) - (h_1 + ... + h_m)`` for m = 0..c, as (R, c + 1),
    for the few values ``h`` (R, c) of each row sorted largest first.

    Kept relative to the sum of the m largest (``0 <= r_m <= log C(c, m)``)
    so that the large parts cancel exactly between degrees k and k - 1 instead
    of leaving eps * |sum| of rounding. The recursion
    ``e_m <- e_m + exp(h_i) e_{m-1}`` becomes
    ``r_m <- logaddexp(r_m, h_i - h_m + r_{m-1})``, run for all m at once (c
    steps on (R, c) tensors rather than c^2 / 2 steps on (R,) ones: under XLA
    on CPU every small op has a fixed cost).
    """
    count = h.shape[-1]
    first = tf.zeros([tf.shape(h)[0], 1], h.dtype)
    logs = tf.concat([first, tf.fill(tf.shape(h), tf.constant(LOG_ZERO, h.dtype))], axis=-1)
    for i in range(count):
        # for m > i + 1, r_{m-1} is still the stand-in and r_m stays near it
        grown = _logaddexp(logs[:, 1:], h[:, i : i + 1] - h + logs[:, :-1])
        logs = tf.concat([first, grown], axis=-1)
    return logs


def _safe_log(v):
    positive = v > 0
    return tf.where(positive, tf.math.log(tf.where(positive, v, tf.ones_like(v))), tf.constant(LOG_ZERO, v.dtype))


def _split(x, exclude, k, count):
    """Forward pieces of ``log e_j(exp x)``, j <= k, over the entries of x
    (R, n) not in ``exclude``, split into ``H``, the ``count`` largest, and
    ``L``, the rest (module docstring, steps 1-3).

    Returns a dict: ``h`` (R, count) and ``h_at`` (their positions), ``in_l``
    (R, n), ``b`` (R, n; L normalised to sum to one, 0 elsewhere), ``e`` (the
    list ``e_1(b), ..., e_k(b)``), and ``peak`` and ``total`` (R,), L's
    maximum and the sum of ``exp(x - peak)`` over L:
    ``log e_j(L) = log e_j(b) + j * (peak + log total)``.
    """
    n = x.shape[-1]
    values, positions = _top(x, count + 1, exclude)
    h, h_at, peak = values[:, :count], positions[:, :count], values[:, count]
    in_l = tf.logical_not(exclude | _one_of(h_at, n))
    # L's maximum is the (count + 1)-th largest, so these exponentials are <= 1;
    # the inner select keeps H's entries (far above the peak) from overflowing.
    scaled = tf.where(in_l, tf.exp(tf.where(in_l, x - peak[:, None], tf.zeros_like(x))), tf.zeros_like(x))
    total = tf.reduce_sum(scaled, axis=-1)
    b = scaled * (1.0 / total)[:, None]
    return {"h": h, "h_at": h_at, "in_l": in_l, "b": b, "e": _linear_esp(b, k), "peak": peak, "total": total}


def _combiner(h, log_l, shift, k):
    """``combine(j) = log e_j - j * shift - (sum of the min(j, |H|) largest of
    H)`` from H's values ``h`` (R, c) and ``log e_j(b)`` (a list, j = 0..k),
    and ``prefix(j)``, that sum. Small per-row tensors only: gradients through
    here come from autodiff (``_through_split``)."""
    count = h.shape[-1]
    top = h - shift[:, None]
    log_h = _log_esp_h(top)
    log_l = tf.stack(log_l, axis=-1)
    zero = tf.zeros_like(shift)

    def combine(j):
        last = min(j, count)
        m = list(range(max(0, j - k), last + 1))
        # the H values that term m leaves out: top[m:last], summed directly
        # (a difference of prefix sums would round by eps * |sum|)
        gaps = [zero]
        for i in range(last - 1, -1, -1):
            gaps.append(gaps[-1] + top[:, i])
        gaps = tf.stack(gaps[::-1], axis=-1)
        terms = (tf.gather(log_h, m, axis=-1) + tf.gather(log_l, [j - i for i in m], axis=-1)
                 - tf.gather(gaps, m, axis=-1))
        return tf.maximum(tf.reduce_logsumexp(terms, axis=-1), LOG_ZERO)

    def prefix(j):
        last = min(j, count)
        return tf.reduce_sum(top[:, :last], axis=-1) if last else zero

    return combine, prefix


def _through_split(x, exclude, k, count, head):
    """``head(combine, prefix, shift)`` of x's split (``_split``), with a
    hand-written gradient.

    Autodiff through the product tree would store and re-read every level of
    it; instead the backward pass is one element-wise sweep. ``head`` depends
    on x through H's values and ``log e_r(L)``, r = 1..k; its gradients with
    respect to those (R, k) quantities come from autodiff of the small
    per-row code. The derivative of ``log e_r(L)`` with respect to ``x_i``,
    i in L, is the probability ``pi_r(i) = b_i e_{r-1}(L without i) / e_r(L)``
    that i belongs to a random r-subset of L weighted by its product, and
    ``e_{r-1}(L) = e_{r-1}(L without i) + b_i e_{r-2}(L without i)`` gives

        pi_1(i) = b_i / e_1,    pi_r(i) = (e_{r-1} / e_r) b_i (1 - pi_{r-1}(i)),

    O(k) multiply-adds an element, no exp or log. The subtraction loses
    accuracy only when ``pi_{r-1}(i)`` is near one, that is when L is
    dominated by i; r-subsets then carry a weight of the order of
    ``1 - pi_{r-1}(i)`` in ``head``, so the product stays accurate (tested
    against float64 references). Each ``pi`` is clipped to [0, 1].
    """
    n = x.shape[-1]

    @tf.custom_gradient
    def through(x):
        parts = _split(x, exclude, k, count)
        # The per-row part runs in float64: the logs of e_j and of the sums in
        # it reach log C(n, k) (about 60 for n = 200, k = 20), whose float32
        # rounding would dominate the loss's error; e_j themselves carry only
        # a few float32 roundings relative to their size.
        wide = tf.float64
        h = tf.cast(parts["h"], wide)
        log_l = [tf.zeros(tf.shape(parts["peak"]), wide)] + [_safe_log(tf.cast(e, wide)) for e in parts["e"]]
        shift = tf.cast(parts["peak"], wide) + tf.math.log(tf.cast(parts["total"], wide))

        def run(h, log_l):
            combine, prefix = _combiner(h, log_l, shift, k)
            return head(combine, prefix, shift)

        out = tf.cast(run(h, log_l), x.dtype)

        def grad(upstream):
            lows = log_l[1:]
            with tf.GradientTape() as tape:
                tape.watch([h] + lows)
                again = run(h, log_l)
            grads = tape.gradient(again, [h] + lows, output_gradients=tf.cast(upstream, wide),
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            g_h = tf.cast(grads[0], x.dtype)
            g_l = [tf.cast(g, x.dtype) for g in grads[1:]]
            b, e = parts["b"], [tf.ones_like(parts["peak"])] + parts["e"]
            pi = tf.zeros_like(b)
            dx = tf.zeros_like(b)
            for r in range(1, k + 1):
                # e_{r-1} / e_r, finite where e_r underflowed (g_l[r] is then 0)
                ratio = tf.where(e[r] > 0, e[r - 1] / tf.where(e[r] > 0, e[r], tf.ones_like(e[r])), 0.0)
                ratio = tf.minimum(ratio, 1e30)
                pi = tf.clip_by_value(ratio[:, None] * b * (1.0 - pi), 0.0, 1.0)
                dx = dx + g_l[r - 1][:, None] * pi
            dx = tf.where(parts["in_l"], dx, tf.zeros_like(dx))
            columns = tf.range(n, dtype=tf.int32)
            for m in range(count):
                dx = tf.where(tf.equal(columns, parts["h_at"][:, m : m + 1]), g_h[:, m : m + 1], dx)
            return dx

        return out, grad

    return through(x)


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

    def head(combine, prefix, shift):
        return tf.stack([tf.maximum(combine(j) + prefix(j) + j * shift, LOG_ZERO) for j in range(k + 1)], axis=-1)

    result = _through_split(rows, tf.zeros_like(rows, dtype=tf.bool), k, max(0, min(k - 1, n - 1)), head)
    result = tf.reshape(result, tf.concat([tf.shape(x)[:-1], [k + 1]], 0))
    return tf.cast(result, out_dtype)


def _static_classes(x):
    n = x.shape[-1]
    if n is None:
        raise ValueError("y_pred must have a static number of classes (last axis) for a top-k loss.")
    return n
