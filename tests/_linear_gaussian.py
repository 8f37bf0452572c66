"""The exact conditionals of a fitted linear-Gaussian VAE, for the imputation tests."""

import functools

import numpy as np
import torch
from conftest import make_factor_data

from sklearn_vae import VAEImputer, VAETransformer
from sklearn_vae._likelihoods import MIN_SCALE


def linear_vae_marginal(vae):
    """Mean and covariance of p(x) in the units of X: N(b, W W^T + diag s^2), unstandardised."""
    module = vae.net_.module_
    head = module.decoder.head
    with torch.no_grad():
        W, b = head.loc.weight.double().numpy(), head.loc.bias.double().numpy()
        s = (torch.nn.functional.softplus(head.raw_scale.value.double()) + MIN_SCALE).numpy()
    # The model works in standardised units; the estimator standardises in float64.
    loc, scale = vae._standardisation.loc, vae._standardisation.scale
    mean = b * scale + loc
    covariance = (W @ W.T + np.diag(s**2)) * np.outer(scale, scale)
    return mean, covariance


def gaussian_conditional(mean, covariance, observed, x_observed):
    """Mean (one row per row of ``x_observed``) and covariance of x_free given x_observed."""
    free = ~observed
    gain = np.linalg.solve(
        covariance[np.ix_(observed, observed)], covariance[np.ix_(observed, free)]
    ).T
    conditional_mean = mean[free] + (x_observed - mean[observed]) @ gain.T
    conditional_cov = covariance[np.ix_(free, free)] - gain @ covariance[np.ix_(observed, free)]
    return conditional_mean, conditional_cov


def assert_standard_normal(residuals, covariance, n_sd=4.0):
    """Whitened residuals have zero mean and identity covariance within sampling error.

    For n independent N(0, I) rows, a mean has standard error 1/sqrt(n), a
    variance sqrt(2/n) and a covariance 1/sqrt(n); each is allowed n_sd of them.
    """
    n = len(residuals)
    white = np.linalg.solve(np.linalg.cholesky(covariance), residuals.T).T
    assert np.all(np.abs(white.mean(axis=0)) < n_sd / np.sqrt(n)), white.mean(axis=0)
    sample_cov = np.cov(white, rowvar=False).reshape(white.shape[1], white.shape[1])
    diagonal = np.diag(sample_cov)
    assert np.all(np.abs(diagonal - 1) < n_sd * np.sqrt(2 / n)), diagonal
    off = sample_cov[~np.eye(len(sample_cov), dtype=bool)]
    assert np.all(np.abs(off) < n_sd / np.sqrt(n)), off


def linear_data():
    """1100 rows of a 5-D factor model: the imputer is fitted on the first 800."""
    return make_factor_data(1100, n_features=5, n_components=2, seed=0)


@functools.cache
def linear_imputer():
    """A VAEImputer whose VAE is linear-Gaussian (factor analysis), fitted with 30% MCAR gaps.

    Fitted once per test session; the tests only call ``transform`` and
    ``sample`` on it (with their own ``random_state``), never refit it.
    """
    X = linear_data()[:800]
    X[np.random.default_rng(1).uniform(size=X.shape) < 0.3] = np.nan
    # Factor analysis: the prior stays N(0, I), which the closed forms assume.
    vae = VAETransformer(
        n_components=2,
        hidden_layer_sizes=(),
        learning_rate_init=1e-2,
        prior="normal",
        random_state=0,
    )
    return VAEImputer(vae, n_estimators=1, n_importance_samples=1000, random_state=0).fit(X)
