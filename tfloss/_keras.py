"""The one place that knows which Keras is active.

TensorFlow resolves ``tf.keras`` to Keras 3 unless ``TF_USE_LEGACY_KERAS`` is set,
in which case it resolves to ``tf_keras`` (Keras 2). We follow the same rule, by
asking TensorFlow rather than re-reading the environment, so tfloss objects are
always built on the Keras that ``tf.keras`` gives the user.

Everything else in tfloss imports Keras through this module only.
"""

import tensorflow as tf


def _active_keras():
    # `tf.keras` is a lazy loader; its `Model` lives either in `keras.*`
    # (Keras 3) or in `tf_keras.*` (Keras 2).
    module = tf.keras.Model.__module__
    if module.startswith("tf_keras"):
        import tf_keras

        return tf_keras, False
    import keras

    return keras, True


keras, IS_KERAS_3 = _active_keras()
KERAS_NAME = "keras3" if IS_KERAS_3 else "tf_keras"

Loss = keras.losses.Loss
Metric = keras.metrics.Metric
Layer = keras.layers.Layer

PACKAGE = "tfloss"

# Every public class, by class name; `tfloss.get` looks names up here.
REGISTERED = {}


def register(cls):
    """Register ``cls`` for deserialization as ``"tfloss>ClassName"``."""
    REGISTERED[cls.__name__] = cls
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def registered_name(cls_or_obj):
    return keras.saving.get_registered_name(cls_or_obj)


def registered_object(name):
    return keras.saving.get_registered_object(name)


def serialize(obj):
    return keras.saving.serialize_keras_object(obj)


def deserialize(config):
    return keras.saving.deserialize_keras_object(config)


def add_state(metric, name, shape=(), dtype="float32", initializer="zeros"):
    """Add a metric state variable that sums across replicas.

    Keras 3 spells it ``add_variable`` and tf_keras ``add_weight``; both take
    keyword arguments and both are summed by ``tf.distribute`` when the
    aggregation is SUM, which is what streaming metrics need.
    """
    if IS_KERAS_3:
        return metric.add_variable(
            shape=shape, initializer=initializer, dtype=dtype, aggregation="sum", name=name
        )
    return metric.add_weight(
        name=name,
        shape=shape,
        initializer=initializer,
        dtype=dtype,
        aggregation=tf.VariableAggregation.SUM,
    )


def set_mask(tensor, mask):
    """Attach a Keras mask so the base ``Loss`` averages over valid entries only."""
    if IS_KERAS_3:
        keras.src.backend.set_keras_mask(tensor, mask)
    else:
        tensor._keras_mask = mask
    return tensor


def set_dtype_policy(name):
    """Set the global dtype policy ("float32", "mixed_float16", ...) on the active Keras."""
    if IS_KERAS_3:
        keras.config.set_dtype_policy(name)
    else:
        keras.mixed_precision.set_global_policy(name)


def get_mask(tensor):
    return getattr(tensor, "_keras_mask", None)


if IS_KERAS_3:
    # Keras 3's own reduction (sample weights, masks, and the 1/num_replicas
    # scaling it applies under tf.distribute), so our losses reduce exactly as
    # Keras's built-ins do.
    from keras.src.losses.loss import reduce_weighted_values  # noqa: E402
else:
    reduce_weighted_values = None


def reduction_names():
    """The reductions the active Keras's ``Loss`` accepts."""
    if IS_KERAS_3:
        return ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)
    return ("sum_over_batch_size", "sum", "auto", "none")


def save_model(model, path):
    """Save whole model; ``path`` ending in ``.keras`` uses that format, else SavedModel
    (tf_keras only; Keras 3 saves SavedModel through ``model.export`` without compile state)."""
    model.save(path)


def load_model(path, **kwargs):
    return keras.models.load_model(path, **kwargs)
