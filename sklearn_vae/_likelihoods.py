"""Observation models p(x | z): one class per distribution family."""

import numpy as np
import torch
from torch import nn
from torch.distributions import Bernoulli, Categorical, Independent, Normal, Poisson

from ._data import check_integer_valued, iter_row_chunks

__all__ = [
    "Likelihood",
    "GaussianLikelihood",
    "BernoulliLikelihood",
    "CategoricalLikelihood",
    "PoissonLikelihood",
    "LIKELIHOODS",
]

# Floor on the Gaussian decoder's scale, in standardised units: a variance
# floor of 1e-6, the same as GaussianMixture's default ``reg_covar``.
MIN_SCALE = 1e-3


class Likelihood(nn.Module):
    """Base class of the decoder's observation model p(x | z).

    A likelihood owns everything that depends on the distribution family:
    which values of ``X`` it supports, the statistics it learns from the
    training data (stored as buffers so they travel with the module), the
    output layer of the decoder, and the map between the units of ``X`` and
    the units in which the ``torch.distributions`` object is defined.

    Adding a likelihood means subclassing this class and registering it in
    :data:`LIKELIHOODS`; nothing else in the library changes.

    Parameters
    ----------
    n_features : int
        Number of features of ``X``.
    """

    #: Name used for the ``likelihood`` parameter of the estimators.
    name = None

    def __init__(self, n_features):
        super().__init__()
        self.n_features = n_features
        self.register_buffer("log_det_jacobian", torch.zeros(()))

    def check_support(self, X):
        """Raise ``ValueError`` if ``X`` has values outside the support.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Validated, finite input data.
        """

    def fit(self, X, loc, scale):
        """Learn data statistics (for example a scaling) from ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Training data, already checked with :meth:`check_support`.
        loc, scale : ndarray of shape (n_features,)
            Column means and standard deviations of ``X`` (constant columns
            have a unit scale).

        Returns
        -------
        self : Likelihood
        """
        return self

    def make_head(self, n_inputs, heteroscedastic):
        """Return the decoder's output layer, mapping hidden units to parameters.

        Parameters
        ----------
        n_inputs : int
            Width of the last hidden layer (the latent size when the decoder
            has no hidden layer).
        heteroscedastic : bool
            Whether dispersion parameters, where the family has any, may depend
            on ``z`` (True) or are one learned value per feature (False).

        Returns
        -------
        head : torch.nn.Module
        """
        raise NotImplementedError

    def distribution(self, params):
        """Distribution over the model-space target, one event per row."""
        raise NotImplementedError

    def to_target(self, x):
        """Map a float32 batch in the units of ``X`` to the model space."""
        return x

    def from_target(self, t):
        """Map model-space values back to the units of ``X``."""
        return t

    def mean(self, params):
        """Mean of p(x | z) in the units of ``X``."""
        return self.from_target(self.distribution(params).mean)

    def log_prob(self, params, x):
        """Log-density of ``x`` (in the units of ``X``) under p(x | z), in nats.

        The log-absolute-determinant of the Jacobian of :meth:`to_target` is
        added, so the value is a log-density of ``x`` exactly as passed in.
        """
        return self.distribution(params).log_prob(self.to_target(x)) + self.log_det_jacobian

    def sample(self, params):
        """Draw ``x ~ p(x | z)`` in the units of ``X`` (uses torch's global RNG)."""
        return self.from_target(self.distribution(params).sample())


class _PerFeature(nn.Module):
    """A learned vector, one value per feature, that ignores its input."""

    def __init__(self, n_features):
        super().__init__()
        self.value = nn.Parameter(torch.zeros(n_features))

    def forward(self, h):
        return self.value.expand(*h.shape[:-1], -1)


class _GaussianHead(nn.Module):
    """Output layer giving a location and an unconstrained scale per feature."""

    def __init__(self, n_inputs, n_features, heteroscedastic):
        super().__init__()
        self.loc = nn.Linear(n_inputs, n_features)
        self.raw_scale = (
            nn.Linear(n_inputs, n_features) if heteroscedastic else _PerFeature(n_features)
        )

    def forward(self, h):
        return self.loc(h), self.raw_scale(h)


