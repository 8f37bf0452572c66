"""The model builder and the training driver: the skorch net, its callbacks, one training call.

The estimator hands its parameters over as ``get_params(deep=False)`` returns
them; :mod:`._persistence` rebuilds a saved model through the same builders.
"""

import math
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial

import numpy as np
import torch
from sklearn.utils import check_random_state
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.helper import predefined_split

from ._averaging import WeightAveraging, average_decay
from ._checks import (
    check_device,
    check_hidden_layer_sizes,
    check_network_params,
    check_training_data,
    short_repr,
    warn_if_lattice,
)
from ._data import BatchIterator, RowDataset, Standardisation, column_statistics, strided_rows
from ._evaluation import noise_columns
from ._exceptions import TrainingInterruptedWarning
from ._likelihoods import make_likelihood, one_hot_columns
from ._linear_start import standardised_moments, start_at_factor_analysis
from ._module import VAEModule
from ._moments import ZeroNegligibleMoments
from ._net import (
    CompletedEpochs,
    NegativeELBO,
    StopOnNonFiniteLoss,
    TrainingState,
    VAENet,
    print_log_sink,
)
from ._networks import NETWORKS, build_trunk
from ._random import draw_seed, torch_seed
from ._threads import n_threads, torch_threads

__all__ = [
    "STRUCTURAL_PARAMS",
    "batch_size",
    "build_module",
    "check_unchanged_structure",
    "fit_raising_interrupts",
    "fitted_curves",
    "fitted_params",
    "initialise",
    "latent_size",
    "ledermann_bound",
    "make_net",
    "resolved_params",
    "restore_on_error",
    "split_rows",
    "start_linear_gaussian",
    "train",
    "widen_support",
]

#: ``n_components="auto"`` is at most this many latent variables.
AUTO_MAX_COMPONENTS = 8

#: At most this many rows (every k-th) fit the Gaussian columns' power map.
POWER_MAP_ROWS = 10_000

#: The parameters that make a fitted model what it is: ``warm_start`` and
#: ``partial_fit`` continue that model, so they cannot change them.
STRUCTURAL_PARAMS = (
    "n_components",
    "hidden_layer_sizes",
    "encoder",
    "encoder_params",
    "decoder",
    "decoder_params",
    "likelihood",
    "dequantize",
    "decoder_variance",
    "device",
)

# True where an interrupted fit must re-raise its KeyboardInterrupt even after
# completed epochs (:func:`fit_raising_interrupts`): a context variable, so each
# thread, and each joblib worker, has its own.
_RAISE_INTERRUPTS = ContextVar("sklearn_vae_raise_interrupts", default=False)


def _noop(*args, **kwargs):
    pass


@contextmanager
def restore_on_error(estimator):
    """Leave ``estimator`` exactly as it was if the block raises (a failed refit loses nothing).

    A ``KeyboardInterrupt`` too. The attributes are put back, and the random
    streams among them rewound; the net a warm start trains in place is put
    back by :func:`train` itself.
    """
    state = estimator.__dict__.copy()
    streams = [
        (value, value.get_state())
        for value in state.values()
        if isinstance(value, np.random.RandomState)
    ]
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(state)
        for stream, stream_state in streams:
            stream.set_state(stream_state)
        raise


def fit_raising_interrupts(estimator, X):
    """``estimator.fit(X)``, where an interrupt re-raises instead of keeping an epoch.

    A fit interrupted after some epochs keeps the last one and warns; the
    members of an ensemble are fitted through this function, so that an
    interrupt stops the whole ensemble (and the fit of each member leaves it
    as it was).
    """
    token = _RAISE_INTERRUPTS.set(True)
    try:
        return estimator.fit(X)
    finally:
        _RAISE_INTERRUPTS.reset(token)


# --------------------------------------------------------- fitted parameters


def ledermann_bound(n_features):
    """The Ledermann bound of ``n_features`` columns, at least 1.

    The largest ``k`` with ``(d - k)**2 >= d + k``: the most factors a factor
    analysis of ``d`` variables identifies (beyond it the model has more free
    parameters than the covariance it describes).
    """
    d = n_features
    return max(1, math.floor((2 * d + 1 - math.sqrt(8 * d + 1)) / 2))


