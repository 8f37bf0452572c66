"""Every bad input gets a clear scikit-learn-style error and loses nothing."""

import numpy as np
import pytest
import torch
from conftest import FAST
from numpy.testing import assert_array_equal
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_vae import VAETransformer

METHODS = {
    "transform": lambda vae, X: vae.transform(X),
    "score_samples": lambda vae, X: vae.score_samples(X),
    "score": lambda vae, X: vae.score(X),
    "log_likelihood": lambda vae, X: vae.log_likelihood(X, n_importance_samples=2),
}


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_fit_rejects_infinite_values(X_small, bad):
    X = X_small.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match="Input X contains infinity"):
        VAETransformer(**FAST).fit(X)


@pytest.mark.parametrize("method", METHODS)
def test_methods_reject_infinite_values(fitted_vae, X_small, method):
    X = X_small.copy()
    X[0, 0] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        METHODS[method](fitted_vae, X)


@pytest.mark.parametrize("method", METHODS)
def test_methods_reject_a_row_with_every_entry_missing(fitted_vae, X_small, method):
    X = X_small.copy()
    X[4] = np.nan
    with pytest.raises(ValueError, match="Row 4 of X has no observed entry"):
        METHODS[method](fitted_vae, X)


def test_fit_rejects_a_row_with_every_entry_missing(X_small):
    X = X_small.copy()
    X[7] = np.nan
    with pytest.raises(ValueError, match="Row 7 of X has no observed entry"):
        VAETransformer(**FAST).fit(X)


def test_fit_rejects_a_column_missing_in_every_row(X_small):
    X = X_small.copy()
    X[:, 2] = np.nan
    with pytest.raises(ValueError, match="Column 2 is missing in every training row"):
        VAETransformer(**FAST).fit(X)


def test_fit_rejects_1d_input():
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        VAETransformer(**FAST).fit(np.arange(10.0))


def test_fit_rejects_empty_input():
    with pytest.raises(ValueError, match="0 sample"):
        VAETransformer(**FAST).fit(np.empty((0, 3)))


@pytest.mark.parametrize("method", METHODS)
def test_methods_reject_wrong_feature_count(fitted_vae, X_small, method):
    with pytest.raises(ValueError, match="X has 5 features, but VAETransformer is expecting 6"):
        METHODS[method](fitted_vae, X_small[:, :5])


def test_inverse_transform_rejects_wrong_latent_size(fitted_vae):
    with pytest.raises(ValueError, match="n_components=2"):
        fitted_vae.inverse_transform(np.zeros((3, 5)))


@pytest.mark.parametrize(
    "call",
    [
        lambda vae, X: vae.transform(X),
        lambda vae, X: vae.inverse_transform(X[:, :2]),
        lambda vae, X: vae.score_samples(X),
        lambda vae, X: vae.score(X),
        lambda vae, X: vae.log_likelihood(X),
        lambda vae, X: vae.sample(3),
        lambda vae, X: vae.get_feature_names_out(),
    ],
)
def test_unfitted_use_raises_not_fitted_error(X_small, call):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        call(VAETransformer(), X_small)


@pytest.mark.parametrize(
    "params",
    [
        {"n_components": 0},
        {"likelihood": "laplace"},
        {"beta": -1.0},
        {"batch_size": 0},
        {"batch_size": "big"},
        {"learning_rate_init": 0.0},
        {"max_iter": 0},
        {"validation_fraction": 1.0},
        {"n_iter_no_change": 0},
        {"tol": -1.0},
        {"early_stopping": "yes"},
        {"device": 3},
    ],
)
def test_invalid_parameters_raise_invalid_parameter_error(X_small, params):
    with pytest.raises(InvalidParameterError, match=f"The '{next(iter(params))}' parameter"):
        VAETransformer(**params).fit(X_small)


@pytest.mark.parametrize("sizes", [(0,), (4, -1), (2.5,)])
def test_invalid_hidden_layer_sizes(X_small, sizes):
    with pytest.raises(ValueError, match="hidden_layer_sizes must contain positive integers"):
        VAETransformer(**{**FAST, "hidden_layer_sizes": sizes}).fit(X_small)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_cuda_is_reported(X_small):
    with pytest.raises(ValueError, match="CUDA is not available.*use device='cpu'"):
        VAETransformer(**{**FAST, "device": "cuda"}).fit(X_small)


