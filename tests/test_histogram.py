"""HistogramDensity: a normalised, smoothed histogram density estimator."""

import numpy as np
import pandas as pd
import pytest
from conftest import warned_from
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_vae import HistogramDensity
from sklearn_vae._histogram import MAX_UNIT_BINS

NUMPY_RULES = ["auto", "fd", "doane", "scott", "stone", "rice", "sturges", "sqrt"]
# Tail bins far enough out that the mass beyond them, 2**-80 of a tail, is negligible.
N_TAIL_BINS = 80


@parametrize_with_checks(
    [
        HistogramDensity(),
        HistogramDensity(bins=5, alpha=0.0),
        HistogramDensity(bins="sturges", alpha=0.5),
    ]
)
def test_sklearn_estimator_suite(estimator, check):
    check(estimator)


def _cell_midpoints_and_widths(hist, j):
    """Midpoints and widths of feature j's bins and of N_TAIL_BINS tail bins per side."""
    edges = hist.bin_edges_[j]
    w_low, w_high = edges[1] - edges[0], edges[-1] - edges[-2]
    i = np.arange(N_TAIL_BINS)
    mids = np.concatenate(
        [
            edges[0] - (i + 0.5) * w_low,
            (edges[:-1] + edges[1:]) / 2,
            edges[-1] + (i + 0.5) * w_high,
        ]
    )
    widths = np.concatenate(
        [np.full(N_TAIL_BINS, w_low), np.diff(edges), np.full(N_TAIL_BINS, w_high)]
    )
    return mids, widths


@pytest.mark.parametrize("bins", [7, "auto", "fd", "sturges", "integer"])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_per_feature_density_integrates_to_one(bins, alpha):
    rng = np.random.default_rng(0)
    X = np.floor(rng.gamma(2.0, 3.0, size=(300, 1)))
    hist = HistogramDensity(bins, alpha=alpha).fit(X)
    mids, widths = _cell_midpoints_and_widths(hist, 0)
    # The density is constant on each cell, so value at the midpoint * width is its mass.
    integral = np.sum(np.exp(hist.score_samples(mids[:, None])) * widths)
    assert_allclose(integral, 1.0, rtol=1e-12)


def test_score_samples_is_sum_of_per_feature_log_densities():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3)) * [1.0, 5.0, 0.1]
    X_new = rng.normal(size=(50, 3)) * 4.0
    joint = HistogramDensity().fit(X).score_samples(X_new)
    marginals = sum(
        HistogramDensity().fit(X[:, [j]]).score_samples(X_new[:, [j]]) for j in range(3)
    )
    assert_allclose(joint, marginals, rtol=1e-12)


def test_uniform_data_log_density_tends_to_minus_log_width():
    rng = np.random.default_rng(2)
    n, n_bins, length = 100_000, 10, 2.0
    X = rng.uniform(0.0, length, size=(n, 1))
    hist = HistogramDensity(n_bins).fit(X)
    # A bin's log-density is log(count / (n p w)) - log(L) with count ~ Binomial(n, p),
    # p = 1 / n_bins: its standard error is sqrt((1 - p) / (n p)). Add the bias from
    # smoothing (at most alpha (n_bins + 3) / (n p) relative) and from the fitted range
    # falling short of [0, L] (about 2 / n relative).
    p = 1 / n_bins
    tol = 4 * np.sqrt((1 - p) / (n * p)) + (n_bins + 3) / (n * p) + 10 / n
    assert_allclose(hist.log_density_[0], -np.log(length), atol=tol)


def test_alpha_zero_is_numpy_maximum_likelihood_histogram():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 2))
    hist = HistogramDensity(12, alpha=0.0).fit(X)
    for j in range(2):
        density, edges = np.histogram(X[:, j], bins=12, density=True)
        assert_array_equal(hist.bin_edges_[j], edges)
        with np.errstate(divide="ignore"):
            assert_allclose(hist.log_density_[j], np.log(density), rtol=1e-12)
    assert_array_equal(hist.tail_log_mass_, -np.inf)


