"""Uniform dequantisation of integer data, for comparing discrete and continuous models."""

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from ._checks import check_integer_valued

__all__ = ["dequantize"]


def dequantize(X, *, random_state=None):
    """Add uniform noise ``U(0, 1)`` to integer-valued data.

    Returns ``X + U`` with ``U`` drawn independently and uniformly on
    ``[0, 1)`` for every entry, so each integer ``x`` is spread over its unit
    cell ``[x, x + 1)``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Integer-valued data (of any numeric dtype), for example counts or
        pixel intensities. It is not modified.

    random_state : int, RandomState instance or None, default=None
        Determines the noise. Pass an int for reproducible results.

    Returns
    -------
    X_dequantized : ndarray of shape (n_samples, n_features)
        A new float64 array with ``X <= X_dequantized < X + 1``.

    Raises
    ------
    ValueError
        If ``X`` contains NaN or infinite values, or non-integer values.

    See Also
    --------
    sklearn_vae.HistogramDensity : With ``bins="integer"``, a discrete model
        whose scores equal its density on dequantised data.

    Notes
    -----
    A log-probability of integer data and a log-density of continuous data
    are in different units and cannot be compared directly. Dequantisation
    bridges them. A discrete model ``P`` on the integers corresponds to the
    piecewise-constant density ``p(x + u) = P(x)`` for ``u`` in ``[0, 1)^d``,
    because the unit cell has volume 1: ``log P(x)`` equals the log-density of
    that model on dequantised data. Conversely, a continuous density ``p``
    defines the discrete model ``P(x) = ∫ p(x + u) du`` over the unit cell,
    and by Jensen's inequality

    ``E_u[log p(x + u)] <= log ∫ p(x + u) du = log P(x)``,

    so the mean score of a continuous model on ``dequantize(X)`` is, in
    expectation, a lower bound on the discrete log-likelihood of ``X`` [1]_,
    directly comparable with the log-probabilities of discrete models.

    References
    ----------
    .. [1] L. Theis, A. van den Oord and M. Bethge, "A note on the evaluation
       of generative models", ICLR 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_vae import dequantize
    >>> counts = np.random.RandomState(0).poisson(3.0, size=(100, 2))
    >>> dequantize(counts, random_state=0).shape
    (100, 2)
    """
    X = check_array(X, dtype=np.float64)
    check_integer_valued(X, "dequantize", "Pass the raw integers (counts, levels, pixels).")
    noise = check_random_state(random_state).uniform(size=X.shape)
    # Rounding could give X + 1 when the noise is within 2**-53 of 1: stay below it.
    return np.minimum(X + noise, np.nextafter(X + 1.0, X))
