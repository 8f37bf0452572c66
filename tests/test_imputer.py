"""VAEImputer: scikit-learn's suite, the imputation contract and the exact conditionals."""

import re
import warnings

import hypothesis
import numpy as np
import pandas as pd
import pytest
import torch
from _linear_gaussian import (
    assert_standard_normal,
    gaussian_conditional,
    linear_data,
    linear_imputer,
    linear_vae_marginal,
)
from conftest import make_factor_data
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, MissingIndicator
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_vae import VAEImputer, VAETransformer
from sklearn_vae._likelihoods import MIN_SCALE

TINY = dict(n_components=2, hidden_layer_sizes=(8,), max_iter=5, random_state=0)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@parametrize_with_checks(
    [VAEImputer(VAETransformer(**TINY), n_importance_samples=20, random_state=0)]
)
def test_sklearn_estimator_suite(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=n).astype(np.float32),
            "colour": pd.Series(rng.choice(["red", "green", "blue"], n), dtype=object),
            "count": pd.array(rng.integers(0, 6, n), dtype="Int64"),
            "kind": pd.Categorical(rng.choice(["p", "q"], n)),
            "flag": pd.array(rng.uniform(size=n) < 0.5, dtype="boolean"),
        }
    )
    return frame.mask(rng.uniform(size=frame.shape) < 0.25)


def _linear_test_rows(observed):
    X = linear_data()[800:]
    X_missing = X.copy()
    X_missing[:, ~observed] = np.nan
    return X, X_missing


def test_conditional_mean_matches_linear_gaussian_closed_form():
    # For a linear-Gaussian VAE, E[x_miss | x_obs] is the Gaussian conditional
    # mean of its marginal N(b, W W^T + diag s^2). The self-normalised IS
    # estimate has a Monte Carlo error whose variance is estimated, row by row,
    # from the difference of two independent seeds (variance 2 sigma^2). With
    # no bias, mean((estimate - exact)^2) / (mean(difference^2) / 2) is a ratio
    # of two estimates of the same variance over 600 entries, below 1.5 far
    # beyond its 99.99% quantile (about 1.35); and the mean error is within 4
    # standard errors of zero.
    imputer = linear_imputer()
    observed = np.array([True, True, True, False, False])
    _, X_missing = _linear_test_rows(observed)
    mean, covariance = linear_vae_marginal(imputer.estimator_)
    exact, _ = gaussian_conditional(mean, covariance, observed, X_missing[:, observed])
    first = imputer.set_params(random_state=0).transform(X_missing)[:, ~observed]
    second = imputer.set_params(random_state=1).transform(X_missing)[:, ~observed]
    monte_carlo_var = np.mean((first - second) ** 2) / 2
    error = first - exact
    assert np.mean(error**2) / monte_carlo_var < 1.5
    assert np.all(np.abs(error.mean(axis=0)) < 4 * np.sqrt(monte_carlo_var / len(error)))


def test_posterior_draws_match_linear_gaussian_conditional():
    # sample_posterior=True draws x_miss ~ p(x_miss | x_obs): minus the exact
    # conditional mean and whitened by the exact conditional covariance, the
    # draws of 300 rows are N(0, I) within sampling error (SIR's bias at K=1000
    # with a 2-D latent is far below it).
    imputer = linear_imputer()
    observed = np.array([True, False, True, False, True])
    _, X_missing = _linear_test_rows(observed)
    mean, covariance = linear_vae_marginal(imputer.estimator_)
    exact, conditional_cov = gaussian_conditional(
        mean, covariance, observed, X_missing[:, observed]
    )
    draws = imputer.set_params(sample_posterior=True, random_state=0).transform(X_missing)
    imputer.set_params(sample_posterior=False)
    assert_standard_normal(draws[:, ~observed] - exact, conditional_cov)


def test_posterior_draws_keep_the_spread_that_the_mean_shrinks():
    imputer = linear_imputer()
    observed = np.array([True, True, False, True, False])
    X, X_missing = _linear_test_rows(observed)
    mean = imputer.set_params(random_state=0).transform(X_missing)[:, ~observed]
    draws = imputer.set_params(sample_posterior=True).transform(X_missing)[:, ~observed]
    imputer.set_params(sample_posterior=False)
    true_var = X[:, ~observed].var(axis=0)
    assert np.all(mean.var(axis=0) < 0.9 * true_var)
    # Var(draw) = Var(true) for a well-fitted model; 300 rows give about 8%
    # relative error on a variance, plus the model's own error.
    assert np.all(np.abs(draws.var(axis=0) / true_var - 1) < 0.3)


def test_observed_entries_and_dtypes_are_unchanged(table):
    imputer = VAEImputer(VAETransformer(**TINY), n_importance_samples=20, random_state=0)
    for sample in (False, True):
        out = imputer.set_params(sample_posterior=sample).fit_transform(table)
        assert list(out.columns) == list(table.columns)
        assert (out.dtypes == table.dtypes).all()
        assert not out.isna().any().any()
        observed = table.notna()
        for column in table.columns:
            kept = observed[column].to_numpy()
            assert_array_equal(
                out[column].to_numpy()[kept].astype(object),
                table[column].to_numpy()[kept].astype(object),
            )
        assert set(out["colour"]) <= {"red", "green", "blue"}
        assert set(out["kind"]) <= {"p", "q"}


def test_observed_entries_are_bit_for_bit_in_arrays():
    X = make_factor_data(100, n_features=4) * np.pi
    X[np.random.default_rng(0).uniform(size=X.shape) < 0.3] = np.nan
    out = VAEImputer(VAETransformer(**TINY), n_importance_samples=10).fit_transform(X)
    kept = ~np.isnan(X)
    assert_array_equal(out[kept].view(np.int64), X[kept].view(np.int64))


def test_fixed_random_state_is_reproducible_and_seeds_differ(table):
    imputer = VAEImputer(
        VAETransformer(**TINY), sample_posterior=True, n_importance_samples=20, random_state=3
    ).fit(table)
    first, second = imputer.transform(table), imputer.transform(table)
    pd.testing.assert_frame_equal(first, second)
    other = imputer.set_params(random_state=4).transform(table)
    assert not first["size"].equals(other["size"])


