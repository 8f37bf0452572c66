"""HistogramDensity: a product of per-feature histograms as a density estimator."""

import warnings
from dataclasses import replace
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._checks import check_integer_valued, short_repr
from ._data import first_non_integer
from ._persistence import check_array, restore_state, saved_state
from ._schema import validate_table
from ._training import restore_on_error
from ._unseen import encode_scored

__all__ = ["HistogramDensity"]

# The rules of ``numpy.histogram_bin_edges``, plus unit-width bins on the integers.
_NUMPY_BIN_RULES = {"auto", "fd", "doane", "scott", "stone", "rice", "sturges", "sqrt"}
_LOG2 = np.log(2.0)
# An integer column with at most this many levels gets one unit-width bin per level.
MAX_UNIT_BINS = 32
# Beyond this magnitude float64 does not hold consecutive integers: no unit-width bins.
_MAX_EXACT_INTEGER = 2.0**53


def _power_of_two_divisor(x):
    """The power of two ``d`` with ``1 <= max |x| / d < 2`` (1 for zeros or no values).

    Bins are fitted on ``x / d``: the division is exact, so the edges are
    ``d`` times those of ``x`` to the last bit, and neither a range nor a
    bin width overflows, whatever the magnitude.
    """
    largest = np.max(np.abs(x)) if len(x) else 0.0
    if largest == 0:
        return 1.0
    return float(np.ldexp(1.0, np.frexp(largest)[1] - 1))