@pytest.mark.parametrize("rule", NUMPY_RULES)
def test_bin_edges_follow_numpy_rule_per_feature(rule):
    rng = np.random.default_rng(4)
    X = np.column_stack([rng.normal(size=300), rng.exponential(size=300) * 10])
    hist = HistogramDensity(rule).fit(X)
    for j in range(2):
        assert_array_equal(hist.bin_edges_[j], np.histogram_bin_edges(X[:, j], bins=rule))
        assert hist.n_bins_[j] == len(hist.bin_edges_[j]) - 1
        assert hist.bin_counts_[j].sum() == 300


def test_smoothing_makes_unseen_bins_and_outside_points_finite():
    X = np.array([[0.0], [0.1], [0.2], [9.8], [9.9], [10.0]])
    hist = HistogramDensity(10, alpha=1.0).fit(X)
    gap, outside = np.array([[5.0]]), np.array([[-3.0], [25.0]])
    # An empty bin has alpha pseudo-counts out of n + alpha (n_bins + 2).
    assert_allclose(hist.score_samples(gap), np.log(1.0 / (6 + 12) / 1.0))
    assert np.all(np.isfinite(hist.score_samples(outside)))

    unsmoothed = HistogramDensity(10, alpha=0.0).fit(X)
    assert_array_equal(unsmoothed.score_samples(np.vstack([gap, outside])), -np.inf)


def test_tail_log_density_falls_by_log2_per_outer_bin_width():
    X = np.array([[0.0], [1.0], [1.0], [4.0]])
    hist = HistogramDensity(4, alpha=1.0).fit(X)  # bins of width 1 on [0, 4]
    below = hist.score_samples(-np.array([[0.5], [1.5], [2.5]]))
    above = hist.score_samples(4.0 + np.array([[0.5], [1.5], [2.5]]))
    # Each tail holds alpha / N = 1 / 10 of the mass; its first bin gets half of it.
    assert_allclose(below[0], np.log(1 / 10 / 2))
    assert_allclose(np.diff(below), -np.log(2))
    assert_allclose(above, below)
    # Outside the fitted range the density stays below that of an empty bin.
    assert below[0] < hist.log_density_[0].min()


def test_integer_bins_probabilities_sum_to_one_over_integer_grid():
    rng = np.random.default_rng(5)
    X = np.column_stack([rng.integers(0, 4, size=40), rng.integers(-1, 2, size=40)])
    hist = HistogramDensity("integer", alpha=0.5).fit(X)
    margin = N_TAIL_BINS
    grid = np.stack(
        np.meshgrid(np.arange(-margin, 4 + margin), np.arange(-1 - margin, 2 + margin)),
        axis=-1,
    ).reshape(-1, 2)
    assert_allclose(np.exp(hist.score_samples(grid)).sum(), 1.0, rtol=1e-12)


def test_integer_bins_without_smoothing_give_empirical_marginal_frequencies():
    rng = np.random.default_rng(6)
    X = np.column_stack([rng.poisson(2.0, size=100), rng.integers(5, 9, size=100)])
    hist = HistogramDensity("integer", alpha=0.0).fit(X)
    frequency = [np.mean(X[:, [j]] == X[:, j], axis=0) for j in range(2)]
    assert_allclose(hist.score_samples(X), np.log(frequency[0] * frequency[1]), rtol=1e-12)


def test_integer_bins_density_is_constant_on_unit_cells():
    rng = np.random.default_rng(7)
    X = rng.poisson(3.0, size=(100, 2)).astype(float)
    hist = HistogramDensity("integer").fit(X)
    grid = np.stack(np.meshgrid(np.arange(-3, 15), np.arange(-3, 15)), axis=-1).reshape(-1, 2)
    shifted = grid + rng.uniform(size=grid.shape)
    assert_allclose(hist.score_samples(shifted), hist.score_samples(grid), rtol=1e-12)


def test_integer_bins_are_one_unit_bin_per_integer_from_min_to_max():
    X = np.array([[3.0, -2.0], [7.0, -2.0], [5.0, 1.0]])
    hist = HistogramDensity("integer").fit(X)
    assert_array_equal(hist.bin_edges_[0], np.arange(3.0, 9.0))
    assert_array_equal(hist.bin_edges_[1], np.arange(-2.0, 3.0))
    assert_array_equal(hist.n_bins_, [5, 4])