def test_add_indicator_and_keep_empty_features_follow_iterative_imputer():
    X = make_factor_data(60, n_features=4)
    X[np.random.default_rng(0).uniform(size=X.shape) < 0.2] = np.nan
    X[:, 2] = np.nan
    for keep in (False, True):
        ours = VAEImputer(
            VAETransformer(**TINY),
            add_indicator=True,
            keep_empty_features=keep,
            n_importance_samples=10,
        ).fit(X)
        theirs = IterativeImputer(add_indicator=True, keep_empty_features=keep).fit(X)
        out = ours.transform(X)
        assert out.shape == theirs.transform(X).shape
        assert_array_equal(ours.get_feature_names_out(), theirs.get_feature_names_out())
        indicator = MissingIndicator().fit_transform(X)
        assert_array_equal(out[:, -indicator.shape[1] :], indicator)
        if keep:
            assert_array_equal(out[:, 2], 0.0)


def test_non_nan_missing_values_marker():
    X = np.round(make_factor_data(60, n_features=3), 1)
    X[np.random.default_rng(0).uniform(size=X.shape) < 0.2] = -1.0
    out = VAEImputer(
        VAETransformer(**TINY), missing_values=-1.0, n_importance_samples=10
    ).fit_transform(X)
    assert not np.any(out == -1.0)
    assert_array_equal(out[X != -1], X[X != -1])


def test_errors_are_clear():
    X = make_factor_data(40, n_features=3)
    with pytest.raises(NotFittedError):
        VAEImputer().transform(X)
    with pytest.raises(ValueError, match="estimator.*VAETransformer"):
        VAEImputer(IterativeImputer()).fit(X)
    imputer = VAEImputer(VAETransformer(**TINY), n_importance_samples=5).fit(X)
    with pytest.raises(ValueError, match="features"):
        imputer.transform(X[:, :2])


def test_dataframe_output_follows_add_indicator_and_keep_empty_features():
    # A DataFrame with its own index: a complete first column, a column missing
    # in every row, and missing entries elsewhere. The output keeps the index,
    # fills every entry, puts 0.0 in the empty column when it is kept, and ends
    # with MissingIndicator's flags under its own feature names.
    rng = np.random.default_rng(0)
    X = make_factor_data(60, n_features=4)
    X[:, 1:][rng.uniform(size=(60, 3)) < 0.2] = np.nan
    X[:, 2] = np.nan
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"], index=np.arange(100, 160))
    indicator = MissingIndicator().fit(X)
    flag_names = [f"missingindicator_{name}" for name in ("b", "c", "d")]
    for keep in (False, True):
        imputer = VAEImputer(
            VAETransformer(**TINY),
            add_indicator=True,
            keep_empty_features=keep,
            n_importance_samples=10,
        )
        out = imputer.fit_transform(frame)
        kept = ["a", "b", "c", "d"] if keep else ["a", "b", "d"]
        assert list(out.columns) == kept + flag_names
        assert list(imputer.get_feature_names_out()) == kept + flag_names
        assert_array_equal(out.index, frame.index)
        assert not out.isna().any().any()
        assert_array_equal(out[flag_names].to_numpy(), indicator.transform(X))
        assert_array_equal(out["a"], frame["a"])
        if keep:
            assert_array_equal(out["c"], 0.0)


def test_feature_names_out_take_the_given_input_features():
    X = make_factor_data(40, n_features=3)
    X[::5, 1] = np.nan
    imputer = VAEImputer(VAETransformer(**TINY), add_indicator=True, n_importance_samples=5)
    names = imputer.fit(X).get_feature_names_out(["p", "q", "r"])
    assert_array_equal(names, ["p", "q", "r", "missingindicator_q"])


class _FixedProposals:
    """q(z | x_obs) whose draws are handed out, in order, from a fixed tensor."""

    def __init__(self, q, z):
        self.q, self.z, self.used = q, z, 0

    def sample(self, shape):
        (n,) = shape
        assert self.used + n <= len(self.z), "more proposals drawn than asked for"
        self.used += n
        return self.z[self.used - n : self.used]

    def log_prob(self, z):
        return self.q.log_prob(z)

    @classmethod
    def patch(cls, monkeypatch):
        """Make inference draw the proposals of a ``_FixedProposals`` from its tensor."""
        import sklearn_vae._inference as inference

        draw = inference.draw

        def handed_out(distribution, sample_shape=()):
            if isinstance(distribution, cls):
                return distribution.sample(sample_shape)
            return draw(distribution, sample_shape)

        monkeypatch.setattr(inference, "draw", handed_out)


def _reference_conditional_mean(module, x, z, q, integer_levels=()):
    # The self-normalised importance-sampling estimate over all K proposals at
    # once: numeric columns average the decoder means; a one-hot categorical
    # column takes the most probable level of the mixture sum_k w_k p(x_j | z_k),
    # each p(x_j = level | z_k) read from log_prob_given on a row where only
    # x_j is observed, or the level nearest its mean for the columns
    # ``integer_levels``, whose levels are numbers.
    from sklearn_vae._likelihoods import one_hot_columns

    w = torch.softmax(module.log_prob_given(z, x) + module.prior.log_prob(z) - q.log_prob(z), 0)
    mean = (w[..., None] * module.likelihood.mean(module.decoder(z))).sum(0)
    for j, offset, n_levels in one_hot_columns(module.likelihood):
        mixture = []
        for level in range(n_levels):
            only_j = torch.full_like(x, float("nan"))
            only_j[:, j] = offset + level
            mixture.append((w * module.log_prob_given(z, only_j).exp()).sum(0))
        mixture = torch.stack(mixture, -1)
        if j in integer_levels:
            mean[:, j] = torch.round(mixture @ torch.arange(n_levels, dtype=mixture.dtype)) + offset
        else:
            mean[:, j] = mixture.argmax(-1) + offset
    return torch.where(torch.isnan(x), mean, x)


