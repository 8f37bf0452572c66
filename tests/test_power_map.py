"""The Yeo–Johnson power map of the Gaussian columns: the map, its exponent, its exact Jacobian.

A skewed column reaches the Gaussian decoder through ``psi(u; lambda)`` of its
standardised values ``u``; the density of ``x`` is that of ``psi(u)`` times
``psi'(u) / (scale * spread)``. These tests check the map against scipy, its
inverse and derivative against their definitions, the exponent against
scipy's maximum-likelihood one, and that a fitted VAE's density is still a
density of ``x``.
"""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

from sklearn_vae import VAETransformer
from sklearn_vae import _power as power
from sklearn_vae._data import Standardisation, add_hashed_noise, column_statistics, strided_rows

LAMBDAS = [0.0, 1e-9, 0.3, 1.0, 1.7, 2.0 - 1e-9, 2.0]
LINEAR = dict(
    n_components=1, hidden_layer_sizes=(), learning_rate_init=1e-2, max_iter=300, random_state=0
)


@pytest.mark.parametrize("lmbda", LAMBDAS)
def test_the_map_is_scipys_and_its_inverse_and_derivative_are_exact(lmbda):
    u = np.concatenate([np.linspace(-6, 6, 121), [np.nan]])
    # scipy's own map (NaN dropped: it does not pass NaN through).
    assert_allclose(power.yeo_johnson(u[:-1], lmbda), stats.yeojohnson(u[:-1], lmbda), rtol=1e-7)
    assert np.isnan(power.yeo_johnson(u, lmbda)[-1])
    assert_allclose(power.yeo_johnson_inverse(power.yeo_johnson(u, lmbda), lmbda), u, rtol=1e-12)
    # The derivative by central differences, whose error is O(h^2) ~ 1e-8 here.
    h = 1e-5
    slope = (power.yeo_johnson(u + h, lmbda) - power.yeo_johnson(u - h, lmbda)) / (2 * h)
    assert_allclose(power.yeo_johnson_log_derivative(u, lmbda), np.log(slope), atol=1e-7)


@pytest.mark.parametrize("lmbda", [0.0, 0.5, 2.0])
def test_the_map_is_a_bijection_of_the_real_line_within_the_bounds(lmbda):
    # Within [0, 2] every real value maps back: a Gaussian in the mapped units
    # draws no value that has no preimage (a lambda < 0 bounds the image above).
    t = np.array([-50.0, -10.0, -1.0, 0.0, 1.0, 10.0, 50.0])
    u = power.yeo_johnson_inverse(t, lmbda)
    assert np.all(np.isfinite(u))
    assert np.all(np.diff(u) > 0)
    assert_allclose(power.yeo_johnson(u, lmbda), t, rtol=1e-9)


def test_the_exponent_is_scipys_maximum_likelihood_one_where_the_test_rejects_the_identity():
    rng = np.random.default_rng(0)
    skewed = stats.gamma(4).rvs(2000, random_state=rng)
    u = (skewed - skewed.mean()) / skewed.std()
    wanted = stats.yeojohnson_normmax(u)
    assert 0 < wanted < 1
    # The bounded search stops within its own tolerance (about 1e-5).
    assert power.fit_lambda(u) == pytest.approx(wanted, abs=1e-4)


def test_the_exponent_is_one_for_gaussian_columns_and_too_few_values():
    rng = np.random.default_rng(0)
    assert power.fit_lambda(rng.normal(size=2000)) == 1.0
    assert power.fit_lambda(np.array([0.0, 1.0, 0.0, 1.0, 1.0])) == 1.0


def test_the_test_keeps_the_exponent_exactly_when_twice_the_gain_passes_the_chi2_quantile():
    # Lognormal values of few rows: the gain is decided by the test alone.
    rng = np.random.default_rng(3)
    critical = stats.chi2.ppf(1 - power.TEST_LEVEL, df=1) / 2
    for n in (8, 12, 20, 40, 80):
        u = rng.lognormal(size=n)
        u = (u - u.mean()) / u.std()
        fitted = power.fit_lambda(u)
        best = max(stats.yeojohnson_llf(lmbda, u) for lmbda in np.linspace(0, 2, 2001))
        gain = best - stats.yeojohnson_llf(1.0, u)
        if abs(gain - critical) > 0.01:  # away from the boundary, the decision is clear
            assert (fitted != 1.0) == (gain > critical)