class HistogramDensity(DensityMixin, BaseEstimator):
    """Product of independent per-feature histograms, as a density estimator.

    Each feature gets its own histogram, smoothed by ``alpha`` pseudo-counts
    per bin and extended beyond the fitted range by geometrically decaying
    tails, so that every per-feature density is positive (for ``alpha > 0``)
    and integrates to 1 over the whole real line. The joint density is the
    product of the per-feature densities: features are modelled as
    independent. It is the simple baseline against which richer density
    models (mixtures, kernel densities, VAEs) can be compared in nats.

    It takes a pandas DataFrame as it comes, as :class:`VAETransformer`
    does: a label column (strings, ``category``, ``object``, booleans) gets a
    table of category frequencies smoothed by ``alpha``, an integer column
    histogram bins with integer edges (one per level for up to 32 levels),
    so its scores are log-probabilities of the integers, and a float column
    the histogram chosen by ``bins``. A column with one distinct training
    value is a point mass: its value scores 0 nats, any other ``-inf``.
    Missing entries (NaN, None, ``pd.NA``) are skipped: each column is
    fitted on its observed entries, and a row's score is the sum over its
    observed columns, in the same units as :class:`VAETransformer`'s scores
    of the same table.

    Parameters
    ----------
    bins : int, str, default="auto"
        How each feature's bin edges are chosen from the training data.

        - int: that many equal-width bins spanning the feature's range.
        - ``"auto"``, ``"fd"``, ``"doane"``, ``"scott"``, ``"stone"``,
          ``"rice"``, ``"sturges"``, ``"sqrt"``: the rule of the same name in
          :func:`numpy.histogram_bin_edges`, applied to each feature.
        - ``"integer"``: for integer-valued data, one unit-width bin
          ``[k, k + 1)`` for every integer ``k`` from the feature's minimum to
          its maximum. The density of the bin of ``k`` then equals the model's
          probability of the integer ``k``; see Notes. Fitting raises a
          ValueError if ``X`` is not integer-valued.

        The default, ``"auto"``, is numpy's recommended rule: the smaller bin
        width of the Freedman-Diaconis and Sturges rules, which adapts the
        number of bins to both the sample size and the spread of each feature
        without any tuning; a float column whose training values are all
        integers gets integer bins under it, as an integer column does (the
        density of ``x + U(0, 1)``, in :class:`VAETransformer`'s units).

    alpha : float, default=1.0
        Additive (Laplace/Lidstone) smoothing: a pseudo-count added to every
        bin and to each of the two tails. With ``alpha > 0`` empty bins and
        points outside the fitted range get a finite log-density; with
        ``alpha=0`` the histogram is the maximum-likelihood one, and both get
        ``-inf``.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during :meth:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :meth:`fit`. Defined only when `X`
        has feature names that are all strings.

    schema_ : TableSchema
        The columns seen in fit, their kinds, dtypes and categories.

    bin_edges_ : list of ndarray or None
        For each feature, the increasing edges of its ``n_bins_[j]`` bins, an
        array of shape ``(n_bins_[j] + 1,)``; None for a label column, whose
        ``n_bins_[j]`` "bins" are its categories.

    n_bins_ : ndarray of shape (`n_features_in_`,)
        Number of bins of each feature within its fitted range.

    bin_counts_ : list of ndarray
        For each feature, the number of training samples in each bin.

    log_density_ : list of ndarray
        For each feature, the log-density (nats, per unit of the feature) of
        each bin, shape ``(n_bins_[j],)``. ``-inf`` for empty bins when
        ``alpha=0``.

    tail_log_mass_ : ndarray of shape (`n_features_in_`, 2)
        Log-probability of the region below the first edge (column 0) and
        above the last edge (column 1) of each feature; ``-inf`` when
        ``alpha=0``.

    See Also
    --------
    sklearn.neighbors.KernelDensity : Kernel density estimator.
    sklearn.mixture.GaussianMixture : Mixture density with ``score_samples``.
    sklearn_vae.dequantize : Add uniform noise to integer data, so that
        continuous densities can be compared with discrete probabilities.

    Notes
    -----
    **Bins.** Feature ``j`` is fitted on ``n`` samples with ``K`` bins of
    widths ``w_k`` and counts ``c_k``. Bins are ``[e_k, e_{k+1})``, the last
    one closed, as in :func:`numpy.histogram`; with ``bins="integer"`` the
    last one is half-open too, ``[max, max + 1)``. With
    ``N = n + alpha * (K + 2)``, bin ``k`` has probability
    ``(c_k + alpha) / N`` and constant density ``(c_k + alpha) / (N w_k)``.
    The number of bins is not capped: the rules based on the interquartile
    range (``"auto"``, ``"fd"``) give very many bins for a feature with
    extreme outliers, as does ``"integer"`` for a feature with a huge range;
    pass an int there. A float feature is binned in units of the power of two
    nearest its largest magnitude, an exact rescaling: no range or width
    overflows or underflows, from subnormals to 1e308, and scores of ``s *
    X`` are those of ``X`` minus ``log s`` per feature. Integer bins need
    ``|x| <= 2**53 - 2``, so that float64 holds their edges up to ``x + 2``.

    **Tails.** Each tail carries probability ``alpha / N``, one bin's worth
    of pseudo-counts. It is spread over an unbounded sequence of bins as wide
    as the adjacent outermost bin, ``[e_0 - (i + 1) w_0, e_0 - i w_0)`` below
    and ``[e_K + i w_{K-1}, e_K + (i + 1) w_{K-1})`` above, for
    ``i = 0, 1, ...``, the ``i``-th receiving ``(alpha / N) / 2**(i + 1)``.
    The log-density thus falls by ``log 2`` per bin width away from the
    fitted range: it is finite everywhere, never above that of an empty bin
    inside the range, and the per-feature density integrates to exactly 1.
    The model remains a piecewise-constant histogram (with infinitely many
    bins), so the relation below holds outside the fitted range too.

    **Integer data.** With ``bins="integer"``, bin ``[k, k + 1)`` has unit
    width, so its density equals its probability: for integer-valued ``x``,
    ``score_samples`` is the log-probability ``log P(x)`` of a discrete
    model on the integers, and for any ``u`` in ``[0, 1)`` the same value is
    the log-density at ``x + u``. The scores are therefore directly
    comparable with those of continuous densities evaluated on dequantised
    data ``X + U(0, 1)`` (see :func:`sklearn_vae.dequantize`). The
    probabilities of all integer points sum to 1.

    **Scores.** :meth:`score_samples` is in nats; :meth:`score` is the mean
    over samples, like ``GaussianMixture.score`` (``KernelDensity.score`` is
    a sum).

    **Labels not seen in fit.** A label column whose training entries hold
    ``n1`` labels seen once among ``n`` gives probability
    ``m = max(n1, 1) / (n + 1)`` to "a label not seen in fit" (Good's
    estimate, at least one label counted as seen once) and ``(1 - m) p_k`` to
    a seen label ``k`` of frequency ``p_k``; a constant integer column gives
    the other integers ``m`` in geometric tails. :meth:`sample` draws seen
    values only. See :doc:`/tables`.

    **Sampling.** :meth:`sample` draws, independently per feature, a bin
    (or tail bin) with its probability, then a point uniformly within it. With
    ``bins="integer"`` it returns the bin's integer level instead, a draw of
    the discrete model; add ``U(0, 1)`` noise for a draw of the density. As
    in :class:`VAETransformer`, a draw of an integer column is clipped to the
    column's training range (so the tails' mass lands on its smallest and
    largest levels, and no value wraps around the dtype), and a draw of a
    float column to its dtype's finite range.

    References
    ----------
    .. [1] D. Freedman and P. Diaconis, "On the histogram as a density
       estimator: L2 theory", Z. Wahrscheinlichkeitstheorie verw. Gebiete 57,
       1981.
    .. [2] L. Theis, A. van den Oord and M. Bethge, "A note on the evaluation
       of generative models", ICLR 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_vae import HistogramDensity
    >>> X = np.random.RandomState(0).normal(size=(100, 3))
    >>> hist = HistogramDensity().fit(X)
    >>> hist.score_samples(X[:5]).shape
    (5,)
    >>> hist.sample(4, random_state=0).shape
    (4, 3)
    >>> counts = np.random.RandomState(0).poisson(3.0, size=(100, 2))
    >>> HistogramDensity(bins="integer").fit(counts).sample(4, random_state=0).shape
    (4, 2)
    """

    _parameter_constraints: dict = {
        "bins": [
            Interval(Integral, 1, None, closed="left"),
            StrOptions(_NUMPY_BIN_RULES | {"integer"}),
        ],
        "alpha": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, bins="auto", *, alpha=1.0):
        self.bins = bins
        self.alpha = alpha

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit one smoothed histogram per feature.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; integer-valued when ``bins="integer"``.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : HistogramDensity
            The fitted estimator.
        """
        with restore_on_error(self):
            return self._fit(X)

    def _fit(self, X):
        X = validate_table(self, X, reset=True)
        X = np.asarray(X, dtype=np.float64)
        # What fit consumed: set_params(bins=...) after fit changes no method.
        self._fitted_bins = self.bins
        if self.bins != "auto":
            # Only "auto" bins float columns of integers as integers (dequantised).
            self.schema_.columns_ = [
                replace(c, dequantize=False) if c.kind == "float" else c
                for c in self.schema_.columns_
            ]
        columns = self.schema_.columns_
        self._integer_bins = np.array(
            [c.categories is None and (self.bins == "integer" or c.dequantize) for c in columns]
        )
        # A constant column is a point mass: probability 1 on its value.
        self._point_values = np.array([np.nan if c.value is None else c.value for c in columns])
        if self.bins == "integer":
            _check_integer_valued(X)
        else:
            self._warn_if_lattice(X)

        n_features = X.shape[1]
        alpha = float(self.alpha)
        self.bin_edges_ = []
        self.bin_counts_ = []
        self.log_density_ = []
        self.n_bins_ = np.empty(n_features, dtype=np.intp)
        self.tail_log_mass_ = np.empty((n_features, 2))
        # Per column, the power of two the bins are computed in units of (1 for integers).
        self._divisor = np.ones(n_features)
        self._scaled_edges = [None] * n_features
        for j, column in enumerate(self.schema_.columns_):
            x = X[:, j]
            x = x[~np.isnan(x)]
            if column.categories is not None:
                self._fit_frequencies(x, len(column.categories), alpha)
                continue
            integer_bins = self._integer_bins[j]
            if integer_bins:
                _check_unit_bins(x, column.name)
            else:
                self._divisor[j] = _power_of_two_divisor(x)
            x = x / self._divisor[j]
            edges = self._fit_edges(x, integer_bins)
            n_bins = len(edges) - 1
            index = self._bin_index(edges, x, integer_bins)
            counts = np.bincount(index, minlength=n_bins)
            total = len(x) + alpha * (n_bins + 2)
            log_width = np.log(np.diff(edges)) + np.log(self._divisor[j])
            with np.errstate(divide="ignore"):
                log_density = np.log(counts + alpha) - np.log(total) - log_width
                tail_log_mass = np.log(alpha) - np.log(total)
            # Scoring and sampling use the edges in units of the divisor: in the
            # units of X (finite: they lie within the data's range) subnormal
            # edges would round together.
            self._scaled_edges[j] = edges
            self.bin_edges_.append(edges * self._divisor[j])
            self.bin_counts_.append(counts)
            self.log_density_.append(log_density)
            self.n_bins_[j] = n_bins
            self.tail_log_mass_[j] = tail_log_mass
        return self

    def _warn_if_lattice(self, X):
        """Warn when every column binned by ``bins`` holds integers only.

        Bins narrower than the integers' spacing put the mass on the integers,
        so the density grows with the number of bins and is not comparable
        with a discrete model's log-probabilities.
        """
        binned = [
            c.name
            for j, c in enumerate(self.schema_.columns_)
            if c.categories is None and not self._integer_bins[j] and c.value is None
        ]
        if binned and first_non_integer(X) is None:
            warnings.warn(
                f"X is integer-valued, but bins={self.bins!r} fits a continuous density to "
                "the raw integers: measured on a lattice, its scores are not comparable with "
                "other models' and grow as the bins narrow. Set bins='integer' for "
                "log-probabilities of the integers, or fit on dequantize(X).",
                UserWarning,
                stacklevel=5,
            )

    def _fit_frequencies(self, codes, n_categories, alpha):
        """A label column: smoothed category frequencies, no bins and no tails."""
        j = len(self.bin_edges_)
        counts = np.bincount(codes.astype(np.intp), minlength=n_categories)
        with np.errstate(divide="ignore"):
            log_probability = np.log(counts + alpha) - np.log(len(codes) + alpha * n_categories)
        self.bin_edges_.append(None)
        self.bin_counts_.append(counts)
        self.log_density_.append(log_probability)
        self.n_bins_[j] = n_categories
        self.tail_log_mass_[j] = -np.inf

    def _fit_edges(self, x, integer_bins):
        if self.bins == "integer" or (integer_bins and np.ptp(x) < MAX_UNIT_BINS):
            return np.arange(x.min(), x.max() + 2.0)
        edges = np.histogram_bin_edges(x, bins=self.bins)
        if integer_bins:
            # Integer edges: each integer of a bin gets an equal share of its mass,
            # so the density at x + u is the probability of the integer x.
            low, high = x.min(), x.max()
            inner = np.floor(edges[1:-1])
            inner = inner[(inner > low) & (inner <= high)]
            edges = np.unique(np.concatenate([[low], inner, [high + 1.0]]))
        return edges

    def _bin_index(self, edges, x, integer_bins):
        """Bin of each value: -1 below the first edge, ``n_bins`` above the last."""
        n_bins = len(edges) - 1
        index = np.searchsorted(edges, x, side="right") - 1
        if not integer_bins:
            # numpy's last bin is closed: the maximum belongs to it.
            index[x == edges[-1]] = n_bins - 1
        return index

    def _feature_log_density(self, j, x):
        if not np.isnan(self._point_values[j]):
            return np.where(x == self._point_values[j], 0.0, -np.inf)
        if self.bin_edges_[j] is None:
            return self.log_density_[j][x.astype(np.intp)]
        # In units of the column's divisor, where no width or distance overflows.
        divisor = self._divisor[j]
        x, edges = x / divisor, self._scaled_edges[j]
        log_divisor = np.log(divisor)
        n_bins = self.n_bins_[j]
        index = self._bin_index(edges, x, self._integer_bins[j])
        log_density = np.empty_like(x)

        inside = (index >= 0) & (index < n_bins)
        log_density[inside] = self.log_density_[j][index[inside]]

        below = index < 0
        width = edges[1] - edges[0]
        # Tail bin i covers [e_0 - (i + 1) w, e_0 - i w); clip guards underflow.
        i = np.maximum(np.ceil((edges[0] - x[below]) / width) - 1.0, 0.0)
        log_density[below] = (
            self.tail_log_mass_[j, 0] - (i + 1.0) * _LOG2 - np.log(width) - log_divisor
        )

        above = index >= n_bins
        width = edges[-1] - edges[-2]
        i = np.floor((x[above] - edges[-1]) / width)
        log_density[above] = (
            self.tail_log_mass_[j, 1] - (i + 1.0) * _LOG2 - np.log(width) - log_divisor
        )
        return log_density

    def score_samples(self, X):
        """Log-density of each sample under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            Sum over features of the per-feature log-densities, in nats. With
            ``bins="integer"`` and integer-valued ``X``, the log-probability of
            each sample under the discrete model. A label not seen in fit
            gets the Good–Turing mass of its column (see Notes).
        """
        check_is_fitted(self)
        # A label column's counts give the mass of labels not seen in fit.
        X, unseen = encode_scored(self, X, self.bin_counts_)
        return unseen.scores(self._log_density, np.asarray(X, dtype=np.float64))

    def _log_density(self, X):
        log_density = np.zeros(X.shape[0])
        for j in range(X.shape[1]):
            observed = ~np.isnan(X[:, j])
            log_density[observed] += self._feature_log_density(j, X[observed, j])
        return log_density

    def score(self, X, y=None):
        """Mean log-density of the samples of ``X``, in nats (higher is better).

        Unlike ``KernelDensity.score``, which sums, this is a per-sample mean,
        like ``GaussianMixture.score``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples=1, random_state=None, *, clip=True):
        """Generate random samples from the model.

        Each feature is drawn independently: a bin (or tail bin) with its
        probability, then a point uniformly within that bin. With
        ``bins="integer"`` the bin's integer level is returned instead, a
        draw of the discrete model.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples to generate.

        random_state : int, RandomState instance or None, default=None
            Determines the random draws. Pass an int for reproducible results.

        clip : bool, default=True
            Clip numeric columns to their training minimum and maximum: the
            tails' mass moves onto them, while :meth:`score_samples` scores
            the unclipped density. False keeps the tails' draws, within
            their dtype's finite range.

        Returns
        -------
        X : ndarray of shape (n_samples, `n_features_in_`)
            Generated samples, float64; integer-valued with
            ``bins="integer"``.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_vae import HistogramDensity
        >>> X = np.random.default_rng(0).normal(size=(200, 1))
        >>> hist = HistogramDensity().fit(X)
        >>> draws = hist.sample(2000, random_state=0)
        >>> bool(draws.min() >= X.min()), bool(draws.max() <= X.max())
        (True, True)
        >>> tails = hist.sample(2000, random_state=0, clip=False)
        >>> bool(tails.min() < X.min() or tails.max() > X.max())
        True
        """
        check_is_fitted(self)
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        if not isinstance(clip, bool | np.bool_):
            raise ValueError(f"clip must be True or False, got {short_repr(clip)}.")
        rng = check_random_state(random_state)
        X = np.empty((n_samples, len(self.schema_.columns_)))
        for j in range(X.shape[1]):
            X[:, j] = self._sample_feature(j, n_samples, rng, clip)
        return self.schema_.decode(X, clip=bool(clip))

    def _sample_feature(self, j, n_samples, rng, clip):
        if not np.isnan(self._point_values[j]):
            return np.full(n_samples, self._point_values[j])
        if self.bin_edges_[j] is None:
            probability = np.exp(self.log_density_[j])
            return rng.choice(len(probability), size=n_samples, p=probability / probability.sum())
        # In units of the column's divisor, where no width overflows.
        divisor = self._divisor[j]
        edges = self._scaled_edges[j]
        n_bins = self.n_bins_[j]
        widths = np.diff(edges)
        # Outcomes: 0 is the lower tail, 1..n_bins the bins, n_bins + 1 the upper tail.
        mass = np.concatenate(
            [
                np.exp(self.tail_log_mass_[j, :1]),
                # In log space: densities of data at 1e-300 overflow on their own.
                np.exp(self.log_density_[j] + np.log(widths) + np.log(divisor)),
                np.exp(self.tail_log_mass_[j, 1:]),
            ]
        )
        cdf = np.cumsum(mass)
        # side="right" never selects an outcome of zero probability.
        outcome = np.searchsorted(cdf, rng.uniform(size=n_samples) * cdf[-1], side="right")
        # Tail bin i ~ Geometric(1/2) on {0, 1, ...}, drawn for every sample for simplicity.
        tail_bin = rng.geometric(0.5, size=n_samples) - 1.0

        inner = np.clip(outcome - 1, 0, n_bins - 1)
        left = edges[inner]
        width = widths[inner]
        below = outcome == 0
        left[below] = edges[0] - (tail_bin[below] + 1.0) * widths[0]
        above = outcome == n_bins + 1
        left[above] = edges[-1] + tail_bin[above] * widths[-1]

        if self._fitted_bins == "integer":
            draws = left
        elif self._integer_bins[j]:
            # An integer drawn uniformly within the bin.
            draws = np.floor(left + width * rng.uniform(size=n_samples))
        else:
            with np.errstate(over="ignore"):  # beyond float64's range: clipped by decode
                return (left + width * rng.uniform(size=n_samples)) * divisor
        if clip and self.schema_.columns_[j].dequantize:
            # An integer column's draws stay within its training range, the bins'.
            draws = np.clip(draws, edges[0], edges[-1] - 1.0)
        return draws

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def __getstate__(self):
        # The schema as builtins, for pickle, joblib and skops.io alike.
        return saved_state(super().__getstate__())

    def __setstate__(self, state):
        if "n_features_in_" in state and "_fitted_bins" not in state:
            # Saved before fit recorded its bins: they are the parameter's.
            state = {**state, "_fitted_bins": state.get("bins", "auto")}
        if "n_features_in_" in state and "_point_values" not in state:
            # Saved before point masses: no column is one.
            state = {**state, "_point_values": np.full(state["n_features_in_"], np.nan)}
        restore_state(self, state, super().__setstate__, check=_check_fitted_arrays)