def test_default_parameters_are_the_documented_ones():
    assert HistogramDensity().get_params() == {"bins": "auto", "alpha": 1.0}


def test_integer_bins_reject_non_integer_data():
    message = (
        r'^bins="integer" requires integer-valued X, but X\[1, 1\] = 2.5\. '
        r"Round X, or pass an int or a numpy rule such as bins='auto'\.$"
    )
    with pytest.raises(ValueError, match=message):
        HistogramDensity("integer").fit([[0.0, 1.0], [2.0, 2.5]])


def _clipped_probabilities(p, levels, low, high):
    """Probabilities of ``levels`` once a draw is clipped to ``[low, high]``: tails pile up."""
    inside = (levels >= low) & (levels <= high)
    clipped = np.where(inside, p, 0.0)
    clipped[levels == low] += p[levels < low].sum()
    clipped[levels == high] += p[levels > high].sum()
    return clipped


def test_integer_bins_sample_integer_levels_with_model_probabilities():
    # Inside the training range each level has its probability; an integer column's
    # draws are clipped to that range, so each tail's mass lands on its extreme level.
    rng = np.random.default_rng(8)
    X = rng.integers(0, 3, size=(30, 1))
    hist = HistogramDensity("integer", alpha=2.0).fit(X)
    n = 20_000
    draws = hist.sample(n, random_state=0)
    assert_array_equal(draws, np.floor(draws))
    levels = np.arange(-40, 43)
    p = np.exp(hist.score_samples(levels[:, None]))
    assert abs(p.sum() - 1) < 1e-9  # the levels hold all but the far tails
    p = _clipped_probabilities(p, levels, 0, 2)
    frequency = np.mean(draws == levels, axis=0)
    assert np.all(np.abs(frequency - p) <= 4 * np.sqrt(p * (1 - p) / n))
    assert p[levels == 0] > np.exp(hist.score_samples([[0]]))[0] + 0.01  # the tail piles up


@pytest.mark.parametrize("n_bins", [1, 6])
def test_sample_bin_and_tail_frequencies_within_binomial_error(n_bins):
    rng = np.random.default_rng(9)
    X = rng.normal(size=(40, 2))
    hist = HistogramDensity(n_bins, alpha=3.0).fit(X)  # heavy smoothing: tails get mass
    n = 40_000
    draws = hist.sample(n, random_state=1, clip=False)
    for j in range(2):
        edges = hist.bin_edges_[j]
        w_low, w_high = edges[1] - edges[0], edges[-1] - edges[-2]
        # Cells: the first three tail bins below and above, the bins, and the far tails.
        cuts = np.concatenate(
            [edges[0] - np.arange(3, 0, -1) * w_low, edges, edges[-1] + np.arange(1, 4) * w_high]
        )
        tail = np.exp(hist.tail_log_mass_[j])
        p = np.concatenate(
            [
                [tail[0] / 8, tail[0] / 8, tail[0] / 4, tail[0] / 2],
                np.exp(hist.log_density_[j]) * np.diff(edges),
                [tail[1] / 2, tail[1] / 4, tail[1] / 8, tail[1] / 8],
            ]
        )
        frequency = np.bincount(np.searchsorted(cuts, draws[:, j]), minlength=len(p)) / n
        assert np.all(np.abs(frequency - p) <= 4 * np.sqrt(p * (1 - p) / n))


def test_sample_uniform_within_chosen_bin():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(200, 1))
    hist = HistogramDensity(5, alpha=0.0).fit(X)
    n = 20_000
    x = hist.sample(n, random_state=2)[:, 0]
    edges = hist.bin_edges_[0]
    k = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, 4)
    position = (x - edges[k]) / np.diff(edges)[k]
    assert np.all((position >= 0) & (position <= 1))
    # U(0, 1) has mean 1/2 and variance 1/12.
    assert abs(position.mean() - 0.5) < 4 * np.sqrt(1 / 12 / n)


def test_sample_reproducible_for_fixed_random_state():
    X = np.random.default_rng(11).normal(size=(100, 3))
    hist = HistogramDensity().fit(X)
    assert_array_equal(hist.sample(50, random_state=0), hist.sample(50, random_state=0))
    assert not np.array_equal(hist.sample(50, random_state=0), hist.sample(50, random_state=1))
    assert hist.sample().shape == (1, 3)


