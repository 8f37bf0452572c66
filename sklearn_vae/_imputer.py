"""VAEImputer: missing-value imputation by importance sampling under a fitted VAE."""

import time
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import _fit_context, clone
from sklearn.impute._base import _BaseImputer
from sklearn.utils import check_random_state
from sklearn.utils._mask import _get_mask
from sklearn.utils._missing import is_scalar_nan
from sklearn.utils._param_validation import Interval
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    _check_feature_names,
    _check_feature_names_in,
    _check_n_features,
    check_is_fitted,
    validate_data,
)

from ._column_kinds import column_roles, missing_entries, quiet_recognition
from ._inference import impute_encoded
from ._network_choice import MLP_SIZES
from ._schema import is_dataframe
from ._training import fit_raising_interrupts, restore_on_error
from ._vae import VAETransformer

__all__ = ["VAEImputer"]


def _fit_member(estimator, X, quiet, progress=None):
    """Fit one member of the ensemble; the first alone warns of recognised columns.

    ``progress``, when given, is ``(position, n_estimators)``: a line is
    printed when the member is fitted.
    """
    start = time.perf_counter()
    with quiet_recognition(quiet):
        fitted = fit_raising_interrupts(estimator, X)
    if progress is not None:
        position, n_estimators = progress
        print(
            f"[VAEImputer] model {position + 1} of {n_estimators} fitted: "
            f"{fitted.n_iter_} epochs in {time.perf_counter() - start:.1f} s",
            flush=True,
        )
    return fitted


