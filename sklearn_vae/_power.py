"""The Yeo–Johnson power map of standardised columns: its fit, inverse and log-derivative.

A skewed or heavy-tailed column is a poor fit for a Gaussian decoder in any
latent space. The map ``psi(u; lambda)`` of Yeo and Johnson (2000) bends a
standardised column ``u`` towards normality: ``((1 + u)**lambda - 1) /
lambda`` for ``u >= 0`` and ``-((1 - u)**(2 - lambda) - 1) / (2 - lambda)``
for ``u < 0`` (a logarithm at ``lambda = 0`` and ``2``). Keeping ``lambda`` in
``[0, 2]`` keeps ``psi`` a bijection of the real line, so a Gaussian decoder
in the mapped units is a proper density of the column, every value it draws
maps back, and the log-density of ``u`` is that of ``psi(u)`` plus
``log psi'(u)``, exactly. ``lambda = 1`` is the identity.

The exponent is the maximum-likelihood one of :func:`scipy.stats.yeojohnson_llf`
within those bounds. :func:`fit_lambda` keeps it only where it beats the
identity by a likelihood-ratio test at level :data:`TEST_LEVEL`, so a column
that is Gaussian already (most simulated data) is left exactly as it is.
"""

import numpy as np
import torch
from scipy import optimize, stats

__all__ = [
    "GAUSS_HERMITE_NODES",
    "LAMBDA_BOUNDS",
    "TEST_LEVEL",
    "expected_inverse",
    "fit_lambda",
    "yeo_johnson",
    "yeo_johnson_inverse",
    "yeo_johnson_log_derivative",
]

#: The exponents searched: within them the map is a bijection of the real line.
LAMBDA_BOUNDS = (0.0, 2.0)
#: Level of the likelihood-ratio test against the identity (one parameter).
TEST_LEVEL = 1e-3
#: Nodes of the Gauss–Hermite rule of :func:`expected_inverse`.
GAUSS_HERMITE_NODES = 32
# Closer than this to 0 or 2, the limit (a logarithm) is used.
_NEAR = 1e-8


def _positive(u, lmbda):
    """The map on ``u >= 0`` (``u`` nonnegative or NaN)."""
    near = np.abs(lmbda) < _NEAR
    safe = np.where(near, 1.0, lmbda)
    return np.where(near, np.log1p(u), np.expm1(safe * np.log1p(u)) / safe)


def yeo_johnson(u, lmbda):
    """``psi(u; lambda)`` elementwise (``lambda`` broadcast over the columns); NaN stays NaN."""
    u = np.asarray(u, dtype=np.float64)
    lmbda = np.broadcast_to(np.asarray(lmbda, dtype=np.float64), u.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        upper = _positive(np.maximum(u, 0.0), lmbda)
        lower = -_positive(np.maximum(-u, 0.0), 2.0 - lmbda)
        return np.where(u >= 0, upper, np.where(u < 0, lower, np.nan))


def _positive_inverse(t, lmbda, xp):
    """The inverse of :func:`_positive` on ``t >= 0``, with ``xp`` numpy or torch."""
    near = abs(lmbda) < _NEAR
    safe = xp.where(near, 1.0, lmbda)
    return xp.where(near, xp.expm1(t), xp.expm1(xp.log1p(safe * t) / safe))


def yeo_johnson_inverse(t, lmbda):
    """The ``u`` with ``psi(u; lambda) = t``, elementwise; NaN stays NaN.

    ``t`` is an array (computed in float64) or a tensor (in its own dtype,
    with ``lambda`` a tensor that broadcasts against it).
    """
    if torch.is_tensor(t):
        upper = _positive_inverse(t.clamp(min=0.0), lmbda, torch)
        lower = -_positive_inverse((-t).clamp(min=0.0), 2.0 - lmbda, torch)
        return torch.where(t >= 0, upper, lower)  # NaN takes the lower branch: NaN
    t = np.asarray(t, dtype=np.float64)
    lmbda = np.broadcast_to(np.asarray(lmbda, dtype=np.float64), t.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        upper = _positive_inverse(np.maximum(t, 0.0), lmbda, np)
        lower = -_positive_inverse(np.maximum(-t, 0.0), 2.0 - lmbda, np)
        return np.where(t >= 0, upper, np.where(t < 0, lower, np.nan))


def expected_inverse(loc, scale, lmbda, shift, spread):
    """``E[psi^-1(t * spread + shift)]`` for ``t ~ N(loc, scale**2)``, elementwise (tensors).

    What a power-mapped column's conditional mean is before its
    standardisation is undone: the map's inverse of the mean is not the
    mean of the inverse, and a squared error rewards the mean. The integral
    is a Gauss–Hermite rule of :data:`GAUSS_HERMITE_NODES` nodes. The
    parameters broadcast against each other.
    """
    nodes, weights = np.polynomial.hermite.hermgauss(GAUSS_HERMITE_NODES)
    nodes = torch.as_tensor(nodes * np.sqrt(2.0), dtype=loc.dtype, device=loc.device)
    weights = torch.as_tensor(weights / np.sqrt(np.pi), dtype=loc.dtype, device=loc.device)
    t = loc[..., None] + scale[..., None] * nodes
    u = yeo_johnson_inverse(t * spread[..., None] + shift[..., None], lmbda[..., None])
    return (u * weights).sum(-1)


def yeo_johnson_log_derivative(u, lmbda):
    """``log psi'(u; lambda)``: ``(lambda - 1) * sign(u) * log(1 + |u|)``; NaN stays NaN."""
    u = np.asarray(u, dtype=np.float64)
    return (np.asarray(lmbda, dtype=np.float64) - 1.0) * np.sign(u) * np.log1p(np.abs(u))


def fit_lambda(values):
    """The exponent kept for a column's observed standardised ``values``: 1 where none pays.

    The exponent maximises the column's Gaussian log-likelihood after the
    map (:func:`scipy.stats.yeojohnson_llf`) within :data:`LAMBDA_BOUNDS`. It
    is kept when twice its gain over ``lambda = 1`` exceeds the chi-squared
    (one degree of freedom) quantile of ``1 - TEST_LEVEL``, and when the
    column has at least 3 distinct values.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(np.unique(values)) < 3:
        return 1.0
    fitted = optimize.minimize_scalar(
        lambda lmbda: -stats.yeojohnson_llf(lmbda, values),
        bounds=LAMBDA_BOUNDS,
        method="bounded",
    )
    gain = -fitted.fun - stats.yeojohnson_llf(1.0, values)
    critical = stats.chi2.ppf(1 - TEST_LEVEL, df=1) / 2
    return float(fitted.x) if gain > critical else 1.0