def test_score_is_mean_of_score_samples():
    X = np.random.default_rng(12).normal(size=(100, 2))
    hist = HistogramDensity().fit(X)
    assert hist.score(X) == pytest.approx(np.mean(hist.score_samples(X)), rel=1e-12)


def test_infinity_in_fit_or_score_samples_raises_value_error():
    X = np.random.default_rng(13).normal(size=(20, 2))
    X_inf = X.copy()
    X_inf[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        HistogramDensity().fit(X_inf)
    with pytest.raises(ValueError, match="infinity"):
        HistogramDensity().fit(X).score_samples(X_inf)


def test_nan_entries_are_skipped_in_fit_and_score_samples():
    X = np.random.default_rng(13).normal(size=(20, 2))
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    hist = HistogramDensity().fit(X_nan)
    only_first = HistogramDensity().fit(X[:, :1]).score_samples(X[3:4, :1])
    assert hist.n_bins_[1] == len(np.histogram_bin_edges(np.delete(X[:, 1], 3), "auto")) - 1
    assert hist.score_samples(X_nan[3:4]) == pytest.approx(only_first, rel=1e-12)


def test_wrong_number_of_features_raises_value_error():
    X = np.random.default_rng(14).normal(size=(20, 2))
    with pytest.raises(ValueError, match="X has 3 features"):
        HistogramDensity().fit(X).score_samples(np.zeros((5, 3)))


@pytest.mark.parametrize("method", ["score_samples", "score", "sample"])
def test_unfitted_methods_raise_not_fitted_error(method):
    args = () if method == "sample" else (np.zeros((2, 2)),)
    with pytest.raises(NotFittedError):
        getattr(HistogramDensity(), method)(*args)


@pytest.mark.parametrize("params", [{"bins": 0}, {"bins": "bogus"}, {"bins": 2.5}, {"alpha": -1.0}])
def test_invalid_parameters_raise_invalid_parameter_error(params):
    with pytest.raises(InvalidParameterError):
        HistogramDensity(**params).fit(np.zeros((5, 1)))


def test_sample_rejects_non_positive_n_samples():
    hist = HistogramDensity().fit(np.zeros((5, 1)))
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        hist.sample(0)


def test_sampling_subnormal_data_draws_the_tails_with_their_probability():
    # Bin densities of data at 1e-309 exceed float64's range; bin masses, taken
    # in log space, do not. The two tails hold 2 alpha / N of the mass, so the
    # count of draws outside the bins is binomial around it (4 standard deviations).
    X = np.random.default_rng(15).normal(size=(200, 1)) * 1e-309
    hist = HistogramDensity().fit(X)
    n_draws = 4000
    draws = hist.sample(n_draws, random_state=0, clip=False)[:, 0]
    p_tails = 2 * np.exp(hist.tail_log_mass_[0, 0])
    outside = np.sum((draws < hist.bin_edges_[0][0]) | (draws > hist.bin_edges_[0][-1]))
    assert abs(outside - n_draws * p_tails) < 4 * np.sqrt(n_draws * p_tails * (1 - p_tails))


def test_width_bins_on_integer_data_warn_with_the_remedy():
    X = np.random.default_rng(0).integers(0, 17, size=(200, 3)).astype(float)
    with pytest.warns(UserWarning, match="bins='integer'") as record:
        HistogramDensity(bins="sturges").fit(X)
    assert len(record) == 1 and warned_from(record[0], __file__)


@pytest.mark.parametrize(
    "bins, shift", [("integer", 0.0), ("auto", 0.0), ("auto", 0.5), (10, 0.25)]
)
def test_no_lattice_warning_for_integer_bins_or_real_data(recwarn, bins, shift):
    X = np.random.default_rng(0).integers(0, 17, size=(200, 3)) + shift
    HistogramDensity(bins=bins).fit(X)
    assert [w for w in recwarn if "integer-valued" in str(w.message)] == []


def test_integer_dtype_table_columns_get_integer_bins_and_no_warning(recwarn):
    import pandas as pd

    df = pd.DataFrame({"count": np.random.default_rng(0).integers(0, 9, size=200)})
    HistogramDensity().fit(df)
    assert [w for w in recwarn if "integer-valued" in str(w.message)] == []


@pytest.mark.parametrize(
    "high, edges",
    [
        (MAX_UNIT_BINS - 1, np.arange(MAX_UNIT_BINS + 1.0)),  # one unit bin per level
        # From MAX_UNIT_BINS + 1 levels on, the rule's 4 bins with their inner edges
        # floored to integers and the last edge one past the largest integer.
        (MAX_UNIT_BINS, [0.0, 8.0, 16.0, 24.0, MAX_UNIT_BINS + 1.0]),
        (99, [0.0, 24.0, 49.0, 74.0, 100.0]),
    ],
)
def test_an_integer_column_gets_integer_edges_from_the_bin_rule(high, edges):
    frame = pd.DataFrame({"k": np.arange(high + 1).repeat(2)})
    assert_array_equal(HistogramDensity(bins=4).fit(frame).bin_edges_[0], edges)


def test_integer_bins_wider_than_one_draw_each_integer_with_its_probability():
    # 33 levels and 20 bins: integer edges of widths 1 to 3, so a draw from a bin
    # or from a tail must pick one of the bin's integers uniformly. The density at
    # an integer is its probability (the integers of a bin share its mass).
    frame = pd.DataFrame({"k": np.arange(33).repeat(2)})
    hist = HistogramDensity(20, alpha=1.0).fit(frame)
    widths = np.diff(hist.bin_edges_[0])
    assert widths.min() == 1 and widths.max() == 3
    n = 20_000
    draws = hist.sample(n, random_state=0)["k"].to_numpy()
    assert_array_equal(draws, np.floor(draws))
    levels = np.arange(-16, 70)
    p = np.exp(hist.score_samples(pd.DataFrame({"k": levels})))
    frequency = np.mean(draws[:, None] == levels, axis=0)
    assert abs(p.sum() - 1) < 1e-4  # the levels hold all but the far tails
    p = _clipped_probabilities(p, levels, 0, 32)  # within the training range
    assert np.all(np.abs(frequency - p) <= 4 * np.sqrt(p * (1 - p) / n) + 1 / n)


def test_integer_bins_of_a_float_column_keep_their_tails_when_sampling():
    # Only an integer column is clipped to its training range; a float column
    # binned on the integers draws from its tails, as the model says.
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 2.0]})
    draws = (
        HistogramDensity("integer", alpha=5.0)
        .fit(frame)
        .sample(2000, random_state=0, clip=False)["x"]
    )
    assert draws.min() < 0 and draws.max() > 2
    assert_array_equal(draws, np.floor(draws))


