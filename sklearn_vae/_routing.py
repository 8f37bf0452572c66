"""Where a call on a fitted or fitting VAE runs: here, on a Dask collection's
partitions (:mod:`._dask`, imported only when one comes in), or in a
``data_parallel`` block (:mod:`._parallel`).
"""

import sys
from numbers import Integral

from sklearn.utils.validation import check_is_fitted

from . import _training as training
from ._parallel import check_cluster, parallel_settings, train_data_parallel
from ._random import draw_seed
from ._sampling import record_missingness
from ._schema import validate_table
from ._unseen import count_labels

__all__ = [
    "dask_module",
    "lazy",
    "lazy_sample",
    "train_net",
    "training_records",
    "validate_training",
]


def dask_module(X):
    """:mod:`._dask` when ``X`` is a Dask collection, else None (dask is never imported here)."""
    dask = sys.modules.get("dask")
    if dask is None or not dask.is_dask_collection(X):
        return None
    from . import _dask

    return _dask


def validate_training(estimator, X, **options):
    """``validate_table`` of training data, or the summary pass of a Dask collection."""
    module = dask_module(X)
    if (settings := parallel_settings()) is not None:  # before the summary pass on its workers
        check_cluster(settings, X if module is not None else None)
    if module is None:
        return validate_table(estimator, X, **options)
    return module.training_stream(estimator, X, **options)


def train_net(net, X, *args):
    """``(net, losses, scores)``: ``net`` trained here, or a copy in a ``data_parallel`` block."""
    if (settings := parallel_settings()) is None:
        return net, *training.train(net, X, *args)
    return train_data_parallel(net, X, *args, settings)


def training_records(X, columns, label_counts, missingness):
    """The label counts and missingness patterns of training data, added to earlier ones.

    A Dask collection is read one partition at a time, an array or table whole.
    """
    blocks = X.iter_encoded() if hasattr(X, "iter_encoded") else [X]
    for block in blocks:
        label_counts = count_labels(block, columns, label_counts)
        missingness = record_missingness(block, missingness)
    return label_counts, missingness


def lazy(estimator, method, X, **kwargs):
    """``estimator.method(X)`` as a lazy Dask array when ``X`` is a Dask collection, else None."""
    module = dask_module(X)
    if module is None:
        return None
    check_is_fitted(estimator)
    n_outputs = estimator._n_features_out if method == "transform" else None
    if not isinstance(kwargs.get("random_state", 0), Integral):
        # Drawn once, here: every partition gets the same seed.
        kwargs["random_state"] = draw_seed(kwargs["random_state"])
    return module.map_rows(estimator, method, X, n_outputs, **kwargs)


def lazy_sample(estimator, n_samples, random_state, given, how):
    """``sample`` given the rows of a Dask collection, lazily; None for other ``given``."""
    if (module := dask_module(given)) is not None:
        return module.map_sample(estimator, given, n_samples, random_state, how)
