"""DensityOutlierDetector: novelty and outlier detection by any density estimator."""

import math
from functools import partial
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context, clone
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.utils import _safe_indexing, get_tags, indexable
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import _num_samples, check_is_fitted

from ._column_kinds import quiet_recognition
from ._data import is_integer_array
from ._histogram import HistogramDensity
from ._random import draw_seed
from ._training import fit_raising_interrupts, restore_on_error
from ._vae import VAETransformer

__all__ = ["DensityOutlierDetector"]


def _final_step(estimator):
    return estimator[-1] if isinstance(estimator, Pipeline) else estimator


def _describe(estimator):
    return type(_final_step(estimator)).__name__


#: The level of ``contamination="auto"``: about 1 in 100 normal rows is flagged.
AUTO_CONTAMINATION = 0.01

#: Training rows scored by the estimator and by each fold model to align their levels.
MAX_SHARED_ROWS = 1000


def rows_needed(contamination):
    """Held-out rows enough to place the ``contamination`` quantile within a tenth of its level.

    The share of new rows below the q-quantile of m held-out scores varies by
    about sqrt(q (1 - q) / m) (binomial); m >= 100 (1 - q) / q keeps that
    within q / 10.
    """
    return math.ceil(100.0 * (1.0 - contamination) / contamination)


def calibration_folds(n_samples, n_splits, n_rows, seed):
    """The (train, test) rows of the folds fitted for the threshold.

    The rows are shuffled into ``n_splits`` folds (``n_splits <= n_samples``);
    the first folds are used, until their test rows number ``n_rows`` or
    more, or all of them.
    """
    folds = KFold(n_splits, shuffle=True, random_state=seed)
    held_out = 0
    for train, test in folds.split(np.zeros((n_samples, 1))):
        if held_out >= n_rows:
            return
        yield train, test
        held_out += len(test)


def shared_rows(n_samples, seed):
    """The training rows that align the fold models with the estimator, a seeded sample if many."""
    if n_samples <= MAX_SHARED_ROWS:
        return np.arange(n_samples)
    # Not the folds' generator (KFold shuffles with a RandomState): the sample
    # must not fall into the first fold's held-out rows.
    rows = np.random.default_rng(seed).choice(n_samples, MAX_SHARED_ROWS, replace=False)
    return np.sort(rows)


def level_shift(scores, fold_scores):
    """The median of ``scores - fold_scores`` where both are finite (0 where none is)."""
    differences = scores - fold_scores
    differences = differences[np.isfinite(differences)]
    return float(np.median(differences)) if len(differences) else 0.0


def scores_where_defined(score, X, rows):
    """``score`` of the rows ``rows`` of ``X``, -inf for each row it raises a ValueError on.

    A model fitted without some rows may be unable to score one of them (an
    estimator that refuses a label it never saw): that row has no density
    under it. The rows are halved until each failing one is alone. Returns
    the scores, the number of rows that failed and the first error (or None).
    """
    try:
        return np.asarray(score(_safe_indexing(X, rows)), dtype=np.float64), 0, None
    except ValueError as error:
        if len(rows) == 1:
            return np.array([-np.inf]), 1, error
    middle = len(rows) // 2
    first, n_first, error_first = scores_where_defined(score, X, rows[:middle])
    second, n_second, error_second = scores_where_defined(score, X, rows[middle:])
    error = error_first if error_first is not None else error_second
    return np.concatenate([first, second]), n_first + n_second, error


def quantile(scores, level):
    """The ``level`` quantile of ``scores``, interpolated as ``np.percentile`` does.

    Between an infinite score (a row without density) and a finite one,
    where interpolation is undefined, the finite one. Where more than
    ``level`` of the rows have no density, the lowest finite score: those
    rows fall below it, and the threshold stays a finite number.
    """
    with np.errstate(invalid="ignore"):
        value = np.percentile(scores, 100.0 * level)
    if np.isnan(value):
        neighbours = [np.percentile(scores, 100.0 * level, method=m) for m in ("lower", "higher")]
        value = neighbours[0] if np.isfinite(neighbours[0]) else neighbours[1]
    if value == -np.inf:
        finite = scores[np.isfinite(scores)]
        value = finite.min() if len(finite) else value
    return float(value)


def _fold_estimator(estimator, fitted):
    """The unfitted model of the folds: a VAE's ``"auto"`` network and latent size are
    those ``fitted`` chose."""
    if not isinstance(estimator, VAETransformer):
        return estimator
    chosen = {
        name: value
        for name, value in [
            ("hidden_layer_sizes", fitted.hidden_layer_sizes_),
            ("n_components", fitted.n_components_),
        ]
        if isinstance(getattr(estimator, name), str)  # "auto"
    }
    return clone(estimator).set_params(**chosen) if chosen else estimator