def test_integer_bins_are_unit_bins_at_any_range():
    frame = pd.DataFrame({"k": [0, 99, 50]})
    assert_array_equal(HistogramDensity("integer").fit(frame).bin_edges_[0], np.arange(101.0))


def test_label_columns_draw_each_category_with_its_smoothed_frequency():
    frame = pd.DataFrame({"c": pd.Series(["a"] * 6 + ["b"] * 2 + ["c"] * 2, dtype="category")})
    hist = HistogramDensity(alpha=1.0).fit(frame)
    n = 20_000
    draws = hist.sample(n, random_state=0)
    p = np.array([7, 3, 3]) / 13  # (count + alpha) / (n + 3 alpha)
    frequency = np.array([np.mean(draws["c"] == c) for c in "abc"])
    assert np.all(np.abs(frequency - p) <= 4 * np.sqrt(p * (1 - p) / n))


def test_lattice_warning_message_in_full():
    X = np.arange(60.0).reshape(20, 3)
    with pytest.warns(UserWarning) as record:
        HistogramDensity(bins="sturges").fit(X)
    (warning,) = [w for w in record if "integer-valued" in str(w.message)]
    assert warning.category is UserWarning
    assert str(warning.message) == (
        "X is integer-valued, but bins='sturges' fits a continuous density to the raw "
        "integers: measured on a lattice, its scores are not comparable with other models' "
        "and grow as the bins narrow. Set bins='integer' for log-probabilities of the "
        "integers, or fit on dequantize(X)."
    )


