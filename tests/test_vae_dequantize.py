"""VAETransformer(dequantize=True): a Gaussian VAE of integer data plus fresh U(0, 1) noise."""

import numpy as np
import pytest
import torch
from conftest import FAST, warned_from
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.model_selection import GridSearchCV

from sklearn_vae import VAETransformer, dequantize
from sklearn_vae._data import RowDataset, row_hashed_uniform

# Uniform noise U(0, 1) has mean 1/2 and variance 1/12.
NOISE_MEAN, NOISE_VAR = 0.5, 1 / 12


def _integers(n_samples=400, seed=0):
    """A constant column (3) and a column uniform on the integers 0..4.

    Fitted with ``likelihood="gaussian"`` below: under ``"auto"`` the
    constant column would be a point mass, not a dequantised Gaussian.
    """
    rng = np.random.default_rng(seed)
    return np.column_stack([np.full(n_samples, 3), rng.integers(0, 5, n_samples)]).astype(float)


def test_training_batches_get_fresh_noise_in_each_unit_cell():
    X = _integers(2000)
    dataset = RowDataset(X, dequantize="fresh")
    torch.manual_seed(0)
    first, second = dataset.batch(slice(0, 2000)).numpy(), dataset.batch(slice(0, 2000)).numpy()
    for batch in (first, second):
        noise = batch - X
        assert np.all(noise >= 0) and np.all(noise < 1)
        assert abs(noise.mean() - NOISE_MEAN) < 4 * np.sqrt(NOISE_VAR / noise.size)
    assert not np.any(first == second)


def test_hashed_noise_is_uniform_and_a_function_of_each_row():
    X = np.random.default_rng(0).integers(-50, 50, size=(5000, 4)).astype(float)
    noise = row_hashed_uniform(X)
    assert np.all(noise >= 0) and np.all(noise < 1)
    assert abs(noise.mean() - NOISE_MEAN) < 4 * np.sqrt(NOISE_VAR / noise.size)
    assert abs(noise.var() - NOISE_VAR) < 4 * np.sqrt(1 / 180 / noise.size)  # var of (U - 1/2)^2
    # Independent of row order and of the other rows; distinct rows differ.
    order = np.random.default_rng(1).permutation(len(X))
    assert_array_equal(row_hashed_uniform(X[order]), noise[order])
    assert_array_equal(row_hashed_uniform(X[:1]), noise[:1])
    unique = np.unique(X, axis=0)
    assert len(np.unique(row_hashed_uniform(unique)[:, 0])) == len(unique)


def test_standardisation_uses_the_moments_of_dequantised_data():
    X = _integers()
    vae = VAETransformer(**{**FAST, "max_iter": 1}, likelihood="gaussian", dequantize=True).fit(X)
    standardisation = vae._standardisation
    assert_allclose(standardisation.loc, X.mean(axis=0) + NOISE_MEAN, rtol=1e-12)
    # The constant column gets the noise's scale, not StandardScaler's unit scale.
    assert_allclose(standardisation.scale, np.sqrt(X.var(axis=0) + NOISE_VAR), rtol=1e-12)


def test_score_is_a_density_of_dequantised_data():
    # X + U is uniform on [3, 4) x [0, 5): its log-density is -log 5 everywhere.
    # By Gibbs' inequality no model's expected log-density exceeds that, and
    # the model family contains the best product Gaussian (a decoder that
    # ignores z), whose expected log-density is -1/2 log(2 pi e var) per
    # feature. A held-out mean must lie between the two, within Monte Carlo
    # error.
    X_train, X_test = _integers(2000, seed=0), dequantize(_integers(2000, seed=1), random_state=2)
    vae = VAETransformer(
        n_components=1,
        hidden_layer_sizes=(16,),
        likelihood="gaussian",
        dequantize=True,
        random_state=0,
    )
    scores = vae.fit(X_train).log_likelihood(X_test, n_importance_samples=100, random_state=0)
    error = 3 * scores.std() / np.sqrt(len(scores))
    variances = np.array([0.0, 2.0]) + NOISE_VAR  # the integers 0..4 have variance 2
    best_gaussian = -0.5 * np.log(2 * np.pi * np.e * variances).sum()
    assert best_gaussian - error <= scores.mean() <= -np.log(5) + error
    # Trained on the integers themselves, the constant column gets the
    # variance floor and dequantised data lie far outside it.
    plain = VAETransformer(
        n_components=1,
        hidden_layer_sizes=(16,),
        likelihood="gaussian",
        dequantize=False,
        random_state=0,
    ).fit(X_train)
    assert plain.score(X_test) < best_gaussian - 100