class DensityOutlierDetector(OutlierMixin, BaseEstimator):
    """Novelty and outlier detection by the log-density of a density estimator.

    Fits a clone of ``estimator`` (any density estimator with
    ``score_samples``: :class:`VAETransformer`, ``KernelDensity``,
    ``GaussianMixture``, :class:`HistogramDensity`, or a ``Pipeline`` ending
    in one) to the training data and flags as outliers the rows it gives a
    low log-density: ``score_samples`` is the log-density (minus a
    background model's, see ``background``), higher is more normal; ``decision_function`` is
    ``score_samples - offset_``, negative for outliers; ``predict`` returns
    -1 for outliers and +1 for inliers. ``offset_`` is the ``contamination``
    quantile of scores of rows held out of fit (cross-fitting, see ``cv``),
    so about that fraction of new rows like the training ones is predicted
    -1. The API is that of ``IsolationForest`` and
    ``LocalOutlierFactor(novelty=True)``.

    Read more in the :doc:`User Guide </inference>`.

    Parameters
    ----------
    estimator : estimator object, default=None
        The density estimator, cloned in :meth:`fit`. None means a
        :class:`VAETransformer` (``random_state=random_state``) scored against
        a histogram ``background`` (see ``background="auto"``), the
        configuration that detects novel digits best in the novelty
        benchmark. Its other parameters are the defaults: each column of
        integers (counts, pixel intensities, also as floats) is a
        categorical over its levels (up to 10) or a dequantised Gaussian.

    contamination : "auto" or float, default=0.1
        The share of rows flagged. ``offset_`` is this quantile of
        out-of-fold scores, so about this share of new rows drawn as the
        training rows were is predicted -1 (and of the training rows, by
        :meth:`fit_predict`). ``IsolationForest`` takes the quantile of its
        training scores instead; a density model scores the rows it was
        fitted on higher than new ones, so that threshold would flag more
        new normal rows than asked, the more so the more the model overfits.

        - If "auto", 0.01: about 1 in 100 normal rows is flagged, whatever
          the share of outliers in the training data (a row is flagged when
          fewer than 1% of held-out rows score lower, a test at the 1%
          level). ``IsolationForest``'s "auto" is a fixed offset on its
          normalised score; a log-density has no such scale (it moves with
          the units and the number of features), so the threshold is a
          level of the held-out scores, one low enough to flag only rare
          rows and high enough for the scores of a few hundred held-out
          rows to estimate.
        - If a float, in (0, 0.5].

    cv : int, default=5
        Number of folds the training rows are shuffled into (seeded by
        ``random_state``; at most one per row) to score rows the model was
        not fitted on: for each fold, clones of the estimator (and of the
        background) are fitted on the other rows and score the fold's rows,
        moved by the median difference between the estimator's scores and
        theirs on rows both were fitted on (a VAE's level varies from fit to
        fit). The estimator itself is fitted on every row. Only as many
        folds are fitted as give ``100 * (1 - contamination) / contamination``
        held-out rows (then the share flagged is within a tenth of
        ``contamination``, one standard deviation), or all of them: on large
        data one extra fit on ``(cv - 1) / cv`` of the rows.
        :meth:`fit_predict` fits every fold. The clones of a
        :class:`VAETransformer` with ``hidden_layer_sizes="auto"`` fit the
        network the estimator chose (``hidden_layer_sizes_``).

    method : {"auto", "score_samples", "log_likelihood"}, default="auto"
        The log-density estimate. ``"score_samples"`` calls the estimator's
        ``score_samples`` (the ELBO for a :class:`VAETransformer`);
        ``"log_likelihood"`` its importance-weighted estimate
        ``log_likelihood(X, n_importance_samples=..., random_state=...)``,
        for estimators that have one (through the last step of a
        ``Pipeline``, on the output of the others); ``"auto"`` uses
        ``log_likelihood`` where the estimator has one and ``score_samples``
        otherwise. The IWAE estimate is tighter than the ELBO and ranks
        novelties slightly better (:doc:`/inference`);
        it is computed in batches, so it is deterministic for a fitted
        detector but a row's score varies at the 1e-3 level with the batch
        it is scored in; use ``"score_samples"`` where scores must not
        depend on the other rows.

    background : estimator object, "auto" or None, default="auto"
        A second density estimator, cloned and fitted on the same data, whose
        ``score_samples`` is subtracted from the estimator's log-density:
        the score is the log-likelihood ratio
        ``log p(x) - log p_background(x)``. Deep generative models give
        simple inputs (a "1" with few active pixels) a high likelihood
        whatever their class (Nalisnick et al. 2019); a model of independent
        features measures that input complexity, and the ratio keeps what
        the deep model knows beyond it (the complexity correction of Serrà
        et al. 2020, the likelihood ratio of Ren et al. 2019). ``"auto"``
        means ``HistogramDensity(bins="integer")`` (in the units of the
        dequantised VAE) for the default ``estimator=None`` on an
        integer-valued numeric array, and no background otherwise: on
        real-valued features (breast cancer) the histogram ratio lowered the
        AUC in the benchmark. None means no background.

    n_importance_samples : int, default=100
        Importance samples per row when the log-likelihood is used.

    random_state : int, RandomState instance or None, default=None
        Seeds the default estimator and, drawn once in :meth:`fit`, the
        folds of ``cv`` and the importance samples of ``log_likelihood``, so
        the scores of a fitted detector are deterministic.

    Attributes
    ----------
    estimator_ : estimator object
        The fitted clone of ``estimator`` (or of the default).

    background_ : estimator object or None
        The fitted clone of the background, or None.

    offset_ : float
        The ``contamination`` quantile of the out-of-fold scores:
        ``decision_function = score_samples - offset_``.

    n_features_in_ : int
        Number of features seen during :meth:`fit`, from ``estimator_``.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit`, from ``estimator_``.
        Defined only when `X` has feature names that are all strings.

    See Also
    --------
    sklearn.ensemble.IsolationForest : Outlier detection by random isolation.
    sklearn.neighbors.LocalOutlierFactor : Local density ratios;
        ``novelty=True`` for new data.
    sklearn.svm.OneClassSVM : Support of the data by a kernel method.

    Notes
    -----
    The fold models are fitted on fewer rows than the estimator, so a model
    that overfits scores held-out rows lower under them than under the
    estimator: the share of new normal rows flagged then falls slightly below
    ``contamination``, the less so the more folds (and the more rows).
    :meth:`predict` on the training rows scores them with the model fitted on
    them, and flags fewer than ``contamination`` of them where it overfits;
    :meth:`fit_predict` scores each by a model fitted without it. An interrupt (Ctrl-C) while
    a fold model trains is raised and leaves the detector as it was; one
    while the estimator trains keeps its last epoch, as
    :class:`VAETransformer` does, and the folds are fitted as usual.

    Missing values are accepted where the estimator (and the background)
    accept them; a :class:`VAETransformer` marginalises them exactly, so a
    row with missing entries is scored by the density of its observed part.
    Such scores are in the units of fewer features: a row with missing
    entries tends to score higher than the same row complete. A label not
    seen in fit, or an integer beyond a column's levels, gets the
    Good–Turing mass of its column under a :class:`VAETransformer` or
    :class:`HistogramDensity` (:doc:`/tables`), which lowers the row's
    score by about ``log n`` nats or more for ``n`` training rows.

    References
    ----------
    .. [1] E. Nalisnick, A. Matsukawa, Y. W. Teh, D. Gorur and
       B. Lakshminarayanan, "Do Deep Generative Models Know What They Don't
       Know?", ICLR 2019.
    .. [2] J. Ren, P. J. Liu, E. Fertig, J. Snoek, R. Poplin, M. A. DePristo,
       J. V. Dillon and B. Lakshminarayanan, "Likelihood Ratios for
       Out-of-Distribution Detection", NeurIPS 2019.
    .. [3] J. Serrà, D. Álvarez, V. Gómez, O. Slizovskaia, J. F. Núñez and
       J. Luque, "Input Complexity and Out-of-Distribution Detection with
       Likelihood-based Generative Models", ICLR 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.mixture import GaussianMixture
    >>> from sklearn_vae import DensityOutlierDetector
    >>> X = np.random.RandomState(0).normal(size=(100, 3))
    >>> detector = DensityOutlierDetector(GaussianMixture(random_state=0)).fit(X)
    >>> detector.predict(X[:4]).shape
    (4,)
    >>> detector.decision_function(X[:4]).shape
    (4,)

    A VAE against an integer histogram, as the default fits on integers,
    on digits pixels (a short fit for the example):

    >>> from sklearn.datasets import load_digits
    >>> from sklearn_vae import HistogramDensity, VAETransformer
    >>> X = load_digits().data
    >>> detector = DensityOutlierDetector(
    ...     VAETransformer(likelihood="gaussian", dequantize=True, max_iter=2, random_state=0),
    ...     background=HistogramDensity(bins="integer"),
    ...     random_state=0,
    ... ).fit(X[:200])
    >>> detector.predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "score_samples"]), None],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "method": [StrOptions({"auto", "score_samples", "log_likelihood"})],
        "background": [HasMethods(["fit", "score_samples"]), StrOptions({"auto"}), None],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        contamination=0.1,
        cv=5,
        method="auto",
        background="auto",
        n_importance_samples=100,
        random_state=None,
    ):
        self.estimator = estimator
        self.contamination = contamination
        self.cv = cv
        self.method = method
        self.background = background
        self.n_importance_samples = n_importance_samples
        self.random_state = random_state

    def _make_estimators(self, X):
        """Unfitted clones of the estimator and of the background (or None)."""
        integer = is_integer_array(X)
        if self.estimator is None:
            estimator = VAETransformer(random_state=self.random_state)
        else:
            estimator = clone(self.estimator)
        background = self.background
        if isinstance(background, str):
            default = self.estimator is None and integer
            background = HistogramDensity(bins="integer") if default else None
        has_log_likelihood = hasattr(_final_step(estimator), "log_likelihood")
        if self.method == "auto":
            self._method = "log_likelihood" if has_log_likelihood else "score_samples"
        else:
            self._method = self.method
        if self.method == "log_likelihood" and not has_log_likelihood:
            raise ValueError(
                f"method='log_likelihood' needs an estimator with a log_likelihood method; "
                f"{_describe(estimator)} has none. Use method='score_samples'."
            )
        return estimator, None if background is None else clone(background)

    @_fit_context(
        # The wrapped estimators validate their own parameters.
        prefer_skip_nested_validation=False
    )
    def fit(self, X, y=None):
        """Fit the density estimator(s) on ``X`` and set ``offset_`` from held-out scores.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Training data, passed as they are to the estimator's ``fit``
            (a DataFrame with missing values where the estimator takes one).

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : DensityOutlierDetector
            The fitted detector.
        """
        self._fit(X, every_fold=False)
        return self

    @_fit_context(
        # The wrapped estimators validate their own parameters.
        prefer_skip_nested_validation=False
    )
    def fit_predict(self, X, y=None):
        """Fit on ``X`` and flag each of its rows by its out-of-fold score.

        Every one of the ``cv`` folds is fitted, so that each row is scored
        by a model fitted without it: about ``contamination`` of the rows
        are flagged, as ``predict`` flags that share of new rows. ``predict``
        on the training rows themselves flags fewer, since the model scores
        the rows it was fitted on higher.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Training data.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        is_inlier : ndarray of shape (n_samples,)
            -1 where the row's out-of-fold score is below ``offset_``, +1
            elsewhere.
        """
        scores = self._fit(X, every_fold=True)
        return np.where(scores < self.offset_, -1, 1)

    def _fit(self, X, every_fold):
        """Fit on every row and set ``offset_``; the out-of-fold scores, NaN where not held out."""
        # An error, or an interrupt before the VAE completed an epoch, leaves the
        # detector as it was; an interrupt after one keeps that epoch, as the VAE does.
        with restore_on_error(self):
            estimator, background = self._make_estimators(X)
            self.estimator_ = estimator.fit(X)
            # The estimator warned of the columns recognised in X; its clones do not.
            with quiet_recognition():
                self.background_ = None if background is None else background.fit(X)
            self._seed = draw_seed(self.random_state)
            # Scores must stay those offset_ is a quantile of, whatever set_params changes.
            self._n_importance_samples = self.n_importance_samples
            for name in ("n_features_in_", "feature_names_in_"):
                if hasattr(self.estimator_, name):
                    setattr(self, name, getattr(self.estimator_, name))
                elif hasattr(self, name):
                    delattr(self, name)
            contamination = self.contamination
            if contamination == "auto":
                contamination = AUTO_CONTAMINATION
            folds = _fold_estimator(estimator, self.estimator_)
            scores, held_out = self._out_of_fold_scores(
                X, folds, background, contamination, every_fold
            )
            self.offset_ = quantile(scores[held_out], contamination)
        return scores

    def _out_of_fold_scores(self, X, estimator, background, contamination, every_fold):
        """Each held-out row's score under clones fitted on the other folds, and which rows.

        A fold model's scores are moved by the median difference between the
        estimator's and its own scores of rows both were fitted on (at most
        ``MAX_SHARED_ROWS`` of them), so that they stand for the estimator's
        scores of rows it was not fitted on: fits of a VAE differ in level from
        run to run (where early stopping ends them) by more than the threshold
        may. An interrupt in a fold's fit is raised (no fold model keeps part
        of its training); a held-out row that its fold model cannot score (a
        ValueError) scores -inf, unless no held-out row has a finite score.
        """
        n_samples = _num_samples(X)
        if n_samples < 2:
            raise ValueError(
                f"n_samples = {n_samples}: DensityOutlierDetector needs at least 2 samples, "
                "since its threshold comes from rows held out of fit."
            )
        n_splits = min(self.cv, n_samples)
        X = indexable(X)[0]  # an array-like without rows to index becomes an array
        n_rows = n_samples if every_fold else rows_needed(contamination)
        shared = shared_rows(n_samples, self._seed)
        shared_scores = self._score(_safe_indexing(X, shared))
        scores = np.full(n_samples, np.nan)
        held_out = np.zeros(n_samples, dtype=bool)
        first_error = None
        for fold, (train, test) in enumerate(
            calibration_folds(n_samples, n_splits, n_rows, self._seed), start=1
        ):
            X_train = _safe_indexing(X, train)
            models = []
            for model in (estimator, background):
                if model is None:
                    models.append(None)
                    continue
                try:
                    with quiet_recognition():
                        models.append(fit_raising_interrupts(clone(model), X_train))
                except ValueError as error:
                    raise ValueError(
                        f"{_describe(model)} failed on calibration fold {fold} of {n_splits} "
                        f"({len(train)} of the {n_samples} rows; the threshold comes from the "
                        f"rows each fold holds out): {error}"
                    ) from error
            score = partial(self._score_with, *models)
            scores[test], _, error = scores_where_defined(score, X, test)
            in_fit = np.isin(shared, train)
            fold_scores = score(_safe_indexing(X, shared[in_fit]))
            scores[test] += level_shift(shared_scores[in_fit], fold_scores)
            held_out[test] = True
            first_error = first_error if first_error is not None else error
        if not np.isfinite(scores[held_out]).any():
            # Every row failed, or has no density (labels its fold model gives no mass).
            reason = first_error or (
                "each has log-density -inf under it (for example a label not seen in fit, in "
                "a column without a label seen once)"
            )
            raise ValueError(
                f"None of the {np.count_nonzero(held_out)} rows held out to set the threshold "
                f"could be scored by the {_describe(estimator)} fitted on the other rows: "
                f"{reason}"
            ) from first_error
        return scores, held_out

    def _score(self, X):
        return self._score_with(self.estimator_, self.background_, X)

    def _score_with(self, estimator, background, X):
        """The score of ``X``: ``estimator``'s log-density, less ``background``'s if any."""
        if self._method == "log_likelihood":
            density = estimator
            if isinstance(density, Pipeline):
                X_last = density[:-1].transform(X) if len(density) > 1 else X
                density = density[-1]
            else:
                X_last = X
            # Detectors saved before it was kept use the parameter.
            n_samples = getattr(self, "_n_importance_samples", self.n_importance_samples)
            scores = density.log_likelihood(
                X_last, n_importance_samples=n_samples, random_state=self._seed
            )
        else:
            scores = estimator.score_samples(X)
        scores = np.asarray(scores, dtype=np.float64)
        if background is not None:
            # A row of no density (a label not seen in fit) stays -inf, not -inf - -inf.
            with np.errstate(invalid="ignore"):
                ratio = scores - background.score_samples(X)
            scores = np.where(scores == -np.inf, -np.inf, ratio)
        return scores

    def score_samples(self, X):
        """Log-density of each row under the fitted estimator (higher is more normal).

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            The estimator's ``score_samples`` (or ``log_likelihood`` with
            ``method="log_likelihood"``), minus the background's
            ``score_samples`` when there is a background; deterministic for a
            fitted detector.
        """
        check_is_fitted(self)
        return self._score(X)

    def decision_function(self, X):
        """Shifted score: ``score_samples(X) - offset_``, negative for outliers.

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Rows to score.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            Positive for inliers, negative for outliers.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Predict whether each row is an inlier (+1) or an outlier (-1).

        Parameters
        ----------
        X : {array-like, DataFrame} of shape (n_samples, n_features)
            Rows to classify.

        Returns
        -------
        is_inlier : ndarray of shape (n_samples,)
            -1 where ``decision_function(X) < 0``, +1 elsewhere.
        """
        decision = self.decision_function(X)
        is_inlier = np.ones_like(decision, dtype=int)
        is_inlier[decision < 0] = -1
        return is_inlier

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        estimator = VAETransformer() if self.estimator is None else self.estimator
        allow_nan = get_tags(estimator).input_tags.allow_nan
        if self.background is not None and not isinstance(self.background, str):
            allow_nan = allow_nan and get_tags(self.background).input_tags.allow_nan
        tags.input_tags.allow_nan = allow_nan
        return tags
