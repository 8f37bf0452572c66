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
"""

import copy
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold
from sklearn.utils import _safe_indexing

from ._random import draw_seed
from ._training import fit_raising_interrupts

__all__ = [
    "CHOICE_FOLDS",
    "CHOICE_IMPORTANCE_SAMPLES",
    "LINEAR_SIZES",
    "MARGIN_STANDARD_ERRORS",
    "MAX_CHOICE_ROWS",
    "MIN_CHOICE_ROWS",
    "MLP_SIZES",
    "hidden_layer_sizes",
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


def _makes_choice(params, X, n_samples):
    """Whether a fresh fit of the encoded training data ``X`` chooses its network."""
    custom = params["encoder"] is not None or params["decoder"] is not None
    in_memory = isinstance(X, np.ndarray)  # a Dask collection comes as a partition stream
    return not custom and in_memory and MIN_CHOICE_ROWS <= n_samples <= MAX_CHOICE_ROWS


def _held_out_scores(estimator, sizes, X, folds, seed):
    """Each row's ``log_likelihood`` under ``estimator`` with ``sizes``, fitted without its fold."""
    candidate = clone(estimator).set_params(hidden_layer_sizes=sizes, warm_start=False, verbose=0)
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


def hidden_layer_sizes(estimator, X, encoded, params):
    """The hidden layer sizes a fit of ``X`` trains with under ``params``.

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
        The estimator's parameters; ``params["hidden_layer_sizes"]`` is
        returned unless it is ``"auto"``.

    Returns
    -------
    sizes : tuple of int
    """
    sizes = params["hidden_layer_sizes"]
    if not isinstance(sizes, str):
        return sizes
    n_samples = encoded.shape[0]
    if not _makes_choice(params, encoded, n_samples):
        return MLP_SIZES
    random_state = params["random_state"]
    # The folds do not draw from a RandomState given as random_state: the fit
    # that follows is the one a fit with the chosen sizes makes.
    if isinstance(random_state, np.random.RandomState):
        random_state = copy.deepcopy(random_state)
    seed = draw_seed(random_state)
    folds = list(KFold(CHOICE_FOLDS, shuffle=True, random_state=seed).split(np.arange(n_samples)))
    # The fit that follows warns of what it finds in X once; the folds' fits do not.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp, linear = (
            _held_out_scores(estimator, candidate, X, folds, seed)
            for candidate in (MLP_SIZES, LINEAR_SIZES)
        )
    chosen = LINEAR_SIZES if _linear_wins(mlp, linear) else MLP_SIZES
    if params["verbose"]:
        print(
            f"hidden_layer_sizes='auto': mean held-out log-likelihood over {CHOICE_FOLDS} "
            f"folds {np.mean(mlp):.4f} nats per row with {MLP_SIZES}, "
            f"{np.mean(linear):.4f} with {LINEAR_SIZES}: fitting {chosen}."
        )
    return chosen


def with_network(params, sizes):
    """``params`` with ``"auto"`` ``hidden_layer_sizes`` resolved to ``sizes``."""
    if isinstance(params["hidden_layer_sizes"], str):
        return {**params, "hidden_layer_sizes": sizes}
    return params