def latent_size(n_features):
    """The ``"auto"`` number of latent variables for a table of ``n_features`` columns:
    the Ledermann bound (:func:`ledermann_bound`), at most :data:`AUTO_MAX_COMPONENTS`."""
    return min(AUTO_MAX_COMPONENTS, ledermann_bound(n_features))


def resolved_params(params, n_features):
    """``params``, or a copy with ``"auto"`` ``n_components`` resolved for ``n_features``."""
    if params["n_components"] != "auto":
        return params
    return {**params, "n_components": latent_size(n_features)}


def fitted_params(params):
    """The parameters a fit consumed (``get_params(deep=False)`` less ``random_state``).

    The estimator keeps them as ``_fitted_params``, and its saved state with
    them: the fitted model is rebuilt from them, whatever ``set_params``
    changed since. ``device`` is kept as its string.
    """
    fitted = {name: value for name, value in params.items() if name != "random_state"}
    fitted["device"] = str(torch.device(fitted["device"]))
    return fitted


def _comparable(name, value):
    """``value`` of the parameter ``name`` in the form two equal settings share."""
    try:
        if name == "hidden_layer_sizes":
            return check_hidden_layer_sizes(value)
        if name == "device":
            return str(torch.device(value))
    except (TypeError, ValueError, RuntimeError):
        pass
    return value


def _same(a, b):
    if a is b:
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def check_unchanged_structure(fitted, params, method):
    """Raise ``ValueError`` if ``params`` change a structural parameter of the fitted model.

    Parameters
    ----------
    fitted : dict
        The estimator's ``_fitted_params``.
    params : dict
        Its ``get_params(deep=False)`` now.
    method : str
        What continues the model, for the message: ``"warm_start=True"`` or
        ``"partial_fit"``.
    """
    for name in STRUCTURAL_PARAMS:
        before, now = _comparable(name, fitted[name]), _comparable(name, params[name])
        if not _same(before, now):
            raise ValueError(
                f"{name} was changed from {short_repr(fitted[name])} to {short_repr(params[name])} "
                f"after fit, but {method} continues the fitted model, whose {name} it cannot "
                f"change. Call fit with warm_start=False to fit a new model with "
                f"{name}={short_repr(params[name])}, or set it back to "
                f"{short_repr(fitted[name])}."
            )


def network_builders(params):
    """``build(size) -> UserTrunk`` for the custom encoder and decoder, or None each."""
    builders = []
    for network in NETWORKS:
        value, kwargs = params[network], params[f"{network}_params"]
        check_network_params(network, value, kwargs)
        builders.append(None if value is None else partial(build_trunk, network, value, kwargs))
    return builders


def build_module(likelihood, params):
    """The untrained torch model for a fitted ``likelihood`` (also used to load a model)."""
    encoder, decoder = network_builders(params)
    return VAEModule(
        likelihood,
        params["n_components"],
        check_hidden_layer_sizes(params["hidden_layer_sizes"]),
        one_hot_columns(likelihood),
        encoder=encoder,
        decoder=decoder,
        heteroscedastic=params["decoder_variance"] == "heteroscedastic",
    )


def stopping_callback(params, validation, n_samples=None):
    """skorch's EarlyStopping on the validation loss, or on the training loss.

    ``n_samples`` is the number of training rows, which ``"auto"`` patience
    reads (:func:`patience`); None before the data are known.
    """
    return EarlyStopping(
        monitor="valid_loss" if validation else "train_loss",
        patience=patience(n_samples, params),
        threshold=params["tol"],
        threshold_mode="abs",
        load_best=validation,
        sink=print if params["verbose"] else _noop,
    )


def make_net(module, device, params):
    """The skorch net that trains ``module`` with Adam and the library's callbacks."""
    callbacks = [
        ("stop_on_non_finite_loss", StopOnNonFiniteLoss()),
        ("early_stopping", stopping_callback(params, params["early_stopping"])),
        ("weight_averaging", WeightAveraging(average_decay(params["average"]))),
        ("zero_negligible_moments", ZeroNegligibleMoments()),
    ]
    if params["verbose"] >= 2:
        callbacks.append(("progress_bar", ProgressBar()))
    # Last: its copy of each epoch's state follows every other callback.
    callbacks.append(("completed_epochs", CompletedEpochs("early_stopping")))
    return VAENet(
        module=module,
        criterion=NegativeELBO,
        criterion__beta=params["beta"],
        optimizer=torch.optim.Adam,
        lr=params["learning_rate_init"],
        dataset=RowDataset,
        iterator_train=BatchIterator,
        iterator_train__shuffle=True,
        iterator_valid=BatchIterator,
        train_split=None,
        callbacks=callbacks,
        verbose=int(params["verbose"]),
        device=device,
        torch_load_kwargs={"weights_only": False},
    )


