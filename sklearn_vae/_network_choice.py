"""``hidden_layer_sizes="auto"``: the MLP or the linear model, chosen by cross-validation.

A fresh fit of a small in-memory table (at least :data:`MIN_CHOICE_ROWS`
and at most :data:`MAX_CHOICE_ROWS` rows) fits both candidates, the MLP of
:data:`MLP_SIZES` and the linear model ``()``, on each of
:data:`CHOICE_FOLDS` folds, and scores every row by the
``log_likelihood`` (:data:`CHOICE_IMPORTANCE_SAMPLES` importance samples)
of the models fitted without it. The MLP, the better model on most tables,
stays unless the linear model's rows score higher by a margin
(:data:`MARGIN_STANDARD_ERRORS` standard errors of the mean paired
difference): on a few hundred rows the two often differ by less than the
folds' noise, and the margin keeps a chance win from changing the model.
On such tables two 256-wide layers can overfit where the linear model
(factor analysis, for Gaussian columns) cannot; larger tables give the MLP
the data it needs, and there the choice would cost six fits of a large
table. Every fit without the choice (a larger or smaller table, a Dask
collection, ``partial_fit``, a custom encoder or decoder) takes the MLP; a
warm-started fit and later ``partial_fit`` calls keep the fitted network.

Under ``n_components="auto"`` the two candidates need not share a latent
size. The MLP takes the Ledermann bound (at most 8). The linear model of a
table whose every column is Gaussian is factor analysis, whose number of
factors has a cheap cross-validated choice: it takes the number (from 1 to
the uncapped Ledermann bound, :data:`FACTOR_GRID_SIZE` values at most) whose
:class:`~sklearn.decomposition.FactorAnalysis` scores the held-out rows of
the same folds highest (:func:`factor_count`). The choice between the two is
then made at those sizes, and the fit keeps the winner's.
"""

import copy
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import FactorAnalysis
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold
from sklearn.utils import _safe_indexing

from ._data import dequantized_view
from ._random import draw_seed
from ._training import fit_raising_interrupts, ledermann_bound

__all__ = [
    "CHOICE_FOLDS",
    "CHOICE_IMPORTANCE_SAMPLES",
    "FACTOR_GRID_SIZE",
    "LINEAR_SIZES",
    "MARGIN_STANDARD_ERRORS",
    "MAX_CHOICE_ROWS",
    "MIN_CHOICE_ROWS",
    "MLP_SIZES",
    "factor_count",
    "factor_grid",
    "network",
    "with_network",
]

#: The MLP candidate, and the network of every fit that makes no choice.
MLP_SIZES = (256, 256)
#: The linear candidate: no hidden layer.
LINEAR_SIZES = ()
#: Tables of more training rows take the MLP without the choice, whose six
#: extra fits would cost minutes there.
MAX_CHOICE_ROWS = 1000
#: Tables of fewer rows take the MLP: folds of a handful of rows cannot tell
#: the two apart.
MIN_CHOICE_ROWS = 30
CHOICE_FOLDS = 3
#: Importance samples of each held-out row's ``log_likelihood``.
CHOICE_IMPORTANCE_SAMPLES = 100
#: The linear model is chosen when its held-out log-likelihood is higher by
#: more than this many standard errors of the mean paired difference per row.
MARGIN_STANDARD_ERRORS = 3.0
#: Numbers of factors tried for the linear candidate, at most: a geometric grid
#: from 1 to the Ledermann bound, every number where the bound is this or less.
FACTOR_GRID_SIZE = 16


def _makes_choice(params, X, n_samples):
    """Whether a fresh fit of the encoded training data ``X`` chooses its network."""
    custom = params["encoder"] is not None or params["decoder"] is not None
    in_memory = isinstance(X, np.ndarray)  # a Dask collection comes as a partition stream
    return not custom and in_memory and MIN_CHOICE_ROWS <= n_samples <= MAX_CHOICE_ROWS


def factor_grid(n_features):
    """Numbers of factors :func:`factor_count` tries for a table of ``n_features`` columns."""
    bound = ledermann_bound(n_features)
    if bound <= FACTOR_GRID_SIZE:
        return np.arange(1, bound + 1)
    return np.unique(np.round(np.geomspace(1, bound, FACTOR_GRID_SIZE)).astype(int))


def factor_count(X, dequantized, folds):
    """The number of factors of the highest held-out factor-analysis log-likelihood.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        The encoded training data, every column Gaussian.
    dequantized : ndarray of bool of shape (n_features,)
        The columns the model dequantises: their integers are read with the
        row-hashed noise they are scored with.
    folds : list of (train, held_out) index arrays

    Returns
    -------
    n_factors : int
        Of :func:`factor_grid`, the number whose ``FactorAnalysis`` fitted on
        each fold's training rows gives the highest mean log-likelihood of
        its held-out rows; the smallest among equals. Each column is read in
        units of its largest magnitude, and a missing entry as its column's
        mean over the fold's training rows.
    """
    X = dequantized_view(np.asarray(X, dtype=np.float64), dequantized)
    # Factor analysis ranks numbers of factors alike at any scale of a column,
    # but its variances overflow at 1e300 and vanish at 1e-300: each column is
    # read in units of its largest magnitude.
    largest = np.max(np.abs(np.nan_to_num(X, nan=0.0)), axis=0)
    X = X / np.where(largest > 0, largest, 1.0)
    grid = factor_grid(X.shape[1])
    totals = np.zeros(len(grid))
    for train, held_out in folds:
        # A column with no observed training entry reads as 0 (with no warning).
        observed = np.sum(~np.isnan(X[train]), axis=0)
        totals_of_columns = np.nansum(X[train], axis=0)
        mean = np.divide(totals_of_columns, observed, out=np.zeros(X.shape[1]), where=observed > 0)
        train_rows, held_out_rows = (
            np.where(np.isnan(X[rows]), mean, X[rows]) for rows in (train, held_out)
        )
        for i, n_factors in enumerate(grid):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fa = FactorAnalysis(int(n_factors), svd_method="lapack").fit(train_rows)
            totals[i] += np.sum(fa.score_samples(held_out_rows))
    return int(grid[np.argmax(totals)])


