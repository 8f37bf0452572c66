"""A linear-Gaussian VAE starts at the factor-analysis fit of its training rows."""

import warnings

import numpy as np
import pytest
from conftest import make_factor_data
from sklearn.decomposition import FactorAnalysis
from test_vae_density import _exact_linear_vae_log_density

from sklearn_vae import VAETransformer
from sklearn_vae._data import Standardisation, add_hashed_noise, column_statistics
from sklearn_vae._linear_start import standardised_moments

# One step of this learning rate moves no float32 weight: the fit is the start.
UNTRAINED = {"max_iter": 1, "learning_rate_init": 1e-12, "early_stopping": False}


def _started(X, n_components):
    return VAETransformer(
        n_components=n_components, hidden_layer_sizes=(), random_state=0, **UNTRAINED
    ).fit(X)


@pytest.mark.parametrize("chunk_rows", [1, 2, 5, 8192])
@pytest.mark.parametrize("subset", [False, True])
def test_standardised_moments_are_numpys_on_the_same_rows(chunk_rows, subset):
    # 23 rows in chunks of 1, 2, 5 (the last one short) and one chunk; the
    # training rows a shuffled subset (their mean is not 0) or all rows.
    X = make_factor_data(23, n_features=4, n_components=2, seed=3) * [1.0, 10.0, 1e-3, 1e4]
    X[np.random.default_rng(3).uniform(size=X.shape) < 0.2] = np.nan
    standardisation = Standardisation(*column_statistics(X), columns=np.ones(4, dtype=bool))
    rows = np.random.default_rng(4).permutation(23)[:17] if subset else None
    mean, covariance = standardised_moments(X, rows, standardisation, chunk_rows=chunk_rows)
    # A missing entry counts as its column's training mean, 0 once standardised.
    T = np.nan_to_num(standardisation.transform(X if rows is None else X[rows]), nan=0.0)
    # Sums of 23 float64 terms below 10 in size: rounding of order 23 * eps * 10.
    np.testing.assert_allclose(mean, T.mean(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(covariance, np.cov(T, rowvar=False, bias=True), rtol=0, atol=1e-12)


def test_start_is_the_exact_posterior_of_a_factor_analysis_fit():
    # 133 x 13 with 5 factors, columns five orders of magnitude apart, like wine.
    X = make_factor_data(133, n_features=13, n_components=5, seed=1) * np.logspace(0, 4, 13)
    vae = _started(X, n_components=5)
    exact = _exact_linear_vae_log_density(vae, X)
    # The ELBO equals log p(x) only when q(z | x) is the exact posterior (the
    # rotated loadings make its covariance diagonal); float64 scoring of
    # float32 weights leaves differences of order 1e-8.
    np.testing.assert_allclose(vae.score_samples(X), exact, atol=1e-6)
    # And the decoder is factor analysis's maximum-likelihood fit: as close
    # to a tightly converged FactorAnalysis as 0.01 nats per row, where
    # FactorAnalysis with its default tol stops 0.03 short on these rows.
    converged = FactorAnalysis(n_components=5, tol=1e-10, max_iter=100_000).fit(X)
    assert exact.mean() > converged.score(X) - 0.01


def test_start_copes_with_missing_values_and_more_factors_than_features():
    X = make_factor_data(200, n_features=4, n_components=2, seed=0)
    X[np.random.default_rng(0).uniform(size=X.shape) < 0.2] = np.nan
    vae = _started(X, n_components=6)
    elbo = vae.score_samples(X)
    assert np.all(np.isfinite(elbo))
    # Latent dimensions beyond the 4 features get no loadings, and the
    # encoder is still the exact posterior of the model it starts.
    complete = ~np.isnan(X).any(axis=1)
    exact = _exact_linear_vae_log_density(vae, X[complete])
    np.testing.assert_allclose(elbo[complete], exact, atol=1e-6)


def test_start_on_a_table_with_a_constant_column_raises_no_runtime_warning():
    # Without a ridge, FactorAnalysis takes the log of a zero singular value.
    X = np.c_[np.full(50, 2.5), make_factor_data(50, n_features=3, n_components=1, seed=0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        vae = _started(X, n_components=4)
    assert np.all(np.isfinite(vae.score_samples(X)))


def test_start_of_a_table_with_dequantised_columns_is_factor_analysis_of_their_values():
    # Two columns of integers over more than ten levels, which dequantize="auto"
    # models as x + U(0, 1); a linear VAE starts at factor analysis of the values it
    # scores (the integers plus their row-hashed noise), as with real-valued columns.
    X = make_factor_data(150, n_features=5, n_components=2, seed=2) * [1.0, 1.0, 1.0, 3.0, 3.0]
    X[:, 3:] = np.round(X[:, 3:])
    vae = _started(X, n_components=2)
    assert vae._dequantized.tolist() == [False, False, False, True, True]
    scored = add_hashed_noise(X.copy(), vae._dequantized)
    converged = FactorAnalysis(n_components=2, tol=1e-10, max_iter=100_000).fit(scored)
    # The encoder is the exact posterior of the start: its ELBO is the start's
    # log-likelihood, which is factor analysis's maximum, to 0.01 nats per row.
    assert abs(vae.score(X) - converged.score(scored)) < 0.01
