"""Test-suite wiring: one ``pytest`` runs the suite on Keras 3 and on tf_keras.

TensorFlow picks its Keras once, at import, from ``TF_USE_LEGACY_KERAS``. So
the ``--keras`` option (default ``both``) decides it here, before any test
module imports TensorFlow:

* ``--keras=3``: this process runs Keras 3.
* ``--keras=2``: this process runs tf_keras.
* ``--keras=both``: this process runs Keras 3 and starts, at the same time, a
  second pytest with the same arguments and ``--keras=2``; its report is
  printed at the end and its failures fail the run.

Nothing in this file may import TensorFlow at module level (the Keras choice
must be made first).
"""

import os
import subprocess
import sys
import tempfile

import pytest

_LEGACY = "TF_USE_LEGACY_KERAS"
_child = {}


def pytest_addoption(parser):
    parser.addoption(
        "--keras",
        choices=("both", "3", "2"),
        default="both",
        help="which Keras to test: 3, 2 (tf_keras) or both (tf_keras in a second process)",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a few long tests (training runs, notebooks)")
    config.addinivalue_line("markers", "keras3: needs Keras 3")
    config.addinivalue_line("markers", "tf_keras: needs tf_keras (Keras 2)")
    choice = config.getoption("--keras")
    if choice == "2":
        os.environ[_LEGACY] = "1"
    else:
        os.environ.pop(_LEGACY, None)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TFLOSS_SMALL", "1")  # notebooks and CLI in their small setting
    _two_logical_cpus()
    if choice == "both" and not hasattr(config, "workerinput"):
        args = [a for a in config.invocation_params.args if not a.startswith("--keras")]
        log = tempfile.NamedTemporaryFile("w+", prefix="tfloss-tf_keras-", suffix=".log", delete=False)
        env = dict(os.environ, **{_LEGACY: "1"})
        _child["log"] = log
        _child["proc"] = subprocess.Popen(
            [sys.executable, "-m", "pytest", *args, "--keras=2", "-p", "no:cacheprovider"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(config.invocation_params.dir),
        )


def _two_logical_cpus():
    """Split the CPU into two logical devices (before TensorFlow uses it) so
    ``tf.distribute.MirroredStrategy`` tests have two replicas. Ops without a
    strategy still run on /cpu:0 as usual."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )


def pytest_collection_modifyitems(config, items):
    import tfloss._keras as k

    for item in items:
        if "keras3" in item.keywords and not k.IS_KERAS_3:
            item.add_marker(pytest.mark.skip(reason="Keras 3 only"))
        if "tf_keras" in item.keywords and k.IS_KERAS_3:
            item.add_marker(pytest.mark.skip(reason="tf_keras only"))


def pytest_sessionfinish(session, exitstatus):
    proc = _child.get("proc")
    if proc is None:
        return
    rc = proc.wait()
    _child["rc"] = rc
    log = _child["log"]
    log.flush()
    log.seek(0)
    _child["output"] = log.read()
    # 5 = no tests collected (e.g. a Keras-3-only selection): not a failure.
    if rc not in (0, 5) and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    if "output" not in _child:
        return
    terminalreporter.section(f"tf_keras run (TF_USE_LEGACY_KERAS=1), exit code {_child['rc']}")
    terminalreporter.write(_child["output"])


def pytest_unconfigure(config):
    if "output" in _child:
        lines = [ln for ln in _child["output"].splitlines() if ln.strip()]
        last = lines[-1].strip("= ") if lines else "no output"
        print(f"\ntf_keras run: {last} (exit code {_child['rc']})")


@pytest.fixture(scope="session")
def keras_name():
    import tfloss

    return tfloss.KERAS


@pytest.fixture(scope="session")
def two_replica_strategy():
    """MirroredStrategy over the two logical CPUs made at start-up."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture(autouse=True)
def _reset_policy():
    """Tests that set a mixed-precision policy must not leak it."""
    yield
    import tfloss._keras as k

    k.set_dtype_policy("float32")


try:
    from hypothesis import settings

    settings.register_profile("tfloss", max_examples=15, deadline=None, derandomize=True, print_blob=True)
    settings.load_profile("tfloss")
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    pass