class GaussianLikelihood(Likelihood):
    """Diagonal Gaussian p(x | z) with a learned, floored variance.

    The data are standardised with the training mean and standard deviation
    (constant features keep a unit scale, as in ``StandardScaler``) and the
    log-Jacobian of that map is added back, so scores are log-densities of
    ``X`` in its own units. The decoder outputs a mean and a scale per
    feature; the scale is ``softplus(.) + 1e-3`` in standardised units, a
    variance floor of 1e-6 that keeps constant features from sending the
    density to infinity.
    """

    name = "gaussian"

    def __init__(self, n_features):
        super().__init__(n_features)
        self.register_buffer("loc", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    def fit(self, X, loc, scale):
        self.loc.copy_(torch.as_tensor(loc))
        self.scale.copy_(torch.as_tensor(scale))
        self.log_det_jacobian.fill_(-float(np.log(scale).sum()))
        return self

    def make_head(self, n_inputs, heteroscedastic):
        return _GaussianHead(n_inputs, self.n_features, heteroscedastic)

    def distribution(self, params):
        loc, raw_scale = params
        scale = nn.functional.softplus(raw_scale) + MIN_SCALE
        return Independent(Normal(loc, scale, validate_args=False), 1)

    def to_target(self, x):
        return (x - self.loc) / self.scale

    def from_target(self, t):
        return t * self.scale + self.loc


class BernoulliLikelihood(Likelihood):
    """Independent Bernoulli p(x | z) for data in [0, 1].

    For binary data the score is a log-probability. Values strictly between
    0 and 1 are accepted (the loss is then the binary cross-entropy, as for
    grey-level images), but the score is no longer a normalised density.
    """

    name = "bernoulli"

    def check_support(self, X):
        if X.min() < 0 or X.max() > 1:
            raise ValueError(
                "likelihood='bernoulli' requires X in [0, 1]; got values in "
                f"[{X.min():.4g}, {X.max():.4g}]. Rescale X (for example with "
                "MinMaxScaler) or use likelihood='gaussian'."
            )

    def make_head(self, n_inputs, heteroscedastic):
        return nn.Linear(n_inputs, self.n_features)

    def distribution(self, params):
        return Independent(Bernoulli(logits=params, validate_args=False), 1)


# More levels than this would make the decoder's output layer impractically wide.
MAX_LEVELS = 1024


def _check_integer_valued(X, likelihood):
    check_integer_valued(
        X, f"likelihood={likelihood!r}", "Round or bin X first, or use likelihood='gaussian'."
    )


class CategoricalLikelihood(Likelihood):
    """Independent categorical p(x | z) over each feature's integer levels.

    The levels are the integers from the smallest to the largest value seen in
    ``fit``, shared by all features (for pixel intensities 0..16, 17 levels),
    so a level that one feature never took in the training data still gets a
    learned probability. Scores are log-probabilities (nats, <= 0). For
    integer data they equal the log-density of the same model on data
    dequantised with U(0, 1) noise, so they compare directly with continuous
    models scored on ``dequantize(X)``.

    Non-integer values, and values outside the fitted range, cannot be scored
    and raise ``ValueError``. Features with very different ranges are best
    encoded first (for example with ``OrdinalEncoder``).
    """

    name = "categorical"

    def __init__(self, n_features):
        super().__init__(n_features)
        self.register_buffer("levels", torch.zeros(0))

    def check_support(self, X):
        _check_integer_valued(X, self.name)
        if len(self.levels) == 0:
            return
        low, high = self.levels[0].item(), self.levels[-1].item()
        if low <= X.min() and X.max() <= high:
            return
        for start, chunk in iter_row_chunks(X):
            outside = (chunk < low) | (chunk > high)
            if not outside.any():
                continue
            row, col = np.argwhere(outside)[0]
            row += start
            raise ValueError(
                f"X[{row}, {col}] = {X[row, col]:g} is outside the levels seen in fit "
                f"({low:g} to {high:g}); likelihood='categorical' gives it no probability. "
                "Refit on data that covers every level."
            )

    def fit(self, X, loc, scale):
        low, high = X.min(), X.max()
        if high - low + 1 > MAX_LEVELS:
            raise ValueError(
                f"likelihood='categorical' would need {int(high - low + 1)} levels "
                f"(X ranges from {low:g} to {high:g}); at most {MAX_LEVELS} are supported. "
                "Bin X first or use likelihood='poisson' or 'gaussian'."
            )
        self.levels = torch.arange(low, high + 1, dtype=torch.float32)
        return self

    def make_head(self, n_inputs, heteroscedastic):
        return nn.Linear(n_inputs, self.n_features * len(self.levels))

    def distribution(self, params):
        logits = params.unflatten(-1, (self.n_features, len(self.levels)))
        return Independent(Categorical(logits=logits, validate_args=False), 1)

    def to_target(self, x):
        return x - self.levels[0]

    def from_target(self, t):
        return t.to(self.levels.dtype) + self.levels[0]

    def mean(self, params):
        return self.distribution(params).base_dist.probs @ self.levels.to(params.dtype)


class PoissonLikelihood(Likelihood):
    """Independent Poisson p(x | z) for counts (non-negative integers).

    Chosen as the count model because mixing a Poisson over the latent
    variable already makes the marginal overdispersed, so the extra dispersion
    parameter of a negative binomial is seldom needed. Scores are
    log-probabilities of the counts.
    """

    name = "poisson"

    def check_support(self, X):
        _check_integer_valued(X, self.name)
        if X.min() < 0:
            raise ValueError(
                "likelihood='poisson' requires non-negative counts; got a minimum of "
                f"{X.min():g}. Use likelihood='gaussian' for signed data."
            )

    def make_head(self, n_inputs, heteroscedastic):
        return nn.Linear(n_inputs, self.n_features)

    def distribution(self, params):
        return Independent(Poisson(torch.exp(params), validate_args=False), 1)


#: Registry of the available likelihoods, by the name users pass.
LIKELIHOODS = {
    cls.name: cls
    for cls in (GaussianLikelihood, BernoulliLikelihood, CategoricalLikelihood, PoissonLikelihood)
}
