"""Data for ``python -m tfloss compare``: digits or a user's ``.npz``, split, noise, imbalance.

Every random choice draws from a NumPy generator seeded by ``--seed``, so a
seed fixes the data exactly. Only the training split is made imbalanced or
noisy: the test split keeps every example with its true label, so the scores
say how well each loss recovers the clean task.
"""

import os

import numpy as np

TEST_FRACTION = 0.25


class DataError(ValueError):
    """A data file or data option the command cannot use; the message says why."""


def load(path=None, seed=0, label_noise=0.0, noise_mode="symmetric", noise_group=2, imbalance=None):
    """Return a dict with ``x_train, y_train, x_test, y_test`` (float32 features
    standardised with training statistics, int32 labels 0..C-1), ``num_classes``,
    ``train_counts`` (examples per class after imbalance), ``flipped`` (how many
    training labels the noise changed) and ``source``."""
    rng = np.random.default_rng(seed)
    if path is None:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        source = "scikit-learn digits (8x8 images, 10 classes)"
    else:
        x, y = read_npz(path)
        source = os.fspath(path)
    y, num_classes = _dense_labels(y)
    train, test = _split(y, rng)
    if imbalance is not None:
        train = _imbalance(train, y, num_classes, imbalance, rng)
    x_train, x_test = _standardise(x[train], x[test])
    y_train, flipped = add_label_noise(y[train], num_classes, label_noise, noise_mode, noise_group, rng)
    return dict(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y[test].astype(np.int32),
        num_classes=num_classes,
        train_counts=np.bincount(y[train], minlength=num_classes).tolist(),
        flipped=int(flipped),
        source=source,
    )


def read_npz(path):
    """Features ``x`` (N, ...) and integer labels ``y`` (N,) from ``path``, checked."""
    if not os.path.isfile(path):
        raise DataError(f"--data: no such file: {path!r} (expected an .npz file with arrays 'x' and 'y').")
    try:
        arrays = np.load(path, allow_pickle=False)
    except Exception as err:  # not a zip / npy file at all
        raise DataError(f"--data: cannot read {path!r} as .npz ({type(err).__name__}: {err}).") from err
    if not isinstance(arrays, np.lib.npyio.NpzFile):
        raise DataError(f"--data: {path!r} holds a single array; expected an .npz with arrays 'x' and 'y'.")
    with arrays:
        missing = [k for k in ("x", "y") if k not in arrays.files]
        if missing:
            raise DataError(
                f"--data: {path!r} lacks array(s) {missing}; it has {sorted(arrays.files)}, "
                f"expected 'x' (features, N rows) and 'y' (integer labels, N)."
            )
        try:
            x, y = arrays["x"], arrays["y"]
        except ValueError as err:  # object arrays need pickle, which we do not load
            raise DataError(f"--data: cannot read 'x'/'y' from {path!r}: {err}") from err
    if x.ndim < 2 or not np.issubdtype(x.dtype, np.number):
        raise DataError(f"--data: 'x' must be a numeric array of shape (N, features...); got {x.dtype} {x.shape}.")
    y = np.squeeze(y) if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or len(y) != len(x):
        raise DataError(f"--data: 'y' must have shape (N,) with N = {len(x)} rows of 'x'; got {y.shape}.")
    if not (np.issubdtype(y.dtype, np.integer) or (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y)))):
        raise DataError(f"--data: 'y' must hold integer class labels; got dtype {y.dtype}.")
    x = x.reshape(len(x), -1).astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise DataError("--data: 'x' contains NaN or infinite values.")
    return x, y.astype(np.int64)


def _dense_labels(y):
    """Map the label values present to 0..C-1 (a file may use e.g. 3, 7, 9)."""
    values, dense = np.unique(y, return_inverse=True)
    if len(values) < 2:
        raise DataError(f"need at least 2 classes; the labels hold only {values.tolist()}.")
    return dense.astype(np.int32), len(values)


def _split(y, rng):
    """Stratified split: a quarter of each class (at least one example if it has two) to test."""
    train, test = [], []
    for c in range(int(y.max()) + 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = max(1, int(round(len(idx) * TEST_FRACTION))) if len(idx) > 1 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _imbalance(train, y, num_classes, ratio, rng):
    """Keep ``n_max * ratio ** (-c / (C - 1))`` training examples of class c: geometric
    sizes from the smallest class count (class 0 the largest) down by ``ratio``."""
    if not ratio >= 1.0:
        raise DataError(f"--imbalance must be >= 1 (largest / smallest class size); got {ratio}.")
    counts = np.bincount(y[train], minlength=num_classes)
    n_max = counts.min()
    keep = []
    for c in range(num_classes):
        n_c = max(1, int(round(n_max * ratio ** (-c / (num_classes - 1)))))
        keep.append(rng.permutation(train[y[train] == c])[:n_c])
    return np.sort(np.concatenate(keep))


def noise_groups(num_classes, group_size):
    """Groups of ``group_size`` neighbouring classes: (0..g-1), (g..2g-1), ...; a
    last group of one class joins the group before it (it has nowhere to move)."""
    if group_size < 2:
        raise DataError(f"--noise-group must be >= 2; got {group_size}.")
    if group_size >= num_classes:  # one group of every class would be symmetric noise under another name
        raise DataError(f"--noise-group must be below the number of classes ({num_classes}); got {group_size}.")
    groups = [list(range(s, min(s + group_size, num_classes))) for s in range(0, num_classes, group_size)]
    if len(groups) > 1 and len(groups[-1]) == 1:
        last = groups.pop()
        groups[-1] += last
    return groups


def add_label_noise(y, num_classes, rate, mode="symmetric", group_size=2, rng=None):
    """Change each label with probability ``rate`` to a different class, drawn uniformly
    from all other classes (``symmetric``) or from the other classes of its group of
    neighbouring classes (``block``, see ``noise_groups``). Returns (labels, count changed)."""
    if not 0.0 <= rate < 1.0:
        raise DataError(f"--label-noise must be in [0, 1); got {rate}.")
    if mode not in ("symmetric", "block"):
        raise DataError(f"--noise-mode must be 'symmetric' or 'block'; got {mode!r}.")
    rng = rng or np.random.default_rng(0)
    y = np.asarray(y, dtype=np.int32).copy()
    flip = rng.random(len(y)) < rate
    if mode == "symmetric":
        candidates = [[k for k in range(num_classes) if k != c] for c in range(num_classes)]
    else:
        group_of = {c: g for g in noise_groups(num_classes, group_size) for c in g}
        candidates = [[k for k in group_of[c] if k != c] for c in range(num_classes)]
    for i in np.flatnonzero(flip):
        y[i] = rng.choice(candidates[y[i]])
    return y, int(flip.sum())


def _standardise(x_train, x_test):
    """Zero mean, unit variance per feature from training statistics (constant features stay 0)."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0
    return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)
