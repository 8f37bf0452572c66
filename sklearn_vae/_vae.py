"""VAETransformer: the public scikit-learn estimator."""

import copy
import warnings
from contextlib import contextmanager
from functools import partial
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    DensityMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.helper import predefined_split
from torch import nn

from ._averaging import WeightAveraging, average_decay
from ._data import (
    BatchIterator,
    RowDataset,
    Standardisation,
    check_integer_valued,
    column_statistics,
    first_non_integer,
    integer_valued_columns,
    iter_batches,
    iter_row_chunks,
    row_keyed_normal,
    support_bounds,
)
from ._inference import encode_given, impute_encoded
from ._likelihoods import LIKELIHOODS, make_likelihood, one_hot_columns
from ._linear_start import standardised_moments, start_at_factor_analysis
from ._module import VAEModule
from ._moments import ZeroNegligibleMoments
from ._net import NegativeELBO, StopOnNonFiniteLoss, VAENet, print_log_sink
from ._networks import NETWORKS, build_trunk, route_network_params
from ._persistence import restore_state, saved_state
from ._schema import validate_table
from ._threads import ThreadTuner, fit_thread_counts, n_threads, torch_threads

__all__ = ["VAETransformer"]

# Rows per batch when transforming and scoring; memory stays bounded.
_EVAL_BATCH_SIZE = 1024
# Antithetic pairs of row-keyed draws per row in score_samples (see its Notes).
_SCORE_PAIRS = 1
# Budget, in float32 values, for one tensor of importance-sampling work.
_IWAE_BUDGET = 2**22
_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def _noop(*args, **kwargs):
    pass


@contextmanager
def _torch_seed(seed, device):
    """Seed torch's generators for the duration, restoring the caller's state."""
    device = torch.device(device)
    forked = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=forked):
        torch.manual_seed(seed)
        yield


@contextmanager
def _restore_on_error(estimator):
    """Leave ``estimator`` exactly as it was if the block raises (a failed refit loses nothing)."""
    state = estimator.__dict__.copy()
    try:
        yield
    except BaseException:
        estimator.__dict__.clear()
        estimator.__dict__.update(state)
        raise


# Training computes in float32, in which the columns the model does not
# standardise (labels, counts, levels) are held as they are.
_FLOAT32_LIMIT = float(np.finfo(np.float32).max) / 2


def _check_float32_range(X, columns):
    """Raise ``ValueError`` before training when a column held as it is overflows float32.

    Gaussian columns are standardised in float64 first and are not checked:
    they train at any finite magnitude.
    """
    held = np.array([column.likelihood != "gaussian" for column in columns])
    if not held.any():
        return
    for _, chunk in iter_row_chunks(X):
        with np.errstate(invalid="ignore"):
            largest = np.where(held, np.nanmax(np.abs(chunk), axis=0), 0.0)
        if (largest > _FLOAT32_LIMIT).any():
            j = int(np.argmax(largest))
            raise ValueError(
                f"Column {columns[j].name!r} holds values up to {largest[j]:.3g} in magnitude, "
                f"beyond half of float32's range ({_FLOAT32_LIMIT:.2g}), in which "
                f"likelihood={columns[j].likelihood!r} holds them. Subtract a reference value "
                "from it first (for example its minimum), or model it with "
                "likelihood='gaussian', which standardises it."
            )


def _warn_if_lattice(X, columns, stacklevel):
    """Warn when every Gaussian column of ``X`` models integers as a continuous density.

    A density fitted to integer-valued data can concentrate on the integers,
    so its scores are not comparable with log-probabilities and can grow
    without bound. Columns already dequantised, and label codes, are exempt;
    a table with at least one real-valued Gaussian column is not warned.
    """
    lattice = [c.name for c in columns if c.likelihood == "gaussian" and not c.dequantize]
    if lattice and first_non_integer(X) is None:
        shown = ", ".join(map(repr, lattice[:3])) + (", ..." if len(lattice) > 3 else "")
        columns = f"its columns {shown} are" if len(lattice) > 1 else f"its column {shown} is"
        warnings.warn(
            f"X is integer-valued, but {columns} modelled with a continuous "
            "Gaussian likelihood of the raw integers: such a density is measured on a "
            "lattice, so its scores are not comparable with other models' and can be made "
            "arbitrarily large. Set dequantize=True (a density of x + U(0, 1), in the units "
            "of discrete models), or likelihood='categorical' or 'poisson' to model the "
            "integers as they are.",
            UserWarning,
            stacklevel=stacklevel,
        )


def _no_nan(scores):
    """``scores``, or a ``ValueError`` naming the first row whose score is NaN."""
    nan = np.flatnonzero(np.isnan(scores))
    if len(nan):
        raise ValueError(
            f"The model's log-density of row {nan[0]} of X is NaN ({len(nan)} rows in all): "
            "the computation overflowed on extreme values. Rescale X, or use a likelihood "
            "that fits its range."
        )
    return scores


def _noise_columns(columns):
    """The columns that get dequantisation noise, as ``RowDataset`` takes them: None for all."""
    return None if columns.all() else columns


