"""The steps of ``fit`` and ``partial_fit`` on the estimator's fitted state.

:class:`~._vae.VAETransformer` validates its parameters and data, then runs
these: set up a fresh model or check a continued one, train it
(:mod:`._training`), and fit the prior to the trained model (:mod:`._prior`).
"""

import numpy as np

from . import _training as training
from ._checks import check_training_data
from ._data import summarise_columns
from ._network_choice import MLP_SIZES, with_network
from ._network_choice import network as choose_network
from ._prior import choose_prior
from ._random import draw_seed
from ._routing import train_net

__all__ = [
    "check_continued_fit",
    "fit_prior",
    "initialise_fit",
    "start_fit",
    "start_partial_fit",
    "train_epochs",
]


def initialise_fit(vae, X, params):
    """Check the training data, then build ``vae``'s model and skorch net from scratch."""
    summary = summarise_columns(X)
    (
        vae.net_,
        vae._standardisation,
        vae._dequantized,
        vae._support,
        vae._rng,
    ) = training.initialise(X, summary, vae.schema_.columns_, params)
    vae._fitted_params = training.fitted_params(params)


def start_fit(vae, given, X, warm):
    """Resolve the parameters of ``fit``, then set up a fresh model or check a warm one.

    ``given`` is the training data as passed, ``X`` as validated. Returns the
    resolved parameters and the training and validation rows.
    """
    if warm:
        params = _continued_params(vae)
        check_continued_fit(vae, X, params, "warm_start=True")
        return params, *training.split_rows(X, params, vae._rng)
    params = training.resolved_params(vae.get_params(deep=False), vae.n_features_in_)
    sizes, n_components = choose_network(vae, given, X, params, _factor_analysis_columns(vae))
    params = {**params, "hidden_layer_sizes": sizes, "n_components": n_components}
    initialise_fit(vae, X, params)
    train_rows, valid_rows = training.split_rows(X, params, vae._rng)
    training.start_linear_gaussian(
        vae.net_.module_, X, train_rows, vae._standardisation, vae._dequantized, params
    )
    return params, train_rows, valid_rows


def start_partial_fit(vae, X, first_call):
    """Resolve the parameters of ``partial_fit``, then set up the model or check it.

    ``X`` is the validated chunk. Returns the resolved parameters.
    """
    if not first_call:
        params = _continued_params(vae)
        summary = check_continued_fit(vae, X, params, "partial_fit")
        vae._support = training.widen_support(vae._support, summary, vae._dequantized)
        return params
    params = training.resolved_params(vae.get_params(deep=False), vae.n_features_in_)
    params = with_network(params, MLP_SIZES)  # a first chunk is no table to choose on
    initialise_fit(vae, X, params)
    training.start_linear_gaussian(
        vae.net_.module_, X, None, vae._standardisation, vae._dequantized, params
    )
    return params


def _continued_params(vae):
    """The parameters of a warm-started fit or a later ``partial_fit``: an ``"auto"``
    ``n_components`` or ``hidden_layer_sizes`` continues the fitted model's."""
    params = vae.get_params(deep=False)
    if params["n_components"] == "auto":
        params = {**params, "n_components": vae._fitted_params["n_components"]}
    return with_network(params, vae.hidden_layer_sizes_)


def _factor_analysis_columns(vae):
    """The dequantised columns where the linear candidate is factor analysis of an
    ``"auto"`` latent size (every column Gaussian); None otherwise."""
    columns = vae.schema_.columns_
    if vae.n_components != "auto" or any(column.likelihood != "gaussian" for column in columns):
        return None
    return np.array([column.dequantize for column in columns])


def check_continued_fit(vae, X, params, method):
    """Check the parameters and data of a warm-started fit or a later ``partial_fit``."""
    training.check_unchanged_structure(vae._fitted_params, params, method)
    vae._fitted_params = training.fitted_params(params)
    summary = summarise_columns(X)
    likelihood, columns = vae.net_.module_.likelihood, vae.schema_.columns_
    check_training_data(X, summary, likelihood, columns, vae._dequantized, params)
    return summary


def train_epochs(vae, X, train_rows, valid_rows, epochs, params):
    """Train, then append the new epochs to the fitted curves; the number of new epochs."""
    fitted = (vae._standardisation, vae._dequantized, vae._rng)
    # The networks train under N(0, I); a failed call puts the fitted prior back.
    module = vae.net_.module_
    prior = (module.prior_logits, module.prior_loc, module.prior_scale_tril)
    module.set_prior()
    try:
        vae.net_, losses, scores = train_net(
            vae.net_, X, train_rows, valid_rows, epochs, params, *fitted
        )
    except BaseException:
        module.prior_logits, module.prior_loc, module.prior_scale_tril = prior
        raise
    previous = vae.__dict__ if len(vae.net_.history) > len(losses) else {}
    vae.__dict__.update(training.fitted_curves(previous, losses, scores))
    vae.n_iter_ = len(vae.net_.history)
    return len(losses)


def fit_prior(vae, X, train_rows, valid_rows):
    """Give the trained model the prior ``vae.prior`` asks for, and set ``n_prior_components_``.

    ``"mixture"`` fits a Gaussian mixture to the codes of the training rows
    and keeps it where it beats N(0, I) on the validation rows'
    (:func:`~._prior.choose_prior`); without validation rows (``partial_fit``,
    ``early_stopping=False``) or on a Dask collection the prior stays N(0, I).
    """
    module = vae.net_.module_
    mixture = None
    if vae.prior == "mixture" and valid_rows is not None and isinstance(X, np.ndarray):
        seed = draw_seed(vae._rng)
        mixture = choose_prior(vae._fitted_model(), X, train_rows, valid_rows, seed)
    if mixture is None:
        module.set_prior()
        vae.n_prior_components_ = 1
    else:
        module.set_prior(mixture.weights_, mixture.means_, mixture.covariances_)
        vae.n_prior_components_ = mixture.n_components
