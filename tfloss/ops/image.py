"""Image-quality measures: PSNR, SSIM and multi-scale SSIM, per image.

Images are channels-last, shaped (..., H, W, C) (one value per image over the
leading axes). Conventions follow ``tf.image.psnr`` / ``tf.image.ssim`` /
``tf.image.ssim_multiscale`` so values agree with them: Gaussian window, VALID
filtering, constants ``c1 = (k1 L)^2`` and ``c2 = (k2 L)^2``, SSIM averaged over
positions and then over channels. The computation is in float32 (half inputs
are upcast); integer images are used as they are with ``max_val`` in the same
units (SSIM and PSNR depend only on their ratio).

The Gaussian window is applied as two 1-D passes (it is separable), which is
exact and O(K) per pixel instead of O(K^2).
"""

import numpy as np
import tensorflow as tf

# Wang, Simoncelli and Bovik (2003) exponents for five scales, finest first.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _images(x, name):
    x = tf.convert_to_tensor(x)
    if x.shape.rank is None or x.shape.rank < 3:
        raise ValueError(f"{name} must be images shaped (batch, height, width, channels); got shape {x.shape}.")
    if x.shape[-1] is None:
        raise ValueError(f"{name} must have a known number of channels (last axis); got shape {x.shape}.")
    return tf.cast(x, tf.float32) if x.dtype != tf.float64 else x


def _pair(y_true, y_pred):
    y_pred = _images(y_pred, "y_pred")
    y_true = tf.cast(_images(y_true, "y_true"), y_pred.dtype)
    if not y_true.shape.is_compatible_with(y_pred.shape):
        raise ValueError(f"y_true and y_pred must have the same image shape; got {y_true.shape} and {y_pred.shape}.")
    return y_true, y_pred


def _flatten_batch(x):
    """(..., H, W, C) -> (N, H, W, C) and the leading shape to restore."""
    lead = tf.shape(x)[:-3]
    flat = tf.reshape(x, tf.concat([[-1], tf.shape(x)[-3:]], 0))
    return tf.ensure_shape(flat, [None] + x.shape[-3:].as_list()), lead