def test_same_seed_same_model_and_noise_is_used():
    X = _integers()
    params = {**FAST, "likelihood": "gaussian", "dequantize": True}
    first = VAETransformer(**params).fit(X).transform(X)
    assert_array_equal(first, VAETransformer(**params).fit(X).transform(X))
    plain = VAETransformer(**{**params, "dequantize": False}).fit(X).transform(X)
    assert not np.allclose(first, plain)


def test_partial_fit_dequantizes_each_chunk():
    # Record what the model is trained on: after the first call initialised
    # it, every row of the next chunk reaches the module as the integer row
    # plus noise in [0, 1) with mean 1/2, and a second pass over the same
    # chunk gets fresh noise.
    X = _integers()
    chunks = np.array_split(X, 4)
    vae = VAETransformer(**FAST, likelihood="gaussian", dequantize=True).partial_fit(chunks[0])
    seen = []
    vae.net_.module_.register_forward_pre_hook(lambda module, args: seen.append(args[0].numpy()))
    passes = []
    for _ in range(2):
        seen.clear()
        vae.partial_fit(chunks[1])
        passes.append(np.concatenate(seen))
    assert vae.n_iter_ == 3 and np.all(np.isfinite(vae.loss_curve_))
    # The module sees standardised float32 values: mapped back, they are
    # x + u to float32's rounding of the standardised value times the scale.
    standardisation = vae._standardisation
    rounding = 2 * np.finfo(np.float32).eps * standardisation.scale * np.abs(passes[0]).max(0)
    for batch in passes:
        batch = standardisation.inverse_transform(batch)
        rows = np.round(batch - 0.5)
        noise = batch - rows
        assert_array_equal(np.unique(rows, axis=0), np.unique(chunks[1], axis=0))
        assert len(rows) == len(chunks[1])
        assert np.all(noise >= -rounding) and np.all(noise < 1 + rounding)
        assert abs(noise.mean() - NOISE_MEAN) < 4 * np.sqrt(NOISE_VAR / noise.size)
    assert not np.array_equal(np.sort(passes[0], axis=0), np.sort(passes[1], axis=0))


def test_integers_are_scored_dequantised_with_row_hashed_noise():
    X = _integers()
    vae = VAETransformer(**FAST, likelihood="gaussian", dequantize=True).fit(X)
    expected = vae.score_samples(X + row_hashed_uniform(X))
    assert_array_equal(vae.score_samples(X), expected)
    order = np.random.default_rng(0).permutation(len(X))
    assert_array_equal(vae.score_samples(X[order]), expected[order])
    log_likelihood = vae.log_likelihood(X, n_importance_samples=5, random_state=0)
    dequantized = X + row_hashed_uniform(X)
    # log_likelihood works in float32, where the noise is added after rounding.
    assert_allclose(
        log_likelihood,
        vae.log_likelihood(dequantized, n_importance_samples=5, random_state=0),
        rtol=1e-5,
    )


def test_cross_validates_on_integer_data():
    # fit takes the integer folds, score dequantises the held-out integer
    # folds: every candidate gets a finite score in nats.
    search = GridSearchCV(
        VAETransformer(**FAST, dequantize=True), {"n_components": [1, 2]}, cv=2
    ).fit(_integers())
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_non_integer_data_is_rejected():
    X = _integers()
    X[5, 1] = 2.5
    with pytest.raises(ValueError, match=r"dequantize=True requires integer-valued X.*X\[5, 1\]"):
        VAETransformer(**FAST, dequantize=True).fit(X)


