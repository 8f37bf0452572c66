"""Each observation model gives a normalised distribution and guards its support."""

import copy
import itertools

import numpy as np
import pytest
import torch
from numpy.polynomial.hermite_e import hermegauss
from numpy.testing import assert_allclose, assert_array_equal

from sklearn_vae import VAETransformer
from sklearn_vae._data import summarise_columns
from sklearn_vae._likelihoods import (
    LIKELIHOODS,
    MAX_LEVELS,
    BernoulliLikelihood,
    CategoricalLikelihood,
    GaussianLikelihood,
    Likelihood,
    PoissonLikelihood,
)

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
    message = (
        rf"^likelihood='{likelihood}' requires integer-valued X, but X\[4, 1\] = 0.5\. "
        r"Round or bin X first, or use likelihood='gaussian'\.$"
    )
    with pytest.raises(ValueError, match=message):
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
    message = (
        r"^likelihood='poisson' requires non-negative counts; got a minimum of -1\. "
        r"Use likelihood='gaussian' for signed data\.$"
    )
    with pytest.raises(ValueError, match=message):
        VAETransformer(**SMALL, likelihood="poisson").fit(_correlated_counts(50, 3) - 1)


@pytest.mark.parametrize("hidden, heteroscedastic", [((8,), True), ((), False)])
def test_gaussian_scale_depends_on_z_only_with_hidden_layers(hidden, heteroscedastic):
    X = _correlated_counts(100, 5)
    params = {**SMALL, "hidden_layer_sizes": hidden, "max_iter": 3, "dequantize": True}
    vae = VAETransformer(**params).fit(X)
    module = vae.net_.module_
    z = torch.tensor([[-2.0], [0.0], [2.0]])
    with torch.no_grad():
        scale = module.likelihood.distribution(module.decoder(z)).scale
    assert scale.shape == (3, 2)
    assert (not torch.equal(scale[0], scale[2])) == heteroscedastic


def test_bernoulli_scores_grey_levels_in_the_unit_interval():
    # Values strictly between 0 and 1 are accepted (binary cross-entropy).
    X = np.random.default_rng(0).uniform(size=(100, 3))
    vae = VAETransformer(**{**SMALL, "max_iter": 3}, likelihood="bernoulli").fit(X)
    assert np.all(np.isfinite(vae.score_samples(X)))
    assert np.all(np.isfinite(vae.log_likelihood(X, n_importance_samples=4, random_state=0)))


@pytest.mark.parametrize("low, high", [(-0.5, 1.0), (0.0, 1.5)])
def test_bernoulli_rejects_either_bound_of_the_unit_interval(low, high):
    X = np.array([[low], [0.5], [high]])
    message = (
        rf"^likelihood='bernoulli' requires X in \[0, 1\]; got values in \[{low:g}, {high:g}\]\. "
        r"Rescale X \(for example with MinMaxScaler\) or use likelihood='gaussian'\.$"
    )
    with pytest.raises(ValueError, match=message):
        BernoulliLikelihood(1).check_support(X)
    BernoulliLikelihood(1).check_support(np.array([[0.0], [1.0]]))


def test_categorical_names_the_first_value_outside_its_levels_across_chunks():
    likelihood = CategoricalLikelihood(2)
    X = np.full((10_000, 2), 3.0)
    X[0] = [2.0, 5.0]  # both bounds are levels
    likelihood.fit(summarise_columns(X))
    likelihood.check_support(X)
    X[9000, 1] = 6.0
    X[9500, 0] = 1.0
    message = (
        r"^X\[9000, 1\] = 6 is outside the levels seen in fit \(2 to 5\); "
        r"likelihood='categorical' gives it no probability\. "
        r"Refit on data that covers every level\.$"
    )
    with pytest.raises(ValueError, match=message):
        likelihood.check_support(X)


