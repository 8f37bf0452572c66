"""VAETransformer behaves like a scikit-learn transformer and density estimator."""

import copy
import io
import pickle
import re
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import FAST, round_trip
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler
from skorch.exceptions import DeviceWarning

import sklearn_vae._training
from sklearn_vae import VAETransformer


def _outputs(vae, X):
    """Every output of a fitted model, with fixed seeds where it is random."""
    Z = vae.transform(X)
    return {
        "transform": Z,
        "inverse_transform": vae.inverse_transform(Z),
        "sample": vae.sample(7, random_state=3),
        "score_samples": vae.score_samples(X),
        "log_likelihood": vae.log_likelihood(X, n_importance_samples=20, random_state=3),
    }


def test_output_shapes_and_dtypes(fitted_vae, X_small):
    out = _outputs(fitted_vae, X_small)
    n, d = X_small.shape
    assert out["transform"].shape == (n, 2)
    assert out["inverse_transform"].shape == (n, d)
    assert out["sample"].shape == (7, d)
    assert out["score_samples"].shape == (n,)
    assert out["log_likelihood"].shape == (n,)
    for value in out.values():
        assert value.dtype == np.float64
        assert np.all(np.isfinite(value))


def test_fit_returns_self_and_sets_history(X_small):
    vae = VAETransformer(**FAST)
    assert vae.fit(X_small) is vae
    assert vae.n_features_in_ == X_small.shape[1]
    assert len(vae.loss_curve_) == vae.n_iter_
    assert len(vae.validation_scores_) == vae.n_iter_
    assert vae.best_validation_score_ == max(vae.validation_scores_)
    assert vae.best_loss_ is None


def test_history_without_early_stopping(X_small):
    vae = VAETransformer(**FAST, early_stopping=False).fit(X_small)
    assert vae.validation_scores_ is None
    assert vae.best_validation_score_ is None
    assert vae.best_loss_ == min(vae.loss_curve_)


def test_same_random_state_gives_identical_fits(X_small):
    first = _outputs(VAETransformer(**FAST).fit(X_small), X_small)
    second = _outputs(VAETransformer(**FAST).fit(X_small), X_small)
    for name in first:
        assert_array_equal(first[name], second[name], err_msg=name)


def test_different_random_state_gives_different_fits(X_small):
    a = VAETransformer(**{**FAST, "random_state": 0}).fit(X_small).transform(X_small)
    b = VAETransformer(**{**FAST, "random_state": 1}).fit(X_small).transform(X_small)
    assert not np.allclose(a, b)


def test_fit_leaves_global_torch_rng_untouched(X_small):
    before = torch.get_rng_state()
    VAETransformer(**FAST).fit(X_small).sample(3, random_state=0)
    assert torch.equal(before, torch.get_rng_state())


def test_transform_and_scores_are_deterministic(fitted_vae, X_small):
    assert_array_equal(fitted_vae.transform(X_small), fitted_vae.transform(X_small))
    assert_array_equal(fitted_vae.score_samples(X_small), fitted_vae.score_samples(X_small))


def test_sample_reproducible_for_fixed_random_state(fitted_vae):
    assert_array_equal(fitted_vae.sample(5, random_state=1), fitted_vae.sample(5, random_state=1))
    assert not np.allclose(
        fitted_vae.sample(5, random_state=1), fitted_vae.sample(5, random_state=2)
    )


def test_score_is_mean_of_score_samples(fitted_vae, X_small):
    assert fitted_vae.score(X_small) == pytest.approx(fitted_vae.score_samples(X_small).mean())


def test_fit_transform_equals_fit_then_transform(X_small):
    Z = VAETransformer(**FAST).fit_transform(X_small)
    assert_array_equal(Z, VAETransformer(**FAST).fit(X_small).transform(X_small))


