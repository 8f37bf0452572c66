"""Overflow-safe float64 standardisation: any finite column trains, in its own units.

Gaussian columns are standardised in float64 before the cast to float32, so
data multiplied by any scale ``s`` from 1e-300 to 1e300 reach the model as
the same float32 numbers: the fitted weights are identical, and the scores
shift by exactly the log-Jacobian ``-d log s`` per row.
"""

import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import chi2
from sklearn.datasets import load_wine

from sklearn_vae import HistogramDensity, VAETransformer
from sklearn_vae._data import Standardisation, column_statistics

SCALES = [1e-300, 1e-150, 1e-30, 1e-12, 1.0, 1e12, 1e39, 1e150, 1e300]
N_ROWS, N_FEATURES = 400, 3
LINEAR = dict(
    n_components=1, hidden_layer_sizes=(), learning_rate_init=1e-2, max_iter=60, random_state=0
)
EPS = np.finfo(np.float64).eps


def _normal_data():
    return np.random.default_rng(0).normal(size=(N_ROWS, N_FEATURES))


def _jacobian_rounding(scale, n_features):
    """A bound on the float64 rounding of ``-d log s`` and of a score of order 10.

    The log-Jacobian is a sum of ``d`` logs of at most 745 in magnitude, each
    within 2 ulp; the model's float64 score of standardised values that agree
    to a few ulp differs by a few ulp of its size (about 10). Tenfold margin.
    """
    return 10 * (n_features * 2 * EPS * max(abs(np.log(scale)), 1.0) + 4 * EPS * 10)


@pytest.fixture(scope="module")
def unit_vae():
    return VAETransformer(**LINEAR).fit(_normal_data())


@pytest.mark.parametrize("scale", SCALES)
def test_column_statistics_are_exact_and_finite_at_any_scale(scale):
    X = _normal_data() * scale
    mean, std, divisor = column_statistics(X, 97)
    # Computed in units of a power of two d: numpy's float64 moments of X / d,
    # a few ulp of relative error for sums of 400 terms.
    assert np.all(divisor == 2.0 ** np.floor(np.log2(np.abs(X).max(axis=0))))
    assert_allclose(mean, (X / divisor).mean(axis=0), rtol=1e-12)
    assert_allclose(std, (X / divisor).std(axis=0), rtol=1e-12)


def test_column_statistics_of_the_extremes_of_float64_do_not_overflow():
    top = np.finfo(np.float64).max
    X = np.array([[-top, 5e-324], [top, 0.0], [0.5 * top, 5e-324]])
    mean, std, divisor = column_statistics(X)
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
    assert_array_equal(divisor, [2.0**1023, 2.0**-1074])
    half = X[:, 0] / 2.0**1023
    assert_allclose([mean[0], std[0]], [half.mean(), half.std()], rtol=1e-15)
    # A subnormal column: the moments of its values in units of 2**-1074.
    assert_allclose([mean[1], std[1]], [2 / 3, np.sqrt(2) / 3], rtol=1e-15)
    standardised = Standardisation(mean, std, divisor, [True, True]).transform(X)
    assert np.all(np.isfinite(standardised)) and np.all(np.abs(standardised) < 2)


def test_a_constant_column_is_centred_exactly_and_a_rounding_spread_stays_within_one():
    # A column of one value is centred on it exactly (its mean of 200 equal
    # terms would not be, at 1e39), with StandardScaler's unit scale.
    X = np.full((200, 2), 1e39)
    # Near 1e300 rounding alone spreads a column by 1e284: "constant" by the
    # relative test, and scaled by its half-range, not 1, so it stays O(1).
    X[:, 1] = np.where(np.arange(200) % 2, 1e300, np.nextafter(1e300, np.inf))
    mean, std, divisor = column_statistics(X)
    assert mean[0] * divisor[0] == 1e39 and std[0] * divisor[0] == 1.0
    standardisation = Standardisation(mean, std, divisor, [True, True])
    T = standardisation.transform(X)
    assert_array_equal(T[:, 0], 0.0)
    # Centred on its midrange, which rounds to one of its two values.
    assert_array_equal(np.unique(np.abs(T[:, 1])), [0.0, 2.0])
    assert_array_equal(standardisation.inverse_transform(T), X)