def test_categorical_supports_at_most_max_levels():
    X = np.array([[5.0], [5.0 + MAX_LEVELS - 1]])
    assert len(CategoricalLikelihood(1).fit(summarise_columns(X)).levels) == MAX_LEVELS
    X[1] += 1
    message = (
        rf"^likelihood='categorical' would need {MAX_LEVELS + 1} levels \(X ranges from 5 "
        rf"to {MAX_LEVELS + 5:g}\); at most {MAX_LEVELS} are supported\. Bin X first or use "
        r"likelihood='poisson' or 'gaussian'\.$"
    )
    with pytest.raises(ValueError, match=message):
        CategoricalLikelihood(1).fit(summarise_columns(X))


@pytest.mark.parametrize("cls", [GaussianLikelihood, PoissonLikelihood, BernoulliLikelihood])
def test_log_prob_broadcasts_over_leading_sample_dimensions(cls):
    # Every likelihood scores any batch shape: leading sample dimensions broadcast.
    likelihood = cls(2)
    head = likelihood.make_head(3, heteroscedastic=True)
    params = head(torch.zeros(5, 4, 3))
    x = torch.zeros(4, 2)
    assert likelihood.log_prob(params, x).shape == (5, 4)


def test_poisson_counts_end_at_the_largest_integer_float32_holds_exactly():
    likelihood = LIKELIHOODS["poisson"](1)
    likelihood.check_support(np.array([[0.0], [2.0**24]]))  # exact in float32: accepted
    message = (
        r"^likelihood='poisson' models counts up to 16,777,216, the integers float32 holds "
        r"exactly; got 1\.67772e\+07\. Use likelihood='gaussian' with dequantize=True for "
        r"counts this large\.$"
    )
    with pytest.raises(ValueError, match=message):
        likelihood.check_support(np.array([[0.0], [2.0**24 + 1]]))


@pytest.mark.parametrize("heteroscedastic", [True, False])
def test_table_head_passes_heteroscedastic_to_its_gaussian_part(heteroscedastic):
    from sklearn_vae._likelihoods import TableLikelihood

    table = TableLikelihood([(GaussianLikelihood(1), [0]), (PoissonLikelihood(1), [1])])
    torch.manual_seed(0)
    (_, raw_scale), _ = table.make_head(3, heteroscedastic)(torch.randn(2, 3))
    assert (not torch.equal(raw_scale[0], raw_scale[1])) == heteroscedastic


@pytest.mark.parametrize("n_rows", [0, 2])
def test_label_levels_come_from_the_category_count_even_without_rows(n_rows):
    # A label column's levels are its category codes 0..2, whatever the data hold
    # (here codes 0 and 1 only, or no rows at all); an integer feature's are its range.
    X = np.array([[0.0, 2.0], [1.0, 5.0]])[:n_rows]
    likelihood = CategoricalLikelihood(2, shared_levels=False, n_categories=[3, None])
    likelihood.fit(summarise_columns(X))
    low, high = (2.0, 5.0) if n_rows else (0.0, 0.0)  # no rows: one level, 0
    assert_array_equal(likelihood.offsets, [0.0, low])
    assert_array_equal(likelihood.n_levels, [3, high - low + 1])


def test_each_head_output_is_the_logit_of_one_level_of_one_feature():
    # Features with different level counts (groups of 2 and 3 levels) read the
    # head's outputs in order: feature 0 the first two, feature 1 the next three.
    likelihood = CategoricalLikelihood(2, shared_levels=False, n_categories=[2, 3])
    likelihood.fit(summarise_columns(np.zeros((1, 2))))
    params = torch.tensor([0.0, 1.0, 0.0, 2.0, 4.0])
    levels = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 2.0]])
    expected = torch.stack(
        [params[:2].log_softmax(0)[[0, 1, 1]], params[2:].log_softmax(0)[[0, 1, 2]]], dim=1
    )
    torch.testing.assert_close(likelihood.entry_log_prob(params, levels), expected)