def _table(columns, n=120):
    rng = np.random.default_rng(0)
    every = {
        "x": rng.normal(size=n),
        "y": rng.normal(size=n),
        "colour": rng.choice(["red", "green", "blue"], n).astype(object),
        "shape": rng.choice(["disc", "square"], n).astype(object),
        "level": rng.integers(3, 7, n),  # a categorical integer: its levels start at 3
    }
    frame = pd.DataFrame({name: every[name] for name in columns})
    return frame.mask(rng.uniform(size=frame.shape) < 0.3).dropna(how="all")


@pytest.mark.parametrize(
    "columns",
    [
        ("x", "y"),  # one Gaussian
        ("x", "colour", "y"),  # a table with one categorical group
        ("x", "colour", "level", "y"),  # categorical groups of 3 and 4 levels, offsets 0 and 3
        ("colour", "shape"),  # one categorical likelihood, not a table
    ],
)
@pytest.mark.parametrize("chunk_size", [1, 2, 5])
def test_chunked_conditional_mean_is_the_self_normalised_average_of_all_proposals(
    monkeypatch, columns, chunk_size
):
    # Proposals drawn chunk by chunk and combined with running log-sum-exps give
    # the estimate over all K = 5 at once, up to float64 rounding.
    import copy

    from sklearn_vae._inference import conditional_mean

    frame = _table(columns)
    likelihood = {"level": "categorical"} if "level" in columns else "auto"
    vae = VAETransformer(likelihood=likelihood, **TINY).fit(frame)
    module = copy.deepcopy(vae.net_.module_).double().eval()
    x = torch.as_tensor(vae.schema_.encode(frame), dtype=torch.float64)
    with torch.no_grad():
        q = module.posterior(x)
        z = q.sample((5,))
        integer_levels = [j for j, name in enumerate(columns) if name == "level"]
        expected = _reference_conditional_mean(module, x, z, q, integer_levels)
        fixed = _FixedProposals(q, z)
        _FixedProposals.patch(monkeypatch)
        actual = conditional_mean(module, x, fixed, 5, chunk_size)
    assert fixed.used == 5
    torch.testing.assert_close(actual, expected, rtol=1e-9, atol=1e-12)
    assert torch.isnan(x).any()


