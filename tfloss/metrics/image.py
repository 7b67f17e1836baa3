"""Image-quality metrics: PSNR, SSIM, multi-scale SSIM (math in ``tfloss.ops.image``).

Each is the streaming (weighted) mean over images of the per-image value of
``tf.image.psnr`` / ``tf.image.ssim`` / ``tf.image.ssim_multiscale``. Higher is
better; tf_keras callbacks cannot tell that from these names, so there pass
``mode=tfloss.monitor_mode(metric)`` (``"max"``) to EarlyStopping /
ModelCheckpoint (Keras 3 reads the direction from the metric).
"""

import numbers

from tfloss import _keras
from tfloss.metrics import _base
from tfloss.ops import image as ops


def check_ssim_args(max_val, filter_size, filter_sigma, k1, k2):
    """Validate the SSIM window and constants; returns them JSON-plain."""
    max_val = _base.check_positive_number(max_val, "max_val")
    filter_size = _base.check_positive_int(filter_size, "filter_size")
    filter_sigma = _base.check_positive_number(filter_sigma, "filter_sigma")
    k1 = _base.check_positive_number(k1, "k1")
    k2 = _base.check_positive_number(k2, "k2")
    return max_val, filter_size, filter_sigma, k1, k2


def check_power_factors(power_factors):
    values = list(power_factors) if isinstance(power_factors, (list, tuple)) else None
    if not values or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and v >= 0 for v in values):
        raise ValueError(f"power_factors must be a non-empty list of non-negative numbers; got {power_factors!r}.")
    return [float(v) for v in values]


@_keras.register
class PSNR(_base.MeanMetric):
    """Mean peak signal-to-noise ratio (dB) over images (B, H, W, C).

    Args:
      max_val: the dynamic range of the pixels (1.0 for [0, 1], 255 for 8-bit).

    An image identical to its target has PSNR +inf (as ``tf.image.psnr``), and
    so has the mean then.
    """

    direction = _base.UP

    def __init__(self, max_val=1.0, name="psnr", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.max_val = _base.check_positive_number(max_val, "max_val")

    def values(self, y_true, y_pred):
        return ops.psnr(y_true, y_pred, self.max_val)

    def get_config(self):
        config = super().get_config()
        config["max_val"] = self.max_val
        return config


@_keras.register
class SSIM(_base.MeanMetric):
    """Mean structural similarity over images (B, H, W, C).

    Args:
      max_val: dynamic range of the pixels.
      filter_size, filter_sigma: Gaussian window (11 and 1.5, as
        ``tf.image.ssim``); images must be at least ``filter_size`` pixels.
      k1, k2: stabilising constants.
    """

    direction = _base.UP

    def __init__(self, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03, name="ssim", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.max_val, self.filter_size, self.filter_sigma, self.k1, self.k2 = check_ssim_args(
            max_val, filter_size, filter_sigma, k1, k2
        )

    def values(self, y_true, y_pred):
        return ops.ssim(y_true, y_pred, self.max_val, self.filter_size, self.filter_sigma, self.k1, self.k2)

    def get_config(self):
        config = super().get_config()
        config.update(max_val=self.max_val, filter_size=self.filter_size, filter_sigma=self.filter_sigma,
                      k1=self.k1, k2=self.k2)
        return config


@_keras.register
class MultiScaleSSIM(SSIM):
    """Mean multi-scale SSIM over images (B, H, W, C).

    Args:
      power_factors: one exponent per scale, finest first (default: the five
        of Wang et al. 2003, which need images of at least 16 x filter_size
        pixels; fewer factors mean fewer scales).
      max_val, filter_size, filter_sigma, k1, k2: as ``SSIM``.
    """

    def __init__(self, max_val=1.0, power_factors=ops.MS_SSIM_WEIGHTS, filter_size=11, filter_sigma=1.5,
                 k1=0.01, k2=0.03, name="ms_ssim", dtype=None):
        super().__init__(max_val=max_val, filter_size=filter_size, filter_sigma=filter_sigma, k1=k1, k2=k2,
                         name=name, dtype=dtype)
        self.power_factors = check_power_factors(power_factors)

    def values(self, y_true, y_pred):
        return ops.ms_ssim(y_true, y_pred, self.max_val, tuple(self.power_factors), self.filter_size,
                           self.filter_sigma, self.k1, self.k2)

    def get_config(self):
        config = super().get_config()
        config["power_factors"] = list(self.power_factors)
        return config
