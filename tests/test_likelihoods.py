"""Each observation model gives a normalised distribution and guards its support."""

import itertools

import numpy as np
import pytest
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
    # exp(IWAE) is an unbiased estimate of P(x); summed over the whole support it
    # estimates 1. The support is enumerated exactly (Poisson: counts up to 40,
    # whose tail mass is negligible for rates near the data's 0..3). The Monte
    # Carlo error is estimated from two independent seeds.
    X = _correlated_counts(400, high)
    vae = VAETransformer(**SMALL, likelihood=likelihood).fit(X)
    top = 40 if likelihood == "poisson" else high
    support = np.array(list(itertools.product(range(top + 1), repeat=2)), dtype=float)
    totals = [
        np.exp(vae.log_likelihood(support, n_importance_samples=500, random_state=seed)).sum()
        for seed in (0, 1)
    ]
    monte_carlo_sd = abs(totals[0] - totals[1]) / np.sqrt(2)
    assert abs(np.mean(totals) - 1) < 4 * monte_carlo_sd + 1e-3


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
