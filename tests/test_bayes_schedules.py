"""KL-weight schedules: each beta_t sequence against its formula; config round trips; errors."""

import json

import numpy as np
import pytest

import tfloss
from tfloss import _keras
from tfloss.bayes import schedules

STEPS = np.arange(0, 23)


def betas(schedule, steps=STEPS):
    return np.array([float(schedule(int(t))) for t in steps])


def test_per_example_and_per_batch():
    np.testing.assert_allclose(betas(tfloss.bayes.PerExample(1797)), np.full(STEPS.size, 1 / 1797), rtol=1e-7)
    np.testing.assert_allclose(betas(tfloss.bayes.PerExample(1000, temperature=0.2)), np.full(STEPS.size, 0.2 / 1000), rtol=1e-7)
    np.testing.assert_allclose(betas(tfloss.bayes.PerBatch(7)), np.full(STEPS.size, 1 / 7), rtol=1e-7)
    np.testing.assert_allclose(betas(tfloss.bayes.Constant(0.3, temperature=2.0)), np.full(STEPS.size, 0.6), rtol=1e-7)


@pytest.mark.parametrize("m", [1, 2, 5, 40])
def test_blundell_pi_formula(m):
    sched = tfloss.bayes.BlundellPi(m, temperature=0.5)
    got = betas(sched)
    i = STEPS % m + 1
    want = 0.5 * 2.0 ** (m - i).astype(np.float64) / (2.0**m - 1)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    epoch = betas(sched, np.arange(m))
    np.testing.assert_allclose(epoch.sum(), 0.5, rtol=1e-5)  # weights sum to T over an epoch


def test_blundell_pi_large_m_does_not_overflow():
    got = betas(tfloss.bayes.BlundellPi(500), np.array([0, 1, 100, 499]))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got[:3], [0.5, 0.25, 2.0**-101], rtol=1e-6)
    assert got[3] == 0.0  # 2^-500 is below float32's smallest subnormal


def test_linear_warmup_formula():
    base = tfloss.bayes.PerExample(100)
    sched = tfloss.bayes.LinearWarmup(8, base=base, temperature=0.5)
    want = 0.5 * np.minimum(1.0, (STEPS + 1) / 8.0) / 100
    np.testing.assert_allclose(betas(sched), want, rtol=1e-6)
    plain = tfloss.bayes.LinearWarmup(4)
    np.testing.assert_allclose(betas(plain, np.arange(6)), [0.25, 0.5, 0.75, 1, 1, 1], rtol=1e-7)
    pi = tfloss.bayes.LinearWarmup(10, base=tfloss.bayes.BlundellPi(3))
    want = np.minimum(1.0, (STEPS + 1) / 10) * 2.0 ** (3 - (STEPS % 3 + 1)) / 7
    np.testing.assert_allclose(betas(pi), want, rtol=1e-6)


def test_schedule_is_a_tensor_function_of_the_step():
    import tensorflow as tf

    sched = tfloss.bayes.BlundellPi(4)
    compiled = tf.function(lambda t: sched(t), jit_compile=True)
    for t in range(6):
        np.testing.assert_allclose(float(compiled(tf.constant(t, tf.int64))), float(sched(t)), rtol=1e-7)


@pytest.mark.parametrize(
    "schedule",
    [
        schedules.PerExample(60, temperature=0.1),
        schedules.PerBatch(12),
        schedules.BlundellPi(9),
        schedules.Constant(0.25),
        schedules.LinearWarmup(30, base=schedules.BlundellPi(3, temperature=2.0), temperature=0.5),
    ],
    ids=lambda s: type(s).__name__,
)
def test_config_roundtrip(schedule):
    config = schedule.get_config()
    json.dumps(config)
    clone = type(schedule).from_config(config)
    assert clone.get_config() == config
    serialized = _keras.serialize(schedule)
    again = schedules.get(json.loads(json.dumps(serialized)))
    assert type(again) is type(schedule) and again.get_config() == config
    assert _keras.registered_name(type(schedule)) == f"tfloss>{type(schedule).__name__}"
    np.testing.assert_allclose(betas(again), betas(schedule), rtol=0)


def test_argument_errors():
    with pytest.raises(ValueError, match="num_examples"):
        schedules.PerExample(0)
    with pytest.raises(ValueError, match="num_batches"):
        schedules.BlundellPi(2.5)
    with pytest.raises(ValueError, match="warmup_steps"):
        schedules.LinearWarmup(-1)
    with pytest.raises(ValueError, match="temperature"):
        schedules.PerBatch(3, temperature=float("nan"))
    with pytest.raises(ValueError, match="kl_weight must be"):
        schedules.get("per_example")
    assert isinstance(schedules.get(0.5), schedules.Constant)