class VAEImputer(_BaseImputer):
    """Impute missing values with a variational autoencoder fitted on the incomplete data.

    ``fit`` trains a :class:`VAETransformer` on ``X`` with its missing
    entries, which the model marginalises exactly (its decoder factorises
    over columns). ``transform`` fills each missing entry from the model's
    conditional distribution ``p(x_miss | x_obs)`` given the row's observed
    entries, estimated by importance sampling (MIWAE [1]_). The proposal
    starts at the encoder's posterior ``q(z | x_obs)`` and is adapted to
    each row in two rounds of moment matching (population Monte Carlo [2]_),
    which makes the estimate several times more accurate for the same K
    where the encoder places its posterior only roughly:

    - ``sample_posterior=False``: the conditional mean ``E[x_miss | x_obs]``,
      a self-normalised importance-sampling average of the decoder means (for
      label and boolean columns, the most probable category of the averaged
      probabilities; for integer levels, the level nearest their mean). Best
      for a single imputation scored by squared error.
    - ``sample_posterior=True``: a draw from ``p(x_miss | x_obs)`` by
      sampling-importance-resampling. Calls with different ``random_state``
      give proper multiple imputations, and the imputed entries keep the
      spread of the data, which the mean shrinks.

    ``fit`` trains ``n_estimators`` such models, each from its own random
    initialisation, and ``transform`` uses their ensemble (deep ensembles
    [4]_): the equal-weight mixture of the members' conditionals. The mean
    averages the members' conditional means (and category probabilities).
    The members differ where the data do not pin the model down, and
    averaging them removes that part of the error (the imputation
    benchmark measures it against one model). A call
    with ``sample_posterior=True`` draws every row from one member, picked
    at random: each member stands for one draw of the model's parameters,
    and multiple imputation draws the parameters once for each imputed data
    set, so the imputations of different seeds carry the models'
    disagreement as well as each model's spread.

    Observed entries are returned unchanged.

    Parameters
    ----------
    estimator : VAETransformer, default=None
        The model to fit (cloned). None means a ``VAETransformer`` trained
        as MIWAE [1]_ trains, on the importance-weighted bound
        (``objective="iwae", n_draws=10``), with a homoscedastic Gaussian
        decoder (``decoder_variance="homoscedastic"``), ``early_stopping=False``,
        ``n_iter_no_change=20``, ``prior="normal"``, the MLP of ``hidden_layer_sizes=(256, 256)``
        (the cross-validated choice of ``"auto"`` would cost every member six
        more fits) and this imputer's ``random_state``; its other parameters
        are the defaults, so each column of integers (counts, pixel intensities, also
        as floats) is a categorical over its levels (up to 10) or a
        dequantised Gaussian, as in :class:`DensityOutlierDetector`.
        Without early stopping the model trains on every row until its
        training loss stops improving (``n_iter_no_change`` epochs within
        ``tol``): an imputer conditions on the rows it is fitted on, and on
        tables of a few hundred rows holding out a tenth of them stopped
        training too soon, for filling the training rows and new rows alike.
        Its patience stays at 20 epochs: the longer ``"auto"`` patience
        waits out a validation score measured on few rows, and on three
        tables of the real-table battery it made the fit 1.2 to 2.5 times
        slower for errors at most 0.04 lower.
        A decoder that outputs a variance for every row can shrink it around
        single training rows (the likelihood of such a model is unbounded
        but for its floor, Mattei and Frellsen [3]_); with one variance per
        feature the conditional means generalise better on most tables.
        The imputation benchmark measures what each choice buys, and its
        cost: the bound's 10 draws make each training step costlier than
        the ELBO's one. Without validation rows there are none to choose a
        mixture prior on, and one chosen on a held-out part of the codes
        changed no imputation measurably.

    n_estimators : int, default=5
        Number of models in the ensemble, each a clone of ``estimator``
        with its own ``random_state`` (drawn from this imputer's), so fit
        takes ``n_estimators`` times as long as one model's. With 1 the
        clone keeps ``estimator``'s own ``random_state``.

    missing_values : int, float, str, np.nan, None or pandas.NA, default=np.nan
        The placeholder for missing values. In a DataFrame, NaN, None and
        ``pd.NA`` are always missing.

    sample_posterior : bool, default=False
        Whether to draw each missing entry from ``p(x_miss | x_obs)`` instead
        of taking its conditional mean. An ensemble draws all rows of a call
        from one of its models, picked at random.

    n_importance_samples : int, default=1000
        Number of proposals K per row (and model) for the estimate, after two adaptation
        rounds of ``K // 2`` proposals each (2K decoder evaluations per row in
        all). The Monte Carlo error of the mean shrinks like ``1 / sqrt(K)``;
        memory does not grow with K.

    add_indicator : bool, default=False
        If True, a :class:`~sklearn.impute.MissingIndicator` transform is
        stacked onto the output (for a DataFrame, as boolean columns named
        ``missingindicator_<column>``).

    keep_empty_features : bool, default=False
        Features missing in every row of ``fit`` cannot be modelled. If
        False they are dropped from the output; if True they are kept and
        filled with 0, as in :class:`~sklearn.impute.IterativeImputer`.

    n_jobs : int, default=None
        Number of models fitted in parallel by joblib. ``None`` means 1
        unless in a :obj:`joblib.parallel_backend` context (a Dask cluster,
        for instance); ``-1`` means all processors. The fitted models, and
        so the imputations, do not depend on it.

    random_state : int, RandomState instance or None, default=None
        Seeds the importance sampling in ``transform``, and in ``fit`` the
        models of the ensemble (with ``n_estimators=1``, the default
        estimator). Pass an int for reproducible results.

    verbose : int, default=0
        Progress messages on standard output, as
        :class:`~sklearn.impute.IterativeImputer` prints them. 0 prints
        nothing; 1 a line when ``fit`` starts, one per fitted model (its
        epochs and seconds) and one per ``transform`` (entries filled, rows,
        seconds); 2 also the default VAE's table of epochs (a given
        ``estimator`` keeps its own ``verbose``). With ``n_jobs`` other
        than 1, the models' lines come from the workers that fit them.

    Attributes
    ----------
    estimators_ : list of VAETransformer
        The ``n_estimators`` fitted models, trained on the features observed
        in fit and the rows with at least one observed entry.

    estimator_ : VAETransformer
        The first of ``estimators_`` (the model, when ``n_estimators=1``).

    indicator_ : MissingIndicator or None
        Indicator used to add binary indicators for missing values.

    n_features_in_ : int
        Number of features seen during :meth:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit`, when they are all strings.

    See Also
    --------
    sklearn.impute.IterativeImputer : Round-robin regression imputation.
    sklearn.impute.KNNImputer : Imputation from the nearest neighbours.
    VAETransformer.sample : Conditional sampling with ``given``.

    Notes
    -----
    A row with no observed entry is imputed from the model's marginal (the
    weights are then ``p(z) / q(z)``). Integer columns, modelled as
    dequantised ``x + U(0, 1)``, are conditioned on as ``x + 1/2`` and
    imputed as the floor of the model's value (for the mean, ``rint(E[x +
    U] - 1/2)``), clipped to the column's range in fit: the Gaussian's
    tails reach past it (fitted to a column that is almost always 0, whose
    dequantised values are uniform on [0, 1), some of its mass lies below
    0), which unclipped would give fills such as -1 for pixel intensities.
    A label not seen in fit is treated as missing when conditioning, and
    returned unchanged.

    References
    ----------
    .. [1] P.-A. Mattei and J. Frellsen, "MIWAE: Deep Generative Modelling
       and Imputation of Incomplete Data Sets", ICML 2019.
    .. [2] O. Cappé, A. Guillin, J.-M. Marin and C. P. Robert, "Population
       Monte Carlo", Journal of Computational and Graphical Statistics, 2004.
    .. [3] P.-A. Mattei and J. Frellsen, "Leveraging the Exact Likelihood of
       Deep Latent Variable Models", NeurIPS 2018.
    .. [4] B. Lakshminarayanan, A. Pritzel and C. Blundell, "Simple and
       Scalable Predictive Uncertainty Estimation using Deep Ensembles",
       NeurIPS 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_vae import VAEImputer, VAETransformer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 3)) @ rng.normal(size=(3, 3))
    >>> X[rng.uniform(size=X.shape) < 0.2] = np.nan
    >>> vae = VAETransformer(n_components=2, max_iter=5)
    >>> imputer = VAEImputer(vae, n_estimators=2, random_state=0)
    >>> X_filled = imputer.fit_transform(X)
    >>> X_filled.shape, bool(np.isnan(X_filled).any()), len(imputer.estimators_)
    ((100, 3), False, 2)
    """

    _parameter_constraints: dict = {
        **_BaseImputer._parameter_constraints,
        "estimator": [None, VAETransformer],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "sample_posterior": ["boolean"],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        n_estimators=5,
        missing_values=np.nan,
        sample_posterior=False,
        n_importance_samples=1000,
        add_indicator=False,
        keep_empty_features=False,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        super().__init__(
            missing_values=missing_values,
            add_indicator=add_indicator,
            keep_empty_features=keep_empty_features,
        )
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.sample_posterior = sample_posterior
        self.n_importance_samples = n_importance_samples
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ helpers

    def _validate_input(self, X, reset):
        """``X`` (a DataFrame, or a float64 array with NaN for missing) and its mask."""
        if is_dataframe(X):
            _check_feature_names(self, X, reset=reset)
            _check_n_features(self, X, reset=reset)
            if X.shape[0] < 1 or X.shape[1] < 1:
                raise ValueError(
                    f"Found array with {X.shape[0]} sample(s) and {X.shape[1]} feature(s) "
                    f"(shape={X.shape}) while a minimum of 1 is required by VAEImputer."
                )
            # Null-like strings ("NA", "") are missing to the model: they are filled too.
            mask = missing_entries(X)
            if not is_scalar_nan(self.missing_values) and self.missing_values is not None:
                # Not in place: under pandas copy-on-write, isna().to_numpy() is read-only.
                mask = mask | (X == self.missing_values).to_numpy()
            return X, mask
        allow_nan = is_scalar_nan(self.missing_values)
        X = validate_data(
            self,
            X,
            reset=reset,
            dtype=np.float64,
            copy=True,
            ensure_all_finite="allow-nan" if allow_nan else True,
        )
        mask = _get_mask(X, self.missing_values)
        X[mask] = np.nan
        return X, mask

    def _subset(self, X, mask, rows=slice(None)):
        """The fitted features of ``X`` (and ``rows``), missing entries as NaN."""
        if not is_dataframe(X):
            return X[rows][:, self._valid_mask]
        frame = X.iloc[rows, self._valid_mask]
        if is_scalar_nan(self.missing_values) or self.missing_values is None:
            return frame
        return frame.mask(mask[rows][:, self._valid_mask])

    # ---------------------------------------------------------------- fit

    @_fit_context(
        # The estimator is validated when it is fitted.
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y=None):
        """Fit the VAE on ``X``, missing entries included.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Input data with missing entries.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : VAEImputer
            The fitted imputer.
        """
        # An error or an interrupt leaves the imputer as it was; an interrupt
        # stops every member (fit_raising_interrupts), none keeps a part-trained model.
        with restore_on_error(self):
            X, mask = self._validate_input(X, reset=True)
            estimators = self._make_estimators(X)
            self._valid_mask = ~mask.all(axis=0)
            if not self._valid_mask.any():
                raise ValueError(
                    "Every feature of X is missing in every row: there is nothing to learn from."
                )
            rows = ~mask[:, self._valid_mask].all(axis=1)
            data = self._subset(X, mask, rows)
            if self.verbose:
                print(
                    f"[VAEImputer] fitting {len(estimators)} model(s) on {data.shape[0]} rows "
                    f"and {data.shape[1]} columns, {int(mask.sum())} entries missing",
                    flush=True,
                )
            self.estimators_ = Parallel(n_jobs=self.n_jobs)(
                delayed(_fit_member)(
                    estimator,
                    data,
                    quiet=i > 0,
                    progress=(i, len(estimators)) if self.verbose else None,
                )
                for i, estimator in enumerate(estimators)
            )
            self.estimator_ = self.estimators_[0]
            self._fit_indicator(mask)
        return self

    def _make_estimators(self, X):
        """The unfitted models of the ensemble, each with its own random state."""
        estimator = self._make_estimator(X)
        if self.n_estimators == 1:
            return [estimator]
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_estimators)
        return [clone(estimator).set_params(random_state=int(seed)) for seed in seeds]

    def _make_estimator(self, X):
        """The unfitted VAE: a clone of ``estimator``, or the default for ``X``."""
        if self.estimator is not None:
            return clone(self.estimator)
        return VAETransformer(
            hidden_layer_sizes=MLP_SIZES,
            objective="iwae",
            n_draws=10,
            decoder_variance="homoscedastic",
            early_stopping=False,
            n_iter_no_change=20,
            prior="normal",
            random_state=self.random_state,
            verbose=int(self.verbose >= 2),
        )

    # ---------------------------------------------------------- transform

    def transform(self, X):
        """Fill every missing entry of ``X``; observed entries are unchanged.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Data to complete.

        Returns
        -------
        Xt : ndarray or DataFrame of shape (n_samples, n_features_out)
            ``X`` with its missing entries imputed: a DataFrame with ``X``'s
            columns and dtypes when ``X`` is one, else a float64 array.
            Features missing in every row of fit are dropped (or filled with
            0 if ``keep_empty_features=True``); missing indicators follow
            when ``add_indicator=True``.
        """
        check_is_fitted(self)
        start = time.perf_counter()
        X, mask = self._validate_input(X, reset=False)
        schema = self.estimator_.schema_
        encoded = np.array(schema.encode(self._subset(X, mask), unknown="missing"), dtype=float)
        filled = impute_encoded(
            [estimator._fitted_model() for estimator in self.estimators_],
            encoded,
            schema,
            sample=self.sample_posterior,
            n_samples=self.n_importance_samples,
            random_state=self.random_state,
        )
        if self.verbose:
            print(
                f"[VAEImputer] filled {int(mask[:, self._valid_mask].sum())} entries of {len(X)} "
                f"rows in {time.perf_counter() - start:.1f} s",
                flush=True,
            )
        valid = self._valid_mask
        indicator = self._transform_indicator(mask)
        if is_dataframe(X):
            return self._fill_frame(X, mask, schema.decode(filled), indicator, column_roles(schema))
        out = X.copy()
        out[:, valid] = np.where(mask[:, valid], filled, X[:, valid])
        if self.keep_empty_features:
            out[:, ~valid] = 0.0
        else:
            out = out[:, valid]
        return self._concatenate_indicator(out, indicator)

    def _fill_frame(self, X, mask, decoded, indicator, roles):
        """``X`` with its missing entries set from ``decoded``, dtypes kept.

        A column dropped from the model at fit passes through; one parsed at fit
        (numbers stored as text, dates) comes back parsed, as ``decoded`` has it.
        """
        out = X.copy()
        for position, j in enumerate(np.flatnonzero(self._valid_mask)):
            rows = mask[:, j]
            role = roles.get(decoded.columns[position])
            if role == "parsed":
                out.isetitem(j, decoded.iloc[:, position].set_axis(out.index))
            if role is not None or not rows.any():
                continue
            column = out.iloc[:, j]
            values = decoded.iloc[:, position].to_numpy()[rows]
            if isinstance(column.dtype, pd.CategoricalDtype):
                new = column.copy()
                new[rows] = values
            else:
                new = column.astype(object)
                new[rows] = values
                new = new.astype(column.dtype)
            out.isetitem(j, new)
        empty = np.flatnonzero(~self._valid_mask)
        if self.keep_empty_features:
            for j in empty:
                out.isetitem(j, pd.Series(0.0, index=out.index))
        else:
            out = out.iloc[:, self._valid_mask]
        if self.indicator_ is not None:
            names = self.indicator_.get_feature_names_out(np.asarray(X.columns, dtype=object))
            flags = pd.DataFrame(indicator, index=out.index, columns=names)
            out = pd.concat([out, flags], axis=1)
        return out

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; ``feature_names_in_`` when None, else
            ``x0, x1, ...``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self, "n_features_in_")
        input_features = _check_feature_names_in(self, input_features)
        names = input_features if self.keep_empty_features else input_features[self._valid_mask]
        return self._concatenate_indicator_feature_names_out(names, input_features)

    # The indicator is fitted state: set_params(add_indicator=...) after fit
    # changes the next fit, not transform (the base class reads the parameter).
    def _transform_indicator(self, X):
        return None if self.indicator_ is None else self.indicator_.transform(X)

    def _concatenate_indicator(self, X_imputed, X_indicator):
        return X_imputed if self.indicator_ is None else np.hstack((X_imputed, X_indicator))

    def _concatenate_indicator_feature_names_out(self, names, input_features):
        if self.indicator_ is None:
            return names
        return np.concatenate([names, self.indicator_.get_feature_names_out(input_features)])

    def __setstate__(self, state):
        # An imputer saved before the ensemble held its one model as ``estimator_``.
        if "estimator_" in state and "estimators_" not in state:
            state = {**state, "estimators_": [state["estimator_"]], "n_estimators": 1}
        state.setdefault("n_estimators", 1)
        state.setdefault("n_jobs", None)
        state.setdefault("verbose", 0)
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags
