"""VAETransformer.sample(given=...): draws from p(x_free | x_given)."""

import re
import warnings

import hypothesis
import numpy as np
import pandas as pd
import pytest
from _linear_gaussian import (
    assert_standard_normal,
    gaussian_conditional,
    linear_imputer,
    linear_vae_marginal,
)
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score

from sklearn_vae import VAETransformer

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_conditional_samples_match_linear_gaussian_closed_form():
    # 400 independent SIR draws given x_0 and x_3, minus the exact
    # conditional mean and whitened by the exact conditional covariance,
    # are N(0, I) within sampling error: the model's own conditional, so
    # unclipped, and complete (it was fitted on data with missing entries).
    vae = linear_imputer().estimator_
    observed = np.array([True, False, False, True, False])
    given = {0: 4.0, 3: 1.5}
    samples = vae.sample(400, random_state=0, given=given, missing=False, clip=False)
    assert_array_equal(samples[:, 0], 4.0)
    assert_array_equal(samples[:, 3], 1.5)
    mean, covariance = linear_vae_marginal(vae)
    exact, conditional_cov = gaussian_conditional(mean, covariance, observed, np.array([4.0, 1.5]))
    assert_standard_normal(samples[:, ~observed] - exact, conditional_cov)


def test_given_as_row_equals_given_as_dict():
    vae = linear_imputer().estimator_
    row = np.array([4.0, np.nan, np.nan, 1.5, np.nan])
    assert_array_equal(
        vae.sample(5, random_state=1, given=row),
        vae.sample(5, random_state=1, given={0: 4.0, 3: 1.5}),
    )


def test_sample_without_given_is_unchanged():
    vae = linear_imputer().estimator_
    assert_array_equal(vae.sample(4, random_state=0), vae.sample(4, random_state=0, given=None))


@pytest.fixture(scope="module")
def labelled_table():
    """Three species whose two measurements differ in mean and correlation."""
    rng = np.random.default_rng(0)
    species = rng.choice(["a", "b", "c"], 900)
    centre = {"a": (-2.0, 0.0), "b": (0.0, 2.0), "c": (2.0, -1.0)}
    slope = {"a": 0.8, "b": -0.8, "c": 0.0}
    u = rng.normal(size=900)
    x = np.array([centre[s][0] for s in species]) + u
    y = (
        np.array([centre[s][1] for s in species])
        + np.array([slope[s] for s in species]) * u
        + 0.5 * rng.normal(size=900)
    )
    return pd.DataFrame({"species": pd.Series(species, dtype=object), "x": x, "y": y})


def _two_sample_auc(real, synthetic):
    """Cross-validated ROC AUC of a classifier telling real from synthetic rows (0.5: same)."""
    X = np.r_[real[["x", "y"]].to_numpy(), synthetic[["x", "y"]].to_numpy()]
    labels = np.r_[np.zeros(len(real)), np.ones(len(synthetic))]
    classifier = HistGradientBoostingClassifier(max_iter=50, random_state=0)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    return cross_val_score(classifier, X, labels, cv=cv, scoring="roc_auc").mean()


def test_conditioning_on_a_category_reproduces_its_rows(labelled_table):
    vae = VAETransformer(
        n_components=2, hidden_layer_sizes=(32,), learning_rate_init=1e-2, random_state=0
    ).fit(labelled_table)
    for seed, species in enumerate(["a", "b", "c"]):
        real = labelled_table[labelled_table["species"] == species]
        conditional = vae.sample(len(real), random_state=seed, given={"species": species})
        assert (conditional["species"] == species).all()
        assert conditional.dtypes.equals(labelled_table.dtypes)
        unconditional = vae.sample(len(real), random_state=seed)
        assert _two_sample_auc(real, conditional) < _two_sample_auc(real, unconditional)


def test_given_errors(labelled_table):
    vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    vae.fit(labelled_table)
    with pytest.raises(ValueError, match="not column names"):
        vae.sample(2, given={"colour": "red"})
    with pytest.raises(ValueError, match="category not seen in fit"):
        vae.sample(2, given={"species": "z"})
    with pytest.raises(ValueError, match="fixes no column"):
        vae.sample(2, given={})
    with pytest.raises(ValueError, match="n_importance_samples"):
        vae.sample(2, given={"species": "a"}, n_importance_samples=0)