def test_reconstruction_explains_variance(fitted_vae, X_small):
    X_rec = fitted_vae.inverse_transform(fitted_vae.transform(X_small))
    residual = ((X_small - X_rec) ** 2).sum()
    total = ((X_small - X_small.mean(axis=0)) ** 2).sum()
    assert residual < 0.5 * total


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_round_trip_preserves_every_output(fitted_vae, X_small, dump):
    restored = round_trip(fitted_vae, dump)
    expected, actual = _outputs(fitted_vae, X_small), _outputs(restored, X_small)
    for name in expected:
        assert_array_equal(expected[name], actual[name], err_msg=name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a process without CUDA")
def test_model_recorded_on_cuda_is_moved_to_cpu_when_unpickled(X_small):
    # Simulated without a GPU: the net records device "cuda", as a model fitted
    # on a GPU does (real CUDA tensors are covered by tests/test_gpu.py).
    # Unpickling must move it to the CPU with skorch's DeviceWarning, every
    # output must then be the same, and a refit needs device="cpu".
    vae = VAETransformer(**FAST).fit(X_small)
    expected = _outputs(vae, X_small)
    vae.set_params(device="cuda").net_.device = "cuda"
    # skorch warns twice: for the module's tensors and for the net's device.
    moved = r"requested device \(cuda\) is not available|no CUDA devices are available"
    with pytest.warns(DeviceWarning, match=moved):
        restored = pickle.loads(pickle.dumps(vae))
    assert torch.device(restored.net_.device).type == "cpu"
    actual = _outputs(restored, X_small)
    for name in expected:
        assert_array_equal(expected[name], actual[name], err_msg=name)
    with pytest.raises(ValueError, match="CUDA is not available.*use device='cpu'"):
        restored.fit(X_small)
    restored.set_params(device="cpu").fit(X_small)
    assert torch.device(restored.net_.device).type == "cpu"


def test_pickle_does_not_store_training_data(X_small):
    big = np.tile(X_small, (50, 1))
    size = len(pickle.dumps(VAETransformer(**{**FAST, "max_iter": 2}).fit(big)))
    assert size < big.nbytes / 4


def test_clone_is_unfitted_with_same_params(fitted_vae):
    copy = clone(fitted_vae)
    assert copy.get_params() == fitted_vae.get_params()
    assert not hasattr(copy, "net_")


def test_set_params_then_fit_takes_effect(X_small):
    vae = VAETransformer(**FAST).fit(X_small)
    vae.set_params(n_components=3, hidden_layer_sizes=())
    assert vae.fit(X_small).transform(X_small).shape == (X_small.shape[0], 3)
    assert vae.net_.module_.encoder.first is None


def test_hidden_layer_sizes_accepts_an_int(X_small):
    vae = VAETransformer(**{**FAST, "hidden_layer_sizes": 5}).fit(X_small)
    assert vae.net_.module_.encoder.first.out_features == 5


def test_pandas_input_names_and_output(X_small):
    df = pd.DataFrame(X_small, columns=[f"f{i}" for i in range(X_small.shape[1])])
    vae = VAETransformer(**FAST).fit(df)
    assert list(vae.feature_names_in_) == list(df.columns)
    assert list(vae.get_feature_names_out()) == ["vaetransformer0", "vaetransformer1"]
    out = vae.set_output(transform="pandas").transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["vaetransformer0", "vaetransformer1"]
    assert_array_equal(out.to_numpy(), vae.set_output(transform="default").transform(df))


def test_pipeline_with_scaler(X_small):
    pipe = Pipeline([("scale", MinMaxScaler()), ("vae", VAETransformer(**FAST))]).fit(X_small)
    assert pipe.transform(X_small).shape == (X_small.shape[0], 2)
    assert np.isfinite(pipe.score(X_small))


def test_grid_search_over_latent_size(X_small):
    search = GridSearchCV(VAETransformer(**FAST), {"n_components": [1, 2]}, cv=2)
    search.fit(X_small)
    assert search.best_params_["n_components"] in (1, 2)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_score_ == max(search.cv_results_["mean_test_score"])


def _ledermann_bound(d):
    """The largest k >= 0 with (d - k)**2 >= d + k, by search."""
    return max(k for k in range(d + 1) if (d - k) ** 2 >= d + k)


@pytest.mark.parametrize("d", range(1, 60))
def test_auto_latent_size_is_the_ledermann_bound_between_1_and_8(d):
    expected = min(8, max(1, _ledermann_bound(d)))
    assert sklearn_vae._training.latent_size(d) == expected


def test_auto_latent_size_of_known_tables():
    # 4 columns: 1 factor; 5: 2; 6: 3; 10: 6; 12: 7; 13 and more: the cap of 8.
    sizes = [sklearn_vae._training.latent_size(d) for d in (4, 5, 6, 10, 12, 13, 64)]
    assert sizes == [1, 2, 3, 6, 7, 8, 8]


@pytest.mark.parametrize("d, expected", [(3, 1), (6, 3), (13, 8)])
def test_auto_n_components_is_resolved_at_fit_for_the_tables_columns(d, expected):
    X = np.random.default_rng(0).normal(size=(40, d))
    vae = VAETransformer(**{**FAST, "n_components": "auto", "max_iter": 2}).fit(X)
    assert vae.n_components == "auto" and vae.n_components_ == expected
    assert vae.transform(X).shape == (40, expected)
    assert len(vae.get_feature_names_out()) == expected
    assert vae._fitted_params["n_components"] == expected
    explicit = VAETransformer(**{**FAST, "max_iter": 2}).fit(X)
    assert explicit.n_components_ == FAST["n_components"]


def test_auto_n_components_continues_under_partial_fit_and_warm_start(X_small):
    vae = VAETransformer(**{**FAST, "n_components": "auto", "max_iter": 2, "warm_start": True})
    vae.partial_fit(X_small).partial_fit(X_small)
    size = sklearn_vae._training.latent_size(X_small.shape[1])
    assert vae.n_components_ == size and vae.n_iter_ == 2
    vae.set_params(n_components=size).fit(X_small)  # the value "auto" resolved to: the same model
    assert vae.n_iter_ == 4
    with pytest.raises(ValueError, match="n_components was changed"):
        vae.set_params(n_components=size + 1).fit(X_small)


def test_auto_n_components_is_the_default():
    assert VAETransformer().n_components == "auto"
    with pytest.raises(ValueError, match="n_components"):
        VAETransformer(n_components="many").fit(np.zeros((10, 2)))


def test_early_stopping_stops_before_max_iter(X_small):
    vae = VAETransformer(**{**FAST, "max_iter": 2000, "n_iter_no_change": 5}).fit(X_small)
    # The best epoch's weights are kept and training ran exactly patience epochs past it.
    assert vae.n_iter_ < 2000
    best_epoch = int(np.argmax(vae.validation_scores_))
    assert vae.n_iter_ == best_epoch + 1 + 5


@pytest.mark.parametrize(
    "n_rows, batch_size, expected",
    [
        (180, "auto", 100),  # two steps of 128 rows per epoch: 200 steps in 100 epochs
        (100, "auto", 200),  # one step
        (500, 50, 20),  # ten steps: 20 epochs are 200 steps
        (1000, 128, 25),  # eight steps: 25 epochs
        (100_000, "auto", 20),
    ],
)
def test_auto_patience_spans_200_steps_and_at_least_20_epochs(n_rows, batch_size, expected):
    params = {"n_iter_no_change": "auto", "batch_size": batch_size}
    assert sklearn_vae._training.patience(n_rows, params) == expected
    assert sklearn_vae._training.patience(n_rows, {**params, "n_iter_no_change": 7}) == 7


def test_a_default_fit_stops_after_the_auto_patience_of_its_training_rows(X_small):
    # 90% of the rows train (the rest validate), in one minibatch per epoch.
    vae = VAETransformer(**{**FAST, "max_iter": 2000, "n_iter_no_change": "auto"}).fit(X_small)
    n_train = len(X_small) - int(np.ceil(0.1 * len(X_small)))
    steps = -(-n_train // min(128, n_train))
    patience = max(20, -(-200 // steps))
    assert dict(vae.net_.callbacks_)["early_stopping"].patience == patience
    assert vae.n_iter_ == int(np.argmax(vae.validation_scores_)) + 1 + patience


def test_returned_model_has_the_best_validation_score(X_small, monkeypatch):
    # Capture the validation rows the estimator hands to skorch, then recompute
    # the validation objective (mean over those rows of log p(x | z) - KL with
    # the module's fixed validation draws, eval mode) for the returned weights.
    # It must be the best epoch's, not the last epoch's.
    validation_sets = []
    original = sklearn_vae._training.predefined_split

    def spy(dataset):
        validation_sets.append(dataset)
        return original(dataset)

    monkeypatch.setattr(sklearn_vae._training, "predefined_split", spy)
    vae = VAETransformer(**{**FAST, "max_iter": 2000, "n_iter_no_change": 5}).fit(X_small)
    (validation,) = validation_sets
    # The last epoch is measurably worse than the best one, so keeping the
    # last weights would show.
    assert vae.validation_scores_[-1] < vae.best_validation_score_ - 0.01
    module = copy.deepcopy(vae.net_.module_).eval()
    module.set_prior()  # training and its validation ran under N(0, I)
    with torch.no_grad():
        reconstruction, kl = module(validation.batch(slice(None)))
    # The module sees standardised rows; the scores add the log-Jacobian back.
    jacobian = vae._standardisation.mean_log_jacobian(X_small, validation.indices)
    objective = (reconstruction - kl).mean().item() + jacobian
    # One float32 batch of 20 rows, as in skorch's evaluation: equal to rounding.
    assert_allclose(objective, vae.best_validation_score_, rtol=1e-6)


def test_convergence_warning_when_max_iter_reached(X_small):
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        VAETransformer(**{**FAST, "max_iter": 2}).fit(X_small)


def test_verbose_prints_epoch_table(X_small, capsys):
    VAETransformer(**{**FAST, "max_iter": 2}).fit(X_small)
    assert capsys.readouterr().out == ""
    VAETransformer(**{**FAST, "max_iter": 2, "verbose": 1}).fit(X_small)
    out = capsys.readouterr().out
    assert "train_loss" in out and "valid_loss" in out


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _epoch_table(monkeypatch, stream):
    monkeypatch.setattr(sys, "stdout", stream)
    rng = np.random.default_rng(0)
    VAETransformer(**{**FAST, "max_iter": 3, "verbose": 1}).fit(rng.normal(size=(60, 3)))
    return stream.getvalue()


def test_verbose_table_has_no_colour_codes_when_not_a_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = _epoch_table(monkeypatch, io.StringIO())
    assert "train_loss" in out and "\x1b[" not in out


class _NoIsatty:
    """A stream with no ``isatty``, such as some notebook or logging wrappers."""

    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)

    def flush(self):
        pass

    def getvalue(self):
        return "".join(self.parts)


def test_verbose_table_is_plain_text_on_a_stream_without_isatty(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = _epoch_table(monkeypatch, _NoIsatty())
    assert "train_loss" in out and "\x1b[" not in out


def test_verbose_table_off_a_terminal_is_the_coloured_table_less_its_codes(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = _epoch_table(monkeypatch, _Terminal())
    plain = _epoch_table(monkeypatch, io.StringIO())
    assert coloured != plain

    def without_durations(table):  # the last column, "dur", differs between fits
        return re.sub(r"\s+[0-9.]+$", "", table, flags=re.MULTILINE)

    stripped = re.sub(r"\x1b\[[0-9;]*m", "", coloured)
    assert "train_loss" in plain
    assert without_durations(plain) == without_durations(stripped)


def test_verbose_table_keeps_skorch_colours_on_a_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert "\x1b[" in _epoch_table(monkeypatch, _Terminal())
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in _epoch_table(monkeypatch, _Terminal())


def test_bernoulli_scores_binary_data_as_log_probabilities():
    rng = np.random.default_rng(0)
    X = (rng.uniform(size=(300, 8)) < np.linspace(0.1, 0.9, 8)).astype(float)
    vae = VAETransformer(**FAST, likelihood="bernoulli").fit(X)
    # ELBO <= log P(x) <= 0 for a discrete model; samples are binary.
    assert np.all(vae.score_samples(X) <= 0)
    assert set(np.unique(vae.sample(50, random_state=0))) <= {0.0, 1.0}
    means = vae.inverse_transform(vae.transform(X))
    assert np.all((means >= 0) & (means <= 1))


def _integer_data(likelihood, n_samples=120):
    rng = np.random.default_rng(0)
    first = rng.integers(0, 4, size=n_samples)
    X = np.column_stack([first, np.clip(first + rng.integers(-1, 2, n_samples), 0, 3)])
    return (X > 1).astype(float) if likelihood == "bernoulli" else X.astype(float)


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli", "categorical", "poisson"])
def test_transform_and_score_samples_do_not_depend_on_row_order_or_subset(likelihood):
    # Each row's outputs are a function of that row alone: permuting the rows
    # permutes the outputs, and scoring a subset gives the subset's outputs.
    # transform is computed in float64, so only summation order could differ
    # (1e-12 relative); score_samples in float32 on one fixed batch shape with
    # draws keyed on each row, so nothing about a row's batch-mates enters.
    X = _integer_data(likelihood)
    vae = VAETransformer(**{**FAST, "max_iter": 5}, likelihood=likelihood).fit(X)
    order = np.random.default_rng(1).permutation(len(X))
    subset = order[:7]
    for method in ("transform", "score_samples"):
        full = getattr(vae, method)(X)
        assert_allclose(getattr(vae, method)(X[order]), full[order], rtol=1e-12, err_msg=method)
        assert_allclose(getattr(vae, method)(X[subset]), full[subset], rtol=1e-12, err_msg=method)


def _gaussian_scales(vae, n_points=5):
    """The decoder's Gaussian scales at ``n_points`` latent points, shape (n_points, n_features)."""
    module = vae.net_.module_
    z = torch.randn(n_points, vae.n_components, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return module.likelihood.distribution(module.decoder(z)).scale.numpy()


@pytest.mark.parametrize("decoder", [None, "custom"])
def test_decoder_variance_is_per_sample_or_shared_by_every_sample(decoder):
    from test_custom_network import MLPDecoder

    X = np.random.default_rng(0).normal(size=(80, 3))
    params = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    if decoder == "custom":
        params["decoder"] = MLPDecoder
    scales = {
        variance: _gaussian_scales(VAETransformer(decoder_variance=variance, **params).fit(X))
        for variance in ("heteroscedastic", "homoscedastic")
    }
    assert np.ptp(scales["heteroscedastic"], axis=0).min() > 1e-4
    assert_array_equal(np.ptp(scales["homoscedastic"], axis=0), 0.0)
    assert np.all(scales["homoscedastic"] > 0)
    # Without hidden layers the model is factor analysis: one variance per feature.
    linear = VAETransformer(hidden_layer_sizes=(), n_components=2, max_iter=3, random_state=0)
    assert_array_equal(np.ptp(_gaussian_scales(linear.fit(X)), axis=0), 0.0)


def test_decoder_variance_is_validated():
    with pytest.raises(ValueError, match="decoder_variance"):
        VAETransformer(decoder_variance="per_row").fit(np.zeros((10, 2)))