def test_nonexistent_cuda_ordinal_is_reported(X_small):
    # Without CUDA it is unavailable, with fewer than 1000 GPUs an invalid ordinal.
    with pytest.raises(ValueError, match="device='cuda:999' was requested.*use device='cpu'"):
        VAETransformer(**{**FAST, "device": "cuda:999"}).fit(X_small)


def test_unknown_device_string_is_reported(X_small):
    with pytest.raises(ValueError, match="device='gpu0' is not a torch device string"):
        VAETransformer(**{**FAST, "device": "gpu0"}).fit(X_small)


def test_too_few_samples_for_validation_split():
    with pytest.raises(ValueError, match="n_samples=1 is too few.*early_stopping=False"):
        VAETransformer(**FAST).fit(np.ones((1, 3)))


@pytest.mark.parametrize("bad", [0, -3, 2.5])
def test_invalid_sample_and_importance_counts(fitted_vae, X_small, bad):
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        fitted_vae.sample(bad)
    with pytest.raises(ValueError, match="n_importance_samples must be a positive integer"):
        fitted_vae.log_likelihood(X_small, n_importance_samples=bad)


def test_bernoulli_rejects_data_outside_unit_interval(X_small):
    with pytest.raises(
        ValueError, match=r"likelihood='bernoulli' requires X in \[0, 1\].*MinMaxScaler"
    ):
        VAETransformer(**FAST, likelihood="bernoulli").fit(X_small)


def test_bernoulli_scoring_rejects_data_outside_unit_interval():
    X = (np.random.default_rng(0).uniform(size=(100, 4)) < 0.5).astype(float)
    vae = VAETransformer(**FAST, likelihood="bernoulli").fit(X)
    with pytest.raises(ValueError, match="requires X in"):
        vae.score_samples(X + 1)
    with pytest.raises(ValueError, match="requires X in"):
        vae.log_likelihood(X - 1)


def test_levels_beyond_float32_are_rejected_before_training_naming_the_column(X_small):
    # A Gaussian column trains at any magnitude (it is standardised in float64);
    # levels of a categorical column are held in float32 as they are.
    X = X_small.copy()
    X[:, 4] = 1e39
    message = (
        r"Column 4 holds values up to 1e\+39 in magnitude, beyond half of float32's range "
        r"\(1.7e\+38\), in which likelihood='categorical' holds them\. Subtract a reference value"
    )
    with pytest.raises(ValueError, match=message):
        VAETransformer(**FAST, likelihood={4: "categorical"}).fit(X)
    assert np.all(np.isfinite(VAETransformer(**FAST).fit(X).score_samples(X)))


def test_large_finite_values_within_float32_train(X_small):
    vae = VAETransformer(**FAST).fit(X_small * 1e30)
    assert np.all(np.isfinite(vae.score_samples(X_small * 1e30)))


def test_diverging_loss_raises_and_names_the_parameter(X_small):
    with pytest.raises(RuntimeError, match="Training diverged.*learning_rate_init=1e\\+30"):
        VAETransformer(**{**FAST, "learning_rate_init": 1e30}).fit(X_small)


def test_failed_refit_keeps_the_fitted_model(X_small):
    vae = VAETransformer(**FAST).fit(X_small)
    before = vae.transform(X_small)
    vae.set_params(learning_rate_init=1e30)
    with pytest.raises(RuntimeError, match="diverged"):
        vae.fit(X_small[:, :4] * 3)
    assert vae.n_features_in_ == X_small.shape[1]
    assert_array_equal(vae.transform(X_small), before)


def test_input_data_is_never_modified(X_small):
    X = X_small.copy()
    vae = VAETransformer(**FAST).fit(X)
    for method in METHODS.values():
        method(vae, X)
    assert_array_equal(X, X_small)


def test_a_nan_score_is_never_returned_silently(fitted_vae, X_small, monkeypatch):
    # If a computation overflows to NaN on some row, the score methods say which.
    from sklearn_vae._module import VAEModule

    # The stand-in overflows on the rows far out in feature 0, in float32 and
    # in float64 alike, wherever such a row sits in a batch.
    def elbo_with_a_nan(module, x, noise=None):
        values = torch.zeros(x.shape[0], dtype=x.dtype)
        values[x[:, 0].abs() > 100] = float("nan")
        return values

    X = X_small[:3].copy()
    X[1, 0] = 1e6
    monkeypatch.setattr(VAEModule, "elbo", elbo_with_a_nan)
    with pytest.raises(ValueError, match="log-density of row 1 of X is NaN \\(1 rows in all\\)"):
        fitted_vae.score_samples(X)