@pytest.mark.parametrize("chunk_size", [1, 3, 4])
def test_resampling_picks_each_proposal_with_its_normalised_weight(monkeypatch, chunk_size):
    # One row repeated 4000 times, with the same K = 4 proposals in every row:
    # each row picks proposal k with probability w~_k, also when the pick is
    # made chunk by chunk (weighted reservoir sampling). The pick is read from
    # the z handed to sample_given; the counts are compared with 4000 w~ by a
    # chi-square statistic (3 degrees of freedom), below 21.1 with probability
    # 0.9999; a pick from one chunk only, or from the last, is far above it.
    import copy

    import torch

    import sklearn_vae._inference as inference

    X = np.random.default_rng(0).normal(size=(100, 3)) @ np.diag([1.0, 2.0, 0.5])
    vae = VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    module = copy.deepcopy(vae.fit(X).net_.module_).double().eval()
    n_rows = 4000
    x = torch.tensor([[0.3, np.nan, 2.0]], dtype=torch.float64).expand(n_rows, 3).clone()
    torch.manual_seed(0)
    with torch.no_grad():
        q = module.posterior(x)
        # Proposals near the posterior mean, so that no weight is negligible.
        steps = torch.tensor([[0.0, 0.0], [0.2, 0.0], [0.0, 0.2], [-0.2, -0.2]], dtype=x.dtype)
        z = (q.mean[:1] + steps[:, None]).expand(4, n_rows, 2).clone()
        log_w = module.log_prob_given(z, x) + module.prior.log_prob(z) - q.log_prob(z)
        weights = torch.softmax(log_w[:, 0], 0).numpy()
        handed_out, picked = [0], []

        draw = inference.draw

        def sample(distribution, sample_shape=()):
            if distribution is not q:
                return draw(distribution, sample_shape)
            (n,) = sample_shape
            handed_out[0] += n
            return z[handed_out[0] - n : handed_out[0]]

        monkeypatch.setattr(inference, "draw", sample)
        module.sample_given = lambda chosen: picked.append(chosen) or torch.zeros_like(x)
        inference.conditional_draw(module, x, q, 4, chunk_size)
    assert handed_out[0] == 4
    which = (picked[0][None] == z).all(-1).double().argmax(0).numpy()
    assert (picked[0][None] == z).all(-1).any(0).all()
    assert weights.min() > 0.02 and weights.max() < 0.9
    counts = np.bincount(which, minlength=4)
    chi_square = np.sum((counts - n_rows * weights) ** 2 / (n_rows * weights))
    assert chi_square < 21.1


TINY = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=2, random_state=0)


def test_given_names_are_checked_against_array_positions():
    vae = VAETransformer(**TINY).fit(np.random.default_rng(0).normal(size=(40, 3)))
    message = "given names ['x'], which are not column positions seen in fit: [0, 1, 2]."
    with pytest.raises(ValueError, match=re.escape(message)):
        vae.sample(2, given={"x": 1.0})


def test_given_for_an_array_of_booleans_fixes_its_column():
    X = np.random.default_rng(0).uniform(size=(60, 3)) < 0.5
    vae = VAETransformer(**TINY).fit(X)
    samples = vae.sample(20, random_state=0, given={1: False})
    assert_array_equal(samples[:, 1], False)
    assert {type(value) for value in samples.ravel()} <= {bool, np.bool_}


def test_given_as_a_dict_or_one_row_dataframe_keeps_the_feature_names(labelled_table):
    vae = VAETransformer(**TINY).fit(labelled_table)
    row = pd.DataFrame({"species": ["b"], "x": [np.nan], "y": [0.5]})
    for given in (row, {"species": "b", "y": 0.5}):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a row without the names would warn
            samples = vae.sample(3, random_state=0, given=given)
        assert_array_equal(samples["species"], "b")
        assert_array_equal(samples["y"], 0.5)


def test_given_must_hold_rows_and_fix_a_column():
    vae = VAETransformer(**TINY).fit(np.random.default_rng(0).normal(size=(40, 3)))
    message = "given must hold rows of columns, got an array of shape (1, 2, 3)."
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        vae.sample(2, given=np.zeros((1, 2, 3)))
    message = (
        "given fixes no column; pass at least one {column: value}, or given=None "
        "for unconditional samples."
    )
    for given in ({}, np.full((2, 3), np.nan)):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            vae.sample(2, given=given)


# ------------------------------------------------- extreme conditioning values


