"""The prior fitted after training: a Gaussian mixture of the training rows' codes.

The networks are trained under ``p(z) = N(0, I)``. With ``prior="mixture"``
a last step maximises the ELBO over the prior alone. Its only term that
depends on ``p(z)`` is ``E_x E_q(z|x)[log p(z)]``: the log-likelihood of the
codes ``z ~ q(z | x)`` of the data, which EM maximises
(:class:`~sklearn.mixture.GaussianMixture`, full covariances). This is the
optimal prior's role, the aggregate posterior ``q(z) = E_x q(z | x)``: its
samples land where the data's codes lie, with no "prior hole". The number of
components is chosen on the validation rows' codes: N(0, I) stays where no
mixture of :data:`CANDIDATES` components gives them a higher log-density.
"""

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

__all__ = ["CANDIDATES", "choose_prior"]

#: Numbers of mixture components tried against N(0, I).
CANDIDATES = (2, 4, 8, 16)
#: Rows whose codes the mixture is fitted to and scored on, at most, per side.
MAX_ROWS = 4096
#: Draws from ``q(z | x)`` per row.
DRAWS_PER_ROW = 8


def _codes(model, X, rows, rng):
    """``DRAWS_PER_ROW`` draws from ``q(z | x)`` of at most ``MAX_ROWS`` of ``rows``; float64."""
    if len(rows) > MAX_ROWS:
        rows = np.sort(rng.choice(rows, MAX_ROWS, replace=False))

    def moments(module, x):
        q = module.posterior(x)
        return torch.cat([q.mean, q.stddev], dim=1)

    # Dequantised columns get their noise, as in training and scoring: the codes
    # of the bare integers would sit on a few points between which held-out
    # rows' codes fall.
    X_rows = X[rows]
    dequantize, columns = model.scoring_noise(X_rows)
    codes = model.evaluate(moments, X_rows, dequantize=dequantize, columns=columns)
    loc, scale = np.split(codes, 2, axis=1)
    eps = rng.standard_normal((DRAWS_PER_ROW, *loc.shape))
    return (loc + scale * eps).reshape(-1, loc.shape[1])


def _standard_normal_log_density(Z):
    return float(np.mean(-0.5 * np.sum(Z**2, axis=1) - 0.5 * Z.shape[1] * np.log(2 * np.pi)))


def choose_prior(model, X, train_rows, valid_rows, seed):
    """Fit the candidate mixtures to the training rows' codes; the best on the validation rows'.

    Parameters
    ----------
    model : FittedModel
        The trained model, under N(0, I).
    X : ndarray of shape (n_samples, n_features)
        The training data as the estimator validated it.
    train_rows, valid_rows : ndarray of int
        The rows the networks were trained and validated on.
    seed : int
        Seeds the draws and the mixtures' initialisation.

    Returns
    -------
    mixture : GaussianMixture or None
        The fitted mixture with the highest mean log-density of the validation
        rows' codes, or None where N(0, I) has the highest.
    """
    rng = np.random.default_rng(seed)
    train, valid = _codes(model, X, train_rows, rng), _codes(model, X, valid_rows, rng)
    best, best_score = None, _standard_normal_log_density(valid)
    for n_mixture in CANDIDATES:
        if n_mixture > len(train_rows):
            break
        mixture = GaussianMixture(n_mixture, covariance_type="full", random_state=seed).fit(train)
        score = mixture.score(valid)
        if score > best_score:
            best, best_score = mixture, score
    return best
