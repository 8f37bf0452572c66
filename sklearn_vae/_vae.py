"""VAETransformer: the public scikit-learn estimator.

It validates parameters and data at the boundary and keeps the fitted state;
the work is done below it: :mod:`._training` builds and trains the model,
:mod:`._evaluation` runs the fitted model, :mod:`._inference` conditions it.
"""

import warnings
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
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted
from torch import nn

from . import _training as training
from ._checks import check_hidden_layer_sizes, check_positive_integer
from ._evaluation import FittedModel
from ._fit_steps import fit_prior, start_fit, start_partial_fit, train_epochs
from ._likelihoods import LIKELIHOODS
from ._networks import NetworkParamsMixin
from ._persistence import restore_state, saved_state
from ._random import draw_seed
from ._routing import lazy, lazy_sample, training_records, validate_training
from ._sampling import check_sampling_options, encode_given, synthetic_rows
from ._schema import validate_table
from ._unseen import encode_scored

__all__ = ["VAETransformer"]


class VAETransformer(
    NetworkParamsMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    DensityMixin,
    BaseEstimator,
):
    """Variational autoencoder: a latent-variable density model and transformer.

    The model is ``p(x) = ∫ p(x | z) p(z) dz`` with a prior ``p(z)`` over
    ``n_components`` latent variables, a decoder ``p(x | z)`` and an encoder
    ``q(z | x) = N(mu(x), diag sigma²(x))``, neural networks trained with
    Adam through skorch by maximising the evidence lower bound (ELBO) with
    the reparametrisation ``z = mu + sigma * eps``. The networks train under
    ``p(z) = N(0, I)``; a Gaussian mixture fitted to the codes of the
    training rows may then replace it (``prior``).

    Read more in the :doc:`User Guide </model>`.

    Parameters
    ----------
    n_components : int or "auto", default="auto"
        Size of the latent space (the dimension of ``z``). ``"auto"``: the
        Ledermann bound of a table of ``d`` columns, the most factors a factor
        analysis of ``d`` variables identifies, ``floor((2d + 1 - sqrt(8d +
        1)) / 2)``, 1 to 8 (a linear model ``hidden_layer_sizes="auto"`` picks
        may take its own); see :doc:`/training`. The fitted size is ``n_components_``.

    hidden_layer_sizes : "auto" or array-like of shape (n_layers,), default="auto"
        Widths of the encoder's hidden layers (ReLU); the decoder mirrors
        them. ``()`` with the Gaussian likelihood is factor analysis, which
        :meth:`fit` starts at its maximum-likelihood fit (see Notes).
        ``"auto"``: on a table of 30 to 1,000 rows, :meth:`fit` scores
        ``(256, 256)`` and ``()`` by a 3-fold cross-validated
        :meth:`log_likelihood` (six more fits; ``()`` of Gaussian columns at
        the best number of factors if ``n_components="auto"``), keeps
        ``(256, 256)`` unless ``()`` scores higher by three standard errors,
        and fits the winner; other fits (a Dask collection, a custom
        network, ...) take ``(256, 256)``; see :doc:`/training`. The fitted
        widths are ``hidden_layer_sizes_``.

    encoder : torch.nn.Module class or instance, default=None
        Your own encoder network in place of the MLP: it maps the model's
        float32 view of ``X``, shape ``(n_rows, n_inputs)``, to a hidden
        vector per row; the library adds the maps to the mean and scale of
        ``q(z | x)``. A class is called as ``encoder(n_inputs=n_inputs,
        **encoder_params)``; an instance is deep-copied at each fit. See
        :doc:`/networks`.

    encoder_params : dict, default=None
        Keyword arguments for an ``encoder`` class. Each is also a nested
        parameter ``encoder__<name>`` of :meth:`get_params` and
        :meth:`set_params`, so ``GridSearchCV`` can search it.

    decoder : torch.nn.Module class or instance, default=None
        Your own decoder network, in place of the MLP: it maps latent
        points, shape ``(n_rows, n_components)``, to a hidden vector per
        row; the library adds each likelihood's output head. A class is
        called as ``decoder(n_components=n_components, **decoder_params)``;
        otherwise as ``encoder``.

    decoder_params : dict, default=None
        Keyword arguments for a ``decoder`` class; nested parameters
        ``decoder__<name>``, as ``encoder_params``.

    likelihood : "auto", {"gaussian", "bernoulli", "categorical", "poisson"} \
            or dict, default="auto"
        Observation model ``p(x | z)``, independent across columns given z.
        ``"auto"`` picks by column: a point mass for one training value,
        ``"gaussian"`` for floats (as integers when they all are one, see
        ``dequantize``), for integers a ``"categorical"`` over their levels
        when they span at most 10 (under ``dequantize="auto"``) and a
        dequantised ``"gaussian"`` otherwise, ``"bernoulli"`` for booleans and
        ``"categorical"`` over the labels seen in fit (or a ``category``
        dtype's declared ones) otherwise. One name applies to every column;
        a dict ``{column: name}`` (names of a DataFrame, positions of an
        array) sets some, the others ``"auto"``. See :doc:`/likelihoods`, :doc:`/tables`.

    dequantize : bool or "auto", default="auto"
        Which ``"gaussian"`` columns model ``x + U``, ``U ~ U(0, 1)``, in the
        units of discrete models: ``"auto"``, those whose training values are
        all integers (integer dtypes, floats such as counts with NaN) over
        more than 10 levels, fewer being a ``"categorical"`` under
        ``likelihood="auto"``; True all of them, or a ``ValueError`` if there
        is none; False only integer dtypes. Integers scored get noise that is
        a fixed function of each row: deterministic lower bounds on their
        log-probabilities. See :doc:`/units`.

    decoder_variance : {"heteroscedastic", "homoscedastic"}, default="heteroscedastic"
        The variance of the ``"gaussian"`` columns' ``p(x | z)``: one for
        every sample and feature, a function of ``z`` (``"heteroscedastic"``),
        or one learned per feature (``"homoscedastic"``, the default of
        :class:`VAEImputer`'s VAE, which cannot shrink its variance around
        single training rows).

    beta : float, default=1.0
        Weight of the KL term in the training objective; 1.0 maximises the
        ELBO, other values train a beta-VAE. Scores always use ``beta=1``.

    objective : {"elbo", "iwae"}, default="elbo"
        Training objective: the evidence lower bound (``"elbo"``, Kingma and
        Welling), or the tighter importance-weighted bound of Burda et al.
        on ``n_draws`` draws (``"iwae"``, the objective of MIWAE), at
        ``n_draws`` times the decoder's cost; ``"iwae"`` needs ``beta=1``.

    n_draws : int, default=1
        Latent draws per row in each training step: L for the ELBO, K for
        the IWAE bound.

    batch_size : int or "auto", default="auto"
        Minibatch size; "auto" means ``min(128, n_samples)``.

    learning_rate_init : float, default=1e-3
        Adam's learning rate.

    prior : {"mixture", "normal"}, default="mixture"
        The prior ``p(z)``. ``"mixture"``: after training, a Gaussian mixture
        fitted to the training rows' codes replaces N(0, I) where the
        validation rows' codes score higher under it (2 to 16 components,
        chosen on them); :meth:`sample` then draws where the codes lie. A
        :meth:`partial_fit`, ``early_stopping=False`` or a Dask collection
        keeps N(0, I), as ``"normal"`` always does. See :doc:`/model`.

    average : bool or float in (0, 1), default=False
        Make an exponential moving average of the weights over the training
        steps the fitted model (Polyak averaging, as
        ``SGDRegressor(average=True)``); validation and early stopping use
        it. ``True`` uses ``decay=0.998``, about the last 500 steps; a float
        sets the decay. See :doc:`/training`.

    max_iter : int, default=500
        Maximum number of epochs, passes over the training data.

    early_stopping : bool, default=True
        Whether to hold out ``validation_fraction`` of the training data and
        stop when the validation objective has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, keeping the best epoch's weights; if
        False, the training loss is monitored instead.

    validation_fraction : float, default=0.1
        Proportion of the training data held out for early stopping, in (0, 1).
        Only used if ``early_stopping`` is True.

    n_iter_no_change : int or "auto", default="auto"
        Number of epochs without an improvement of at least ``tol`` before
        training stops; ``"auto"``: 20, or enough to span 200 optimiser steps
        on small data (100 epochs of two minibatches). See :doc:`/training`.

    tol : float, default=1e-4
        Minimum improvement of the monitored loss, in nats per sample.

    random_state : int, RandomState instance or None, default=None
        Controls weight initialisation, the validation split, shuffling and
        the training draws. Pass an int for reproducible results.

    verbose : int, default=0
        0 is silent, 1 prints skorch's table of losses after every epoch, 2
        also shows a progress bar within each epoch.

    warm_start : bool, default=False
        When True, :meth:`fit` trains on from the fitted model (weights, Adam's
        state, history), whose shaping parameters must be left as fitted.

    device : str or torch.device, default="cpu"
        Torch device to train and evaluate on, for example "cuda". Results are
        always returned as numpy arrays; see :doc:`/persistence` for loading
        a model fitted on a GPU on a CPU-only machine.

    n_jobs : int, default=None
        Number of torch threads for fitting, scoring and inference; ``-1``
        means all CPU cores, ``-2`` all but one. ``None``: one thread below
        1e8 multiply-adds per training step (weights times batch rows), where
        threads cost more than they share on a busy machine, otherwise
        torch's count, at most ``OMP_NUM_THREADS``. Set for the call, then
        restored; see :doc:`/scale` for results that do not depend on it.

    Attributes
    ----------
    schema_ : TableSchema
        The columns seen in fit: for each, its kind, dtype, resolved
        likelihood and categories (``schema_.columns_``).

    net_ : skorch.NeuralNet
        The fitted skorch net; ``net_.module_`` is the torch model and
        ``net_.history`` the training history.

    n_components_ : int
        Size of the fitted latent space (``n_components``, resolved).

    n_prior_components_ : int
        Components of the fitted prior; 1 is N(0, I) (see ``prior``).

    hidden_layer_sizes_ : tuple of int
        Widths of the fitted hidden layers (``hidden_layer_sizes``, resolved).

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
    All scores are log-densities, in nats, of ``X`` as passed in (the
    log-Jacobian of the internal standardisation and power map is added), like
    ``GaussianMixture.score_samples``; :meth:`score` is their mean.
    :meth:`score_samples` is a deterministic, unbiased estimate of the ELBO
    (see its Notes and :doc:`/units`); :meth:`log_likelihood` the tighter
    importance-weighted bound, which approaches ``log p(x)`` as K grows.

    With ``hidden_layer_sizes=()``, a Gaussian likelihood for every column
    and no custom network, the model is factor analysis (of skewed columns
    power-mapped, :doc:`/likelihoods`; of dequantised ones plus their noise),
    and a fresh :meth:`fit` starts it at the maximum-likelihood fit of
    ``FactorAnalysis``; :doc:`/model`.

    ``X`` may be a pandas DataFrame of numbers, booleans, labels, dates and
    text, with missing entries in every method: a row with missing entries
    scores the marginal density of its observed part. :meth:`sample` and
    :meth:`inverse_transform` return the training columns and dtypes. See
    :doc:`/tables` for each column kind and labels not seen in fit.

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
    >>> list(samples.columns), bool(samples["colour"].dropna().isin(["red", "blue"]).all())
    (['size', 'colour'], True)
    """

    _parameter_constraints: dict = {
        "n_components": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": [
            StrOptions({"auto"}),
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "encoder": [None, nn.Module, callable],
        "encoder_params": [None, dict],
        "decoder": [None, nn.Module, callable],
        "decoder_params": [None, dict],
        "likelihood": [StrOptions(set(LIKELIHOODS) | {"auto"}), dict],
        "dequantize": ["boolean", StrOptions({"auto"})],
        "decoder_variance": [StrOptions({"heteroscedastic", "homoscedastic"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "objective": [StrOptions({"elbo", "iwae"})],
        "n_draws": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "prior": [StrOptions({"normal", "mixture"})],
        "average": ["boolean", Interval(Real, 0, 1, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
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
        n_components="auto",
        *,
        hidden_layer_sizes="auto",
        encoder=None,
        encoder_params=None,
        decoder=None,
        decoder_params=None,
        likelihood="auto",
        dequantize="auto",
        decoder_variance="heteroscedastic",
        beta=1.0,
        objective="elbo",
        n_draws=1,
        batch_size="auto",
        learning_rate_init=1e-3,
        prior="mixture",
        average=False,
        max_iter=500,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change="auto",
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
        self.prior = prior
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

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to ``X`` by maximising the ELBO.

        With ``warm_start=True`` and a fitted model, training continues for
        up to ``max_iter`` more epochs; otherwise the model starts afresh.

        Parameters
        ----------
        X : {array-like, DataFrame, Dask collection} of shape (n_samples, n_features)
            Training data; NaN (or None, ``pd.NA``) marks a missing entry. A
            ``numpy.memmap`` is read in batches, a Dask DataFrame or array one
            partition at a time (see :doc:`/scale`).

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : VAETransformer
            The fitted estimator.
        """
        warm = self.warm_start and hasattr(self, "net_")
        with training.restore_on_error(self):
            given, X = X, validate_training(self, X, reset=not warm, extend_ranges=warm)
            params, train_rows, valid_rows = start_fit(self, given, X, warm)
            self._label_counts, self._missingness = training_records(
                X, self.schema_.columns_, None, self._missingness if warm else None
            )
            n_epochs = train_epochs(self, X, train_rows, valid_rows, self.max_iter, params)
            fit_prior(self, X, train_rows, valid_rows)
        if self.max_iter > 1 and n_epochs == self.max_iter:
            warnings.warn(
                f"Maximum iterations ({self.max_iter}) reached and the optimization "
                "hasn't converged yet. Increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one epoch on ``X``, keeping the weights and optimiser state.

        The first call initialises the model (standardisation, levels,
        columns, labels) from its chunk; declare labels a later chunk may add
        with a ``category`` dtype. Label counts and missingness patterns add
        up. On a Dask collection: one epoch over its partitions
        (:doc:`/scale`). Early stopping does not apply; nor does ``max_iter``.

        Parameters
        ----------
        X : {array-like, DataFrame, Dask collection} of shape (n_samples, n_features)
            A chunk of training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : VAETransformer
            The updated estimator.
        """
        first_call = not hasattr(self, "net_")
        with training.restore_on_error(self):
            X = validate_training(self, X, reset=first_call, extend_ranges=not first_call)
            params = start_partial_fit(self, X, first_call)
            earlier = (None, None) if first_call else (self._label_counts, self._missingness)
            self._label_counts, self._missingness = training_records(
                X, self.schema_.columns_, *earlier
            )
            train_epochs(self, X, None, None, 1, params)
            fit_prior(self, X, None, None)
        return self

    def _fitted_model(self):
        """The fitted model as :mod:`._evaluation` runs it: the private interface of
        :mod:`._inference`, :mod:`._imputer` and :mod:`._outlier` to a fitted VAE."""
        check_is_fitted(self)
        return FittedModel(
            self.net_, self._standardisation, self._dequantized, self._support, self.n_jobs
        )

    # --------------------------------------------------------- transform

    def transform(self, X):
        """Encode ``X`` as the means of the approximate posterior q(z | x).

        Parameters
        ----------
        X : {array-like, DataFrame, Dask collection} of shape (n_samples, n_features)
            Data to encode; missing entries (NaN) and unseen labels are
            allowed.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Posterior means; deterministic (lazy for a Dask collection).
        """
        if (result := lazy(self, "transform", X)) is not None:
            return result
        check_is_fitted(self)
        X = validate_table(self, X, reset=False, unknown="missing")
        return self._fitted_model().encode(X)

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
        model = self._fitted_model()
        Z = check_array(X, dtype=[np.float64, np.float32])
        if Z.shape[1] != model.n_components:
            raise ValueError(
                f"X has {Z.shape[1]} features, but {type(self).__name__}.inverse_transform "
                f"expects latent points with n_components={model.n_components} features."
            )
        return self.schema_.decode(model.decode_mean(Z))

    def sample(
        self,
        n_samples=1,
        random_state=None,
        *,
        given=None,
        missing="auto",
        clip=True,
        n_importance_samples=1000,
    ):
        """Generate synthetic rows: z ~ p(z), then x ~ p(x | z).

        Rows of ``given`` get draws from ``p(x_free | x_given)`` instead; see
        :doc:`/inference` for the algorithm, ``missing`` and ``clip``.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples (for each row of ``given``).

        random_state : int, RandomState instance or None, default=None
            Determines the random draws. Pass an int for reproducible results.

        given : dict, DataFrame, array-like of shape (n_conditions, `n_features_in_`), \
                Dask collection or None, default=None
            A dict ``{column: value}`` (names when fitted on a DataFrame,
            positions otherwise) or rows, NaN (or None) where free; a Dask
            DataFrame or array gives a lazy one, partition by partition.

        missing : "auto" or bool, default="auto"
            Leave entries missing as in training, at random, a training row's
            pattern per row: ``"auto"`` when training had any, True the same
            (an error for a model saved without them), False never.

        clip : bool, default=True
            Clip numeric columns to their training range (:meth:`score_samples`
            scores the unclipped density); False: within their dtype's range.

        n_importance_samples : int, default=1000
            Proposals K per sample; only used with ``given``.

        Returns
        -------
        X : ndarray or DataFrame of shape (n_samples * n_conditions, `n_features_in_`)
            The draws of each row of ``given`` in turn, given columns as
            given; a DataFrame with the training dtypes when fitted on one.
        """
        model = self._fitted_model()
        check_positive_integer("n_samples", n_samples)
        check_sampling_options(missing, clip, self._missingness)
        how = {"missing": missing, "clip": clip, "n_importance_samples": n_importance_samples}
        if given is not None:
            check_positive_integer("n_importance_samples", n_importance_samples)
            if (result := lazy_sample(self, n_samples, random_state, given, how)) is not None:
                return result
            given = np.repeat(encode_given(self, given), n_samples, axis=0)
        return synthetic_rows(
            model, self.schema_, self._missingness, n_samples, given, random_state, **how
        )

    # ------------------------------------------------------------ scores

    def score_samples(self, X):
        """Evidence lower bound of each sample, a lower bound on log p(x).

        Parameters
        ----------
        X : {array-like, DataFrame, Dask collection} of shape (n_samples, n_features)
            Data to score. Missing entries (NaN) are marginalised. The
            integers of dequantised columns get noise that is a fixed
            function of each row first.

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
        Unbiased for the ELBO, deterministic and row by row: see the class
        Notes, :doc:`/model` and :doc:`/units`. A lazy Dask array for a Dask
        collection (:doc:`/scale`).
        """
        if (result := lazy(self, "score_samples", X)) is not None:
            return result
        X, unseen = self._check_scored(X)
        return unseen.scores(self._fitted_model().elbo, X)

    def score(self, X, y=None):
        """Mean ELBO over the samples of ``X``, in nats (higher is better).

        Parameters
        ----------
        X : {array-like, DataFrame, Dask collection} of shape (n_samples, n_features)
            Data to score, as for :meth:`score_samples`.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))

    def log_likelihood(self, X, *, n_importance_samples=1000, random_state=None):
        """Importance-weighted estimate of log p(x) for each sample.

        The IWAE bound ``log (1/K) sum_k p(x, z_k) / q(z_k | x)`` on ``K =
        n_importance_samples`` draws ``z_k ~ q(z | x)``: never looser than the
        ELBO in expectation, it tends to ``log p(x)`` as K grows. Memory stays
        bounded for any K and any number of rows.

        Parameters
        ----------
        X : {array-like, DataFrame, Dask collection} of shape (n_samples, n_features)
            Data to score. Missing entries (NaN) are marginalised. The
            integers of dequantised columns get noise that is a fixed
            function of each row first.

        n_importance_samples : int, default=1000
            Number of importance samples K per row.

        random_state : int, RandomState instance or None, default=None
            Determines the importance samples. Pass an int for reproducible
            results.

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            Estimated log-density of each sample in nats of ``X``; lazy for
            a Dask collection.
        """
        check_positive_integer("n_importance_samples", n_importance_samples)
        kwargs = {"n_importance_samples": n_importance_samples, "random_state": random_state}
        if (result := lazy(self, "log_likelihood", X, **kwargs)) is not None:
            return result
        X, unseen = self._check_scored(X)
        bound, seed = self._fitted_model().importance_weighted_bound, draw_seed(random_state)
        return unseen.scores(bound, X, n_importance_samples, seed)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    # ----------------------------------------------------------- helpers

    @property
    def n_components_(self):
        """Size of the fitted latent space: ``n_components``, or its ``"auto"`` value."""
        return self.net_.module_.encoder.loc.out_features

    @property
    def hidden_layer_sizes_(self):
        """Widths of the fitted hidden layers: ``hidden_layer_sizes``, or its ``"auto"`` choice."""
        check_is_fitted(self)
        return check_hidden_layer_sizes(self._fitted_params["hidden_layer_sizes"])

    @property
    def _n_features_out(self):  # for get_feature_names_out
        return self.n_components_

    def _check_scored(self, X):  # encoded X (unseen labels missing), and what they add
        check_is_fitted(self)
        return encode_scored(self, X, self._label_counts)

    # -------------------------------------------------------- persistence

    def __getstate__(self):
        # Numpy arrays and builtins only, for pickle, joblib and skops.io alike.
        return saved_state(super().__getstate__())

    def __setstate__(self, state):
        # Models saved before n_jobs or prior existed use their defaults; before the
        # support of dequantised columns was kept (None: nothing to clip),
        # inferred values are not clipped; before the label counts were
        # kept, unseen labels and integers beyond the levels have no mass.
        defaults = {"n_jobs": None, "prior": "normal"}
        if "net_" in state:
            defaults["_support"] = defaults["_label_counts"] = None
            defaults["_missingness"] = None
            defaults["n_prior_components_"] = 1
        restore_state(self, {**defaults, **state}, super().__setstate__)