def test_an_all_zero_column_gets_numpys_unit_range_bins():
    # numpy bins a constant column on [c - 0.5, c + 0.5]; for zeros, which have
    # no magnitude to rescale by, the bins are exactly numpy's.
    X = np.column_stack([np.zeros(40), np.random.default_rng(0).normal(size=40)])
    hist = HistogramDensity(4).fit(X)
    assert_array_equal(hist.bin_edges_[0], np.histogram_bin_edges(X[:, 0], bins=4))
    assert_array_equal(hist.bin_edges_[0][[0, -1]], [-0.5, 0.5])


def test_label_columns_count_their_categories_and_have_no_tails(recwarn):
    # An unused category has count 0: with alpha=0 its log-probability is -inf,
    # without a divide-by-zero warning, and a label column has no tails.
    frame = pd.DataFrame({"c": pd.Categorical(["a"] * 3 + ["c"] * 2, categories=["a", "b", "c"])})
    for alpha in (0.0, 1.0):
        hist = HistogramDensity(alpha=alpha).fit(frame)
        assert_array_equal(hist.bin_counts_[0], [3, 0, 2])
        assert_array_equal(hist.tail_log_mass_[0], [-np.inf, -np.inf])
    # (count + alpha) / (n + 3 alpha), up to the rounding of two logarithms.
    assert_allclose(hist.log_density_[0], np.log(np.array([4, 1, 3]) / 8), rtol=1e-15)
    with np.errstate(divide="ignore"):
        expected = np.log([0.6, 0.0, 0.4])
    assert_allclose(HistogramDensity(alpha=0.0).fit(frame).log_density_[0], expected, rtol=1e-15)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_integers_beyond_2_to_the_53_minus_2_are_refused_with_the_remedy():
    # Unit-width bins of integers up to m end at m + 1, and m + 2 must be a
    # float64 for numpy's arange to reach it: m = 2**53 - 2 fits, 2**53 - 1 not.
    top = 2.0**53 - 2
    hist = HistogramDensity("integer", alpha=0.0).fit(np.array([[top - 2], [top]]))
    assert_array_equal(hist.bin_edges_[0] - top, [-2, -1, 0, 1])
    assert_array_equal(hist.bin_counts_[0], [1, 0, 1])
    for largest in (top + 1, -(top + 1), 2.0**53):
        with pytest.raises(ValueError) as error:
            HistogramDensity("integer").fit(np.array([[0.0], [largest]]))
        assert str(error.value) == (
            f"Column 0 holds integers up to {abs(largest):.3g} in magnitude, beyond "
            "2**53 - 2, where float64 has no unit-width bins. Subtract a reference value from "
            "it first (for example its minimum; its scores do not change), or fit it as floats "
            "with bins='auto'."
        )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sampling_beyond_the_dtypes_range_gives_its_largest_value_without_a_warning(recwarn, dtype):
    # Data near the dtype's largest value have tails whose far draws exceed it: a
    # finite column never samples infinity, nor warns of an overflow.
    largest = float(np.finfo(dtype).max)
    X = np.random.default_rng(1).uniform(0.6, 1.0, size=(5, 1)) * largest
    hist = HistogramDensity(alpha=1000.0).fit(pd.DataFrame({"x": X[:, 0].astype(dtype)}))
    draws = hist.sample(2000, random_state=0, clip=False)["x"]
    assert draws.dtype == dtype and np.isfinite(draws).all()
    assert (draws == largest).any() and (draws < largest).any()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_samples_answer_from_the_fitted_bins_after_set_params():
    X = np.random.default_rng(0).integers(0, 6, size=(200, 2)).astype(float)
    histogram = HistogramDensity(bins="integer").fit(X)
    before = histogram.sample(50, random_state=0)
    after = histogram.set_params(bins=3).sample(50, random_state=0)
    assert_array_equal(after, before)


def test_a_failed_refit_leaves_the_fitted_histogram_as_it_was():
    X = np.random.default_rng(0).normal(size=(100, 2))
    histogram = HistogramDensity().fit(X)
    expected = histogram.score_samples(X)
    with pytest.raises(ValueError, match="beyond 2\\*\\*53 - 2"):
        histogram.set_params(bins="integer").fit(np.full((100, 2), 2.0**60))
    assert_array_equal(histogram.score_samples(X), expected)