def _draw_seed(random_state):
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class VAETransformer(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, DensityMixin, BaseEstimator
):
    """Variational autoencoder: a latent-variable density model and transformer.

    The model is ``p(x) = ∫ p(x | z) p(z) dz`` with a standard normal prior
    ``p(z) = N(0, I)`` over ``n_components`` latent variables and a decoder
    ``p(x | z)`` given by a neural network. A recognition network (encoder)
    ``q(z | x) = N(mu(x), diag sigma²(x))`` makes inference fast. Both are
    trained with Adam through skorch by maximising the evidence lower bound
    (ELBO) on minibatches, using the reparametrisation
    ``z = mu + sigma * eps``, ``eps ~ N(0, I)``.

    Read more in the :doc:`User Guide </model>`.

    Parameters
    ----------
    n_components : int, default=8
        Size of the latent space (the dimension of ``z``).

    hidden_layer_sizes : array-like of shape (n_layers,), default=(256, 256)
        Widths of the encoder's hidden layers (ReLU); the decoder mirrors
        them. ``()`` gives a linear encoder and decoder: with the Gaussian
        likelihood the model is then factor analysis, with one learned noise
        variance per feature, and :meth:`fit` starts it at the
        factor-analysis fit of the training rows (see Notes). A custom
        ``encoder`` or ``decoder`` replaces the MLP on its side;
        ``hidden_layer_sizes`` shapes only the other.

    encoder : torch.nn.Module class or instance, default=None
        Your own encoder network, in place of the MLP. It maps the
        encoder's input, a float32 tensor of shape ``(n_rows, n_inputs)``, to
        a hidden vector per row, shape ``(n_rows, n_hidden)``; the library
        adds the affine maps from ``h`` to the mean and (through a softplus)
        the scale of ``q(z | x)``. The input
        is the model's view of ``X``: the numeric columns, standardised with
        the training mean and standard deviation, then a one-hot block for
        each label column (and each integer column with its own
        ``"categorical"`` levels), missing entries 0; ``n_inputs`` is
        ``n_features_in_`` for a numeric array.
        The mask of missing entries enters the posterior head, as a learned
        offset per missing feature. A class (or any callable returning a
        module) is called as ``encoder(n_inputs=n_inputs, **encoder_params)``
        under the seed drawn from ``random_state``; an instance is deep-copied
        at each fit and trained from its current weights. ``n_hidden`` is
        found by a dry run on two zero rows in eval mode, so lazy modules
        such as ``torch.nn.LazyLinear`` work. Scoring runs the network in
        eval mode and in float64. Define the class at module level: a
        fitted estimator pickles it by reference. None uses the MLP of
        ``hidden_layer_sizes``.

    encoder_params : dict, default=None
        Keyword arguments for an ``encoder`` class. Each is also a nested
        parameter ``encoder__<name>`` of :meth:`get_params` and
        :meth:`set_params`, so ``GridSearchCV`` can search it.

    decoder : torch.nn.Module class or instance, default=None
        Your own decoder network, in place of the MLP: it maps latent
        points, shape ``(n_rows, n_components)``, to a hidden vector per
        row, shape ``(n_rows, n_hidden)``, and the library adds each
        likelihood's output head (with a variance per sample for
        ``"gaussian"``). A class is called as
        ``decoder(n_components=n_components, **decoder_params)``; otherwise
        as ``encoder``. None uses the MLP mirroring ``hidden_layer_sizes``.

    decoder_params : dict, default=None
        Keyword arguments for a ``decoder`` class; nested parameters
        ``decoder__<name>``, as ``encoder_params``.

    likelihood : "auto", {"gaussian", "bernoulli", "categorical", "poisson"} \
            or dict, default="auto"
        Observation model ``p(x | z)``, independent across columns given z.

        - ``"auto"``: each column by its dtype. Float columns get
          ``"gaussian"``; integer columns (``int64``, nullable ``"Int64"``)
          ``"gaussian"`` of the dequantised values, see ``dequantize``;
          booleans ``"bernoulli"``; ``category``, ``object`` and ``string``
          columns (any hashable labels) ``"categorical"`` over the labels
          seen in fit, or all declared categories of a ``category`` dtype.
          A float array is modelled exactly as with ``"gaussian"``.
        - one name: every column gets that likelihood (an error names a
          column it cannot model, such as labels under ``"gaussian"``).
        - a dict ``{column: name}``: column names of a DataFrame, or
          integer positions of an array; columns it does not name follow
          ``"auto"``.

        The likelihoods:

        - ``"gaussian"``: normal. The decoder outputs a mean for every sample
          and feature, and a variance as ``decoder_variance`` says;
          variances are floored at 1e-6 in standardised units, so constant
          features keep a finite density.
        - ``"bernoulli"``: values in [0, 1] (booleans, or a label column
          with at most 2 categories); for binary data scores are
          log-probabilities.
        - ``"categorical"``: for labels, one ``Categorical`` per column over
          its categories. For numbers it needs integer values: as the one
          name for every column (a numeric matrix such as pixels 0..16), the
          columns share the integer levels from the smallest to the largest
          training value; in a dict, a column has its own levels from its
          minimum to its maximum. Values outside the fitted levels cannot be
          scored.
        - ``"poisson"``: counts (non-negative integers).

        For integer data, the log-probabilities of the discrete likelihoods
        are comparable with continuous log-densities on ``dequantize(X)``.
        See :doc:`/tables` in the user guide for the rule and its measurements.

    dequantize : bool, default=False
        For integer-valued Gaussian columns. When True, every column modelled
        by ``"gaussian"`` must hold integers, and is dequantised as below.
        With ``likelihood="auto"``, integer-dtype columns are always
        dequantised, whatever this parameter says.

        A dequantised column is modelled as ``x + U``, ``U ~ U(0, 1)``: ``fit``
        and ``partial_fit`` take the raw integers and add fresh uniform noise
        to every training batch (the validation rows get fixed row-hashed
        noise, see below), as if trained on :func:`dequantize` with a new
        draw every epoch. The noise keeps a large decoder from fitting one
        fixed draw. Integer values passed to :meth:`score_samples`,
        :meth:`score` and :meth:`log_likelihood` are dequantised first, with
        noise that is a fixed pseudo-random function of each row (scores stay
        deterministic and independent of row order), so the estimator
        cross-validates on integer data and its scores are lower bounds on
        the log-probabilities of the integers, in the units of the discrete
        models; continuous values, such as ``dequantize(X_test)``, are scored
        as they are. For an array, :meth:`sample` and
        :meth:`inverse_transform` return dequantised values (``np.floor``
        maps them back to integers); for a DataFrame, integer columns come
        back as integers.

    decoder_variance : {"heteroscedastic", "homoscedastic"}, default="heteroscedastic"
        The variance of the ``"gaussian"`` columns' ``p(x | z)``.
        ``"heteroscedastic"``: the decoder outputs one for every sample and
        feature, a function of ``z``. ``"homoscedastic"``: one learned
        variance per feature, shared by every sample. Without hidden layers
        (``hidden_layer_sizes=()``, factor analysis) it is one per feature
        either way. A heteroscedastic Gaussian decoder can raise the
        likelihood without bound by shrinking the variance around single
        training rows (Mattei & Frellsen, NeurIPS 2018); the variance floor
        bounds it, but on tables of a few hundred rows the homoscedastic
        decoder generalises better for some tasks: it is the default of
        :class:`VAEImputer`'s VAE (the README's imputation benchmark has
        the measurements).

    beta : float, default=1.0
        Weight of the KL term in the training objective; 1.0 maximises the
        ELBO, other values train a beta-VAE. Scores always use ``beta=1``.

    objective : {"elbo", "iwae"}, default="elbo"
        Training objective. ``"elbo"`` is the evidence lower bound of
        Kingma and Welling, its expectation estimated with ``n_draws``
        reparametrised draws per row. ``"iwae"`` is the importance-weighted
        bound of Burda et al. on ``n_draws`` draws, ``log (1/K) sum_k p(x,
        z_k) / q(z_k | x)``: tighter, so the decoder is fitted to a better
        estimate of ``log p(x)`` (the training objective of MIWAE for data
        with missing values), at ``n_draws`` times the decoder's cost. With
        ``"iwae"`` the validation objective is the same bound on the 4 fixed
        validation draws, and ``beta`` must be 1.

    n_draws : int, default=1
        Latent draws per row in each training step: L for the ELBO, K for
        the IWAE bound.

    batch_size : int or "auto", default="auto"
        Minibatch size; "auto" means ``min(128, n_samples)``.

    learning_rate_init : float, default=1e-3
        Adam's learning rate.

    average : bool or float in (0, 1), default=False
        Keep an exponential moving average of the weights over the training
        steps (Polyak averaging, as ``SGDRegressor(average=True)`` averages
        its coefficients) and make it the fitted model. Adam trains the raw
        weights; after each step the average moves towards them,
        ``w_avg <- decay * w_avg + (1 - decay) * w``. The validation loss,
        early stopping and the restored best epoch are the averaged model's.
        ``True`` uses ``decay=0.998``, an average over about the last 500
        steps; a float sets the decay. On digits it gains 1.6 nats of
        held-out log-likelihood for the categorical VAE and 1.6 for the
        dequantised Gaussian one, at 1.8 to 1.9 times the fit time (training
        runs for more epochs before the averaged validation loss stops
        improving); see the README's objective section. Without early
        stopping, training ends on the raw weights' loss: give it well over
        ``1 / (1 - decay)`` steps, or the average still holds the early
        weights. ``partial_fit`` and ``warm_start`` continue the raw weights
        and their average; a changed ``average`` applies from the next call,
        and switching it off trains on from the averaged weights.

    max_iter : int, default=500
        Maximum number of epochs (passes over the training data).

    early_stopping : bool, default=True
        Whether to hold out ``validation_fraction`` of the training data and
        stop when the validation objective has not improved by ``tol`` for
        ``n_iter_no_change`` epochs; the weights of the best epoch are kept.
        If False, training stops when the training loss has not improved by
        ``tol`` for ``n_iter_no_change`` epochs.

    validation_fraction : float, default=0.1
        Proportion of the training data held out for early stopping, in (0, 1).
        Only used if ``early_stopping`` is True.

    n_iter_no_change : int, default=20
        Number of epochs without an improvement of at least ``tol`` before
        training stops.

    tol : float, default=1e-4
        Minimum improvement of the monitored loss, in nats per sample.

    random_state : int, RandomState instance or None, default=None
        Controls weight initialisation, the validation split, minibatch
        shuffling, the reparametrisation noise and the fixed draws of the
        validation ELBO (:meth:`score_samples` keys its draws on each row,
        whatever the seed). Pass an int for reproducible results.

    verbose : int, default=0
        0 is silent, 1 prints skorch's table of losses after every epoch, 2
        also shows a progress bar within each epoch.

    warm_start : bool, default=False
        When True, :meth:`fit` continues training the fitted model (weights,
        optimiser state and history) instead of starting afresh.

    device : str or torch.device, default="cpu"
        Torch device to train and evaluate on, for example "cuda". Results are
        always returned as numpy arrays; see the README for loading a model
        fitted on a GPU on a CPU-only machine.

    n_jobs : int, default=None
        Number of torch threads used by fitting, scoring and inference.
        ``-1`` means all CPU cores, ``-2`` all but one. ``None``: a fit on
        the CPU times its training batches on 1, 2, 4, ... threads up to
        torch's thread count (at most ``OMP_NUM_THREADS``) and trains on the
        fastest, timing again every so often, so it uses every core of an
        idle machine and drops to one thread when another process takes a
        core. The count changes no result: importing sklearn_vae puts
        torch's MKL in its strict reproducibility mode (``MKL_CBWR``, unless
        set), where matrix products give the same bits with any thread
        count. Scoring and inference, and a fit where that mode is not in
        force (a torch build without MKL, ``MKL_CBWR`` set otherwise, or MKL
        used before sklearn_vae was imported), use a fixed rule from the
        work of one training step, weights times rows of a batch: one thread
        below 1e8 multiply-adds (the default network on tables of up to
        several hundred numeric columns), otherwise torch's thread count, at
        most ``OMP_NUM_THREADS``. Results for a fixed ``random_state`` are
        the same on every run.

    Attributes
    ----------
    schema_ : TableSchema
        The columns seen in fit: for each, its kind, dtype, resolved
        likelihood and categories (``schema_.columns_``).

    net_ : skorch.NeuralNet
        The fitted skorch net; ``net_.module_`` is the torch model and
        ``net_.history`` the training history.

    n_features_in_ : int
        Number of features seen during :meth:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit`. Defined only when `X`
        has feature names that are all strings.

    n_iter_ : int
        Number of epochs run.

    loss_curve_ : list of float
        Training loss (negative beta-ELBO in nats per sample) at each epoch.

    validation_scores_ : list of float or None
        Validation objective (beta-ELBO in nats per sample, the ELBO when
        ``beta=1``) at each epoch; None when ``early_stopping=False``.

    best_loss_ : float or None
        Lowest training loss reached; None when ``early_stopping=True`` (see
        ``best_validation_score_``).

    best_validation_score_ : float or None
        Best validation objective, whose weights were kept; None when
        ``early_stopping=False``.

    See Also
    --------
    sklearn.decomposition.FactorAnalysis : Linear Gaussian latent model.
    sklearn.decomposition.PCA : Probabilistic PCA scores and transform.
    sklearn.mixture.GaussianMixture : Mixture density with ``score_samples``.
    sklearn.neighbors.KernelDensity : Non-parametric density estimator.

    Notes
    -----
    All scores are log-densities, in nats, of ``X`` exactly as passed in:
    where the model standardises ``X`` internally, the log-Jacobian is added
    back, so they compare directly with ``GaussianMixture.score_samples`` and
    ``KernelDensity.score_samples`` on the same data. :meth:`score` is a
    per-sample mean, like ``GaussianMixture.score`` and ``PCA.score``
    (``KernelDensity.score`` is a sum).

    :meth:`score_samples` is the ELBO, a lower bound on ``log p(x)``. Its KL
    term is exact; its expectation over ``q(z | x)`` uses one antithetic pair
    of standard normal draws per row, a fixed pseudo-random function of the
    row, in float32 on batches of one fixed shape. It is therefore
    deterministic, does not depend on row order or on scoring a subset, and
    is unbiased, with an error independent across rows (its size is in the
    Notes of :meth:`score_samples`). It is exact when ``log p(x | z)`` is
    quadratic in ``z`` (``hidden_layer_sizes=()`` with the Gaussian
    likelihood). :meth:`log_likelihood` gives the tighter importance-weighted
    bound, which approaches ``log p(x)`` as ``n_importance_samples`` grows.

    **The linear-Gaussian start.** With ``hidden_layer_sizes=()``, a
    Gaussian likelihood for every column, no ``dequantize`` and no custom
    network, the model is factor analysis, and a fresh :meth:`fit` (or the
    first :meth:`partial_fit`) sets its weights to the maximum-likelihood
    fit of :class:`~sklearn.decomposition.FactorAnalysis` to the covariance
    of the standardised training rows (a missing entry counts as its
    column's mean), with the encoder at that model's exact posterior; the
    ELBO is then the exact log-likelihood, and training refines it from
    there. From random weights, the few hundred Adam steps that
    ``max_iter`` epochs make on a table of a few hundred rows end short of
    that optimum. Other models start from random weights.

    **Tables and missing values.** ``X`` may be a pandas DataFrame with
    float, integer, boolean and label columns, as it comes. Missing entries
    (NaN, None, ``pd.NA``) are accepted by every method. Because the decoder
    factorises over columns, ``log p(x_obs | z)`` is the sum over the
    observed entries only, which marginalises the missing ones exactly: the
    score of a row with missing entries bounds the marginal density of its
    observed part, in the same units as a complete row. The encoder sees a
    mask of the missing entries and labels one-hot. A row with every entry
    missing, or a column missing in every training row, raises a
    ``ValueError``. Fitted on a DataFrame, :meth:`sample` and
    :meth:`inverse_transform` return DataFrames with the training columns
    and dtypes (a label column holds its most probable category in
    :meth:`inverse_transform`). A label not seen in fit is encoded as a
    missing entry by :meth:`transform` and raises a ``ValueError`` in the
    score methods (the model gives it probability 0); declare it with a
    ``category`` dtype to model it.

    References
    ----------
    .. [1] D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes",
       ICLR 2014.
    .. [2] Y. Burda, R. Grosse and R. Salakhutdinov, "Importance Weighted
       Autoencoders", ICLR 2016.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_vae import VAETransformer
    >>> X = load_digits().data  # pixel intensities, integers 0..16
    >>> vae = VAETransformer(
    ...     n_components=4, likelihood="categorical", max_iter=5, random_state=0
    ... ).fit(X)
    >>> vae.transform(X[:3]).shape
    (3, 4)
    >>> vae.sample(5, random_state=0).shape
    (5, 64)
    >>> vae.score_samples(X[:3]).shape
    (3,)

    Your own encoder: a torch module class that maps the encoder input to one
    hidden vector per row. Its keyword arguments are nested parameters.

    >>> from torch import nn
    >>> class Encoder(nn.Module):
    ...     def __init__(self, n_inputs, width=16):
    ...         super().__init__()
    ...         self.layers = nn.Sequential(nn.Linear(n_inputs, width), nn.Tanh())
    ...
    ...     def forward(self, x):
    ...         return self.layers(x)
    >>> vae = VAETransformer(
    ...     n_components=4, dequantize=True, encoder=Encoder, max_iter=2, random_state=0
    ... )
    >>> vae.set_params(encoder__width=32).get_params()["encoder_params"]
    {'width': 32}
    >>> vae.fit(X).transform(X[:3]).shape
    (3, 4)

    A table with labels and missing entries:

    >>> import numpy as np
    >>> import pandas as pd
    >>> df = pd.DataFrame(
    ...     {"size": [1.2, np.nan, 3.1, 2.2] * 10, "colour": ["red", "blue", None, "red"] * 10}
    ... )
    >>> vae = VAETransformer(n_components=2, max_iter=5, random_state=0).fit(df)
    >>> vae.score_samples(df).shape
    (40,)
    >>> samples = vae.sample(3, random_state=0)
    >>> list(samples.columns), bool(samples["colour"].isin(["red", "blue"]).all())
    (['size', 'colour'], True)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "encoder": [None, nn.Module, callable],
        "encoder_params": [None, dict],
        "decoder": [None, nn.Module, callable],
        "decoder_params": [None, dict],
        "likelihood": [StrOptions(set(LIKELIHOODS) | {"auto"}), dict],
        "dequantize": ["boolean"],
        "decoder_variance": [StrOptions({"heteroscedastic", "homoscedastic"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "objective": [StrOptions({"elbo", "iwae"})],
        "n_draws": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "average": ["boolean", Interval(Real, 0, 1, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "device": [str, torch.device],
        "n_jobs": [
            None,
            Interval(Integral, None, -1, closed="right"),
            Interval(Integral, 1, None, closed="left"),
        ],
    }

    def __init__(
        self,
        n_components=8,
        *,
        hidden_layer_sizes=(256, 256),
        encoder=None,
        encoder_params=None,
        decoder=None,
        decoder_params=None,
        likelihood="auto",
        dequantize=False,
        decoder_variance="heteroscedastic",
        beta=1.0,
        objective="elbo",
        n_draws=1,
        batch_size="auto",
        learning_rate_init=1e-3,
        average=False,
        max_iter=500,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        tol=1e-4,
        random_state=None,
        verbose=0,
        warm_start=False,
        device="cpu",
        n_jobs=None,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.decoder = decoder
        self.decoder_params = decoder_params
        self.likelihood = likelihood
        self.dequantize = dequantize
        self.decoder_variance = decoder_variance
        self.beta = beta
        self.objective = objective
        self.n_draws = n_draws
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.average = average
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start
        self.device = device
        self.n_jobs = n_jobs

    # ----------------------------------------------------------- params

    def get_params(self, deep=True):
        """Get parameters for this estimator.

        Parameters
        ----------
        deep : bool, default=True
            If True, also return the keyword arguments of a custom
            ``encoder`` and ``decoder`` as ``encoder__<name>`` and
            ``decoder__<name>``.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        if deep:
            for network in NETWORKS:
                kwargs = params[f"{network}_params"]
                if isinstance(kwargs, dict):
                    params.update({f"{network}__{key}": v for key, v in kwargs.items()})
        return params

    def set_params(self, **params):
        """Set the parameters of this estimator.

        ``encoder__<name>`` and ``decoder__<name>`` set one keyword argument
        of a custom network, an entry of ``encoder_params`` or
        ``decoder_params`` (a new dict; the one passed in is not modified).

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : VAETransformer
            The estimator.
        """
        params, routed = route_network_params(params)
        super().set_params(**params)
        for network, kwargs in routed.items():
            if kwargs:
                current = getattr(self, f"{network}_params")
                current = current if isinstance(current, dict) else {}
                setattr(self, f"{network}_params", {**current, **kwargs})
        return self

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to ``X`` by maximising the ELBO.

        With ``warm_start=True`` and a fitted model, training continues from
        the current weights and optimiser state for up to ``max_iter`` more
        epochs; otherwise the model is initialised afresh.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Training data; a ``numpy.memmap`` is read batch by batch without a
            full copy. NaN (or None, ``pd.NA`` in a DataFrame) marks a missing
            entry, which is left out of the objective.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : VAETransformer
            The fitted estimator.
        """
        warm = self.warm_start and hasattr(self, "net_")
        with _restore_on_error(self):
            X = validate_table(self, X, reset=not warm)
            if not warm:
                self._initialize(X)
            train_rows, valid_rows = self._split_rows(X.shape[0], self._rng)
            if not warm:
                self._start_linear_gaussian(X, train_rows)
            self._train(X, train_rows, valid_rows, epochs=self.max_iter)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one epoch on ``X``, keeping the weights and optimiser state.

        Use it to stream data that does not fit in memory, chunk by chunk.
        The first call initialises the model, taking the standardisation and,
        for ``likelihood="categorical"``, the integer levels from its chunk;
        the columns of a table and their label categories are fixed by it
        too, so declare every category with a pandas ``category`` dtype when
        later chunks may hold labels the first one lacks. Early stopping does
        not apply; ``max_iter`` is ignored.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            A chunk of training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : VAETransformer
            The updated estimator.
        """
        first_call = not hasattr(self, "net_")
        with _restore_on_error(self):
            X = validate_table(self, X, reset=first_call)
            if first_call:
                self._initialize(X)
                self._start_linear_gaussian(X, None)
            elif self._support is not None:
                chunk = support_bounds(X, self._dequantized)
                self._support = np.stack(
                    [np.fmin(self._support[0], chunk[0]), np.fmax(self._support[1], chunk[1])]
                )
            self._train(X, None, None, epochs=1)
        return self

    def _network_builders(self):
        """``build(size) -> UserTrunk`` for the custom encoder and decoder, or None each."""
        builders = []
        for network in NETWORKS:
            value, kwargs = getattr(self, network), getattr(self, f"{network}_params")
            if value is None and kwargs:
                raise ValueError(
                    f"{network}_params={kwargs!r} are keyword arguments for a custom "
                    f"{network}, but {network}=None uses the MLP of hidden_layer_sizes. "
                    f"Pass a torch.nn.Module class as {network}, or set {network}_params=None."
                )
            builders.append(None if value is None else partial(build_trunk, network, value, kwargs))
        return builders

    def _initialize(self, X):
        """Build the likelihood, the torch module and the initialised skorch net."""
        self._check_hidden_layer_sizes()
        self._network_builders()  # checks the networks' parameters before any work
        device = self._check_device()
        columns = self.schema_.columns_
        likelihood = make_likelihood(columns)
        self._dequantized = np.array([column.dequantize for column in columns])
        # Only dequantised columns are clipped: other tables need no pass over X.
        self._support = support_bounds(X, self._dequantized) if self._dequantized.any() else None
        self._check_training_data(X, likelihood)
        _warn_if_lattice(X, columns, stacklevel=5)
        loc, scale, divisor = column_statistics(X, dequantized=self._dequantized)
        # Gaussian columns reach the model standardised (in float64, at the
        # batch boundary); the encoder standardises the others itself.
        gaussian = np.array([column.likelihood == "gaussian" for column in columns])
        self._standardisation = Standardisation(loc, scale, divisor, gaussian)
        loc, scale = loc * divisor, scale * divisor
        likelihood.fit(X, loc, scale)
        self._rng = check_random_state(self.random_state)
        with _torch_seed(_draw_seed(self._rng), device):
            module = self._make_module(likelihood)
            module.set_input_scaling(np.where(gaussian, 0.0, loc), np.where(gaussian, 1.0, scale))
            self.net_ = self._make_net(module, device).initialize()

    def _start_linear_gaussian(self, X, rows):
        """Start a linear-Gaussian model at the factor-analysis fit of its training rows.

        Such a model is factor analysis (see :mod:`._linear_start`); on small
        tables the epochs of ``max_iter`` are too few Adam steps to get there
        from random weights. Other models keep their random initialisation.
        """
        module = self.net_.module_
        n_rows = X.shape[0] if rows is None else len(rows)
        # Quadratic: the default affine decoder and a Gaussian likelihood; the
        # encoder must be the default linear one too, as the start sets its weights.
        linear_gaussian = (
            module.elbo_is_quadratic and self.encoder is None and not self._dequantized.any()
        )
        if linear_gaussian and n_rows > 1:
            mean, covariance = standardised_moments(X, rows, self._standardisation)
            start_at_factor_analysis(module, mean, covariance)

    def _make_module(self, likelihood):
        """The untrained torch model for a fitted ``likelihood`` (also used to load a model)."""
        encoder, decoder = self._network_builders()
        return VAEModule(
            likelihood,
            self.n_components,
            self._check_hidden_layer_sizes(),
            one_hot_columns(likelihood),
            encoder=encoder,
            decoder=decoder,
            heteroscedastic=self.decoder_variance == "heteroscedastic",
        )

    def _train(self, X, train_rows, valid_rows, epochs):
        """Run up to ``epochs`` epochs on the rows ``train_rows`` of ``X``."""
        net = self.net_
        self._check_training_data(X, net.module_.likelihood)
        validation = None
        if valid_rows is not None:
            fixed_noise = "hashed" if self._dequantized.any() else None
            validation = RowDataset(
                X,
                valid_rows,
                dequantize=fixed_noise,
                columns=_noise_columns(self._dequantized),
                standardisation=self._standardisation,
            )
        # beta is a plain float of the criterion: set it in place, since a
        # skorch criterion re-initialisation would also reset Adam's state.
        net.criterion_.beta = self.beta
        net.module_.objective, net.module_.n_draws = self.objective, self.n_draws
        batch_size = self._batch_size(X.shape[0] if train_rows is None else len(train_rows))
        counts = fit_thread_counts(self.n_jobs, self._n_weights(), batch_size, net.device)
        net.set_params(
            # lr updates the existing optimiser's param groups; Adam's state is kept.
            lr=self.learning_rate_init,
            max_epochs=epochs,
            batch_size=batch_size,
            train_split=None if validation is None else predefined_split(validation),
            callbacks__early_stopping=self._stopping_callback(validation is not None),
            callbacks__weight_averaging__decay=average_decay(self.average),
            callbacks__thread_tuner__counts=counts,
            callbacks__print_log__sink=print_log_sink if self.verbose else _noop,
        )
        n_before = len(net.history)
        try:
            with _torch_seed(_draw_seed(self._rng), net.device), torch_threads(max(counts)):
                fresh_noise = "fresh" if self._dequantized.any() else None
                columns = _noise_columns(self._dequantized)
                net.partial_fit(
                    RowDataset(
                        X,
                        train_rows,
                        dequantize=fresh_noise,
                        columns=columns,
                        standardisation=self._standardisation,
                    )
                )
        finally:
            # The validation split holds a reference to X: never keep it.
            net.train_split = None
        standardisation = self._standardisation
        self._record_history(
            net,
            n_before,
            standardisation.mean_log_jacobian(X, train_rows),
            None if valid_rows is None else standardisation.mean_log_jacobian(X, valid_rows),
        )
        if epochs > 1 and len(net.history) - n_before == epochs:
            warnings.warn(
                f"Maximum iterations ({self.max_iter}) reached and the optimization "
                "hasn't converged yet. Increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=4,
            )

    def _check_training_data(self, X, likelihood):
        if self.objective == "iwae" and self.beta != 1:
            raise ValueError(
                f"beta={self.beta} weights the KL term of the ELBO, which objective='iwae' "
                "does not have. Set beta=1.0, or objective='elbo' to train a beta-VAE."
            )
        likelihood.check_support(X)
        _check_float32_range(X, self.schema_.columns_)
        if not self._dequantized.any():
            if self.dequantize:
                raise ValueError(
                    f"dequantize=True applies to likelihood='gaussian' only; "
                    f"likelihood={self.likelihood!r} models the data as they are. "
                    "Set dequantize=False."
                )
            return
        columns = _noise_columns(self._dequantized)
        check_integer_valued(
            X if columns is None else X[:, columns],
            "dequantize=True" if self.dequantize else "A dequantised integer column",
            "Pass the raw integers, or set dequantize=False for data that are already continuous.",
        )

    def _check_hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if not all(isinstance(s, Integral) and s > 0 for s in sizes):
            raise ValueError(
                "hidden_layer_sizes must contain positive integers, got "
                f"{self.hidden_layer_sizes!r}."
            )
        return sizes

    def _check_device(self):
        """The ``device`` parameter as a ``torch.device`` this process can allocate on."""
        try:
            device = torch.device(self.device)
        except RuntimeError as exc:
            raise ValueError(
                f"device={self.device!r} is not a torch device string ({exc}). "
                "Use for example device='cpu' or device='cuda'."
            ) from None
        try:
            torch.empty(0, device=device)
        except (AssertionError, RuntimeError, NotImplementedError) as exc:
            reason = "CUDA is not available" if device.type == "cuda" else "it is not available"
            raise ValueError(
                f"device={self.device!r} was requested but {reason} in this torch "
                f"installation ({str(exc).splitlines()[0]}); use device='cpu', or "
                "install a torch build that supports this device."
            ) from None
        return device

    def _n_weights(self):
        return sum(weights.numel() for weights in self.net_.module_.parameters())

    def _torch_threads(self):
        """Run the block with the torch threads that ``n_jobs`` gives this model's scoring."""
        return torch_threads(n_threads(self.n_jobs, self._n_weights(), self.net_.batch_size))

    def _split_rows(self, n_samples, rng):
        """Training and validation row indices (sorted), or all rows and None."""
        if not self.early_stopping:
            return None, None
        n_valid = int(np.ceil(self.validation_fraction * n_samples))
        if n_valid >= n_samples:
            raise ValueError(
                f"n_samples={n_samples} is too few to hold out validation_fraction="
                f"{self.validation_fraction} for early stopping: no training row "
                "would be left. Pass more samples or set early_stopping=False."
            )
        order = rng.permutation(n_samples)
        return np.sort(order[n_valid:]), np.sort(order[:n_valid])

    def _batch_size(self, n_samples):
        return min(128, n_samples) if self.batch_size == "auto" else self.batch_size

    def _stopping_callback(self, validation):
        """skorch's EarlyStopping on the validation loss, or on the training loss."""
        return EarlyStopping(
            monitor="valid_loss" if validation else "train_loss",
            patience=self.n_iter_no_change,
            threshold=self.tol,
            threshold_mode="abs",
            load_best=validation,
            sink=print if self.verbose else _noop,
        )

    def _make_net(self, module, device):
        callbacks = [
            ("stop_on_non_finite_loss", StopOnNonFiniteLoss()),
            ("early_stopping", self._stopping_callback(self.early_stopping)),
        ]
        callbacks.append(("weight_averaging", WeightAveraging(average_decay(self.average))))
        callbacks.append(("thread_tuner", ThreadTuner()))
        callbacks.append(("zero_negligible_moments", ZeroNegligibleMoments()))
        if self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        return VAENet(
            module=module,
            criterion=NegativeELBO,
            criterion__beta=self.beta,
            optimizer=torch.optim.Adam,
            lr=self.learning_rate_init,
            dataset=RowDataset,
            iterator_train=BatchIterator,
            iterator_train__shuffle=True,
            iterator_valid=BatchIterator,
            train_split=None,
            callbacks=callbacks,
            verbose=int(self.verbose),
            device=device,
            torch_load_kwargs={"weights_only": False},
        )

    def _record_history(self, net, n_before, train_jacobian, valid_jacobian):
        """The losses of the new epochs, in nats of ``X``, appended to the fitted curves.

        The net trains on standardised values: each epoch's mean loss is moved
        by the mean log-Jacobian of the rows it averaged over.
        """
        new = net.history[n_before:]
        previous = self.loss_curve_ if n_before else []
        self.loss_curve_ = previous + [epoch["train_loss"] - train_jacobian for epoch in new]
        previous = (self.validation_scores_ or []) if n_before else []
        validation = previous + [
            -epoch["valid_loss"] + valid_jacobian for epoch in new if "valid_loss" in epoch
        ]
        self.n_iter_ = len(net.history)
        self.validation_scores_ = validation or None
        self.best_validation_score_ = max(validation) if validation else None
        self.best_loss_ = None if validation else min(self.loss_curve_)

    # ----------------------------------------------------------- helpers

    @property
    def _n_features_out(self):
        """Latent size of the fitted model (absent before fit), for get_feature_names_out."""
        return self.net_.module_.encoder.loc.out_features

    def _check_X(self, X, unknown="missing"):
        check_is_fitted(self)
        return validate_table(self, X, reset=False, unknown=unknown)

    def _check_scorable(self, X):
        """Encoded ``X``, the noise to dequantise it with, and the columns that get it.

        Dequantised columns that hold integers get row-hashed noise; columns
        that are already continuous (``dequantize(X)``) are scored as they are.
        """
        X = self._check_X(X, unknown="error")
        self.net_.module_.likelihood.check_support(X)
        if not self._dequantized.any():
            return X, None, None
        noisy = self._dequantized & integer_valued_columns(X)
        if not noisy.any():
            return X, None, None
        return X, "hashed", _noise_columns(noisy)

    def _evaluate(
        self,
        fn,
        X,
        batch_size=_EVAL_BATCH_SIZE,
        dtype=torch.float64,
        dequantize=None,
        columns=None,
        latent=False,
        unstandardise=False,
        keyed_pairs=None,
    ):
        """Apply ``fn(module, batch)`` to row batches of ``X``; float64 ndarray.

        Rows of data are standardised in float64 before they reach the module
        (``latent=True``: ``X`` holds latent points, passed as they are), and
        with ``unstandardise=True`` the outputs, rows in standardised units,
        are mapped back to the units of ``X`` in float64.

        Deterministic outputs are computed on a float64 copy of the module: in
        float32 a row's result may depend on the other rows of its batch at the
        1e-7 level (the linear algebra kernels depend on the batch's shape),
        and they must not depend on row order or on scoring a subset. Monte
        Carlo estimates may pass ``dtype=torch.float32``. With
        ``keyed_pairs`` (float32, scoring), every batch is padded to
        ``batch_size`` rows with copies of its first row, so the kernels see
        one fixed shape, and ``fn(module, batch, noise)`` also gets
        ``keyed_pairs`` :func:`row_keyed_normal` draws of each row.
        """
        module = copy.deepcopy(self.net_.module_).to(dtype).eval()
        standardisation = self._standardisation
        output = None
        with torch.inference_mode(), self._torch_threads():
            batches = iter_batches(
                X,
                batch_size,
                _NUMPY_DTYPES[dtype],
                dequantize,
                columns,
                standardisation=None if latent else standardisation,
            )
            for start, batch in zip(range(0, X.shape[0], batch_size), batches, strict=True):
                n_rows = len(batch)
                if keyed_pairs is None:
                    values = fn(module, batch.to(self.net_.device)).cpu().numpy()
                else:
                    batch = torch.cat([batch, batch[:1].expand(batch_size - n_rows, -1)])
                    noise = row_keyed_normal(batch.numpy(), keyed_pairs, self.n_components)
                    device = self.net_.device
                    values = fn(module, batch.to(device), torch.from_numpy(noise).to(device))
                    values = values[:n_rows].cpu().numpy()
                if unstandardise:
                    values = standardisation.inverse_transform(values)
                if output is None:
                    # Written in place: concatenating per-batch pieces fragments
                    # the heap and holds several times the output's memory.
                    output = np.empty((X.shape[0], *values.shape[1:]))
                output[start : start + len(values)] = values
        return output

    # --------------------------------------------------------- transform

    def transform(self, X):
        """Encode ``X`` as the means of the approximate posterior q(z | x).

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Data to encode; missing entries (NaN) and unseen labels are
            allowed.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Posterior means; deterministic.
        """
        X = self._check_X(X)
        return self._evaluate(lambda module, x: module.posterior(x).mean, X)

    def inverse_transform(self, X):
        """Decode latent points to the mean of p(x | z) in the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Latent points, for example from :meth:`transform`.

        Returns
        -------
        X_original : ndarray or DataFrame of shape (n_samples, `n_features_in_`)
            Decoder means in the units of the training data; a DataFrame
            with the training columns and dtypes when fitted on one, label
            columns holding their most probable category.
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=[np.float64, np.float32])
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"X has {Z.shape[1]} features, but {type(self).__name__}.inverse_transform "
                f"expects latent points with n_components={self.n_components} features."
            )
        means = self._evaluate(
            lambda module, z: module.reconstruct_mean(z), Z, latent=True, unstandardise=True
        )
        return self.schema_.decode(means)

    def sample(self, n_samples=1, random_state=None, *, given=None, n_importance_samples=1000):
        """Generate random samples from the model: z ~ N(0, I), then x ~ p(x | z).

        With ``given``, draw from the conditional ``p(x_free | x_given)``
        instead, by sampling-importance-resampling: for each sample, ``K =
        n_importance_samples`` proposals ``z_k ~ r(z)`` are weighted by
        ``p(x_given | z_k) p(z_k) / r(z_k)``, one is picked with probability
        proportional to its weight, and the free columns are drawn from ``p(x
        | z_k)``. The proposal ``r`` is the encoder's ``q(z | x_given)``
        adapted by two rounds of moment matching, as in :class:`VAEImputer`.
        The draws are independent and tend to exact conditional samples as K
        grows; a dequantised integer column stays within its range in fit.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate.

        random_state : int, RandomState instance or None, default=None
            Determines the random draws. Pass an int for reproducible results.

        given : dict, DataFrame, array-like of shape (1, `n_features_in_`) or None, \
                default=None
            Values to condition on: a dict ``{column: value}`` (column names
            when fitted on a DataFrame, positions otherwise), or one row with
            NaN (or None) in the free columns. None samples the joint.

        n_importance_samples : int, default=1000
            Number of proposals K per sample; only used with ``given``.

        Returns
        -------
        X : ndarray or DataFrame of shape (n_samples, `n_features_in_`)
            Generated samples: a DataFrame with the training columns and
            dtypes (labels as they were) when fitted on one. With ``given``,
            the given columns hold exactly the given values.
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        if given is not None:
            return self._sample_given(n_samples, random_state, given, n_importance_samples)
        seed = _draw_seed(random_state)
        with _torch_seed(seed, self.net_.device):
            Z = torch.randn(n_samples, self.n_components, dtype=torch.float64).numpy()
            draws = self._evaluate(
                lambda module, z: module.sample_given(z), Z, latent=True, unstandardise=True
            )
            return self.schema_.decode(draws)

    def _sample_given(self, n_samples, random_state, given, n_importance_samples):
        """``sample(given=...)``: SIR draws of the free columns; see :mod:`._inference`."""
        if not isinstance(n_importance_samples, Integral) or n_importance_samples < 1:
            raise ValueError(
                f"n_importance_samples must be a positive integer, got {n_importance_samples!r}."
            )
        row = encode_given(self, given)
        rows = np.repeat(row, n_samples, axis=0)
        filled = impute_encoded(
            [self], rows, sample=True, n_samples=n_importance_samples, random_state=random_state
        )
        return self.schema_.decode(filled)

    # ------------------------------------------------------------ scores

    def score_samples(self, X):
        """Evidence lower bound of each sample, a lower bound on log p(x).

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Data to score. Missing entries (NaN) are marginalised.
            With ``dequantize=True``, integer-valued ``X`` is dequantised first
            with noise that is a fixed function of each row.

        Returns
        -------
        elbo : ndarray of shape (n_samples,)
            Per-sample ELBO in nats; a log-density of ``X`` in its own units.
            Deterministic for a fitted model, and a function of each row alone.

        See Also
        --------
        log_likelihood : A tighter importance-weighted estimate of log p(x).

        Notes
        -----
        The KL term is exact. The expectation ``E_q[log p(x | z)]`` is
        averaged over one antithetic pair of standard normal draws per row,
        ``eps`` and ``-eps``, that are a fixed pseudo-random function of the
        row's values (as the model sees them, missing entries included). The
        forward pass runs in float32 on batches padded to one fixed shape, and
        the average and the KL are accumulated in float64. So a row gets the
        same score in every call, in any position and beside any other rows:
        scores do not depend on row order or on scoring a subset.

        The estimate is unbiased for the ELBO. Its error is independent
        across distinct rows (identical rows share theirs); its standard
        deviation depends on the model, about 1.6 nats per image for a
        categorical VAE of the digits (``n_components=8``; see the README's
        scoring section). The mean over ``n`` rows, :meth:`score`, therefore
        has a standard error of about ``sd / sqrt(n)``: 0.08 nats on 450
        digits. When ``log p(x | z)`` is quadratic in ``z`` (the Gaussian
        likelihood with ``hidden_layer_sizes=()`` and no user ``decoder``:
        factor analysis), the expectation is computed exactly instead, in
        float64, so the score is the closed-form ELBO.
        """
        X, noise, columns = self._check_scorable(X)
        return _no_nan(self._elbo(X, noise, columns) + self._standardisation.log_jacobian(X))

    def _elbo(self, X, dequantize, columns, n_pairs=_SCORE_PAIRS):
        """Per-row ELBO of validated ``X`` in the model's units; see :meth:`score_samples`."""
        if self.net_.module_.elbo_is_quadratic:
            # Shared whitened draws in float64: the closed form.
            return self._evaluate(
                lambda module, x: module.elbo(x), X, dequantize=dequantize, columns=columns
            )
        return self._evaluate(
            lambda module, x, noise: module.elbo(x, noise),
            X,
            dtype=torch.float32,
            dequantize=dequantize,
            columns=columns,
            keyed_pairs=n_pairs,
        )

    def score(self, X, y=None):
        """Mean ELBO over the samples of ``X``, in nats (higher is better).

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Data to score. Missing entries (NaN) are marginalised.
            With ``dequantize=True``, integer-valued ``X`` is dequantised first
            with noise that is a fixed function of each row.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`; its Monte Carlo standard error is
            about ``sd / sqrt(n_samples)`` (see the Notes there).
        """
        return float(np.mean(self.score_samples(X)))

    def log_likelihood(self, X, *, n_importance_samples=1000, random_state=None):
        """Importance-weighted estimate of log p(x) for each sample.

        Computes the IWAE bound ``log (1/K) sum_k p(x, z_k) / q(z_k | x)``
        with ``K = n_importance_samples`` draws ``z_k ~ q(z | x)``. It is a
        lower bound on ``log p(x)`` in expectation, never looser than the
        ELBO, and tends to ``log p(x)`` as K grows. Work is batched, so memory
        stays bounded for any K and any number of rows.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Data to score. Missing entries (NaN) are marginalised.
            With ``dequantize=True``, integer-valued ``X`` is dequantised first
            with noise that is a fixed function of each row.

        n_importance_samples : int, default=1000
            Number of importance samples K per row.

        random_state : int, RandomState instance or None, default=None
            Determines the importance samples. Pass an int for reproducible
            results.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            Estimated log-density of each sample, in nats, in the units of
            ``X``.
        """
        if not isinstance(n_importance_samples, Integral) or n_importance_samples < 1:
            raise ValueError(
                f"n_importance_samples must be a positive integer, got {n_importance_samples!r}."
            )
        X, noise, columns = self._check_scorable(X)
        # The widest layer bounds the size of every per-sample tensor.
        width = self.net_.module_.widest_layer()
        batch_size = 256
        chunk_size = max(1, _IWAE_BUDGET // (batch_size * width))
        seed = _draw_seed(random_state)
        # A Monte Carlo estimate needs no float64: it is computed in float32.
        with _torch_seed(seed, self.net_.device):
            bound = self._evaluate(
                lambda module, x: module.importance_weighted_bound(
                    x, n_importance_samples, chunk_size
                ),
                X,
                batch_size=batch_size,
                dtype=torch.float32,
                dequantize=noise,
                columns=columns,
            )
        return _no_nan(bound + self._standardisation.log_jacobian(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # -------------------------------------------------------- persistence

    def __getstate__(self):
        # Numpy arrays and builtins only, for pickle, joblib and skops.io alike.
        return saved_state(super().__getstate__())

    def __setstate__(self, state):
        # Models saved before n_jobs existed use its default; before the
        # support of dequantised columns was kept (None: nothing to clip),
        # inferred values are not clipped.
        defaults = {"n_jobs": None}
        if "net_" in state:
            defaults["_support"] = None
        restore_state(self, {**defaults, **state}, super().__setstate__)