def initialise(X, summary, columns, params):
    """Check the training data and build the likelihood, the module and the skorch net.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The encoded training data, or a stream of partitions that knows its
        summary and moments (:class:`~._dask.PartitionStream`).
    summary : ColumnSummary
        Its :func:`~._data.summarise_columns`, which every check and statistic reads.
    columns : list of ColumnSpec
        The schema's columns.
    params : dict
        The estimator's ``get_params(deep=False)``.

    Returns
    -------
    net : VAENet
        The initialised skorch net.
    standardisation : Standardisation
        The float64 map of the Gaussian columns to the module's units.
    dequantized : ndarray of bool of shape (n_features,)
        The columns modelled as ``x + U(0, 1)``.
    support : ndarray of shape (2, n_features) or None
        The training range of the dequantised columns; None when there are none.
    rng : RandomState
        The fit's random stream (validation split, seeds of each training call).
    """
    check_hidden_layer_sizes(params["hidden_layer_sizes"])
    network_builders(params)  # checks the networks' parameters before any work
    device = check_device(params["device"])
    likelihood = make_likelihood(columns)
    dequantized = np.array([column.dequantize for column in columns])
    # Only dequantised columns are clipped.
    support = summary.support_bounds(dequantized) if dequantized.any() else None
    check_training_data(X, summary, likelihood, columns, dequantized, params)
    warn_if_lattice(summary, columns, stacklevel=7)
    loc, scale, divisor = column_statistics(
        X, dequantized=dequantized, summary=summary, moments=getattr(X, "moments", None)
    )
    # Gaussian columns reach the model standardised (in float64, at the
    # batch boundary); the encoder standardises the others itself.
    gaussian = np.array([column.likelihood == "gaussian" for column in columns])
    standardisation = Standardisation(loc, scale, divisor, gaussian)
    if gaussian.any():
        sample = strided_rows(X, POWER_MAP_ROWS)
        standardisation = standardisation.with_power_map(sample, gaussian, dequantized)
    loc, scale = loc * divisor, scale * divisor
    likelihood.fit(summary)
    rng = check_random_state(params["random_state"])
    with torch_seed(draw_seed(rng), device):
        module = build_module(likelihood, params)
        module.set_input_scaling(np.where(gaussian, 0.0, loc), np.where(gaussian, 1.0, scale))
        net = make_net(module, device, params).initialize()
    return net, standardisation, dequantized, support, rng


def start_linear_gaussian(module, X, rows, standardisation, dequantized, params):
    """Start a linear-Gaussian model at the factor-analysis fit of its training rows.

    Such a model is factor analysis (see :mod:`._linear_start`), of the
    dequantised values where columns are dequantised; on small tables the
    epochs of ``max_iter`` are too few Adam steps to get there from random
    weights. Other models keep their random initialisation.
    """
    n_rows = len(_dataset(X, rows)) if hasattr(X, "dataset") or rows is None else len(rows)
    # Quadratic: the default affine decoder and a Gaussian likelihood; the
    # encoder must be the default linear one too, as the start sets its weights.
    linear_gaussian = module.elbo_is_quadratic and params["encoder"] is None
    if linear_gaussian and n_rows > 1:
        if hasattr(X, "standardised_moments"):  # a stream of partitions reads them itself
            mean, covariance = X.standardised_moments(rows, standardisation, dequantized)
        else:
            mean, covariance = standardised_moments(X, rows, standardisation, dequantized)
        start_at_factor_analysis(module, mean, covariance)


def widen_support(support, summary, dequantized):
    """The training range of the dequantised columns, widened to a new chunk's (``summary``).

    None stays None: a model without dequantised columns has nothing to clip.
    """
    if support is None:
        return None
    chunk = summary.support_bounds(dequantized)
    return np.stack([np.fmin(support[0], chunk[0]), np.fmax(support[1], chunk[1])])