def _skewed_table(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.lognormal(sigma=0.8, size=n)
    return np.c_[x, np.log(x) + rng.normal(scale=0.5, size=n), rng.normal(size=n)]


def _fitted_map(X, columns=(True, True, True), noisy=(False, False, False)):
    loc, scale, divisor = column_statistics(X)
    base = Standardisation(loc, scale, divisor, np.ones(X.shape[1], dtype=bool))
    return base.with_power_map(X, np.array(columns), np.array(noisy))


def test_the_standardisation_maps_only_skewed_columns_and_inverts_exactly():
    X = _skewed_table()
    X[::7, 0] = np.nan
    standardisation = _fitted_map(X)
    assert standardisation.power.tolist() == [True, False, False]
    assert 0 <= standardisation.lambdas[0] < 1
    T = standardisation.transform(X)
    # The mapped column is centred and scaled on the sample it was fitted to.
    assert_allclose([np.nanmean(T[:, 0]), np.nanstd(T[:, 0])], [0, 1], atol=1e-12)
    assert_allclose(standardisation.inverse_transform(T), X, rtol=1e-12)
    assert_array_equal(np.isnan(T), np.isnan(X))


def test_the_log_jacobian_is_the_sum_of_each_observed_entrys_log_derivative():
    X = _skewed_table(60)
    X[[1, 5, 9], [0, 0, 2]] = np.nan
    standardisation = _fitted_map(X)
    h = 1e-6
    wanted = np.zeros(len(X))
    for j in range(X.shape[1]):
        up, down = X.copy(), X.copy()
        up[:, j] += h
        down[:, j] -= h
        slope = (
            (standardisation.transform(up)[:, j] - standardisation.transform(down)[:, j]) / 2 / h
        )
        wanted += np.where(np.isnan(X[:, j]), 0.0, np.log(np.abs(slope)))
    actual = standardisation.log_jacobian(X, chunk_rows=7)
    assert_allclose(actual, wanted, atol=1e-6)
    assert_allclose(standardisation.mean_log_jacobian(X, chunk_rows=7), actual.mean(), rtol=1e-13)
    rows = np.array([0, 1, 5, 40])
    assert_allclose(
        standardisation.mean_log_jacobian(X, rows, chunk_rows=3), actual[rows].mean(), rtol=1e-13
    )


def test_a_dequantised_columns_log_jacobian_is_taken_where_the_model_scores_it():
    # Dequantised integers are scored at x + row-hashed noise: their power
    # terms are the map's log-derivative there, not at the integer.
    rng = np.random.default_rng(1)
    X = np.c_[rng.negative_binomial(2, 0.1, size=300), rng.normal(size=300)].astype(float)
    noisy = np.array([True, False])
    standardisation = _fitted_map(X, (True, True), noisy)
    assert standardisation.power[0]
    bare = Standardisation(**{**standardisation.arguments(), "noisy": None})
    shifted = add_hashed_noise(X, noisy)
    assert_allclose(standardisation.log_jacobian(X), bare.log_jacobian(shifted), rtol=1e-14)
    assert np.abs(standardisation.log_jacobian(X) - bare.log_jacobian(X)).max() > 1e-3


def test_strided_rows_reads_every_kth_row_of_an_array():
    X = np.arange(50.0).reshape(25, 2)
    assert_array_equal(strided_rows(X, 10), X[::3])
    assert_array_equal(strided_rows(X, 100), X)


def test_a_linear_vae_on_a_skewed_column_is_a_density_of_x_that_beats_the_plain_gaussian(
    monkeypatch,
):
    # One lognormal column, a linear-Gaussian VAE: in the mapped units its
    # ELBO is (at its optimum) the exact Gaussian log-density, so exp(score)
    # integrates to at most 1 over x (the ELBO is a lower bound) and close to
    # 1. Trapezoids on a grid of 2e5 points over the whole mass: error < 1e-4.
    # Under N(0, I), whose KL term is exact: a mixture prior's is estimated from
    # each row's draws, and the exponential of a noisy estimate need not
    # integrate to at most 1.
    rng = np.random.default_rng(0)
    x = rng.lognormal(sigma=0.6, size=(1500, 1))
    train, test = x[:1000], x[1000:]
    vae = VAETransformer(**LINEAR, prior="normal").fit(train)
    assert vae._standardisation.power[0]
    grid = np.linspace(-5.0, 60.0, 200_001)[:, None]
    mass = np.trapezoid(np.exp(vae.score_samples(grid)), grid[:, 0])
    assert 0.95 < mass < 1 + 1e-4
    # Without the map (a test that never rejects the identity), the same model
    # is a Gaussian of x: on lognormal data it is far worse held out.
    monkeypatch.setattr(power, "TEST_LEVEL", 0.0)
    plain = VAETransformer(**LINEAR, prior="normal").fit(train)
    assert not plain._standardisation.power.any()
    assert vae.score(test) > plain.score(test) + 0.1


def test_a_power_mapped_model_saves_and_loads_bit_for_bit():
    X = _skewed_table()
    vae = VAETransformer(**{**LINEAR, "max_iter": 5}).fit(X)
    assert vae._standardisation.power.any()
    loaded = pickle.loads(pickle.dumps(vae))
    assert_array_equal(loaded.score_samples(X), vae.score_samples(X))
    assert_array_equal(loaded.sample(20, random_state=0), vae.sample(20, random_state=0))


def test_a_state_saved_before_the_power_map_loads_as_the_identity():
    X = _skewed_table()
    vae = VAETransformer(**{**LINEAR, "max_iter": 5}).fit(X[:, 2:])  # a Gaussian column: no map
    state = vae.__getstate__()
    for key in ("lambdas", "shift", "spread", "noisy"):
        del state["_standardisation"][key]
    old = VAETransformer.__new__(VAETransformer)
    old.__setstate__(state)
    assert_array_equal(old.score_samples(X[:, 2:]), vae.score_samples(X[:, 2:]))


def test_a_damaged_exponent_array_is_refused_at_load():
    X = _skewed_table()
    state = VAETransformer(**{**LINEAR, "max_iter": 5}).fit(X).__getstate__()
    state["_standardisation"]["lambdas"] = np.ones(2)
    with pytest.raises(ValueError, match="lambdas"):
        VAETransformer.__new__(VAETransformer).__setstate__(state)


def test_the_imputed_mean_of_a_power_mapped_column_is_the_mean_not_the_median():
    # x ~ lognormal(0, 0.6): mean exp(0.18) = 1.197, median 1. A row with
    # nothing observed is filled with the model's marginal mean, which must
    # be the mean of the mapped-back Gaussian (Gauss-Hermite), not the map
    # of its mean (the median, 1). The sample mean's standard error is 0.018;
    # the tolerance is three of them.
    from sklearn_vae import VAEImputer

    rng = np.random.default_rng(0)
    x = rng.lognormal(sigma=0.6, size=2000)
    X = np.c_[x, rng.normal(size=2000)]
    imputer = VAEImputer(VAETransformer(**LINEAR), n_estimators=1, random_state=0).fit(X)
    assert imputer.estimator_._standardisation.power.tolist() == [True, False]
    filled = imputer.transform(np.full((1, 2), np.nan))
    assert abs(filled[0, 0] - np.exp(0.18)) < 3 * 0.018
    # So does the mixture of an ensemble's members.
    ensemble = VAEImputer(VAETransformer(**LINEAR), n_estimators=2, random_state=0).fit(X)
    assert abs(ensemble.transform(np.full((1, 2), np.nan))[0, 0] - np.exp(0.18)) < 3 * 0.018


def test_the_unmapped_means_of_the_entries_asked_for_are_those_of_every_entry():
    # The quadrature runs on the missing entries alone: theirs must be the
    # values the full computation gives, column for column, also when the
    # part covers some of the table's columns (``where``); the other
    # entries keep their mean in the mapped units.
    import torch
    from torch.distributions import Normal

    from sklearn_vae._inference import _unmapped_mean

    generator = torch.Generator().manual_seed(0)
    loc = torch.randn(3, 4, 3, generator=generator, dtype=torch.float64)
    scale = torch.rand(3, 4, 3, generator=generator, dtype=torch.float64) + 0.1
    distribution = Normal(loc, scale)
    # Table columns 0..4; the part covers 1, 3 and 4; columns 3 and 4 are mapped.
    arguments = (
        np.array([False, False, True, True, True]),
        np.array([1.0, 1.0, 0.4, 0.2, 1.6]),
        np.array([0.0, 0.0, 0.5, -0.3, 0.1]),
        np.array([1.0, 1.0, 2.0, 0.7, 1.3]),
    )
    where = torch.tensor([1, 3, 4])
    missing = torch.zeros(4, 5, dtype=torch.bool)
    missing[0, 3] = missing[2, 4] = missing[3, 1] = missing[3, 3] = True
    everything = _unmapped_mean(distribution, where, arguments, torch.ones(4, 5, dtype=torch.bool))
    asked = _unmapped_mean(distribution, where, arguments, missing)
    local = missing[:, where]
    assert torch.equal(asked[:, local], everything[:, local])
    assert torch.equal(asked[:, ~local], loc[:, ~local])
    # Every mapped entry of the full computation is mapped back.
    assert not torch.equal(everything[..., 1:], loc[..., 1:])
    assert torch.equal(everything[..., 0], loc[..., 0])
