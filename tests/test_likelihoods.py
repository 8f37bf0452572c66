"""Each observation model gives a normalised distribution and guards its support."""

import copy
import itertools

import numpy as np
import pytest
import torch
from numpy.polynomial.hermite_e import hermegauss
from numpy.testing import assert_array_equal

from sklearn_vae import VAETransformer
from sklearn_vae._likelihoods import LIKELIHOODS, Likelihood

SMALL = dict(n_components=1, hidden_layer_sizes=(16,), learning_rate_init=1e-2, random_state=0)


def _correlated_counts(n_samples, high, seed=0):
    """Two integer features in 0..high that depend on each other."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, high + 1, size=n_samples)
    second = np.clip(first + rng.integers(-1, 2, size=n_samples), 0, high)
    return np.column_stack([first, second]).astype(float)


def test_every_registered_likelihood_is_a_named_subclass():
    for name, cls in LIKELIHOODS.items():
        assert issubclass(cls, Likelihood) and cls.name == name


@pytest.mark.parametrize("likelihood, high", [("categorical", 3), ("poisson", 3), ("bernoulli", 1)])
def test_discrete_probabilities_sum_to_one(likelihood, high):
    # With a 1-d latent space the marginal P(x) = E_z[p(x | z)], z ~ N(0, 1), is
    # computed by 40-node Gauss-Hermite quadrature. Summed over the whole support
    # (Poisson: counts up to 100 for each feature, far beyond the largest rate the
    # decoder gives at any node), it is a weighted sum of the per-node totals
    # sum_x p(x | z_k) = 1, so it equals 1 up to float64 rounding: 1e-6 leaves room
    # for rounding only, never for a missing or extra constant in log p(x | z).
    X = _correlated_counts(400, high)
    vae = VAETransformer(**SMALL, likelihood=likelihood, max_iter=20).fit(X)
    module = copy.deepcopy(vae.net_.module_).double().eval()
    nodes, weights = hermegauss(40)
    z = torch.as_tensor(nodes)[:, None, None]
    top = 100 if likelihood == "poisson" else high
    support = torch.tensor(list(itertools.product(range(top + 1), repeat=2)), dtype=torch.float64)
    with torch.no_grad():
        if likelihood == "poisson":
            assert module.reconstruct_mean(z[:, 0]).max() < 50  # tail beyond 100 < 1e-9
        probability = module.log_prob_given(z, support).exp()  # (node, support point)
    marginal = weights / weights.sum() @ probability.numpy()
    assert abs(marginal.sum() - 1) < 1e-6


@pytest.mark.parametrize("likelihood", ["categorical", "poisson"])
def test_discrete_scores_are_log_probabilities(likelihood):
    X = _correlated_counts(300, 4)
    vae = VAETransformer(**SMALL, likelihood=likelihood).fit(X)
    assert np.all(vae.score_samples(X) <= 0)
    assert np.all(vae.log_likelihood(X, n_importance_samples=50, random_state=0) <= 0)


def test_categorical_samples_and_means_stay_within_levels():
    X = _correlated_counts(300, 4) + 2  # levels 2..6
    vae = VAETransformer(**SMALL, likelihood="categorical").fit(X)
    samples = vae.sample(200, random_state=0)
    assert set(np.unique(samples)) <= set(range(2, 7))
    means = vae.inverse_transform(vae.transform(X))
    assert means.min() >= 2 and means.max() <= 6
    assert_array_equal(vae.net_.module_.likelihood.levels.numpy(), np.arange(2, 7))


def test_poisson_samples_are_counts():
    vae = VAETransformer(**SMALL, likelihood="poisson").fit(_correlated_counts(300, 4))
    samples = vae.sample(200, random_state=0)
    assert np.all(samples >= 0) and np.all(samples == np.round(samples))


@pytest.mark.parametrize("likelihood", ["categorical", "poisson"])
def test_non_integer_data_is_rejected(likelihood):
    X = _correlated_counts(50, 3)
    X[4, 1] = 0.5
    with pytest.raises(ValueError, match=r"requires integer-valued X, but X\[4, 1\] = 0.5"):
        VAETransformer(**SMALL, likelihood=likelihood).fit(X)


def test_categorical_rejects_levels_outside_the_fitted_range():
    vae = VAETransformer(**SMALL, likelihood="categorical", max_iter=5).fit(
        _correlated_counts(50, 3)
    )
    with pytest.raises(ValueError, match=r"outside the levels seen in fit \(0 to 3\)"):
        vae.score_samples(np.array([[1.0, 4.0]]))
    # Transform needs no probability of x, so it accepts any finite value.
    assert vae.transform(np.array([[1.0, 4.0]])).shape == (1, 1)


def test_categorical_rejects_too_many_levels():
    X = np.array([[0.0, 1.0], [5000.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match="would need 5001 levels"):
        VAETransformer(**SMALL, likelihood="categorical").fit(X)


def test_poisson_rejects_negative_counts():
    with pytest.raises(ValueError, match="requires non-negative counts"):
        VAETransformer(**SMALL, likelihood="poisson").fit(_correlated_counts(50, 3) - 1)