def split_rows(X, params, rng):
    """Training and validation row indices of ``X`` (sorted), or None and None.

    A stream of partitions (a Dask collection) splits its own (``X.split``).
    """
    if hasattr(X, "split"):
        return X.split(params, rng)
    if not params["early_stopping"]:
        return None, None
    n_samples = X.shape[0]
    n_valid = int(np.ceil(params["validation_fraction"] * n_samples))
    if n_valid >= n_samples:
        raise ValueError(
            f"n_samples={n_samples} is too few to hold out validation_fraction="
            f"{params['validation_fraction']} for early stopping: no training row "
            "would be left. Pass more samples or set early_stopping=False."
        )
    order = rng.permutation(n_samples)
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


#: ``n_iter_no_change="auto"``: this many epochs, or more on small data ...
AUTO_PATIENCE_EPOCHS = 20
#: ... so that the patience spans at least this many optimiser steps.
AUTO_PATIENCE_STEPS = 200


def patience(n_samples, params):
    """Epochs without improvement before training stops, for ``n_samples`` training rows.

    ``params["n_iter_no_change"]``, or for ``"auto"`` at least
    :data:`AUTO_PATIENCE_EPOCHS` epochs and at least
    :data:`AUTO_PATIENCE_STEPS` optimiser steps: on a table of a few hundred
    rows an epoch is one or two steps, and 20 epochs stop while the
    validation score, on a few dozen rows, still rises.
    """
    value = params["n_iter_no_change"]
    if value != "auto":
        return value
    if not n_samples:
        return AUTO_PATIENCE_EPOCHS
    steps = math.ceil(n_samples / batch_size(n_samples, params))
    return max(AUTO_PATIENCE_EPOCHS, math.ceil(AUTO_PATIENCE_STEPS / steps))


def batch_size(n_samples, params):
    """The minibatch size: ``params["batch_size"]``, or ``min(128, n_samples)`` for "auto"."""
    size = params["batch_size"]
    return min(128, n_samples) if size == "auto" else size


def train(net, X, train_rows, valid_rows, epochs, params, standardisation, dequantized, rng):
    """Run up to ``epochs`` epochs of ``net`` on the rows ``train_rows`` of ``X``.

    ``standardisation``, ``dequantized`` and ``rng`` are the fit's, as
    :func:`initialise` returned them; each call draws its torch seed from ``rng``.
    ``X`` may be a stream of partitions (:class:`~._dask.PartitionStream`),
    whose rows are then partitions, as its ``split`` returned them.

    A ``KeyboardInterrupt`` after at least one epoch completed leaves the net
    at the end of its last completed epoch and warns
    (:class:`TrainingInterruptedWarning`); the epoch it cut short is not
    kept. Any other exception, and an interrupt before the first epoch
    completed, leaves the net as it was before the call and is raised.

    Returns
    -------
    train_losses : list of float
        The new epochs' training losses (negative beta-ELBO), in nats of ``X``.
    valid_scores : list of float
        Their validation objectives in nats of ``X``; empty without validation rows.
    """
    noisy = dequantized.any()
    columns = noise_columns(dequantized)
    validation = None
    if valid_rows is not None:
        validation = _dataset(
            X,
            valid_rows,
            dequantize="hashed" if noisy else None,
            columns=columns,
            standardisation=standardisation,
        )
    training = _dataset(
        X,
        train_rows,
        dequantize="fresh" if noisy else None,
        columns=columns,
        standardisation=standardisation,
    )
    # beta is a plain float of the criterion: set it in place, since a
    # skorch criterion re-initialisation would also reset Adam's state.
    net.criterion_.beta = params["beta"]
    net.module_.objective, net.module_.n_draws = params["objective"], params["n_draws"]
    size = batch_size(len(training), params)
    n_weights = sum(weights.numel() for weights in net.module_.parameters())
    threads = n_threads(params["n_jobs"], n_weights, size)
    # What an error or an interrupt that keeps no epoch puts back.
    before = TrainingState.capture(net)
    net.set_params(
        # lr updates the existing optimiser's param groups; Adam's state is kept.
        lr=params["learning_rate_init"],
        max_epochs=epochs,
        batch_size=size,
        train_split=None if validation is None else predefined_split(validation),
        callbacks__early_stopping=stopping_callback(params, validation is not None, len(training)),
        callbacks__weight_averaging__decay=average_decay(params["average"]),
        callbacks__print_log__sink=print_log_sink if params["verbose"] else _noop,
    )
    n_before = len(net.history)
    try:
        with torch_seed(draw_seed(rng), net.device), torch_threads(threads):
            net.partial_fit(training)
        _end_interrupted_training(net, epochs)
        # The net trains on standardised values: each epoch's mean loss is moved
        # by the mean log-Jacobian of the rows it averaged over.
        new = net.history[n_before:]
        train_jacobian = _mean_log_jacobian(standardisation, X, train_rows)
        losses = [epoch["train_loss"] - train_jacobian for epoch in new]
        scores = []
        if valid_rows is not None:
            valid_jacobian = _mean_log_jacobian(standardisation, X, valid_rows)
            scores = [-epoch["valid_loss"] + valid_jacobian for epoch in new]
    except BaseException:
        # An error, or an interrupt that keeps no epoch: the net as it was.
        before.restore(net)
        raise
    finally:
        # The validation split holds a reference to X: never keep it.
        net.train_split = None
    return losses, scores


