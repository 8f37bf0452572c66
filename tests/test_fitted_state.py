"""A fitted estimator answers from its fitted state until the next fit, whatever set_params did.

As in scikit-learn, ``set_params`` after ``fit`` changes what the next fit
does, not the fitted model: every method (and a saved copy) gives the bits it
gave before. Continuing the fitted model (``warm_start=True``,
``partial_fit``) with a parameter that shapes it changed is refused.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_factor_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.mixture import GaussianMixture
from test_custom_network import MLPDecoder, MLPEncoder

from sklearn_vae import DensityOutlierDetector, HistogramDensity, VAEImputer, VAETransformer
from sklearn_vae._training import STRUCTURAL_PARAMS

sio = pytest.importorskip("skops.io", reason="skops is in the 'persist' and 'test' extras")

TINY = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=3, random_state=0)
X = make_factor_data(120)

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning", "ignore::UserWarning"
)

#: A valid value of every parameter of VAETransformer other than the fitted one.
OTHER_VALUES = {
    "n_components": 5,
    "hidden_layer_sizes": (4, 3),
    "encoder": MLPEncoder,
    "encoder_params": {"hidden_layer_sizes": (3,)},
    "decoder": MLPDecoder,
    "decoder_params": {"hidden_layer_sizes": (3,)},
    "likelihood": "poisson",
    "dequantize": True,
    "decoder_variance": "homoscedastic",
    "beta": 0.5,
    "objective": "iwae",
    "n_draws": 3,
    "batch_size": 7,
    "learning_rate_init": 0.5,
    "prior": "mixture",
    "average": True,
    "max_iter": 9,
    "early_stopping": False,
    "validation_fraction": 0.5,
    "n_iter_no_change": 1,
    "tol": 10.0,
    "random_state": 7,
    "verbose": 2,
    "warm_start": True,
    "device": "meta",
    "n_jobs": 2,
}


def test_every_parameter_has_another_value_here():
    assert sorted(OTHER_VALUES) == sorted(VAETransformer().get_params(deep=False))


def vae_outputs(vae, X):
    """Every method of a fitted VAE, seeded where it draws, and a saved and loaded copy's."""
    Z = vae.transform(X)
    given = {vae.schema_.names[0]: X.iloc[0, 0] if isinstance(X, pd.DataFrame) else X[0, 0]}
    out = {
        "transform": Z,
        "inverse_transform": vae.inverse_transform(Z),
        "sample": vae.sample(6, random_state=1),
        "sample_given": vae.sample(4, random_state=1, given=given, n_importance_samples=20),
        "score_samples": vae.score_samples(X),
        "score": np.array(vae.score(X)),
        "log_likelihood": vae.log_likelihood(X, n_importance_samples=10, random_state=1),
        "feature_names_out": vae.get_feature_names_out(),
        "n_iter": np.array([vae.n_iter_, len(vae.loss_curve_)]),
    }
    for dump, loaded in [
        ("pickle", pickle.loads(pickle.dumps(vae))),
        ("skops", sio.loads(sio.dumps(vae), trusted=sio.get_untrusted_types(data=sio.dumps(vae)))),
    ]:
        out[f"{dump}_score_samples"] = loaded.score_samples(X)
        out[f"{dump}_sample"] = loaded.sample(6, random_state=1)
        out[f"{dump}_inverse_transform"] = loaded.inverse_transform(Z)
    return out


def assert_same_outputs(expected, actual):
    assert expected.keys() == actual.keys()
    for name, value in expected.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(actual[name], value, check_exact=True, obj=name)
        else:
            assert_array_equal(actual[name], value, err_msg=name, strict=True)


@pytest.fixture(scope="module")
def fitted():
    vae = VAETransformer(**TINY).fit(X)
    return pickle.dumps(vae), vae_outputs(vae, X)


@pytest.mark.parametrize("name", sorted(OTHER_VALUES))
def test_set_params_after_fit_leaves_every_method_and_saved_copy_as_fitted(fitted, name):
    data, expected = fitted
    vae = pickle.loads(data).set_params(**{name: OTHER_VALUES[name]})
    assert_same_outputs(expected, vae_outputs(vae, X))


