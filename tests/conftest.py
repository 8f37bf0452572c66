"""Shared fixtures: small data sets and quickly fitted models."""

import numpy as np
import pytest
import torch

from sklearn_vae import VAETransformer

# The tests' models are tiny: one torch thread is fastest for them.
torch.set_num_threads(1)

FAST = dict(
    n_components=2, hidden_layer_sizes=(16,), learning_rate_init=1e-2, max_iter=50, random_state=0
)


def make_factor_data(n_samples, n_features=6, n_components=2, seed=0):
    """Rows drawn from a factor-analysis model: x = W z + mu + noise."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_components, n_features))
    noise = rng.uniform(0.3, 0.8, size=n_features)
    Z = rng.normal(size=(n_samples, n_components))
    return Z @ W + 3.0 + rng.normal(size=(n_samples, n_features)) * noise


@pytest.fixture(scope="session")
def X_small():
    return make_factor_data(200)


@pytest.fixture(scope="session")
def fitted_vae(X_small):
    return VAETransformer(**FAST).fit(X_small)