def _dataset(X, rows, **options):
    """The dataset of ``rows`` of ``X``: a RowDataset, or a stream's own (``X.dataset``).

    A stream of row blocks (a Dask collection's partitions) makes its own
    dataset, whose batches skorch's iterator reads the same way.
    """
    if hasattr(X, "dataset"):
        return X.dataset(rows, **options)
    return RowDataset(X, rows, **options)


def _mean_log_jacobian(standardisation, X, rows):
    """The mean log-Jacobian of ``rows`` of ``X`` (a stream knows it from its summary)."""
    if hasattr(X, "mean_log_jacobian"):
        return X.mean_log_jacobian(standardisation, rows)
    return standardisation.mean_log_jacobian(X, rows)


def _end_interrupted_training(net, epochs):
    """After an interrupt, put ``net`` back at its last completed epoch, and warn.

    skorch ends training at a ``KeyboardInterrupt``, early stopping's or the
    user's, and keeps the epoch it interrupted, half written. A run that
    neither completed its ``epochs`` nor stopped early was interrupted: the
    net goes back to its state at the end of the last completed epoch,
    finished as the end of training finishes it (early stopping's best
    weights, the average of the weights). Without a completed epoch, or
    under :func:`fit_raising_interrupts`, the interrupt is raised again.
    """
    callbacks = dict(net.callbacks_)
    stopper, completed = callbacks["early_stopping"], callbacks["completed_epochs"]
    if stopper.misses_ >= stopper.patience or completed.n_completed_ >= epochs:
        return
    last = completed.last_
    if last is None or _RAISE_INTERRUPTS.get():
        raise KeyboardInterrupt
    last.restore(net)
    n_epochs = last.n_epochs
    kept = f"epoch {n_epochs}, the last one completed"
    if last.best is not None:
        kept += f", with early stopping's best weights, those of epoch {last.best_epoch}"
    warnings.warn(
        f"Training was interrupted (KeyboardInterrupt) in epoch {n_epochs + 1}. The model "
        f"keeps {kept}: n_iter_={n_epochs}, loss_curve_ and the weights agree. To train on, "
        "call partial_fit, or fit with warm_start=True; fit with warm_start=False starts afresh.",
        TrainingInterruptedWarning,
        stacklevel=7,
    )


def fitted_curves(previous, losses, scores):
    """The estimator's loss and validation curves after a training call.

    Parameters
    ----------
    previous : dict
        The estimator's attributes before the call, or an empty dict when the
        call started a new history.
    losses, scores : list of float
        The new epochs' training losses and validation scores (:func:`train`).

    Returns
    -------
    dict
        ``loss_curve_``, ``validation_scores_`` (None without validation),
        ``best_validation_score_`` and ``best_loss_`` (one of them None).
    """
    loss_curve = previous.get("loss_curve_", []) + losses
    validation = (previous.get("validation_scores_") or []) + scores
    return {
        "loss_curve_": loss_curve,
        "validation_scores_": validation or None,
        "best_validation_score_": max(validation) if validation else None,
        "best_loss_": None if validation else min(loss_curve),
    }