@pytest.mark.parametrize("likelihood", ["categorical", "poisson", "bernoulli"])
def test_only_the_gaussian_likelihood_is_dequantized(likelihood):
    X = _integers() > 2 if likelihood == "bernoulli" else _integers()
    with pytest.raises(ValueError, match="applies to likelihood='gaussian' only"):
        VAETransformer(**FAST, likelihood=likelihood, dequantize=True).fit(X.astype(float))


def _lattice_warnings(record):
    return [w for w in record if "integer-valued" in str(w.message)]


def test_gaussian_fit_on_integer_data_warns_once_with_the_remedies():
    X = np.random.default_rng(0).integers(0, 17, size=(80, 4)).astype(float)
    with pytest.warns(UserWarning, match="integer-valued") as record:
        VAETransformer(**{**FAST, "max_iter": 2}, dequantize=False).fit(X)
    (warning,) = _lattice_warnings(record)
    message = str(warning.message)
    assert "dequantize=True" in message and "likelihood='categorical'" in message
    assert warned_from(warning, __file__)  # points at the user's call


@pytest.mark.parametrize(
    "params, shift",
    [
        ({"dequantize": True}, 0.0),
        ({}, 0.0),  # "auto" dequantises each column of integers
        ({"likelihood": "categorical"}, 0.0),
        ({"likelihood": "poisson"}, 0.0),
        ({}, 0.5),  # real-valued data
    ],
)
def test_no_lattice_warning_when_the_integers_are_modelled_as_such(recwarn, params, shift):
    X = np.random.default_rng(0).integers(0, 17, size=(80, 4)) + shift
    VAETransformer(**{**FAST, "max_iter": 2, **params}).fit(X)
    assert _lattice_warnings(recwarn) == []


def test_lattice_warning_names_integer_columns_only_without_dequantisation(recwarn):
    import pandas as pd

    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"mass": rng.integers(3000, 6000, size=80).astype(float), "length": rng.normal(size=80)}
    )
    VAETransformer(**{**FAST, "max_iter": 2}, dequantize=False).fit(df[["length"]])
    VAETransformer(**{**FAST, "max_iter": 2}).fit(df)  # mass is dequantised
    assert _lattice_warnings(recwarn) == []
    # With dequantize=False a column of integers is a lattice beside real values too.
    with pytest.warns(UserWarning, match="integer-valued columns, but its column 'mass' is"):
        VAETransformer(**{**FAST, "max_iter": 2}, dequantize=False).fit(df)
    with pytest.warns(UserWarning, match="X is integer-valued, but its column 'mass' is"):
        VAETransformer(**{**FAST, "max_iter": 2}, dequantize=False).fit(df[["mass"]])


def test_lattice_warning_message_in_full():
    X = np.arange(40)[:, None] % np.arange(2, 7)  # five integer columns
    with pytest.warns(UserWarning) as record:
        VAETransformer(**{**FAST, "max_iter": 2}, dequantize=False).fit(X.astype(float))
    (warning,) = _lattice_warnings(record)
    assert warning.category is UserWarning
    assert str(warning.message) == (
        "X is integer-valued, but its columns 0, 1, 2, ... are modelled with a continuous "
        "Gaussian likelihood of the raw integers: such a density is measured on a lattice, "
        "so its scores are not comparable with other models' and can be made arbitrarily "
        "large. Set dequantize=True (a density of x + U(0, 1), in the units of discrete "
        "models), or likelihood='categorical' or 'poisson' to model the integers as they are."
    )
    with pytest.warns(UserWarning, match=r"but its columns 0, 1 are modelled with"):
        VAETransformer(**{**FAST, "max_iter": 2}, dequantize=False).fit(X[:, :2].astype(float))