def test_the_log_jacobian_takes_off_exactly_the_missing_columns():
    standardisation = Standardisation(
        np.zeros(3), np.array([2.0, 1e300, 1.0]), np.ones(3), [1, 1, 0]
    )
    X = np.array([[1.0, 2.0, 3.0], [np.nan, 2.0, 3.0], [1.0, np.nan, np.nan]])
    expected = [-np.log(2.0) - np.log(1e300), -np.log(1e300), -np.log(2.0)]
    # Taken off the total: exact to the rounding of the total (690.8).
    total = standardisation.log_jacobian_total
    assert_allclose(standardisation.log_jacobian(X, chunk_rows=2), expected, atol=4 * EPS * total)
    assert standardisation.log_jacobian(X[:1])[0] == standardisation.log_jacobian_total
    assert standardisation.mean_log_jacobian(X, np.array([0, 2])) == pytest.approx(
        np.mean([expected[0], expected[2]]), rel=EPS
    )


@pytest.mark.parametrize("scale", [s for s in SCALES if s != 1.0])
def test_vae_scores_at_any_scale_shift_by_the_exact_log_jacobian(unit_vae, scale):
    X = _normal_data()
    vae = VAETransformer(**LINEAR).fit(X * scale)
    # The float32 training inputs are the same numbers at every scale, so
    # training is too: identical weights.
    for name, value in vae.net_.module_.state_dict().items():
        assert_array_equal(value, unit_vae.net_.module_.state_dict()[name], err_msg=name)
    shift = -N_FEATURES * np.log(scale)
    atol = _jacobian_rounding(scale, N_FEATURES)
    assert_allclose(vae.score_samples(X * scale), unit_vae.score_samples(X) + shift, atol=atol)
    # Outputs in data units are un-standardised in float64: the scaled ones.
    Z = vae.transform(X * scale)
    assert_allclose(Z, unit_vae.transform(X), atol=1e-12)
    # t * scale + loc: a few ulp of the column's scale (values near 0 cancel).
    atol = 64 * EPS * scale
    assert_allclose(vae.inverse_transform(Z), unit_vae.inverse_transform(Z) * scale, atol=atol)
    draws = vae.sample(5, random_state=0)
    assert_allclose(draws, unit_vae.sample(5, random_state=0) * scale, atol=atol)


@pytest.mark.parametrize("scale", SCALES)
def test_linear_vae_matches_the_closed_form_gaussian_at_any_scale(scale):
    # The data are N(0, s^2 I): log N(x; 0, s^2 I) = log N(x / s; 0, I) - d log s.
    # The linear-Gaussian VAE is factor analysis with k = 3 means, 3 noise
    # variances and 3 loadings; on its training rows the maximum-likelihood
    # fit beats the true density by chi2_k / (2 n) nats per row (Wilks), so
    # within the 0.9999 quantile of that the fitted ELBO must match the truth,
    # from above (the MLE's advantage) and from below (the optimiser's gap).
    X = _normal_data()
    vae = VAETransformer(**LINEAR).fit(X * scale)
    truth = -0.5 * N_FEATURES * np.log(2 * np.pi) - 0.5 * (X**2).sum(axis=1)
    truth = truth - N_FEATURES * np.log(scale)
    tolerance = chi2.ppf(0.9999, df=9) / (2 * N_ROWS)
    assert abs(vae.score(X * scale) - truth.mean()) < tolerance


def test_wine_times_1e300_fits_and_scores_shift_by_the_log_jacobian():
    W = load_wine().data
    # Raw values: wine's integer columns (magnesium, proline) are dequantised
    # by default, but not at 1e300, where every float is an integer.
    params = dict(
        n_components=2, hidden_layer_sizes=(16,), max_iter=30, random_state=0, dequantize=False
    )
    unit = VAETransformer(**params).fit(W)
    huge = VAETransformer(**params).fit(W * 1e300)
    shift = -W.shape[1] * np.log(1e300)
    atol = _jacobian_rounding(1e300, W.shape[1])
    assert_allclose(huge.score_samples(W * 1e300), unit.score_samples(W) + shift, atol=atol)
    with torch.no_grad():
        a = unit.log_likelihood(W, n_importance_samples=8, random_state=0)
        b = huge.log_likelihood(W * 1e300, n_importance_samples=8, random_state=0)
    # log_likelihood is computed in float32: a few ulp of scores of order 50.
    assert_allclose(b, a + shift, atol=atol + 1e-4)