def test_a_given_value_far_outside_the_training_data_is_conditioned_on_exactly():
    # x_0 = 60 and x_3 = -30 lie about 75 and 40 training standard deviations
    # out. The encoder's proposal, learnt within the training range, misses
    # the posterior there; the proposal starts at the posterior mode instead,
    # and the draws still follow the linear-Gaussian model's exact conditional
    # (unclipped: most of it lies beyond the training range).
    vae = linear_imputer().estimator_
    observed = np.array([True, False, False, True, False])
    options = {"given": {0: 60.0, 3: -30.0}, "missing": False, "clip": False}
    samples = vae.sample(400, random_state=0, **options)
    assert_array_equal(samples, vae.sample(400, random_state=0, **options))
    assert_array_equal(samples[:, observed], np.tile([60.0, -30.0], (400, 1)))
    mean, covariance = linear_vae_marginal(vae)
    exact, conditional_cov = gaussian_conditional(mean, covariance, observed, np.array([60, -30]))
    assert_standard_normal(samples[:, ~observed] - exact, conditional_cov)


def _training_sd(vae, column):
    return vae._standardisation.loc[column], vae._standardisation.scale[column]


@pytest.mark.parametrize("distance", [1e3 * (1 + 1e-9), 1e20, -1e300, 1.7e308])
def test_a_given_value_beyond_reach_is_refused_naming_its_column_and_value(distance):
    # 1000 training standard deviations is the farthest the model conditions
    # on; beyond it, and up to float64's range, the call says which value,
    # how far it lies and what to do, with no overflow warning on the way.
    vae = linear_imputer().estimator_
    loc, scale = _training_sd(vae, 3)
    value = distance if distance > 1e300 else loc + distance * scale
    far = abs((value - loc) / scale) if distance < 1e300 else np.inf
    message = (
        f"Cannot condition on row 0: its value {value:.6g} in column 3 lies {far:.3g} "
        "training standard deviations from the column's mean. The model conditions only on "
        "values within 1000 of them (a training set of n rows holds none beyond sqrt(n - 1)); "
        "farther out its answer would be extrapolation with no support in the data. Clip or "
        "rescale such values, or mark them missing (NaN)."
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=re.escape(message)):
            vae.sample(2, random_state=0, given={0: 1.0, 3: value})


def test_a_given_value_just_within_reach_is_conditioned_on():
    vae = linear_imputer().estimator_
    loc, scale = _training_sd(vae, 3)
    given = {3: loc + 1e3 * (1 - 1e-9) * scale}
    samples = vae.sample(5, random_state=0, given=given, missing=False)
    assert np.all(np.isfinite(samples))


@pytest.fixture(scope="module")
def mixed_vae():
    """A small VAE of a table: a unit-scale float, a count and a label column."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=300),
            "count": rng.poisson(4, 300),
            "label": pd.Series(rng.choice(["p", "q"], 300), dtype=object),
            "y": rng.normal(size=300),
        }
    )
    return VAETransformer(n_components=2, hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(
        frame
    )


def test_a_far_value_in_a_table_is_refused_with_the_column_name(mixed_vae):
    with pytest.raises(ValueError, match=r"value 1e\+20 in column 'x' lies"):
        mixed_vae.sample(2, random_state=0, given={"x": 1e20}, n_importance_samples=20)


EXTREMES = [0.0, 1e-300, -1e-300, 5e-324, 1e20, -1e40, 1e300, -1e300, 1.7e308, -1.7e308]


@hypothesis.settings(max_examples=40, derandomize=True, deadline=None)
@hypothesis.given(
    column=st.sampled_from(["x", "count", "y"]),
    value=st.one_of(
        st.sampled_from(EXTREMES),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(-(2**1000), 2**1000),
    ),
    label=st.sampled_from([None, "p"]),
)
def test_any_finite_given_value_gives_finite_samples_or_a_value_error(
    mixed_vae, column, value, label
):
    given = {column: value} if label is None else {column: value, "label": label}
    try:
        samples = mixed_vae.sample(3, random_state=0, given=given, n_importance_samples=20)
    except ValueError as error:
        assert column in str(error)
        return
    numeric = samples[["x", "count", "y"]].to_numpy(dtype=float)
    assert np.all(np.isfinite(numeric))
    assert set(samples["label"]) <= {"p", "q"}
    if column != "count" or float(value).is_integer():  # an int column holds no fraction
        assert (samples[column] == value).all()