@pytest.mark.parametrize(
    "shared_levels, offsets, n_levels", [(True, [0.0, 0.0], [6, 6]), (False, [0.0, 1.0], [4, 5])]
)
def test_shared_levels_span_every_feature_and_per_feature_levels_their_own_range(
    shared_levels, offsets, n_levels
):
    X = np.array([[0.0, 1.0], [3.0, 5.0]])
    likelihood = CategoricalLikelihood(2, shared_levels=shared_levels).fit(summarise_columns(X))
    assert_array_equal(likelihood.offsets, offsets)
    assert_array_equal(likelihood.n_levels, n_levels)


def test_the_level_limit_is_checked_on_the_widest_feature_wherever_it_is():
    # Feature 0 has the larger values, feature 1 the wider range.
    X = np.array([[2000.0, 0.0], [2001.0, MAX_LEVELS]])
    message = rf"^likelihood='categorical' would need {MAX_LEVELS + 1} levels \(X ranges from 0 "
    with pytest.raises(ValueError, match=message):
        CategoricalLikelihood(2, shared_levels=False).fit(summarise_columns(X))


def test_categorical_messages_name_the_column():
    likelihood = CategoricalLikelihood(1, ["colour"]).fit(
        summarise_columns(np.array([[0.0], [2.0]]))
    )
    with pytest.raises(ValueError, match=r"^X\[0, 'colour'\] = 3 is outside the levels"):
        likelihood.check_support(np.array([[3.0]]))


@pytest.mark.parametrize("shared_levels", [True, False])
def test_categorical_means_and_samples_are_float32_like_the_module(shared_levels):
    X = np.array([[0.0, 1.0], [3.0, 5.0]])
    likelihood = CategoricalLikelihood(2, shared_levels=shared_levels).fit(summarise_columns(X))
    params = torch.zeros(4, int(likelihood.n_levels.sum()))
    assert likelihood.mean(params).dtype == torch.float32
    assert likelihood.sample(params).dtype == torch.float32


def test_gaussian_log_density_of_a_row_with_a_missing_entry_is_its_observed_marginal():
    # The likelihood works in standardised units: a missing entry contributes
    # nothing. The standardisation's log-Jacobian (columns of sd 2 and 4) then
    # gives each observed entry its own -log(sd), and a missing entry none.
    from sklearn_vae._data import Standardisation

    likelihood = GaussianLikelihood(2).fit(summarise_columns(np.zeros((1, 2))))
    params = (torch.zeros(1, 2), torch.zeros(1, 2))
    normal = torch.distributions.Normal(0.0, likelihood.distribution(params).scale[0, 0])
    one = normal.log_prob(torch.tensor(1.0))
    t = torch.tensor([[1.0, float("nan")], [1.0, 1.0]])
    torch.testing.assert_close(likelihood.log_prob(params, t), torch.stack([one, 2 * one]))
    standardisation = Standardisation(
        np.array([1.0, 10.0]), np.array([2.0, 4.0]), np.ones(2), np.ones(2, dtype=bool)
    )
    X = np.array([[3.0, np.nan], [3.0, 14.0]])
    assert_allclose(standardisation.transform(X)[1], [1.0, 1.0])
    assert_allclose(
        standardisation.log_jacobian(X), [-np.log(2.0), -np.log(2.0) - np.log(4.0)], rtol=1e-15
    )


def _table_likelihood(frame, likelihood):
    from sklearn_vae._likelihoods import make_likelihood
    from sklearn_vae._schema import TableSchema

    schema = TableSchema(likelihood, False).fit(frame)
    return make_likelihood(schema.columns_).fit(summarise_columns(schema.encode(frame)))


def test_table_parts_name_their_columns_in_messages():
    import pandas as pd

    frame = pd.DataFrame({"x": [0.5, 1.5], "n": [1, 2], "k": [0, 3]})
    table = _table_likelihood(frame, {"x": "gaussian", "n": "poisson", "k": "categorical"})
    with pytest.raises(ValueError, match=r"non-negative counts \(columns \['n'\]\)"):
        table.check_support(np.array([[0.5, -1.0, 0.0]]))
    # A numeric column's own levels are unit bins: every value is in its support.
    table.check_support(np.array([[0.5, 1.0, 4.5]]))