def _held_out_scores(estimator, sizes, X, folds, seed, n_components=None):
    """Each row's ``log_likelihood`` under ``estimator`` with ``sizes``, fitted without its fold.

    ``n_components``, when given, replaces the estimator's latent size.
    """
    candidate = clone(estimator).set_params(hidden_layer_sizes=sizes, warm_start=False, verbose=0)
    if n_components is not None:
        candidate.set_params(n_components=n_components)
    scores = np.empty(sum(len(held_out) for _, held_out in folds))
    for train, held_out in folds:
        fold_model = fit_raising_interrupts(clone(candidate), _safe_indexing(X, train))
        scores[held_out] = fold_model.log_likelihood(
            _safe_indexing(X, held_out),
            n_importance_samples=CHOICE_IMPORTANCE_SAMPLES,
            random_state=seed,
        )
    return scores


def _linear_wins(mlp, linear):
    """Whether the rows' held-out scores ``linear`` beat ``mlp`` by the margin of the choice.

    The mean paired difference must exceed :data:`MARGIN_STANDARD_ERRORS`
    times its standard error; a candidate with a non-finite score loses (both:
    the MLP stays).
    """
    if not np.all(np.isfinite(linear)):
        return False
    if not np.all(np.isfinite(mlp)):
        return True
    difference = linear - mlp
    standard_error = np.std(difference, ddof=1) / np.sqrt(len(difference))
    return bool(np.mean(difference) > MARGIN_STANDARD_ERRORS * standard_error)


def network(estimator, X, encoded, params, dequantized=None):
    """The hidden layer sizes and latent size a fresh fit of ``X`` trains with.

    Parameters
    ----------
    estimator : VAETransformer
        The estimator being fitted; its unfitted clones are fitted on the folds.
    X : array-like or DataFrame
        The training data as passed to ``fit``.
    encoded : ndarray or partition stream
        ``X`` as validated, whose type and number of rows decide whether the
        choice is made.
    params : dict
        The estimator's parameters, ``n_components`` resolved.
        ``params["hidden_layer_sizes"]`` is returned unless it is ``"auto"``.
    dequantized : ndarray of bool or None, default=None
        Given where ``n_components`` is ``"auto"`` and every column is
        Gaussian (the linear model is factor analysis): the columns the model
        dequantises. The linear candidate then takes the latent size of
        :func:`factor_count`; otherwise ``params["n_components"]``.

    Returns
    -------
    sizes : tuple of int
    n_components : int
    """
    sizes, n_components = params["hidden_layer_sizes"], params["n_components"]
    if not isinstance(sizes, str):
        return sizes, n_components
    n_samples = encoded.shape[0]
    if not _makes_choice(params, encoded, n_samples):
        return MLP_SIZES, n_components
    random_state = params["random_state"]
    # The folds do not draw from a RandomState given as random_state: the fit
    # that follows is the one a fit with the chosen sizes makes.
    if isinstance(random_state, np.random.RandomState):
        random_state = copy.deepcopy(random_state)
    seed = draw_seed(random_state)
    folds = list(KFold(CHOICE_FOLDS, shuffle=True, random_state=seed).split(np.arange(n_samples)))
    factors = n_components if dequantized is None else factor_count(encoded, dequantized, folds)
    # The fit that follows warns of what it finds in X once; the folds' fits do not.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = _held_out_scores(estimator, MLP_SIZES, X, folds, seed, n_components)
        linear = _held_out_scores(estimator, LINEAR_SIZES, X, folds, seed, factors)
    chosen = (LINEAR_SIZES, factors) if _linear_wins(mlp, linear) else (MLP_SIZES, n_components)
    if params["verbose"]:
        print(
            f"hidden_layer_sizes='auto': mean held-out log-likelihood over {CHOICE_FOLDS} "
            f"folds {np.mean(mlp):.4f} nats per row with {MLP_SIZES} and n_components="
            f"{n_components}, {np.mean(linear):.4f} with {LINEAR_SIZES} and n_components="
            f"{factors}: fitting {chosen[0]} with n_components={chosen[1]}."
        )
    return chosen


def with_network(params, sizes):
    """``params`` with ``"auto"`` ``hidden_layer_sizes`` resolved to ``sizes``."""
    if isinstance(params["hidden_layer_sizes"], str):
        return {**params, "hidden_layer_sizes": sizes}
    return params