def test_a_table_model_answers_as_fitted_after_its_likelihood_changes():
    df = pd.DataFrame(
        {
            "size": np.random.default_rng(0).normal(size=60),
            "colour": np.random.default_rng(1).choice(["red", "blue"], 60),
            "count": np.random.default_rng(2).integers(0, 9, 60),
        }
    )
    vae = VAETransformer(**TINY).fit(df)
    expected = vae_outputs(vae, df)
    vae.set_params(likelihood={"count": "poisson"}, dequantize=True, n_components=4)
    assert_same_outputs(expected, vae_outputs(vae, df))


METHODS = {
    "transform": lambda vae: vae.transform(X),
    "inverse_transform": lambda vae: vae.inverse_transform(X[:5, :2]),
    "sample": lambda vae: vae.sample(3, random_state=2),
    "sample_given": lambda vae: vae.sample(
        2, given={0: 0.5}, n_importance_samples=8, random_state=2
    ),
    "score_samples": lambda vae: vae.score_samples(X),
    "log_likelihood": lambda vae: vae.log_likelihood(
        X[:10], n_importance_samples=5, random_state=2
    ),
    "get_feature_names_out": lambda vae: vae.get_feature_names_out(),
}

_steps = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(sorted(OTHER_VALUES))),
    st.tuples(st.just("call"), st.sampled_from(sorted(METHODS))),
    st.tuples(st.just("pickle"), st.none()),
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(_steps, min_size=1, max_size=12))
def test_any_sequence_of_set_params_calls_and_saves_answers_as_fitted(fitted, steps):
    vae = pickle.loads(fitted[0])
    reference = pickle.loads(fitted[0])
    for kind, name in steps:
        if kind == "set":
            vae.set_params(**{name: OTHER_VALUES[name]})
        elif kind == "pickle":
            vae = pickle.loads(pickle.dumps(vae))
        else:
            assert_array_equal(METHODS[name](vae), METHODS[name](reference), strict=True)


# -------------------------------------------------------- continuing a model


@pytest.mark.parametrize("name", STRUCTURAL_PARAMS)
@pytest.mark.parametrize("method", ["warm_start", "partial_fit"])
def test_continuing_with_a_structural_parameter_changed_is_refused(fitted, name, method):
    data, expected = fitted
    vae = pickle.loads(data).set_params(**{name: OTHER_VALUES[name]})
    shown = "warm_start=True" if method == "warm_start" else "partial_fit"
    message = rf"^{name} was changed from .* to .* after fit, but {shown} continues"
    with pytest.raises(ValueError, match=message) as error:
        if method == "warm_start":
            vae.set_params(warm_start=True).fit(X)
        else:
            vae.partial_fit(X)
    assert "warm_start=False" in str(error.value)
    vae.set_params(warm_start=False)
    assert_same_outputs(expected, vae_outputs(vae, X))


@pytest.mark.parametrize("name", sorted(set(OTHER_VALUES) - set(STRUCTURAL_PARAMS)))
def test_continuing_with_a_training_parameter_changed_trains_on(fitted, name):
    data, _ = fitted
    if name in ("objective", "n_draws"):
        value = {"objective": "iwae", "n_draws": 3}
    else:
        value = {name: OTHER_VALUES[name]}
    vae = pickle.loads(data).set_params(**value)
    n_iter = vae.n_iter_
    vae.partial_fit(X)
    assert vae.n_iter_ == n_iter + 1 == len(vae.loss_curve_)


@pytest.mark.parametrize(
    "change",
    [
        {"hidden_layer_sizes": [8]},
        {"hidden_layer_sizes": np.array([8])},
        {"device": torch.device("cpu")},
        {"encoder_params": None},
    ],
)
def test_an_equal_setting_of_a_structural_parameter_is_not_a_change(fitted, change):
    vae = pickle.loads(fitted[0]).set_params(**change)
    vae.partial_fit(X)
    assert vae.n_iter_ == TINY["max_iter"] + 1