@pytest.mark.parametrize("scale", [s for s in SCALES if s != 1.0])
def test_histogram_scores_at_any_scale_shift_by_the_exact_log_jacobian(scale):
    # Bins are computed in units of a power of two near each column's largest
    # value, so edges scale exactly; the data themselves round when scaled,
    # which moves no point across an edge here.
    X = _normal_data()
    unit = HistogramDensity().fit(X)
    scaled = HistogramDensity().fit(X * scale)
    assert_array_equal(scaled.n_bins_, unit.n_bins_)
    shift = -N_FEATURES * np.log(scale)
    atol = _jacobian_rounding(scale, N_FEATURES)
    assert_allclose(scaled.score_samples(X * scale), unit.score_samples(X) + shift, atol=atol)
    samples = scaled.sample(50, random_state=0)
    assert np.all(np.isfinite(samples))
    assert_allclose(samples, unit.sample(50, random_state=0) * scale, atol=64 * EPS * scale)


def test_histogram_of_the_extremes_of_float64_is_finite():
    top = np.finfo(np.float64).max
    X = np.array([[-top, 1e300, 5e-324], [top, 1e300, 0.0], [0.0, 1e300, 5e-324]])
    for bins in (3, "auto"):
        hist = HistogramDensity(bins=bins).fit(X)
        assert np.all(np.isfinite(hist.score_samples(X)))
        # (A draw from the tails beyond float64's range is infinite, as it should be.)
        assert all(np.all(np.isfinite(edges)) for edges in hist.bin_edges_)


def test_histogram_integer_bins_beyond_2_to_the_53_are_refused_with_the_remedy():
    with pytest.raises(ValueError, match=r"Column 0 holds integers up to 1e\+300 .* bins='auto'"):
        HistogramDensity(bins="integer").fit(np.array([[1e300], [1e300]]))


def test_a_tiny_spread_is_kept_and_a_few_ulps_of_rounding_are_constant():
    # The constant test compares the variance with the rounding error of the
    # column's values, (n |mean| eps)**2 in the divisor's units: a spread of
    # 1e-10 around 1.5 (variance 1e-20, far above 1e-27) is the column's own
    # standard deviation; two values 4 ulp apart around 1.9 (variance 4 eps**2,
    # below (2 * 1.9 * eps)**2) are constant: centred on their midrange exactly,
    # with StandardScaler's unit scale.
    spread = 1.5 + 1e-10 * np.random.default_rng(0).normal(size=100)
    mean, std, divisor = column_statistics(spread[:, None])
    assert std[0] * divisor[0] == pytest.approx(spread.std(), rel=1e-6)
    low = 1.9
    high = low + 4 * np.spacing(low)
    mean, std, divisor = column_statistics(np.array([[low], [high]]))
    assert mean[0] * divisor[0] == low + 2 * np.spacing(low)
    assert std[0] * divisor[0] == 1.0


def test_standardising_beyond_float64s_range_gives_infinity_without_a_warning():
    # A point far outside a narrow training column standardises to infinity
    # (and back), silently: its score is then -inf, not a warning.
    standardisation = Standardisation(np.zeros(1), np.array([1e-10]), np.ones(1), [True])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_array_equal(standardisation.transform(np.array([[1e300]])), np.inf)
        assert_array_equal(standardisation.inverse_transform(np.array([[1e300]])), 1e290)
    wide = Standardisation(np.zeros(1), np.array([1e10]), np.ones(1), [True])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_array_equal(wide.inverse_transform(np.array([[1e300]])), np.inf)


def test_the_default_network_choice_is_the_same_at_any_scale():
    # hidden_layer_sizes="auto" counts the linear model's factors by factor
    # analysis, whose variances overflow at 1e300 (the fit raised) and vanish
    # at 1e-300 (it counted 1 factor) unless each column is rescaled first.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3)) @ rng.normal(size=(3, 8)) + 0.3 * rng.normal(size=(60, 8))
    params = dict(max_iter=3, random_state=0, dequantize=False)
    unit = VAETransformer(**params).fit(X)
    assert unit.hidden_layer_sizes_ == () and unit.n_components_ == 3
    for scale in (1e-300, 1e300):
        scaled = VAETransformer(**params).fit(X * scale)
        assert scaled.hidden_layer_sizes_ == () and scaled.n_components_ == 3
        shift = -X.shape[1] * np.log(scale)
        atol = _jacobian_rounding(scale, X.shape[1])
        assert_allclose(scaled.score_samples(X * scale), unit.score_samples(X) + shift, atol=atol)
