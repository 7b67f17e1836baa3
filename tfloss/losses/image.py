"""Image losses (math in ``tfloss.ops.image``)."""

from tfloss import _keras
from tfloss.losses import base
from tfloss.metrics.image import check_ssim_args
from tfloss.ops import image as ops


@_keras.register
class SSIMLoss(base.Loss):
    """``1 - SSIM`` per image (B, H, W, C), reduced as any Keras loss.

    SSIM as ``tf.image.ssim`` (Wang et al., 2004); it ranges over [-1, 1], so
    the loss lies in [0, 2] and is 0 for identical images. Differentiable in
    ``y_pred``; compiles under XLA.

    Args:
      max_val: dynamic range of the pixels (1.0 for [0, 1]).
      filter_size, filter_sigma: Gaussian window; images must be at least
        ``filter_size`` pixels.
      k1, k2: stabilising constants.
      reduction, name, dtype: as for any Keras loss.
    """

    def __init__(self, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03,
                 reduction="sum_over_batch_size", name="ssim_loss", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.max_val, self.filter_size, self.filter_sigma, self.k1, self.k2 = check_ssim_args(
            max_val, filter_size, filter_sigma, k1, k2
        )

    def call(self, y_true, y_pred):
        value = ops.ssim(y_true, y_pred, self.max_val, self.filter_size, self.filter_sigma, self.k1, self.k2)
        return 1.0 - value

    def get_config(self):
        config = super().get_config()
        config.update(max_val=self.max_val, filter_size=self.filter_size, filter_sigma=self.filter_sigma,
                      k1=self.k1, k2=self.k2)
        return config
