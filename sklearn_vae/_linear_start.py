"""The factor-analysis starting point of a linear-Gaussian VAE.

A VAE with no hidden layer and a Gaussian decoder of per-feature variance is
factor analysis: ``p(x) = N(b, W W^T + diag(s^2))``. Its ELBO equals that
log-likelihood when the encoder is the exact posterior, which for factor
analysis is Gaussian with a covariance shared by every row, diagonal once
the loadings are rotated to make ``W^T diag(s^-2) W`` diagonal. The
maximum-likelihood fit of ``FactorAnalysis`` is therefore a maximum of the
VAE's ELBO, and training starts there instead of spending its epochs
walking to it.
"""

import warnings

import numpy as np
import torch
from sklearn.decomposition import FactorAnalysis
from sklearn.exceptions import ConvergenceWarning

from ._data import dequantized_view
from ._likelihoods import MIN_SCALE
from ._module import MIN_POSTERIOR_SCALE

__all__ = ["standardised_moments", "start_at_factor_analysis"]

# Smallest noise variance of the start, in standardised units (a scale of
# 0.01): the encoder's weights grow as its inverse, and training can go lower.
_MIN_NOISE_VARIANCE = 1e-4
_RIDGE = 1e-8


def standardised_moments(X, rows, standardisation, dequantized=None, chunk_rows=8192):
    """Mean and biased covariance of the standardised ``rows`` of ``X`` (all when None).

    Read in chunks, so a memmap is never copied whole. A missing entry counts
    as the training mean of its column (0 once standardised). The integers of
    the dequantised columns (the mask ``dequantized``) read as the values they
    are scored at, plus their row-hashed noise.
    """
    n_rows = X.shape[0] if rows is None else len(rows)
    total = np.zeros(X.shape[1])
    products = np.zeros((X.shape[1], X.shape[1]))
    for start in range(0, n_rows, chunk_rows):
        where = slice(start, start + chunk_rows)
        chunk = X[where] if rows is None else X[rows[where]]
        chunk = standardisation.transform(dequantized_view(chunk, dequantized))
        chunk = np.nan_to_num(chunk, nan=0.0)
        total += chunk.sum(axis=0)
        products += chunk.T @ chunk
    mean = total / n_rows
    return mean, products / n_rows - np.outer(mean, mean)


def _rows_with_covariance(covariance):
    """``2 d`` rows of mean 0 whose biased covariance is exactly ``covariance``.

    ``FactorAnalysis`` reads the data only through their covariance, so
    fitting it to these rows is fitting it to the covariance, at a cost that
    does not grow with the number of training rows.
    """
    # A ridge far below the noise floor keeps every direction's variance
    # positive (a constant column has none), which FactorAnalysis needs.
    eigenvalues, eigenvectors = np.linalg.eigh(covariance + _RIDGE * np.eye(len(covariance)))
    half = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None) * len(covariance))
    return np.concatenate([half.T, -half.T])


def _inverse_softplus(y):
    return y + np.log(-np.expm1(-y))


def factor_analysis_parameters(mean, covariance, n_components):
    """The linear-Gaussian VAE at the factor-analysis fit of ``covariance``.

    Returns
    -------
    loadings : ndarray of shape (n_features, n_components)
        ``W``, rotated so that the posterior covariance is diagonal; latent
        dimensions beyond ``n_features`` get zero loadings.
    noise_variance : ndarray of shape (n_features,)
        ``s^2``.
    encoder_weight : ndarray of shape (n_components, n_features)
        ``A`` of the exact posterior mean ``A (x - b)``.
    posterior_variance : ndarray of shape (n_components,)
        The exact posterior variance, the same for every row.
    """
    n_features = len(mean)
    k = min(n_components, n_features)
    with warnings.catch_warnings():
        # A few EM iterations short of FactorAnalysis's tol is still a good start.
        warnings.simplefilter("ignore", ConvergenceWarning)
        fa = FactorAnalysis(n_components=k, svd_method="lapack")
        fa.fit(_rows_with_covariance(covariance))
    noise_variance = np.maximum(fa.noise_variance_, _MIN_NOISE_VARIANCE)
    loadings = np.zeros((n_features, n_components))
    loadings[:, :k] = fa.components_.T
    precision = loadings.T @ (loadings / noise_variance[:, None])
    gains, rotation = np.linalg.eigh(precision)
    loadings = loadings @ rotation
    posterior_variance = 1.0 / (1.0 + np.clip(gains, 0.0, None))
    encoder_weight = posterior_variance[:, None] * (loadings / noise_variance[:, None]).T
    return loadings, noise_variance, encoder_weight, posterior_variance


@torch.no_grad()
def start_at_factor_analysis(module, mean, covariance):
    """Set the weights of a linear-Gaussian ``VAEModule`` to the factor-analysis fit.

    ``mean`` and ``covariance`` are those of the standardised training data
    (:func:`standardised_moments`), the units the module works in.
    """
    n_components = module.encoder.loc.out_features
    loadings, noise_variance, encoder_weight, posterior_variance = factor_analysis_parameters(
        mean, covariance, n_components
    )
    # The posterior's scale is softplus(raw) + its floor; the decoder's the same
    # with MIN_SCALE. Both floors are far below the values set here.
    posterior_raw = _inverse_softplus(np.sqrt(posterior_variance) - MIN_POSTERIOR_SCALE)
    head = module.decoder.head
    values = {
        head.loc.weight: loadings,
        head.loc.bias: mean,
        head.raw_scale.value: _inverse_softplus(np.sqrt(noise_variance) - MIN_SCALE),
        module.encoder.loc.linear.weight: encoder_weight,
        module.encoder.loc.linear.bias: -encoder_weight @ mean,
        module.encoder.raw_scale.linear.weight: np.zeros_like(encoder_weight),
        module.encoder.raw_scale.linear.bias: posterior_raw,
    }
    for parameter, value in values.items():
        parameter.copy_(torch.as_tensor(value, dtype=parameter.dtype))