def test_the_message_quotes_a_long_value_cut_to_a_readable_length(fitted):
    vae = pickle.loads(fitted[0]).set_params(
        likelihood={f"column {i}": "gaussian" for i in range(500)}
    )
    with pytest.raises(ValueError, match="likelihood was changed") as error:
        vae.partial_fit(X)
    assert len(str(error.value)) < 600


def test_a_refit_uses_the_new_parameters_and_records_them(fitted):
    vae = pickle.loads(fitted[0]).set_params(n_components=3, hidden_layer_sizes=(5,))
    vae.fit(X)
    assert vae.transform(X).shape == (len(X), 3)
    assert vae._fitted_params["hidden_layer_sizes"] == (5,)
    loaded = pickle.loads(pickle.dumps(vae.set_params(n_components=2)))
    assert loaded.transform(X).shape == (len(X), 3)


# ------------------------------------------------------- imputer and detector


def holes():
    Xh = X.copy()
    Xh[np.random.default_rng(0).random(X.shape) < 0.2] = np.nan
    return Xh


@pytest.mark.parametrize(
    "change",
    [
        {"estimator__n_components": 4},
        {"estimator__hidden_layer_sizes": (3,)},
        {"estimator__likelihood": "poisson"},
        {"estimator": VAETransformer(n_components=6)},
        {"n_estimators": 5},
        {"n_jobs": 2},
    ],
)
def test_imputer_transforms_as_fitted_after_set_params(change):
    Xh = holes()
    imputer = VAEImputer(
        VAETransformer(**TINY), n_estimators=2, n_importance_samples=20, random_state=0
    ).fit(Xh)
    expected = imputer.transform(Xh)
    imputer.set_params(**change)
    assert_array_equal(imputer.transform(Xh), expected, strict=True)
    assert_array_equal(pickle.loads(pickle.dumps(imputer)).transform(Xh), expected, strict=True)


@pytest.mark.parametrize("frame", [False, True])
@pytest.mark.parametrize("add_indicator", [False, True])
def test_imputer_keeps_its_fitted_indicator_after_set_params(add_indicator, frame):
    Xh = holes()
    if frame:
        Xh = pd.DataFrame(Xh, columns=[f"c{j}" for j in range(Xh.shape[1])])
    imputer = VAEImputer(
        VAETransformer(**TINY),
        n_estimators=1,
        add_indicator=add_indicator,
        n_importance_samples=9,
        random_state=0,
    ).fit(Xh)
    expected, names = imputer.transform(Xh), imputer.get_feature_names_out()
    imputer.set_params(add_indicator=not add_indicator)
    if frame:
        pd.testing.assert_frame_equal(imputer.transform(Xh), expected, check_exact=True)
    else:
        assert_array_equal(imputer.transform(Xh), expected, strict=True)
    assert_array_equal(imputer.get_feature_names_out(), names, strict=True)


@pytest.mark.parametrize(
    "change",
    [
        {"estimator__n_components": 4},
        {"estimator__hidden_layer_sizes": (3,)},
        {"estimator": GaussianMixture()},
        {"background": HistogramDensity(bins=3)},
        {"background": None},
        {"contamination": 0.4},
        {"method": "score_samples"},
        {"n_importance_samples": 7},
        {"random_state": 3},
    ],
)
def test_detector_scores_as_fitted_after_set_params(change):
    counts = np.random.default_rng(0).poisson(3.0, size=(120, 4)).astype(np.float64)
    detector = DensityOutlierDetector(
        VAETransformer(**TINY, likelihood="gaussian", dequantize=True),
        background=HistogramDensity(bins="integer"),
        n_importance_samples=20,
        random_state=0,
    ).fit(counts)
    expected = [detector.score_samples(counts), detector.decision_function(counts)]
    detector.set_params(**change)
    for model in (detector, pickle.loads(pickle.dumps(detector))):
        actual = [model.score_samples(counts), model.decision_function(counts)]
        for a, e in zip(actual, expected, strict=True):
            assert_array_equal(a, e, strict=True)