def psnr(y_true, y_pred, max_val):
    """Peak signal-to-noise ratio in dB: ``10 log10(max_val^2 / MSE)`` per image.

    Identical images have MSE 0 and PSNR +inf, as ``tf.image.psnr``.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    mse = tf.reduce_mean(tf.math.squared_difference(y_true, y_pred), axis=[-3, -2, -1])
    max_val = tf.cast(max_val, mse.dtype)
    ln10 = tf.math.log(tf.constant(10.0, mse.dtype))
    return 20.0 * tf.math.log(max_val) / ln10 - 10.0 * tf.math.log(mse) / ln10


def gaussian_window(filter_size, filter_sigma, dtype=tf.float32):
    """Normalised 1-D Gaussian taps centred on the window (length ``filter_size``)."""
    offsets = np.arange(filter_size, dtype=np.float64) - (filter_size - 1) / 2.0
    taps = np.exp(-(offsets**2) / (2.0 * float(filter_sigma) ** 2))
    return tf.constant(taps / taps.sum(), dtype)


def _blur(x, taps):
    """Gaussian-weighted local mean (VALID) of every channel of (N, H, W, C)."""
    channels = x.shape[-1]
    size = taps.shape[0]
    rows = tf.tile(tf.reshape(taps, [size, 1, 1, 1]), [1, 1, channels, 1])
    cols = tf.tile(tf.reshape(taps, [1, size, 1, 1]), [1, 1, channels, 1])
    x = tf.nn.depthwise_conv2d(x, rows, strides=[1, 1, 1, 1], padding="VALID")
    return tf.nn.depthwise_conv2d(x, cols, strides=[1, 1, 1, 1], padding="VALID")


def _check_size(x, filter_size, what):
    height, width = x.shape[-3], x.shape[-2]
    for dim in (height, width):
        if dim is not None and dim < filter_size:
            raise ValueError(
                f"{what}: images of {height} x {width} pixels are smaller than filter_size={filter_size}; "
                "use a smaller filter_size (and filter_sigma) or larger images."
            )


def ssim_per_channel(y_true, y_pred, max_val, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03):
    """Mean SSIM and mean contrast-structure term per image and channel, (N, C).

    SSIM = l * cs with ``l = (2 mu_x mu_y + c1) / (mu_x^2 + mu_y^2 + c1)`` and
    ``cs = (2 s_xy + c2) / (s_x^2 + s_y^2 + c2)``, local statistics under a
    Gaussian window (Wang, Bovik, Sheikh and Simoncelli, 2004, "Image quality
    assessment: from error visibility to structural similarity", IEEE TIP).
    """
    _check_size(y_pred, filter_size, "SSIM")
    taps = gaussian_window(filter_size, filter_sigma, y_pred.dtype)
    max_val = tf.cast(max_val, y_pred.dtype)
    c1 = tf.square(k1 * max_val)
    c2 = tf.square(k2 * max_val)
    # Second moments from images shifted by a common per-image constant: variances
    # and covariance do not change, but E[x^2] - mu^2 no longer cancels away the
    # digits when pixels are large next to their spread (e.g. 1e4 +- 1).
    shift = tf.stop_gradient(tf.reduce_mean(y_true + y_pred, axis=[1, 2], keepdims=True) / 2.0)
    x, y = y_true - shift, y_pred - shift
    mu_x, mu_y = _blur(x, taps), _blur(y, taps)
    covariance = _blur(x * y, taps) - mu_x * mu_y
    # the variance sum is never negative; clamping what rounding leaves keeps the
    # denominator >= c2, so the loss and its gradient stay finite
    variance_sum = tf.maximum(_blur(tf.square(x) + tf.square(y), taps) - (tf.square(mu_x) + tf.square(mu_y)), 0.0)
    contrast_structure = (2.0 * covariance + c2) / (variance_sum + c2)
    # the window sums to 1, so the local means of the unshifted images are mu + shift
    mu_x, mu_y = mu_x + shift, mu_y + shift
    luminance = (2.0 * mu_x * mu_y + c1) / (tf.square(mu_x) + tf.square(mu_y) + c1)
    ssim_map = luminance * contrast_structure
    return tf.reduce_mean(ssim_map, axis=[1, 2]), tf.reduce_mean(contrast_structure, axis=[1, 2])


def ssim(y_true, y_pred, max_val, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03):
    """Structural similarity per image (channels averaged), shaped like the
    leading axes of the images; values match ``tf.image.ssim``."""
    y_true, y_pred = _pair(y_true, y_pred)
    flat_true, lead = _flatten_batch(y_true)
    flat_pred, _ = _flatten_batch(y_pred)
    per_channel, _ = ssim_per_channel(flat_true, flat_pred, max_val, filter_size, filter_sigma, k1, k2)
    return tf.reshape(tf.reduce_mean(per_channel, axis=-1), lead)


def _halve(x):
    """2 x 2 average pooling; an odd height or width first repeats its last
    row or column (symmetric padding), as ``tf.image.ssim_multiscale`` does."""
    shape = tf.shape(x)
    pads = [[0, 0], [0, shape[1] % 2], [0, shape[2] % 2], [0, 0]]
    x = tf.pad(x, pads, mode="SYMMETRIC")
    return tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="VALID")


def ms_ssim(y_true, y_pred, max_val, power_factors=MS_SSIM_WEIGHTS, filter_size=11, filter_sigma=1.5,
            k1=0.01, k2=0.03):
    """Multi-scale SSIM per image (Wang, Simoncelli and Bovik, 2003, "Multiscale
    structural similarity for image quality assessment", Asilomar):
    ``prod_{j < M} cs_j^{w_j} * ssim_M^{w_M}`` per channel over M = len(
    power_factors) scales (each half the size of the last), negative terms set
    to 0, then averaged over channels; values match ``tf.image.ssim_multiscale``.
    The coarsest scale must still be at least ``filter_size`` pixels.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    scales = len(power_factors)
    for dim in y_pred.shape[-3:-1]:
        if dim is not None and -(-dim // 2 ** (scales - 1)) < filter_size:
            raise ValueError(
                f"MultiScaleSSIM: {scales} scales of {y_pred.shape[-3]} x {y_pred.shape[-2]} images end below "
                f"filter_size={filter_size} pixels; use fewer power_factors, a smaller filter_size, or larger images."
            )
    x, lead = _flatten_batch(y_true)
    y, _ = _flatten_batch(y_pred)
    terms = []
    for scale in range(scales):
        if scale:
            x, y = _halve(x), _halve(y)
        ssim_c, cs_c = ssim_per_channel(x, y, max_val, filter_size, filter_sigma, k1, k2)
        terms.append(tf.nn.relu(ssim_c if scale == scales - 1 else cs_c))
    weights = tf.constant(power_factors, terms[0].dtype)
    stacked = tf.stack(terms, axis=-1)  # (N, C, scales)
    per_channel = tf.reduce_prod(tf.pow(stacked, weights), axis=-1)
    return tf.reshape(tf.reduce_mean(per_channel, axis=-1), lead)