def test_integer_columns_of_a_table_modelled_as_categories_have_their_own_levels():
    import pandas as pd

    frame = pd.DataFrame({"year": [2007, 2009], "k": [0, 3], "x": [0.5, 1.5]})
    table = _table_likelihood(frame, {"year": "categorical", "k": "categorical"})
    categorical = table.parts[[part.name for part in table.parts].index("categorical")]
    assert_array_equal(categorical.offsets, [2007.0, 0.0])
    assert_array_equal(categorical.n_levels, [3, 4])


def test_categorical_levels_are_buffers_that_follow_the_module_to_float64():
    X = np.array([[0.0, 1.0], [3.0, 5.0]])
    likelihood = CategoricalLikelihood(2, shared_levels=False).fit(summarise_columns(X)).double()
    assert {"offsets", "n_levels"} <= set(likelihood.state_dict())
    params = torch.zeros(4, int(likelihood.n_levels.sum()), dtype=torch.float64)
    assert likelihood.sample(params).dtype == torch.float64


def test_a_label_column_keeps_the_levels_of_categories_declared_but_not_seen():
    import pandas as pd

    labels = pd.Series(["a", "b"], dtype=pd.CategoricalDtype(["a", "b", "c"]))
    table = _table_likelihood(pd.DataFrame({"c": labels, "x": [0.5, 1.5]}), "auto")
    categorical = table.parts[[part.name for part in table.parts].index("categorical")]
    assert_array_equal(categorical.n_levels, [3])  # "c" has a level, though never seen


def test_a_matrix_modelled_as_categories_shares_one_range_of_levels():
    from sklearn_vae._likelihoods import make_likelihood
    from sklearn_vae._schema import TableSchema

    X = np.array([[0.0, 1.0], [3.0, 5.0]])
    likelihood = make_likelihood(TableSchema("categorical", False).fit(X).columns_)
    likelihood.fit(summarise_columns(X))
    assert_array_equal(likelihood.offsets, [0.0, 0.0])
    assert_array_equal(likelihood.n_levels, [6, 6])


def test_a_missing_entry_of_a_one_level_feature_scores_nothing():
    # The stand-in for a missing entry must be a level of every feature: here 0 only.
    likelihood = CategoricalLikelihood(2, shared_levels=False).fit(
        summarise_columns(np.array([[4.0, 0.0], [4.0, 2.0]]))
    )
    params = torch.zeros(1, 4)  # one level, then three
    x = torch.tensor([[float("nan"), 2.0]])
    torch.testing.assert_close(likelihood.log_prob(params, x), -torch.log(torch.tensor([3.0])))


def test_a_features_own_integer_levels_are_unit_bins_and_leave_values_beyond_them_out():
    likelihood = CategoricalLikelihood(
        2, ["k", "colour"], shared_levels=False, n_categories=[None, 3]
    )
    likelihood.fit(summarise_columns(np.array([[1.0, 0.0], [4.0, 2.0]])))
    assert likelihood.binned.tolist() == [True, False]
    params = torch.randn(1, 4 + 3, generator=torch.Generator().manual_seed(0))

    def log_prob(k):
        return float(likelihood.log_prob(params, torch.tensor([[k, 1.0]])))

    def label_only():
        return float(likelihood.log_prob(params, torch.tensor([[float("nan"), 1.0]])))

    # A value scores as the integer below it; one beyond the levels 1..4 is left out.
    assert log_prob(2.5) == log_prob(2.0) != log_prob(3.0)
    assert log_prob(4.999) == log_prob(4.0)
    for beyond in (0.0, 0.999, 5.0, -3.0):
        assert log_prob(beyond) == label_only()
    # Every value is in the support of the binned feature; labels are still checked.
    likelihood.check_support(np.array([[7.5, 2.0]]))
    with pytest.raises(ValueError, match=r"^X\[0, 'colour'\] = 3 is outside the levels"):
        likelihood.check_support(np.array([[7.5, 3.0]]))