@pytest.mark.parametrize("chunk_size", [1, 2, 5])
def test_one_adaptation_round_matches_the_weighted_moments_of_all_proposals(
    monkeypatch, chunk_size
):
    # One round of adapted_proposal over K = 10 proposals (5 drawn, K // 2) is
    # the Gaussian of their self-normalised mean and variance, the variance
    # shrunk towards the encoder's by the effective sample size
    # (sum w)^2 / sum w^2, and the scale widened by 1.2; computed chunk by chunk
    # it equals the direct formula over all five at once.
    import copy

    import sklearn_vae._inference as inference

    monkeypatch.setattr(inference, "ADAPTATION_ROUNDS", 1)
    frame = _table(("x", "colour", "y"))
    # Under N(0, I) this fit's weights are neither one-hot nor equal (asserted below).
    vae = VAETransformer(**TINY, prior="normal").fit(frame)
    module = copy.deepcopy(vae.net_.module_).double().eval()
    x = torch.as_tensor(vae.schema_.encode(frame), dtype=torch.float64)
    with torch.no_grad():
        q = module.posterior(x)
        torch.manual_seed(0)
        z = q.sample((5,))
        w = torch.softmax(module.log_prob_given(z, x) + module.prior.log_prob(z) - q.log_prob(z), 0)
        mean = (w[..., None] * z).sum(0)
        variance = (w[..., None] * (z - mean) ** 2).sum(0)
        n_eff = (1 / (w**2).sum(0))[:, None]
        scale = 1.2 * torch.sqrt((n_eff * variance + q.variance) / (n_eff + 1))
        fixed = _FixedProposals(q, z)
        _FixedProposals.patch(monkeypatch)
        fixed.variance = q.variance
        module.posterior = lambda x: fixed
        adapted = inference.adapted_proposal(module, x, 10, chunk_size)
    assert fixed.used == 5
    assert n_eff.min() > 1.01 and n_eff.max() < 4.99  # neither one weight nor equal weights
    torch.testing.assert_close(adapted.mean, mean, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(adapted.stddev, scale, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n_samples, per_round", [(1, 1), (3, 1), (4, 2), (1000, 500)])
def test_each_adaptation_round_draws_half_the_proposals(monkeypatch, n_samples, per_round):
    import sklearn_vae._inference as inference

    vae = VAETransformer(**TINY).fit(make_factor_data(40, n_features=3))
    rounds = []
    original = inference._weighted_moments

    def spy(module, x, q, n, chunk_size):
        rounds.append(n)
        return original(module, x, q, n, chunk_size)

    monkeypatch.setattr(inference, "_weighted_moments", spy)
    x = torch.tensor([[0.5, np.nan, -1.0]], dtype=torch.float32)
    with torch.no_grad():
        inference.adapted_proposal(vae.net_.module_, x, n_samples, 64)
    assert rounds == [per_round] * inference.ADAPTATION_ROUNDS == [per_round, per_round]


def test_documented_defaults():
    params = VAEImputer().get_params()
    assert params["n_estimators"] == 5 and params["n_jobs"] is None
    assert params["sample_posterior"] is False
    assert params["n_importance_samples"] == 1000
    assert params["keep_empty_features"] is False
    assert params["add_indicator"] is False
    assert np.isnan(params["missing_values"])


def test_default_on_integers_is_a_dequantised_vae():
    X = np.random.default_rng(0).integers(0, 5, size=(60, 4)).astype(float)
    X[::5, 1] = np.nan
    imputer = VAEImputer(random_state=3)
    # The defaults' per-column rule dequantises columns of integers, also floats.
    estimator = imputer._make_estimator(X)
    assert estimator.likelihood == "auto" and estimator.dequantize == "auto"
    assert estimator.random_state == 3
    estimator = imputer._make_estimator(X + 0.5)
    assert estimator.likelihood == "auto" and estimator.dequantize == "auto"
    # Both train MIWAE's way, on the importance-weighted bound with 10 draws,
    # and on every row, without a validation split (see the docstring).
    for default in (imputer._make_estimator(X), estimator):
        assert default.early_stopping is False
        assert (default.objective, default.n_draws) == ("iwae", 10)
        assert default.decoder_variance == "homoscedastic"
        assert default.prior == "normal"
    expected = VAETransformer().get_params()
    changed = {k for k, v in estimator.get_params().items() if v != expected[k]}
    assert changed == {
        "hidden_layer_sizes",
        "early_stopping",
        "n_iter_no_change",
        "objective",
        "n_draws",
        "decoder_variance",
        "prior",
        "random_state",
    }
    given = VAETransformer(**TINY)
    assert imputer.set_params(estimator=given)._make_estimator(X).get_params() == given.get_params()


def test_default_imputer_fills_integer_data_with_integers():
    X = np.random.default_rng(0).integers(0, 5, size=(60, 3)).astype(float)
    X[::4, 0] = np.nan
    imputer = VAEImputer(random_state=0)
    imputer.set_params(estimator=imputer._make_estimator(X).set_params(**TINY))
    filled = imputer.fit_transform(X)
    # Five levels, 0..4: a categorical over them.
    assert all(column.likelihood == "categorical" for column in imputer.estimator_.schema_.columns_)
    assert np.array_equal(filled, np.round(filled))


def test_non_deterministic_tag_follows_random_state():
    assert VAEImputer().__sklearn_tags__().non_deterministic is True
    assert VAEImputer(random_state=0).__sklearn_tags__().non_deterministic is False


@pytest.mark.parametrize("shape", [(0, 2), (3, 0)])
def test_an_empty_dataframe_is_rejected_with_its_shape(shape):
    frame = pd.DataFrame(np.zeros(shape), columns=[f"c{j}" for j in range(shape[1])])
    message = (
        f"Found array with {shape[0]} sample(s) and {shape[1]} feature(s) (shape={shape}) "
        "while a minimum of 1 is required by VAEImputer."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        VAEImputer(VAETransformer(**TINY)).fit(frame)


def test_a_one_column_dataframe_and_a_one_row_transform_are_accepted():
    frame = pd.DataFrame({"a": make_factor_data(40, n_features=1)[:, 0]})
    frame.iloc[::4, 0] = np.nan
    imputer = VAEImputer(VAETransformer(**TINY), n_importance_samples=5).fit(frame)
    out = imputer.transform(frame.iloc[[0]])
    assert out.shape == (1, 1) and not out.isna().any().any()


def test_a_non_nan_marker_in_a_dataframe_is_missing_alongside_nan():
    X = np.round(make_factor_data(60, n_features=3), 1)
    rng = np.random.default_rng(0)
    X[rng.uniform(size=X.shape) < 0.15] = -1.0
    X[rng.uniform(size=X.shape) < 0.1] = np.nan
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    out = VAEImputer(
        VAETransformer(**TINY), missing_values=-1.0, n_importance_samples=10
    ).fit_transform(frame)
    assert not out.isna().any().any()
    assert not (out == -1.0).any().any()
    observed = ~np.isnan(X) & (X != -1.0)
    assert_array_equal(out.to_numpy()[observed], X[observed])


def test_nan_in_an_array_is_an_error_when_it_is_not_the_marker():
    X = make_factor_data(30, n_features=3)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        VAEImputer(VAETransformer(**TINY), missing_values=-1.0).fit(X)
    X[0, 0] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        VAEImputer(VAETransformer(**TINY), missing_values=-1.0).fit(X)


def test_an_integer_array_with_an_integer_marker_is_imputed_as_floats():
    X = np.rint(3 * make_factor_data(60, n_features=3)).astype(np.int64)
    X[np.random.default_rng(0).uniform(size=X.shape) < 0.2] = -99
    out = VAEImputer(
        VAETransformer(**TINY), missing_values=-99, n_importance_samples=5
    ).fit_transform(X)
    assert out.dtype == np.float64 and not np.any(out == -99)
    assert_array_equal(out[X != -99], X[X != -99])


def test_a_label_not_seen_in_fit_is_returned_unchanged(table):
    imputer = VAEImputer(VAETransformer(**TINY), n_importance_samples=10, random_state=0)
    imputer.fit(table)
    rows = table.head(6).copy()
    rows["colour"] = rows["colour"].astype(object)
    rows.iloc[0, rows.columns.get_loc("colour")] = "purple"
    out = imputer.transform(rows)
    assert out["colour"].iloc[0] == "purple"
    assert not out.isna().any().any()


def _relative_mean_square_error(imputer):
    """Per missing column, the imputation's mean square error against the exact
    conditional mean of the linear VAE, over the conditional variance (seed 0)."""
    observed = np.array([True, True, True, False, False])
    _, X_missing = _linear_test_rows(observed)
    mean, covariance = linear_vae_marginal(imputer.estimator_)
    exact, conditional_cov = gaussian_conditional(
        mean, covariance, observed, X_missing[:, observed]
    )
    error = imputer.set_params(random_state=0).transform(X_missing)[:, ~observed] - exact
    return np.mean(error**2, axis=0) / np.diag(conditional_cov)


def test_conditional_mean_error_is_far_below_the_conditional_spread():
    # The importance-sampling mean with K = 1000 misses the exact conditional
    # mean by Monte Carlo error only, of variance Var(x_miss | x_obs) / ESS; with
    # an effective sample size above 10 its mean square error is below a tenth
    # of the conditional variance, which a draw from p(x_miss | x_obs) (error
    # variance equal to the conditional variance) exceeds tenfold.
    assert np.all(_relative_mean_square_error(linear_imputer()) < 0.1)


def test_the_adapted_proposal_recovers_from_a_misplaced_encoder():
    # Any proposal gives a consistent estimate; the adaptation makes a poor one
    # good. The encoder's q(z | x_obs) is moved half a unit off in each latent
    # direction and narrowed (its raw scale lowered by 1). The mean square
    # error of a self-normalised mean is about Var(x_miss | x_obs) / ESS; a
    # proposal as good as the fitted encoder (ESS near K = 1000 here) keeps it
    # below a hundredth of the conditional variance. Proposals from the
    # misplaced encoder alone miss by over a tenth (ESS below 10); adapted,
    # they are back under the hundredth.
    import copy

    imputer = copy.deepcopy(linear_imputer())
    encoder = imputer.estimator_.net_.module_.encoder
    with torch.no_grad():
        encoder.loc.linear.bias += 0.5
        encoder.raw_scale.linear.bias -= 1.0
    assert np.all(_relative_mean_square_error(imputer) < 0.01)


def test_an_observed_integer_is_conditioned_on_as_its_bin_centre():
    # A dequantised column models x + U(0, 1): an observed integer k is
    # conditioned on as k + 1/2, so a row holding k and the same row holding
    # k + 1/2 (a non-integer, used as it is) get the same imputation of a
    # float column, bit for bit under one seed, while k + 1 gives another; the
    # observed k itself is returned unchanged.
    from sklearn_vae._inference import impute_encoded

    X = make_factor_data(80, n_features=2)
    frame = pd.DataFrame({"n": np.rint(2 * X[:, 0]).astype(int), "x": X[:, 1]})
    vae = VAETransformer(**TINY, dequantize=True).fit(frame)
    assert [c.dequantize for c in vae.schema_.columns_] == [True, False]
    for sample in (False, True):
        kwargs = dict(sample=sample, n_samples=20, random_state=0)
        at_integer = impute_encoded(
            [vae._fitted_model()], np.array([[1.0, np.nan]]), vae.schema_, **kwargs
        )
        at_centre = impute_encoded(
            [vae._fitted_model()], np.array([[1.5, np.nan]]), vae.schema_, **kwargs
        )
        at_next = impute_encoded(
            [vae._fitted_model()], np.array([[2.0, np.nan]]), vae.schema_, **kwargs
        )
        assert at_integer[0, 0] == 1.0
        assert at_integer[0, 1] == at_centre[0, 1]
        assert at_integer[0, 1] != at_next[0, 1]


def _rare_counts(n_rows, seed=0):
    """A float beside a count almost always at 0 and one almost always at its maximum, 9."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "count": pd.array(rng.poisson(0.05, n_rows), dtype="Int64"),
            "x": rng.normal(size=n_rows),
            "full": pd.array(9 - rng.poisson(0.05, n_rows), dtype="Int64"),
        }
    )


def test_integer_fills_stay_within_the_training_range():
    # A Gaussian fitted to the dequantised values of a column that is almost
    # always 0 (uniform on [0, 1)) has a standard deviation near 0.29 and puts
    # about 4% of its draws below 0: over 2000 drawn fills, about 80 would be
    # -1; likewise about 80 would be 10 in a column almost always at its
    # maximum, 9. Fills are clipped to the range seen in fit.
    frame = _rare_counts(300)
    imputer = VAEImputer(
        VAETransformer(**TINY, dequantize=True),
        sample_posterior=True,
        n_importance_samples=20,
        random_state=0,
    ).fit(frame)
    support = imputer.estimator_._support
    assert_array_equal(support[:, 1], [-np.inf, np.inf])
    missing = pd.array([pd.NA] * 2000, dtype="Int64")
    query = pd.DataFrame({"count": missing, "x": 0.0, "full": missing})
    for j, column in [(0, "count"), (2, "full")]:
        low, high = frame[column].min(), frame[column].max()
        assert_array_equal(support[:, j], [low, high])
        for sample in (True, False):
            filled = imputer.set_params(sample_posterior=sample).transform(query)[column]
            assert filled.between(low, high).all()
        draws = imputer.estimator_.sample(
            2000, random_state=0, given={"x": 0.0}, n_importance_samples=20
        )[column]
        assert draws.between(low, high).all()


def test_partial_fit_widens_the_range_of_integer_fills():
    frame = _rare_counts(200)
    # (Clipped at 1, not 0: a first chunk of zeros alone would make it a point mass.)
    vae = VAETransformer(**TINY, dequantize=True).partial_fit(
        frame.assign(count=frame["count"].clip(upper=1))
    )
    assert_array_equal(vae._support[:, 0], [0, 1])
    vae.partial_fit(frame.assign(count=frame["count"] + 3))
    assert_array_equal(vae._support[:, 0], [0, frame["count"].max() + 3])


def test_models_saved_before_the_range_was_kept_still_impute():
    vae = VAETransformer(**TINY).fit(_rare_counts(100))
    state = vae.__getstate__()
    del state["_support"]
    restored = VAETransformer.__new__(VAETransformer)
    restored.__setstate__(state)
    assert restored._support is None
    from sklearn_vae._inference import impute_encoded

    X = np.array([[np.nan, 0.0, np.nan]])
    kwargs = dict(sample=True, n_samples=5, random_state=0)
    assert np.isfinite(
        impute_encoded([restored._fitted_model()], X, restored.schema_, **kwargs)
    ).all()


@pytest.mark.parametrize(
    "n_rows, width, n_samples",
    [
        (300, 8, 2048),  # more rows than one batch of 256, many proposals
        (256, 8193, 4),  # a layer so wide that one proposal per row is all the budget allows
    ],
)
@pytest.mark.parametrize("sample", [False, True])
def test_imputation_work_in_flight_stays_within_the_importance_sampling_budget(
    monkeypatch, n_rows, width, n_samples, sample
):
    # "Memory is bounded for any K and any number of rows": each call of the
    # importance sampler holds (rows of its batch) x (proposals per chunk) x
    # (widest layer) float32 values at most, 2**22 of them (16 MiB), whenever
    # one proposal per row fits (256 x 8193 < 2**22 < 256 x 2 x 8193; all
    # 2048 proposals for 300 rows at once would be 4.9e6).
    import sklearn_vae._inference as inference

    X = make_factor_data(n_rows, n_features=2)
    vae = VAETransformer(
        n_components=2, hidden_layer_sizes=(width,), max_iter=1, random_state=0
    ).fit(X)
    assert vae.net_.module_.widest_layer() == width
    in_flight = []
    name = "conditional_draw" if sample else "conditional_mean"
    original = getattr(inference, name)

    def spy(module, x, proposal, n_samples, chunk_size, **kwargs):
        in_flight.append(x.shape[0] * min(chunk_size, n_samples) * width)
        return original(module, x, proposal, n_samples, chunk_size, **kwargs)

    monkeypatch.setattr(inference, name, spy)
    X[:, 1] = np.nan
    filled = inference.impute_encoded(
        [vae._fitted_model()], X, vae.schema_, sample=sample, n_samples=n_samples, random_state=0
    )
    assert np.isfinite(filled).all()
    assert 0 < max(in_flight) <= 2**22


# ------------------------------------------------- extreme conditioning values


@pytest.mark.parametrize("sample_posterior", [False, True])
def test_rows_far_outside_the_training_data_are_imputed_from_the_exact_conditional(
    sample_posterior,
):
    # Half the rows are moved 30 times farther from the mean (tens of training
    # standard deviations): their proposal starts at the posterior mode, and
    # their fills follow the linear-Gaussian model's exact conditional as the
    # ordinary rows' do (means: the error of a seed matches the spread between
    # two seeds, as in the closed-form test above; draws: whitened, N(0, I)).
    imputer = linear_imputer()
    observed = np.array([True, False, True, False, True])
    _, X_missing = _linear_test_rows(observed)
    X_missing = X_missing[:200]
    mean, covariance = linear_vae_marginal(imputer.estimator_)
    X_missing[::2, observed] = mean[observed] + 30 * (X_missing[::2, observed] - mean[observed])
    exact, conditional_cov = gaussian_conditional(
        mean, covariance, observed, X_missing[:, observed]
    )
    imputer.set_params(sample_posterior=sample_posterior)
    try:
        first = imputer.set_params(random_state=0).transform(X_missing)[:, ~observed]
        second = imputer.set_params(random_state=1).transform(X_missing)[:, ~observed]
    finally:
        imputer.set_params(sample_posterior=False, random_state=0)
    for rows in (slice(0, None, 2), slice(1, None, 2)):
        error = first[rows] - exact[rows]
        if sample_posterior:
            assert_standard_normal(error, conditional_cov)
        else:
            monte_carlo_var = np.mean((first[rows] - second[rows]) ** 2) / 2
            assert np.mean(error**2) / monte_carlo_var < 1.5


def test_an_observed_value_beyond_reach_is_refused_naming_its_row_and_column():
    imputer = linear_imputer()
    X = linear_data()[800:805].copy()
    X[:, 1] = np.nan
    X[3, 4] = 1e40
    with pytest.raises(ValueError, match=r"row 3: its value 1e\+40 in column 4 lies"):
        imputer.transform(X)


def test_values_beyond_float32_are_redone_in_float64(monkeypatch):
    # With the far-row threshold and the bound lifted, a row with x_0 = 1e30
    # overflows float32 and is computed again in float64: its fill is the
    # exact conditional mean to float64's relative precision.
    import sklearn_vae._inference as inference

    monkeypatch.setattr(inference, "FAR_FROM_TRAINING", np.inf)
    monkeypatch.setattr(inference, "MAX_FROM_TRAINING", np.inf)
    imputer = linear_imputer()
    observed = np.array([True, False, False, True, False])
    X = np.array([[1e30, np.nan, np.nan, -2e29, np.nan], [0.5, np.nan, np.nan, 0.2, np.nan]])
    mean, covariance = linear_vae_marginal(imputer.estimator_)
    exact, _ = gaussian_conditional(mean, covariance, observed, X[:, observed])
    laplace, redone = inference.laplace_proposal, []
    monkeypatch.setattr(
        inference, "laplace_proposal", lambda m, x: redone.append(len(x)) or laplace(m, x)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning from the float32 attempt
        filled = imputer.transform(X)[:, ~observed]
    assert redone == [1]
    np.testing.assert_allclose(filled[0], exact[0], rtol=1e-6)
    assert np.abs(filled[1] - exact[1]).max() < 1.0


@pytest.mark.parametrize("sample_posterior", [False, True])
def test_a_model_with_non_finite_outputs_is_reported_not_returned(sample_posterior):
    # The row named is the first that failed; the entry named is its observed
    # entry farthest from the training mean (here all are within one sd).
    import pickle

    imputer = pickle.loads(pickle.dumps(linear_imputer()))
    imputer.set_params(sample_posterior=sample_posterior)
    with torch.no_grad():
        imputer.estimator_.net_.module_.decoder.head.loc.bias.fill_(np.nan)
    loc, scale = imputer.estimator_._standardisation.loc, imputer.estimator_._standardisation.scale
    X = np.tile(loc, (3, 1))
    X[:, 1] = np.nan
    X[0, 3] += 0.5 * scale[3]
    advice = (
        "the model's importance weights overflow even in float64. Clip or rescale extreme "
        "values, or mark them missing (NaN); if the row is ordinary, refit the model."
    )
    named = f"row 0 (its value {X[0, 3]:.6g} in column 3 lies 0.5 training standard deviations"
    with pytest.raises(ValueError, match=re.escape(named) + ".*" + re.escape(advice)):
        imputer.transform(X)
    X[0] = np.nan
    with pytest.raises(ValueError, match=re.escape("row 0 (it has no observed entry)")):
        imputer.transform(X)


def test_the_first_non_finite_row_is_the_one_reported():
    from sklearn_vae._inference import check_finite_inference

    model = linear_imputer().estimator_._fitted_model()
    X = linear_data()[800:804].copy()
    X[:, 1] = np.nan
    filled = np.nan_to_num(X)
    check_finite_inference(filled, X, model, list(range(5)))
    filled[2, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite values for row 2 "):
        check_finite_inference(filled, X, model, list(range(5)))


@hypothesis.settings(max_examples=30, derandomize=True, deadline=None)
@hypothesis.given(
    values=st.lists(
        st.one_of(
            st.sampled_from([0.0, 1e-300, -5e-324, 1e20, -1e40, 1e300, -1e300, 1.7e308]),
            st.floats(allow_nan=False, allow_infinity=False),
            st.integers(-(2**1000), 2**1000).map(float),
        ),
        min_size=5,
        max_size=5,
    ),
    free=st.integers(0, 4),
    sample_posterior=st.booleans(),
)
def test_any_finite_observed_values_give_finite_fills_or_a_value_error(
    values, free, sample_posterior
):
    imputer = linear_imputer()
    X = np.array([values, linear_data()[900]])
    X[:, free] = np.nan
    imputer.set_params(sample_posterior=sample_posterior, n_importance_samples=50)
    try:
        filled = imputer.transform(X)
    except ValueError as error:
        assert "column" in str(error)
        return
    finally:
        imputer.set_params(sample_posterior=False, n_importance_samples=1000)
    assert np.all(np.isfinite(filled))
    assert_array_equal(filled[:, np.arange(5) != free], X[:, np.arange(5) != free])


def _linear_posterior(module, x_std, observed):
    """Exact posterior mean and precision of z given the observed standardised entries."""
    head = module.decoder.head
    with torch.no_grad():
        W, b = head.loc.weight.double().numpy(), head.loc.bias.double().numpy()
        s = (torch.nn.functional.softplus(head.raw_scale.value.double()) + MIN_SCALE).numpy()
    W_o, inverse_noise = W[observed], 1 / s[observed] ** 2
    precision = np.eye(W.shape[1]) + W_o.T @ (inverse_noise[:, None] * W_o)
    mean = np.linalg.solve(precision, W_o.T @ (inverse_noise * (x_std[observed] - b[observed])))
    return mean, precision


def test_posterior_mode_and_laplace_proposal_of_a_linear_model_are_exact():
    # log p(x_obs, z) of a linear-Gaussian model is quadratic in z: from a
    # start 100 posterior standard deviations away, the damped Newton search
    # ends at the exact posterior mean with the exact precision, and the
    # Laplace proposal is that Gaussian with its scale widened by 1.2.
    import copy

    from sklearn_vae._inference import laplace_proposal, posterior_mode

    vae = linear_imputer().estimator_
    module = copy.deepcopy(vae.net_.module_).double().eval()
    observed = np.array([True, False, True, False, True])
    X = np.full((2, 5), np.nan)
    X[:, observed] = [[40.0, -25.0, 60.0], [0.5, 0.1, -0.3]]
    x_std = vae._standardisation.transform(X)
    x = torch.as_tensor(x_std)
    with torch.no_grad():
        mode, precision = posterior_mode(module, x, torch.full((2, 2), 100.0, dtype=torch.float64))
        proposal = laplace_proposal(module, x)
    for row in range(2):
        exact_mean, exact_precision = _linear_posterior(module, x_std[row], observed)
        np.testing.assert_allclose(mode[row].numpy(), exact_mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(precision[row].numpy(), exact_precision, rtol=1e-9)
        np.testing.assert_allclose(proposal.mean[row].numpy(), exact_mean, rtol=1e-9, atol=1e-9)
        scale = 1.2 * np.sqrt(np.diag(np.linalg.inv(exact_precision)))
        np.testing.assert_allclose(proposal.stddev[row].numpy(), scale, rtol=1e-9)


def test_posterior_mode_of_a_relu_network_is_a_point_its_own_search_cannot_improve():
    # A ReLU decoder's log-density is piecewise smooth: from the encoder's
    # mean of a row 100 training standard deviations out, the search gains
    # many nats and stops where a second search from its end gains under a
    # tenth of a nat (at a kink its damping can end a search a little early).
    import copy

    from sklearn_vae._inference import posterior_mode

    data = make_factor_data(300, n_features=4)
    vae = VAETransformer(n_components=2, hidden_layer_sizes=(16,), max_iter=20, random_state=0)
    module = copy.deepcopy(vae.fit(data).net_.module_).double().eval()
    X = data[:6].copy()
    X[:, 1] = np.nan
    X[:, 0] = data[:, 0].mean() + 100 * data[:, 0].std()
    x = torch.as_tensor(vae._standardisation.transform(X))

    def log_joint(z):
        with torch.no_grad():
            return (module.log_prob_given(z, x) + module.prior.log_prob(z)).numpy()

    with torch.no_grad():
        start = module.posterior(x).mean
        # Row by row too: a search of one row ends only when its damping does.
        alone = [posterior_mode(module, x[i : i + 1], start[i : i + 1])[0] for i in range(len(x))]
        mode, _ = posterior_mode(module, x, start)
        again, _ = posterior_mode(module, x, mode)
    assert np.all(log_joint(mode) > log_joint(start) + 10)
    assert np.all(np.abs(log_joint(torch.cat(alone)) - log_joint(mode)) < 0.1)
    assert np.all(log_joint(again) >= log_joint(mode))
    assert np.all(log_joint(again) - log_joint(mode) < 0.1)


def test_posterior_mode_retries_a_refused_step_with_more_damping():
    # log p = -sum sqrt(1 + (z - x)^2) is concave but nearly flat far from its
    # mode: as the damping shrinks the steps grow until one overshoots, and
    # the search must retry it with more damping, not stop there.
    from types import SimpleNamespace

    from sklearn_vae._inference import posterior_mode

    class Smooth:
        prior = SimpleNamespace(log_prob=lambda z: torch.zeros(z.shape[:-1], dtype=z.dtype))

        def log_prob_given(self, z, x):
            return -torch.sqrt(1 + (z - x) ** 2).sum(-1)

    x = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    start = x + torch.tensor([[1000.0, -300.0], [5.0, 1e4]], dtype=torch.float64)
    with torch.no_grad():
        mode, precision = posterior_mode(Smooth(), x, start)
    np.testing.assert_allclose(mode.numpy(), x.numpy(), atol=1e-6)
    np.testing.assert_allclose(precision.numpy(), np.tile(np.eye(2), (2, 1, 1)), atol=1e-6)


@pytest.mark.parametrize("chunk_size", [1, 4])
def test_a_row_with_a_non_finite_proposal_gets_nan_fills_and_leaves_the_others(chunk_size):
    # The row's weights are NaN: its mean (numeric and categorical) and its
    # draw are NaN, for the caller to report, and no sampler raises; the other
    # row's fills are finite levels and numbers.
    import copy

    from sklearn_vae._inference import conditional_draw, conditional_mean

    frame = _table(("x", "colour", "y"))
    vae = VAETransformer(**TINY).fit(frame)
    module = copy.deepcopy(vae.net_.module_).double().eval()
    x = torch.tensor([[0.3, np.nan, np.nan], [0.3, np.nan, np.nan]], dtype=torch.float64)
    with torch.no_grad():
        q = module.posterior(x)
        loc = q.mean.clone()
        loc[0] = np.nan
        normal = torch.distributions.Normal(loc, q.stddev, validate_args=False)
        proposal = torch.distributions.Independent(normal, 1)
        torch.manual_seed(0)
        mean = conditional_mean(module, x, proposal, 4, chunk_size)
        draw = conditional_draw(module, x, proposal, 4, chunk_size)
    for filled in (mean, draw):
        assert torch.isnan(filled[0, 1:]).all()
        assert torch.isfinite(filled[1]).all() and filled[1, 1] in (0.0, 1.0, 2.0)


def test_distances_are_in_training_standard_deviations_for_every_likelihood():
    from sklearn_vae._inference import standardised_distances

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(3, 2, 200), "count": rng.poisson(5, 200)})
    vae = VAETransformer(likelihood={"count": "poisson"}, **TINY).fit(frame)
    X = np.array([[23.0, np.nan], [np.nan, 45.0], [-7.0, 0.0]])
    expected = np.abs(X - frame.mean().to_numpy()) / frame.std(ddof=0).to_numpy()
    distances = standardised_distances(vae._fitted_model(), X)
    np.testing.assert_allclose(distances, expected, rtol=1e-6)


def test_only_rows_far_from_the_training_data_get_the_laplace_proposal(monkeypatch):
    # Ordinary rows keep the encoder's proposal in float32 (their results are
    # those of earlier versions); a far row, and a row whose float32 result
    # overflows, are the only ones redone from the Laplace proposal.
    import sklearn_vae._inference as inference

    laplace = inference.laplace_proposal
    seen = []

    def spy(module, x):
        seen.append((x.shape[0], x.dtype))
        return laplace(module, x)

    monkeypatch.setattr(inference, "laplace_proposal", spy)
    imputer = linear_imputer()
    X = linear_data()[800:810].copy()
    X[:, 1] = np.nan
    imputer.transform(X)
    assert seen == []
    X[4, 0] = 40.0
    imputer.transform(X)
    assert seen == [(1, torch.float64)]


def test_verbose_prints_a_line_per_fit_per_model_and_per_transform(capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    X[rng.uniform(size=X.shape) < 0.2] = np.nan
    n_missing = int(np.isnan(X).sum())
    imputer = VAEImputer(VAETransformer(**TINY), n_estimators=2, random_state=0, verbose=1)
    imputer.fit(X)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"[VAEImputer] fitting 2 model(s) on 50 rows and 3 columns, {n_missing} entries missing"
    )
    for position, (line, model) in enumerate(zip(lines[1:], imputer.estimators_, strict=True)):
        assert re.fullmatch(
            rf"\[VAEImputer\] model {position + 1} of 2 fitted: {model.n_iter_} epochs in "
            r"\d+\.\d s",
            line,
        )
    imputer.transform(X[:10])
    line = capsys.readouterr().out.strip()
    n_filled = int(np.isnan(X[:10]).sum())
    assert re.fullmatch(rf"\[VAEImputer\] filled {n_filled} entries of 10 rows in \d+\.\d s", line)
    imputer.set_params(verbose=0).transform(X)
    assert capsys.readouterr().out == ""
    # verbose=2 gives the default VAE its own table of epochs; 1 does not.
    assert VAEImputer(verbose=2)._make_estimator(X).verbose == 1
    assert VAEImputer(verbose=1)._make_estimator(X).verbose == 0


def test_the_conditional_mean_of_a_power_mapped_column_is_the_mean_of_its_inverse(monkeypatch):
    # A squared error rewards E[x | x_obs]. For a power-mapped column that is
    # sum_k w_k E[psi^-1(t)] with t ~ N(mu_k, sigma_k^2) of each proposal's
    # decoder, not psi^-1 of the mean: the reference integrates each term by
    # trapezoids on 48,001 points over +-12 standard deviations. The inverse
    # map's second derivative jumps where its two branches meet, so the
    # 32-node Gauss-Hermite rule converges only algebraically there (a few
    # 1e-5, relative): the tolerance is 1e-4, far below the gap of 1e-3 and
    # more to the map of the mean.
    import copy

    from sklearn_vae._inference import conditional_mean
    from sklearn_vae._power import yeo_johnson_inverse

    rng = np.random.default_rng(0)
    w = rng.normal(size=400)
    X = np.c_[np.exp(w), w + 0.5 * rng.normal(size=400)]
    vae = VAETransformer(**TINY).fit(X)
    standardisation = vae._standardisation
    assert standardisation.power.tolist() == [True, False]
    module = copy.deepcopy(vae.net_.module_).double().eval()
    rows = standardisation.transform(X[:20])
    rows[:, 0] = np.nan
    x = torch.as_tensor(rows)
    power = standardisation.power_arguments()
    with torch.no_grad():
        q = module.posterior(x)
        z = q.sample((5,))
        _FixedProposals.patch(monkeypatch)
        actual = conditional_mean(module, x, _FixedProposals(q, z), 5, 2, power=power)[:, 0]
        log_w = module.log_prob_given(z, x) + module.prior.log_prob(z) - q.log_prob(z)
        weights = torch.softmax(log_w, 0).numpy()
        decoded = module.likelihood.distribution(module.decoder(z))
        loc, scale = decoded.mean[..., 0].numpy(), decoded.stddev[..., 0].numpy()
    grid = np.linspace(-12, 12, 48_001)
    t = loc[..., None] + scale[..., None] * grid
    lmbda, shift, spread = (value[0] for value in power[1:])
    inverse = yeo_johnson_inverse(t * spread + shift, lmbda)
    inner = np.trapezoid(inverse * np.exp(-(grid**2) / 2) / np.sqrt(2 * np.pi), grid, axis=-1)
    assert_allclose(actual.numpy(), (weights * inner).sum(0), rtol=1e-4)
    # The map of the mean differs by far more than that.
    mapped = yeo_johnson_inverse((weights * loc).sum(0) * spread + shift, lmbda)
    assert np.abs(actual.numpy() - mapped).min() > 1e-3