def _check_fitted_arrays(histogram):
    """Raise ``ValueError`` naming the first fitted array of a loaded histogram that is damaged.

    Each array must have the shape and dtype that ``fit`` gives it for the
    columns of ``schema_``; an unfitted histogram has none to check.
    """
    if not hasattr(histogram, "n_features_in_"):
        return
    columns, n = histogram.schema_.columns_, len(histogram.schema_.columns_)
    # Columns dropped at fit (identifiers, free text) are inputs, not modelled.
    n_dropped = len(getattr(histogram.schema_, "dropped_", None) or [])
    if n + n_dropped != histogram.n_features_in_:
        dropped = f" and {n_dropped} dropped ones" if n_dropped else ""
        raise ValueError(
            f"schema_ describes {n} columns{dropped}, but n_features_in_ is "
            f"{histogram.n_features_in_}"
        )
    check_array("n_bins_", histogram.n_bins_, (n,), "i")
    check_array("tail_log_mass_", histogram.tail_log_mass_, (n, 2), np.float64)
    check_array("_integer_bins", histogram._integer_bins, (n,), bool)
    check_array("_divisor", histogram._divisor, (n,), np.float64)
    check_array("_point_values", histogram._point_values, (n,), np.float64)
    lists = ("bin_edges_", "_scaled_edges", "bin_counts_", "log_density_")
    for name in lists:
        value = getattr(histogram, name)
        if not isinstance(value, list) or len(value) != n:
            raise ValueError(f"{name} is not a list of {n} entries, one per column")
    for j, column in enumerate(columns):
        point = histogram._point_values[j]
        if (column.value is None) != np.isnan(point) or column.value not in (None, point):
            raise ValueError(
                f"_point_values[{j}] is {float(point)!r}, but column {short_repr(column.name)} has "
                f"{'no point mass' if column.value is None else f'the one value {column.value!r}'}"
            )
        n_bins = int(histogram.n_bins_[j])
        labels = column.categories is not None
        if labels and n_bins != len(column.categories):
            raise ValueError(
                f"n_bins_[{j}] is {n_bins}, but column {short_repr(column.name)} has "
                f"{len(column.categories)} categories"
            )
        for name in lists[:2]:
            edges = getattr(histogram, name)[j]
            if labels and edges is not None:
                raise ValueError(
                    f"{name}[{j}] holds edges for the label column {short_repr(column.name)}"
                )
            if not labels:
                check_array(f"{name}[{j}]", edges, (n_bins + 1,), np.float64)
        check_array(f"bin_counts_[{j}]", histogram.bin_counts_[j], (n_bins,), "i")
        if (histogram.bin_counts_[j] < 0).any():  # a label column's: its unseen mass
            raise ValueError(f"bin_counts_[{j}] holds a negative count")
        check_array(f"log_density_[{j}]", histogram.log_density_[j], (n_bins,), np.float64)


def _check_unit_bins(x, name):
    """Raise ``ValueError`` when float64 cannot hold the unit-width bins of integers ``x``.

    The bins of integers up to ``m`` end at ``m + 1``, found as ``arange(..., m + 2)``:
    ``m + 2`` must be exact, so ``m`` at most ``2**53 - 2``.
    """
    largest = np.max(np.abs(x)) if len(x) else 0.0
    if largest > _MAX_EXACT_INTEGER - 2.0:
        raise ValueError(
            f"Column {short_repr(name)} holds integers up to {largest:.3g} in magnitude, beyond "
            "2**53 - 2, where float64 has no unit-width bins. Subtract a reference value from "
            "it first (for example its minimum; its scores do not change), or fit it as "
            "floats with bins='auto'."
        )


def _check_integer_valued(X):
    check_integer_valued(
        X, 'bins="integer"', "Round X, or pass an int or a numpy rule such as bins='auto'."
    )
