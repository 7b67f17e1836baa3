"""``tfloss.get``: an instance from a name, a registered name or a config dict.

Keras 3's ``compile(loss="tfloss>Name")`` does not resolve third-party names,
so ``tfloss.get`` is the way to name a tfloss object by string on both Kerases.
"""

import re

from tfloss import _keras

ALIASES = {"BinaryCrossentropy": "SigmoidCrossentropy"}


def _normalise(name):
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _lookup(name):
    bare = name.split(">", 1)[1] if name.startswith(_keras.PACKAGE + ">") else name
    bare = ALIASES.get(bare, bare)
    if bare in _keras.REGISTERED:
        return _keras.REGISTERED[bare]
    # Also accept snake_case ("sparse_categorical_crossentropy").
    by_key = {_normalise(n): cls for n, cls in _keras.REGISTERED.items()}
    by_key.update({_normalise(a): _keras.REGISTERED[t] for a, t in ALIASES.items() if t in _keras.REGISTERED})
    cls = by_key.get(_normalise(bare))
    if cls is None:
        raise ValueError(
            f"tfloss.get: unknown identifier {name!r}. Known names: {sorted(_keras.REGISTERED)}."
        )
    return cls


def get(identifier):
    """Return a tfloss loss, metric or layer instance.

    Args:
      identifier: an instance (returned as is), a class name (``"SmoothTopKSVM"``),
        a registered name (``"tfloss>SmoothTopKSVM"``), a snake_case name, or a
        config dict as produced by ``keras.saving.serialize_keras_object`` or
        ``{"class_name": ..., "config": {...}}``.
    """
    if identifier is None:
        return None
    if isinstance(identifier, (_keras.Loss, _keras.Metric, _keras.Layer)):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, dict):
        name = identifier.get("registered_name") or identifier.get("class_name")
        if not name:
            raise ValueError(f"tfloss.get: a config dict needs 'class_name'; got keys {sorted(identifier)}.")
        cls = _lookup(name)
        return cls.from_config(dict(identifier.get("config", {})))
    raise TypeError(
        f"tfloss.get: identifier must be an instance, a name or a config dict; got {type(identifier).__name__}."
    )
