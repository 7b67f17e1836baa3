"""PSNR, SSIM, multi-scale SSIM and SSIMLoss: tf.image and float64 NumPy as
oracles, streamed weighted batches, gradients, XLA, distribution, serialization."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

import reference_metrics as ref
import support
import tfloss
from tfloss import _keras

keras = _keras.keras


def _pairs(rng, shape, noise=0.1):
    clean = rng.uniform(size=shape).astype(np.float32)
    noisy = np.clip(clean + rng.normal(size=shape) * noise, 0, 1).astype(np.float32)
    return clean, noisy


def ssim_reference(a, b, max_val, size=11, sigma=1.5, k1=0.01, k2=0.03):
    """float64 SSIM by explicit windows (Wang et al., 2004), per image, channels averaged."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    offsets = np.arange(size) - (size - 1) / 2
    g = np.exp(-(offsets**2) / (2 * sigma**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    n, h, w, c = a.shape
    out = np.zeros((n, c))
    for i in range(h - size + 1):
        for j in range(w - size + 1):
            pa = a[:, i:i + size, j:j + size, :]
            pb = b[:, i:i + size, j:j + size, :]
            wt = window[None, :, :, None]
            mx, my = (wt * pa).sum((1, 2)), (wt * pb).sum((1, 2))
            vx = (wt * pa**2).sum((1, 2)) - mx**2
            vy = (wt * pb**2).sum((1, 2)) - my**2
            cxy = (wt * pa * pb).sum((1, 2)) - mx * my
            out += (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return (out / ((h - size + 1) * (w - size + 1))).mean(-1)


@given(st.integers(0, 2**31 - 1), st.sampled_from([(3, 5, 1.0), (7, 1, 0.8), (5, 3, 1.5)]), st.booleans())
def test_ssim_and_psnr_match_float64_reference(seed, window, use_255):
    size, channels, sigma = window
    rng = np.random.default_rng(seed)
    clean, noisy = _pairs(rng, (2, 9, 10, channels))
    max_val = 255.0 if use_255 else 1.0
    clean, noisy = clean * max_val, noisy * max_val
    got = tfloss.ops.ssim(clean, noisy, max_val, size, sigma).numpy()
    np.testing.assert_allclose(got, ssim_reference(clean, noisy, max_val, size, sigma), rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(tfloss.ops.psnr(clean, noisy, max_val).numpy(), ref.psnr(clean, noisy, max_val),
                               rtol=1e-5)


@pytest.mark.parametrize("dtype, max_val", [("float32", 1.0), ("uint8", 255)])
def test_match_tf_image(dtype, max_val):
    rng = np.random.default_rng(0)
    clean, noisy = _pairs(rng, (3, 176, 180, 3))
    noisy[1] = np.clip(0.6 * clean[1] + 0.3, 0, 1)
    if dtype == "uint8":
        clean, noisy = (clean * 255).astype(np.uint8), (noisy * 255).astype(np.uint8)
    np.testing.assert_allclose(tfloss.ops.psnr(clean, noisy, max_val), tf.image.psnr(clean, noisy, max_val), rtol=1e-5)
    np.testing.assert_allclose(tfloss.ops.ssim(clean, noisy, max_val), tf.image.ssim(clean, noisy, max_val), rtol=1e-5)
    # float32 rounding differs between our separable window and tf's 2-D one; it is
    # amplified at the coarse scales (few pixels, E[x^2] - mu^2 cancellation) and by
    # the product of five powers
    np.testing.assert_allclose(tfloss.ops.ms_ssim(clean, noisy, max_val),
                               tf.image.ssim_multiscale(clean, noisy, max_val), rtol=5e-5)
    small = dict(power_factors=(0.3, 0.7), filter_size=5, filter_sigma=1.0)
    np.testing.assert_allclose(tfloss.ops.ms_ssim(clean[:, :21, :23], noisy[:, :21, :23], max_val, **small),
                               tf.image.ssim_multiscale(clean[:, :21, :23], noisy[:, :21, :23], max_val, **small),
                               rtol=5e-5)


@given(st.integers(0, 2**31 - 1), st.booleans())
def test_streamed_weighted_means(seed, weighted):
    rng = np.random.default_rng(seed)
    metrics = [tfloss.PSNR(), tfloss.SSIM(filter_size=3, filter_sigma=0.8)]
    values, weights = {m.name: [] for m in metrics}, []
    for _ in range(rng.integers(1, 4)):
        clean, noisy = _pairs(rng, (int(rng.integers(1, 4)), 6, 7, 2), noise=float(rng.uniform(0.02, 0.3)))
        w = rng.uniform(0, 2, len(clean)).astype(np.float32)
        weights.append(w)
        values["psnr"].append(ref.psnr(clean, noisy, 1.0))
        values["ssim"].append(ssim_reference(clean, noisy, 1.0, 3, 0.8))
        for m in metrics:
            m.update_state(clean, noisy, sample_weight=w if weighted else None)
    w = np.concatenate(weights) if weighted else None
    for m in metrics:
        want = ref.weighted_mean(np.concatenate(values[m.name]), w)
        np.testing.assert_allclose(float(m.result()), want, rtol=2e-5, atol=1e-5)


def test_ssim_loss_value_gradient_and_xla():
    rng = np.random.default_rng(1)
    clean, noisy = _pairs(rng, (4, 12, 12, 2))
    loss = tfloss.SSIMLoss(filter_size=5, filter_sigma=1.0)
    np.testing.assert_allclose(loss(clean, noisy), 1 - ssim_reference(clean, noisy, 1.0, 5, 1.0).mean(), rtol=1e-5)
    value, grad = support.assert_xla_matches_eager(loss, clean, noisy, rtol=1e-4, atol=1e-6)
    assert np.isfinite(grad.numpy()).all() and np.abs(grad.numpy()).max() > 0
    # gradient against central differences of the float64 reference at a few pixels
    for index in [(0, 3, 4, 1), (2, 0, 0, 0), (3, 11, 7, 1)]:
        bumped = [noisy.astype(np.float64).copy() for _ in range(2)]
        bumped[0][index] += 1e-4
        bumped[1][index] -= 1e-4
        num = [(1 - ssim_reference(clean, b, 1.0, 5, 1.0)).mean() for b in bumped]
        np.testing.assert_allclose(grad.numpy()[index], (num[0] - num[1]) / 2e-4, rtol=2e-3, atol=1e-6)
    identical = loss(clean, clean)
    np.testing.assert_allclose(identical, 0.0, atol=1e-6)
    weighted = tfloss.SSIMLoss(filter_size=5, filter_sigma=1.0, reduction="sum")(clean, noisy, [1.0, 0.0, 2.0, 0.0])
    per = 1 - ssim_reference(clean, noisy, 1.0, 5, 1.0)
    np.testing.assert_allclose(weighted, per[0] + 2 * per[2], rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_inputs(dtype):
    rng = np.random.default_rng(2)
    clean, noisy = _pairs(rng, (2, 10, 10, 1))
    loss = tfloss.SSIMLoss(filter_size=5, filter_sigma=1.0)
    value, grad = support.value_and_grad(loss, clean, tf.cast(noisy, dtype))
    full = loss(clean, noisy)
    # the images themselves are rounded to 11-bit (float16) or 8-bit (bfloat16) mantissas
    np.testing.assert_allclose(float(value), float(full), rtol=2e-2)
    assert np.isfinite(tf.cast(grad, tf.float32).numpy()).all()


@pytest.mark.parametrize("offset", [1e4, -3e4])
def test_large_pixel_values_keep_their_digits(offset):
    """Pixels far from 0 next to their spread (1e4 +- 1) must not lose the variance
    to E[x^2] - mu^2 cancellation: SSIM still matches float64, loss and gradient finite."""
    rng = np.random.default_rng(6)
    clean, noisy = _pairs(rng, (2, 12, 12, 1), noise=0.05)
    y_true, y_pred = clean + np.float32(offset), noisy + np.float32(offset)
    loss = tfloss.SSIMLoss(max_val=1.0, filter_size=5, filter_sigma=1.0, reduction="none")
    value, grad = support.value_and_grad(loss, y_true, y_pred)
    want = 1 - ssim_reference(y_true, y_pred, 1.0, 5, 1.0)
    # float32 stores 1e4 + x to 1e-3: that input rounding, not the computation, sets the tolerance
    np.testing.assert_allclose(value.numpy(), want, atol=5e-3)
    assert np.isfinite(grad.numpy()).all()
    for dtype in ("float16", "bfloat16"):
        value, grad = support.value_and_grad(loss, tf.cast(y_true, dtype), tf.cast(y_pred, dtype))
        assert np.isfinite(value.numpy()).all() and np.isfinite(tf.cast(grad, tf.float32).numpy()).all(), dtype


def test_metric_updates_under_xla():
    rng = np.random.default_rng(3)
    metrics = [tfloss.PSNR(), tfloss.SSIM(filter_size=5, filter_sigma=1.0),
               tfloss.MultiScaleSSIM(power_factors=[0.5, 0.5], filter_size=5, filter_sigma=1.0)]
    eager = [type(m).from_config(m.get_config()) for m in metrics]

    @tf.function(jit_compile=True)
    def step(a, b, w):
        for m in metrics:
            m.update_state(a, b, w)

    for _ in range(2):
        clean, noisy = _pairs(rng, (4, 16, 16, 1))
        w = rng.uniform(0, 1, 4).astype(np.float32)
        step(clean, noisy, w)
        for m in eager:
            m.update_state(clean, noisy, w)
    for c, e in zip(metrics, eager):
        np.testing.assert_allclose(float(c.result()), float(e.result()), rtol=1e-5)


def test_identical_images_psnr_is_inf_like_tf_image():
    img = np.random.default_rng(4).uniform(size=(1, 8, 8, 1)).astype(np.float32)
    assert np.isposinf(tfloss.ops.psnr(img, img, 1.0).numpy()).all()
    assert np.isposinf(tf.image.psnr(img, img, 1.0).numpy()).all()


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="smaller than filter_size=11"):
        tfloss.SSIM().update_state(np.zeros((1, 8, 8, 1)), np.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError, match="MultiScaleSSIM: 5 scales"):
        tfloss.MultiScaleSSIM().update_state(np.zeros((1, 64, 64, 1)), np.zeros((1, 64, 64, 1)))
    with pytest.raises(ValueError, match="same image shape"):
        tfloss.PSNR().update_state(np.zeros((1, 8, 8, 1)), np.zeros((1, 8, 9, 1)))
    with pytest.raises(ValueError, match="y_pred must be images"):
        tfloss.PSNR().update_state(np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="max_val must be a positive number"):
        tfloss.PSNR(max_val=0)
    with pytest.raises(ValueError, match="filter_size must be a positive int"):
        tfloss.SSIMLoss(filter_size=2.5)
    with pytest.raises(ValueError, match="power_factors must be"):
        tfloss.MultiScaleSSIM(power_factors=[])


def test_directions():
    for m in (tfloss.PSNR(), tfloss.SSIM(), tfloss.MultiScaleSSIM()):
        assert m._direction == "up" and tfloss.monitor_mode(m) == "max"


@pytest.mark.parametrize("make", [
    lambda: tfloss.PSNR(max_val=255),
    lambda: tfloss.SSIM(max_val=2.0, filter_size=7, filter_sigma=1.2, k1=0.02, k2=0.04),
    lambda: tfloss.MultiScaleSSIM(power_factors=[0.2, 0.8], filter_size=5),
    lambda: tfloss.SSIMLoss(max_val=255, filter_size=7, reduction="sum"),
])
def test_config_roundtrip(make):
    obj = make()
    clone = support.assert_config_roundtrip(obj)
    assert clone.max_val == obj.max_val


def test_distributed_evaluate_equals_single_device(two_replica_strategy):
    rng = np.random.default_rng(5)
    clean, noisy = _pairs(rng, (24, 10, 10, 1))
    sw = rng.uniform(0, 2, 24).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 1, 1)).astype(np.float32) * 0.2

    def build():
        model = keras.Sequential([keras.Input((10, 10, 1)), keras.layers.Conv2D(1, 3, padding="same", use_bias=False)])
        model.layers[-1].set_weights([kernel])
        model.compile(loss=tfloss.SSIMLoss(filter_size=3, filter_sigma=0.8),
                      weighted_metrics=[tfloss.PSNR(), tfloss.SSIM(filter_size=3, filter_sigma=0.8)])
        return model

    single = build().evaluate(noisy, clean, sample_weight=sw, batch_size=8, verbose=0, return_dict=True)
    with two_replica_strategy.scope():
        multi = build()
    multi = multi.evaluate(noisy, clean, sample_weight=sw, batch_size=8, verbose=0, return_dict=True)
    for key in ("psnr", "ssim", "loss"):
        np.testing.assert_allclose(multi[key], single[key], rtol=1e-5)
